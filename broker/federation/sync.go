package federation

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/cinet/cinet/broker/book"
	"github.com/cinet/cinet/identity"
)

// A syncRequest summarizes the offers a broker holds: the sequence of each
// pool's offer, by name.
type syncRequest struct {
	Have map[string]uint64 `json:"have"`
}

// A syncResponse carries the offers the asker lacks or holds older, and the
// responder's announcement; More says another request will bring more.
type syncResponse struct {
	Offers        [][]byte `json:"offers"`
	Withdrawals   [][]byte `json:"withdrawals,omitempty"`
	Announcements [][]byte `json:"announcements,omitempty"`
	More          bool     `json:"more,omitempty"`
}

// syncDeadline bounds one sync exchange.
const syncDeadline = 30 * time.Second

func (n *Node) summary() map[string]uint64 {
	have := map[string]uint64{}
	for _, e := range n.cfg.Book.Snapshot() {
		have[e.Name] = e.Sequence
	}
	return have
}

// serveSync answers a peer's summary with what it lacks, a page at a time.
func (n *Node) serveSync(s network.Stream) {
	if _, ok := n.member(s.Conn().RemotePeer()); !ok {
		s.Reset()
		return
	}
	s.SetDeadline(time.Now().Add(syncDeadline))
	var req syncRequest
	if err := readMsg(bufio.NewReader(s), &req, MaxSyncRequest); err != nil {
		n.m.streamErrors.WithLabelValues(ProtocolSync, "read").Inc()
		s.Reset()
		return
	}
	resp := syncResponse{Announcements: n.announcementEnvelopes()}
	// Withdrawals the asker missed: pools it holds that this broker owned
	// and withdrew.
	ctx, cancel := context.WithTimeout(context.Background(), syncDeadline)
	defer cancel()
	if gone, err := n.cfg.Offers.WithdrawnOwn(ctx); err == nil {
		for name, seq := range gone {
			if have, ok := req.Have[name]; ok && have <= seq && len(resp.Withdrawals) < SyncPage {
				if env, err := n.withdrawal(name, seq); err == nil {
					resp.Withdrawals = append(resp.Withdrawals, env.Encode())
				}
			}
		}
	}
	size := 0
	for _, e := range n.cfg.Book.Snapshot() {
		if !e.Signed() {
			continue
		}
		if seq, ok := req.Have[e.Name]; ok && seq >= e.Sequence {
			continue
		}
		env, err := e.Envelope()
		if err != nil {
			n.cfg.Log.Warn("an offer in the book cannot be sent", "offer", e.Name, "err", err)
			continue
		}
		enc := env.Encode()
		if len(resp.Offers) == SyncPage || size+len(enc) > MaxSyncResponse*3/4 {
			resp.More = true
			break
		}
		resp.Offers = append(resp.Offers, enc)
		size += len(enc) * 4 / 3 // base64 in JSON
	}
	if err := writeMsg(s, resp, MaxSyncResponse); err != nil {
		n.m.streamErrors.WithLabelValues(ProtocolSync, "write").Inc()
		s.Reset()
		return
	}
	s.Close()
}

// syncWith pulls from a peer the offers this broker lacks, until it has
// them all. Each offer is checked as a gossiped one is, under the broker
// it names, which must be a member: its provider signed that name.
func (n *Node) syncWith(ctx context.Context, p peer.ID) {
	if _, ok := n.member(p); !ok || p == n.host.ID() {
		return
	}
	for range 1000 { // pages; a peer that never says "no more" is cut off
		sctx, cancel := context.WithTimeout(ctx, syncDeadline)
		s, err := n.host.NewStream(sctx, p, ProtocolSync)
		if err != nil {
			cancel()
			n.cfg.Log.Debug("opening a sync stream", "peer", p, "err", err)
			return
		}
		var resp syncResponse
		err = exchange(s, syncRequest{Have: n.summary()}, &resp, MaxSyncResponse, time.Now().Add(syncDeadline))
		cancel()
		if err != nil {
			n.m.streamErrors.WithLabelValues(ProtocolSync, "exchange").Inc()
			n.cfg.Log.Info("sync with a peer failed", "peer", p, "err", err)
			return
		}
		for _, raw := range resp.Announcements {
			n.syncAnnouncement(raw)
		}
		peerID, _ := n.member(p)
		for _, raw := range resp.Withdrawals {
			n.syncWithdrawal(ctx, raw, peerID)
		}
		admitted := 0
		for _, raw := range resp.Offers {
			if n.syncOffer(ctx, raw) {
				admitted++
			}
		}
		n.m.synced.Add(float64(admitted))
		if !resp.More || admitted == 0 {
			return
		}
	}
}

func (n *Node) syncOffer(ctx context.Context, raw []byte) bool {
	if len(raw) > MaxGossip {
		n.m.gossip.WithLabelValues(ProtocolSync, "rejected", "too-large").Inc()
		return false
	}
	env, err := identity.DecodeEnvelope(raw)
	if err != nil {
		n.m.gossip.WithLabelValues(ProtocolSync, "rejected", "malformed").Inc()
		return false
	}
	var claim struct {
		Broker identity.PrincipalID `json:"broker"`
	}
	if err := json.Unmarshal(env.Payload, &claim); err != nil || !n.IsMember(claim.Broker) {
		n.m.gossip.WithLabelValues(ProtocolSync, "rejected", "not-a-member").Inc()
		return false
	}
	if claim.Broker == n.self {
		// This broker is the authority on its own offers: a peer's copy
		// of one it has withdrawn or replaced must not bring it back.
		n.m.gossip.WithLabelValues(ProtocolSync, "ignored", "own").Inc()
		return false
	}
	_, err = n.cfg.Offers.Admit(ctx, raw, claim.Broker)
	switch {
	case err == nil:
		n.m.gossip.WithLabelValues(ProtocolSync, "accepted", "").Inc()
		return true
	case errors.Is(err, book.ErrStale), errors.Is(err, book.ErrExpired):
		n.m.gossip.WithLabelValues(ProtocolSync, "ignored", "stale").Inc()
	default:
		n.m.gossip.WithLabelValues(ProtocolSync, "rejected", "invalid-offer").Inc()
		n.cfg.Log.Info("refused an offer from sync", "err", err)
	}
	return false
}

// syncWithdrawal applies a withdrawal a peer sent as the owner of the
// pool, checked as a gossiped one is.
func (n *Node) syncWithdrawal(ctx context.Context, raw []byte, owner identity.PrincipalID) {
	w, reason, err := n.checkWithdrawal(raw, owner)
	if reason != "" {
		result := "rejected"
		if reason == "stale" {
			result = "ignored"
		}
		n.m.gossip.WithLabelValues(ProtocolSync, result, reason).Inc()
		if result == "rejected" {
			n.cfg.Log.Info("refused a withdrawal from sync", "reason", reason, "err", err)
		}
		return
	}
	if err := n.cfg.Offers.WithdrawFor(ctx, w.Name, owner); err != nil {
		n.cfg.Log.Warn("applying a withdrawal", "offer", w.Name, "err", err)
		return
	}
	n.m.gossip.WithLabelValues(ProtocolSync, "accepted", "").Inc()
}

func (n *Node) syncAnnouncement(raw []byte) {
	env, err := identity.DecodeEnvelope(raw)
	if err != nil {
		return
	}
	if !n.IsMember(env.Signer) {
		return
	}
	if a, reason, _ := n.checkAnnouncement(raw, env.Signer); reason == "" {
		n.remember(a)
	}
}
