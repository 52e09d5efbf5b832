package federation

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/cinet/cinet/identity"
	"github.com/cinet/cinet/identity/peerid"
)

// ErrTooLarge is a message over its protocol's size bound.
var ErrTooLarge = errors.New("federation: message too large")

// writeMsg writes one message: its length as an unsigned varint, then its
// JSON.
func writeMsg(w io.Writer, v any, limit int) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if len(data) > limit {
		return fmt.Errorf("%w: %d bytes, the bound is %d", ErrTooLarge, len(data), limit)
	}
	var n [binary.MaxVarintLen64]byte
	if _, err := w.Write(n[:binary.PutUvarint(n[:], uint64(len(data)))]); err != nil {
		return err
	}
	_, err = w.Write(data)
	return err
}

// readMsg reads one message written by writeMsg into v, refusing one
// longer than limit before reading it.
func readMsg(r *bufio.Reader, v any, limit int) error {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return err
	}
	if n > uint64(limit) {
		return fmt.Errorf("%w: %d bytes announced, the bound is %d", ErrTooLarge, n, limit)
	}
	data := make([]byte, n)
	if _, err := io.ReadFull(r, data); err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("federation: malformed message: %w", err)
	}
	return nil
}

// exchange sends a request on a new stream and reads the reply, within the
// deadline; the stream is closed on success and reset on error.
func exchange(s network.Stream, req, resp any, limit int, deadline time.Time) error {
	s.SetDeadline(deadline)
	if err := writeMsg(s, req, limit); err != nil {
		s.Reset()
		return err
	}
	if err := s.CloseWrite(); err != nil {
		s.Reset()
		return err
	}
	if err := readMsg(bufio.NewReader(s), resp, limit); err != nil {
		s.Reset()
		return err
	}
	// The answer is whole. Closing frees the stream; when the other side
	// has torn it down first, the error it gives ("close called for
	// canceled stream") says nothing about the answer.
	s.Close()
	return nil
}

// serveOne answers one request on a stream of a request/response
// protocol: the peer must be a member, the request must arrive within the
// deadline and the size bound, and the answer handle gives goes back
// before the stream closes. Whatever fails is counted and resets the
// stream.
func serveOne[Req any](n *Node, s network.Stream, proto string, deadline time.Duration, limit int,
	handle func(ctx context.Context, asker identity.PrincipalID, req Req) any) {
	asker, ok := n.member(s.Conn().RemotePeer())
	if !ok {
		s.Reset()
		return
	}
	s.SetDeadline(time.Now().Add(deadline))
	var req Req
	if err := readMsg(bufio.NewReader(s), &req, limit); err != nil {
		n.m.streamErrors.WithLabelValues(proto, "read").Inc()
		s.Reset()
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	if err := writeMsg(s, handle(ctx, asker, req), limit); err != nil {
		n.m.streamErrors.WithLabelValues(proto, "write").Inc()
		s.Reset()
		return
	}
	s.Close()
}

// call sends one request to a member over a request/response protocol
// and reads its answer into resp, within the deadline.
func (n *Node) call(ctx context.Context, to identity.PrincipalID, proto string, deadline time.Duration, limit int, req, resp any) error {
	ctx, cancel := context.WithTimeout(ctx, deadline)
	defer cancel()
	s, err := n.host.NewStream(network.WithAllowLimitedConn(ctx, proto), peerid.Of(to), protocol.ID(proto))
	if err != nil {
		return fmt.Errorf("federation: reaching broker %s: %w", to, err)
	}
	end, _ := ctx.Deadline()
	if err := exchange(s, req, resp, limit, end); err != nil {
		n.m.streamErrors.WithLabelValues(proto, "exchange").Inc()
		return fmt.Errorf("federation: asking broker %s: %w", to, err)
	}
	return nil
}
