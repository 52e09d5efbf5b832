package federation

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/cinet/cinet/broker/book"
	"github.com/cinet/cinet/broker/offers"
	"github.com/cinet/cinet/identity"
)

// Payload types of what is gossiped besides offers.
const (
	WithdrawalPayloadType   = "application/vnd.cinet.withdrawal.v1+json"
	AnnouncementPayloadType = "application/vnd.cinet.broker.v1+json"
)

// A Withdrawal takes a pool's offer out of every book. Its owner broker
// signs it.
type Withdrawal struct {
	Name     string `json:"name"`     // the pool's compute identifier name
	Sequence uint64 `json:"sequence"` // the offer's sequence withdrawn
}

// newGossip starts GossipSub with strict signatures, a size bound, bounded
// validation, and peer scoring that penalizes peers whose messages are
// rejected.
func newGossip(ctx context.Context, h host.Host, n *Node) (*pubsub.PubSub, error) {
	decay := pubsub.ScoreParameterDecay(time.Hour)
	topic := func() *pubsub.TopicScoreParams {
		return &pubsub.TopicScoreParams{
			SkipAtomicValidation:           true,
			TopicWeight:                    1,
			TimeInMeshQuantum:              time.Second, // divides, even when unweighted
			InvalidMessageDeliveriesWeight: -100,
			InvalidMessageDeliveriesDecay:  decay,
		}
	}
	params := &pubsub.PeerScoreParams{
		SkipAtomicValidation: true,
		AppSpecificScore:     func(peer.ID) float64 { return 0 },
		Topics:               map[string]*pubsub.TopicScoreParams{TopicOffers: topic(), TopicBrokers: topic(), TopicCheckpoints: topic()},
		DecayInterval:        time.Second,
		DecayToZero:          0.01,
		RetainScore:          time.Hour,
	}
	thresholds := &pubsub.PeerScoreThresholds{
		SkipAtomicValidation: true,
		GossipThreshold:      -100,
		PublishThreshold:     -500,
		GraylistThreshold:    -1000,
	}
	ps, err := pubsub.NewGossipSub(ctx, h,
		pubsub.WithMessageSignaturePolicy(pubsub.StrictSign),
		pubsub.WithMaxMessageSize(MaxGossip+4<<10),
		pubsub.WithValidateQueueSize(1024),
		pubsub.WithValidateThrottle(512),
		pubsub.WithPeerScore(params, thresholds),
		pubsub.WithPeerFilter(func(p peer.ID, _ string) bool { _, ok := n.member(p); return ok }),
		pubsub.WithRawTracer(&n.mesh),
	)
	if err != nil {
		return nil, fmt.Errorf("federation: starting gossip: %w", err)
	}
	return ps, nil
}

// meshTracer follows the gossip mesh and counts what pubsub drops.
type meshTracer struct {
	m      *metrics
	mu     sync.Mutex
	meshed map[string]map[peer.ID]bool // by topic
}

func (t *meshTracer) Graft(p peer.ID, topic string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.meshed == nil {
		t.meshed = map[string]map[peer.ID]bool{}
	}
	if t.meshed[topic] == nil {
		t.meshed[topic] = map[peer.ID]bool{}
	}
	t.meshed[topic][p] = true
}

func (t *meshTracer) Prune(p peer.ID, topic string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.meshed[topic], p)
}

func (t *meshTracer) RemovePeer(p peer.ID) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, m := range t.meshed {
		delete(m, p)
	}
}

func (t *meshTracer) DropRPC(*pubsub.RPC, peer.ID) { t.m.dropped.WithLabelValues("gossip-send").Inc() }
func (t *meshTracer) UndeliverableMessage(*pubsub.Message) {
	t.m.dropped.WithLabelValues("gossip-deliver").Inc()
}
func (t *meshTracer) AddPeer(peer.ID, protocol.ID)                         {}
func (t *meshTracer) OnNewOutboundStream(peer.ID, protocol.ID)             {}
func (t *meshTracer) OnClosedOutboundStream(peer.ID)                       {}
func (t *meshTracer) Join(string)                                          {}
func (t *meshTracer) Leave(string)                                         {}
func (t *meshTracer) ValidateMessage(*pubsub.Message)                      {}
func (t *meshTracer) DeliverMessage(*pubsub.Message)                       {}
func (t *meshTracer) RejectMessage(*pubsub.Message, string)                {}
func (t *meshTracer) DuplicateMessage(*pubsub.Message)                     {}
func (t *meshTracer) ThrottlePeer(peer.ID)                                 {}
func (t *meshTracer) RecvRPC(*pubsub.RPC)                                  {}
func (t *meshTracer) SendRPC(*pubsub.RPC, peer.ID)                         {}
func (t *meshTracer) SendRPCCompleted(*pubsub.RPC, peer.ID, time.Duration) {}

// Meshed reports whether a peer is in this node's gossip mesh for a topic.
func (n *Node) Meshed(topic string, p peer.ID) bool {
	n.mesh.mu.Lock()
	defer n.mesh.mu.Unlock()
	return n.mesh.meshed[topic][p]
}

func (n *Node) joinTopics() error {
	opts := []pubsub.ValidatorOpt{pubsub.WithValidatorTimeout(2 * time.Second), pubsub.WithValidatorConcurrency(64)}
	for _, t := range []struct {
		name string
		v    func(context.Context, peer.ID, *pubsub.Message) pubsub.ValidationResult
		dst  **pubsub.Topic
	}{{TopicOffers, n.validateOffer, &n.offers}, {TopicBrokers, n.validateAnnouncement, &n.brokers}, {TopicCheckpoints, n.validateCheckpoint, &n.checkpoints}} {
		if err := n.ps.RegisterTopicValidator(t.name, t.v, opts...); err != nil {
			return err
		}
		topic, err := n.ps.Join(t.name)
		if err != nil {
			return err
		}
		sub, err := topic.Subscribe()
		if err != nil {
			return err
		}
		*t.dst = topic
		n.subs = append(n.subs, sub)
	}
	return nil
}

// verdict counts and returns a validation result.
func (n *Node) verdict(topic string, r pubsub.ValidationResult, reason string, from peer.ID, err error) pubsub.ValidationResult {
	result := map[pubsub.ValidationResult]string{pubsub.ValidationAccept: "accepted", pubsub.ValidationReject: "rejected", pubsub.ValidationIgnore: "ignored"}[r]
	n.m.gossip.WithLabelValues(topic, result, reason).Inc()
	if r == pubsub.ValidationReject {
		n.cfg.Log.Info("rejected a gossiped message", "topic", topic, "reason", reason, "from", from, "err", err)
	}
	return r
}

// validateOffer decides on a gossiped offer or withdrawal. Its author —
// the member that signed the gossip message — must be the broker the offer
// names as its owner.
func (n *Node) validateOffer(ctx context.Context, from peer.ID, msg *pubsub.Message) pubsub.ValidationResult {
	const t = TopicOffers
	if from == n.host.ID() && msg.GetFrom() == n.host.ID() {
		return pubsub.ValidationAccept // this broker's own, checked when registered
	}
	author, ok := n.member(msg.GetFrom())
	if !ok {
		return n.verdict(t, pubsub.ValidationReject, "not-a-member", from, nil)
	}
	if author == n.self {
		// This broker's own message, relayed back or replayed: it is the
		// authority on its offers already.
		return n.verdict(t, pubsub.ValidationIgnore, "own", from, nil)
	}
	if len(msg.Data) > MaxGossip {
		return n.verdict(t, pubsub.ValidationReject, "too-large", from, nil)
	}
	env, err := identity.DecodeEnvelope(msg.Data)
	if err != nil {
		return n.verdict(t, pubsub.ValidationReject, "malformed", from, err)
	}
	switch env.PayloadType {
	case offers.PayloadType:
		doc, _, err := n.cfg.Offers.Check(msg.Data, author)
		switch {
		case errors.Is(err, book.ErrStale):
			return n.verdict(t, pubsub.ValidationIgnore, "stale", from, err)
		case errors.Is(err, book.ErrExpired):
			return n.verdict(t, pubsub.ValidationIgnore, "expired", from, err)
		case errors.Is(err, book.ErrNotOwner):
			return n.verdict(t, pubsub.ValidationReject, "not-owner", from, err)
		case errors.Is(err, identity.ErrBadSignature):
			return n.verdict(t, pubsub.ValidationReject, "bad-signature", from, err)
		case errors.Is(err, identity.ErrExpired):
			return n.verdict(t, pubsub.ValidationIgnore, "expired", from, err)
		case err != nil:
			return n.verdict(t, pubsub.ValidationReject, "invalid-offer", from, err)
		}
		msg.ValidatorData = doc
		return n.verdict(t, pubsub.ValidationAccept, "", from, nil)
	case WithdrawalPayloadType:
		w, reason, err := n.checkWithdrawal(msg.Data, author)
		switch reason {
		case "":
			msg.ValidatorData = w
			return n.verdict(t, pubsub.ValidationAccept, "", from, nil)
		case "stale":
			return n.verdict(t, pubsub.ValidationIgnore, reason, from, err)
		}
		return n.verdict(t, pubsub.ValidationReject, reason, from, err)
	}
	return n.verdict(t, pubsub.ValidationReject, "wrong-payload-type", from, nil)
}

// checkWithdrawal verifies a withdrawal from author and says why it is
// refused, if it is: "stale" when there is nothing (newer) to withdraw.
func (n *Node) checkWithdrawal(data []byte, author identity.PrincipalID) (Withdrawal, string, error) {
	var w Withdrawal
	env, err := identity.DecodeEnvelope(data)
	if err != nil {
		return w, "malformed", err
	}
	if err := env.Verify(identity.Verification{PayloadType: WithdrawalPayloadType, Signers: identity.Signers(author), Now: n.cfg.Now()}); err != nil {
		return w, "bad-signature", err
	}
	if err := decodeStrict(env.Payload, &w); err != nil {
		return w, "malformed", err
	}
	e, ok := n.cfg.Book.Get(w.Name)
	switch {
	case !ok || e.Sequence > w.Sequence:
		return w, "stale", nil
	case e.Owner != author:
		return w, "not-owner", nil
	}
	return w, "", nil
}

// withdrawal seals this broker's withdrawal of a pool's offer.
func (n *Node) withdrawal(name string, sequence uint64) (*identity.Envelope, error) {
	return identity.SealJSON(n.cfg.Key, WithdrawalPayloadType, Withdrawal{Name: name, Sequence: sequence}, identity.SealOptions{Expires: n.cfg.Now().Add(time.Hour)})
}

// consume applies what a topic delivers, once validated.
func (n *Node) consume(ctx context.Context, sub *pubsub.Subscription) {
	for {
		msg, err := sub.Next(ctx)
		if err != nil {
			return
		}
		if msg.ReceivedFrom == n.host.ID() {
			continue
		}
		author, _ := n.member(msg.GetFrom())
		switch v := msg.ValidatorData.(type) {
		case Withdrawal:
			if err := n.cfg.Offers.WithdrawFor(ctx, v.Name, author); err != nil {
				n.cfg.Log.Warn("applying a withdrawal", "offer", v.Name, "err", err)
			}
		case *Announcement:
			// An announcement's sequence is when it was signed: how long
			// it took to arrive is how long gossip takes (clocks agreeing).
			n.m.propagation.Observe(max(0, n.cfg.Now().Sub(time.UnixMilli(int64(v.Sequence))).Seconds()))
			n.remember(v)
		case witnessed:
			select {
			case n.w.queue <- v:
			default:
				n.m.dropped.WithLabelValues("checkpoints").Inc()
			}
		default:
			if _, err := n.cfg.Offers.Admit(ctx, msg.Data, author); err != nil && !errors.Is(err, book.ErrStale) {
				n.cfg.Log.Warn("keeping a gossiped offer", "from", author, "err", err)
			}
		}
	}
}

// PublishOffer gossips an offer this broker owns (a provider's envelope,
// already registered here).
func (n *Node) PublishOffer(ctx context.Context, envelope []byte) error {
	if len(envelope) > MaxGossip {
		return fmt.Errorf("%w: an offer of %d bytes", ErrTooLarge, len(envelope))
	}
	return n.offers.Publish(ctx, envelope)
}

// PublishWithdrawal gossips the withdrawal of a pool's offer this broker
// owns.
func (n *Node) PublishWithdrawal(ctx context.Context, name string, sequence uint64) error {
	env, err := n.withdrawal(name, sequence)
	if err != nil {
		return err
	}
	return n.offers.Publish(ctx, env.Encode())
}

// PublishOwn gossips every offer in the book this broker owns: after it
// starts, so that peers learn what changed while it was away.
func (n *Node) PublishOwn(ctx context.Context) error {
	for _, e := range n.cfg.Book.Snapshot() {
		if e.Owner == n.self && e.Signed() {
			env, err := e.Envelope()
			if err != nil {
				return err
			}
			if err := n.PublishOffer(ctx, env.Encode()); err != nil {
				return err
			}
		}
	}
	return nil
}
