package federation

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"strings"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/cinet/cinet/identity"
)

// An Announcement is what a broker says of itself to the federation,
// signed with its key and renewed before it expires.
type Announcement struct {
	Broker      identity.PrincipalID `json:"broker"`
	Region      string               `json:"region"`
	API         string               `json:"api,omitempty"` // the broker's HTTP API URL
	Fee         string               `json:"fee,omitempty"` // its fee rate, a decimal fraction
	VerifierKey string               `json:"verifierKey,omitempty"`
	Protocols   []string             `json:"protocols"`
	Addrs       []string             `json:"addrs,omitempty"`
	// Set from the envelope: when the announcement was made (its
	// sequence, in Unix milliseconds) and when it lapses.
	Sequence uint64    `json:"-"`
	Expires  time.Time `json:"-"`
}

// MarshalJSON adds when the announcement lapses, for the API. It is zero,
// and omitted, in the payload this broker signs (announcement seals a copy
// before Expires is set).
func (a Announcement) MarshalJSON() ([]byte, error) {
	type plain Announcement
	return json.Marshal(struct {
		plain
		Expires time.Time `json:"expires,omitzero"`
	}{plain(a), a.Expires})
}

// Protocols are the topic and protocol IDs this broker speaks.
var Protocols = []string{TopicOffers, TopicBrokers, ProtocolSync, ProtocolReserve, ProtocolExec, ProtocolStatements, TopicCheckpoints, ProtocolWitness}

func decodeStrict(data []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	return d.Decode(v)
}

// announcement seals this broker's announcement.
func (n *Node) announcement() (*identity.Envelope, error) {
	a := n.cfg.Self
	a.Broker, a.Protocols, a.Addrs = n.self, Protocols, n.Addrs()
	now := n.cfg.Now()
	return identity.SealJSON(n.cfg.Key, AnnouncementPayloadType, a, identity.SealOptions{Expires: now.Add(n.cfg.AnnounceTTL), Seq: uint64(now.UnixMilli())})
}

// announce gossips this broker's announcement and keeps it as its own.
func (n *Node) announce(ctx context.Context) error {
	env, err := n.announcement()
	if err != nil {
		return err
	}
	a, err := openAnnouncement(env)
	if err != nil {
		return err
	}
	n.remember(a)
	return n.brokers.Publish(ctx, env.Encode())
}

func openAnnouncement(env *identity.Envelope) (*Announcement, error) {
	var a Announcement
	if err := decodeStrict(env.Payload, &a); err != nil {
		return nil, err
	}
	a.Sequence, a.Expires = env.Seq, env.Expires
	return &a, nil
}

// validateAnnouncement decides on a gossiped announcement: signed by the
// member that authored the message, about itself, not expired, and newer
// than the one held.
func (n *Node) validateAnnouncement(ctx context.Context, from peer.ID, msg *pubsub.Message) pubsub.ValidationResult {
	const t = TopicBrokers
	if from == n.host.ID() && msg.GetFrom() == n.host.ID() {
		return pubsub.ValidationAccept
	}
	author, ok := n.member(msg.GetFrom())
	if !ok {
		return n.verdict(t, pubsub.ValidationReject, "not-a-member", from, nil)
	}
	if len(msg.Data) > MaxGossip {
		return n.verdict(t, pubsub.ValidationReject, "too-large", from, nil)
	}
	a, reason, err := n.checkAnnouncement(msg.Data, author)
	if reason != "" {
		r := pubsub.ValidationReject
		if reason == "stale" || reason == "expired" {
			r = pubsub.ValidationIgnore
		}
		return n.verdict(t, r, reason, from, err)
	}
	msg.ValidatorData = a
	return n.verdict(t, pubsub.ValidationAccept, "", from, nil)
}

// checkAnnouncement verifies an announcement envelope from author and
// says why it is refused, if it is.
func (n *Node) checkAnnouncement(data []byte, author identity.PrincipalID) (*Announcement, string, error) {
	env, err := identity.DecodeEnvelope(data)
	if err != nil {
		return nil, "malformed", err
	}
	if err := env.Verify(identity.Verification{PayloadType: AnnouncementPayloadType, Signers: identity.Signers(author), Now: n.cfg.Now()}); err != nil {
		if env.PayloadType != AnnouncementPayloadType {
			return nil, "wrong-payload-type", err
		}
		if !env.Expires.IsZero() && !n.cfg.Now().Before(env.Expires) {
			return nil, "expired", err
		}
		return nil, "bad-signature", err
	}
	a, err := openAnnouncement(env)
	if err != nil {
		return nil, "malformed", err
	}
	if a.Broker != author {
		return nil, "not-owner", nil
	}
	n.mu.Lock()
	old := n.announced[author]
	n.mu.Unlock()
	if old != nil && old.Sequence >= a.Sequence {
		return nil, "stale", nil
	}
	return a, "", nil
}

// remember keeps the newest announcement of a broker.
func (n *Node) remember(a *Announcement) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if old := n.announced[a.Broker]; old == nil || old.Sequence < a.Sequence {
		n.announced[a.Broker] = a
	}
}

// Brokers returns the brokers whose announcements are valid now, this one
// included, by principal ID.
func (n *Node) Brokers() []Announcement {
	now := n.cfg.Now()
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []Announcement
	for _, a := range n.announced {
		if now.Before(a.Expires) {
			out = append(out, *a)
		}
	}
	slices.SortFunc(out, func(a, b Announcement) int { return strings.Compare(a.Broker.String(), b.Broker.String()) })
	return out
}

// announcements returns the valid announcements as envelopes, for sync.
func (n *Node) announcementEnvelopes() [][]byte {
	var out [][]byte
	if env, err := n.announcement(); err == nil {
		out = append(out, env.Encode())
	}
	return out
}
