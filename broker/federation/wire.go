package federation

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
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
