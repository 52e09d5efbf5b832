// Package offers registers the offers providers sign and send to this
// broker: it verifies them, keeps them across restarts, puts them in the
// offer book for matching and gives their price schedules to settlement
// for rating.
package offers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cinet/cinet/broker/book"
	"github.com/cinet/cinet/broker/store"
	"github.com/cinet/cinet/descriptor"
	"github.com/cinet/cinet/identity"
	"github.com/cinet/cinet/settlement"
)

// PayloadType is the envelope payload type of a signed offer.
const PayloadType = "application/vnd.cinet.offer.v1+json"

// Seal signs an offer document as its provider.
func Seal(k *identity.Key, doc *descriptor.Document) (*identity.Envelope, error) {
	if doc.Offer == nil {
		return nil, fmt.Errorf("offers: a %s is not an offer", doc.Kind)
	}
	if k.ID() != doc.Offer.Provider {
		return nil, fmt.Errorf("offers: the offer's provider is %s; it is signed by its provider, not by %s", doc.Offer.Provider, k.ID())
	}
	return identity.Seal(k, PayloadType, doc.Canonical, identity.SealOptions{Expires: doc.Offer.ValidUntil, Seq: doc.Offer.Sequence})
}

// A Registry holds a broker's offers.
type Registry struct {
	Store   *store.Store
	Book    *book.Book
	Settler *settlement.Settler
	// Owner is this broker: the owner of the capacity its providers offer.
	Owner identity.PrincipalID
	// CanRun says why this broker cannot run what a provider's offer
	// sells — it has no adapter for the provider, or the adapter cannot
	// provide the offer's class and quantity — or nil if it can.
	CanRun func(ctx context.Context, provider identity.PrincipalID, o *descriptor.Offer) error
	Now    func() time.Time
	// Gossip, when set, tells the federation of the offers this broker
	// registers and withdraws.
	Gossip Gossiper

	mu    sync.Mutex
	cache map[string]*descriptor.Document // by digest
}

// A Gossiper tells a broker's peers of its offers (broker/federation).
type Gossiper interface {
	// PublishOffer gossips a provider's offer envelope this broker owns.
	PublishOffer(ctx context.Context, envelope []byte) error
	// PublishWithdrawal gossips the withdrawal of a pool's offer.
	PublishWithdrawal(ctx context.Context, name string, sequence uint64) error
}

// ErrInvalid wraps every reason an offer is refused.
var ErrInvalid = errors.New("offers: invalid offer")

// Register verifies a signed offer from provider and keeps it.
func (r *Registry) Register(ctx context.Context, envelope []byte, provider identity.PrincipalID) (*descriptor.Document, error) {
	doc, env, err := r.open(envelope)
	if err != nil {
		return nil, err
	}
	if env.Signer != provider {
		return nil, fmt.Errorf("%w: signed by %s; a provider registers its own offers", ErrInvalid, env.Signer)
	}
	if doc.Offer.Broker != r.Owner {
		return nil, fmt.Errorf("%w: the offer names broker %s as its owner; this broker is %s, and registers only the capacity it owns", ErrInvalid, doc.Offer.Broker, r.Owner)
	}
	if err := r.CanRun(ctx, provider, doc.Offer); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if err := r.Settler.RegisterOffer(ctx, doc); err != nil {
		return nil, err
	}
	if err := r.Store.PutOffer(ctx, &store.OfferRow{
		Digest: doc.Digest, Name: doc.Offer.ComputeID.Name(), Provider: provider.String(),
		Sequence: int64(doc.Offer.Sequence), Envelope: envelope, CreatedAt: r.Now().UTC(),
	}); err != nil {
		return nil, err
	}
	if err := r.Book.Put(doc, env, r.Owner); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	r.remember(doc)
	if r.Gossip != nil {
		// Registered here whatever gossip does: peers that miss it pull
		// it by anti-entropy.
		r.Gossip.PublishOffer(ctx, envelope)
	}
	return doc, nil
}

// Check verifies an offer a peer broker published as its owner, without
// keeping it: the provider's signature, the document, the provider's right
// to the pool, its validity, and that it names owner as its broker. An
// offer the book already holds at the same or a newer sequence is
// book.ErrStale; one that has lapsed, book.ErrExpired.
func (r *Registry) Check(envelope []byte, owner identity.PrincipalID) (*descriptor.Document, *identity.Envelope, error) {
	doc, env, err := r.open(envelope)
	if err != nil {
		return nil, nil, err
	}
	if doc.Offer.Broker != owner {
		return nil, nil, fmt.Errorf("%w: %w: it names broker %s, not %s, which sent it", ErrInvalid, book.ErrNotOwner, doc.Offer.Broker, owner)
	}
	if e, ok := r.Book.Get(doc.Offer.ComputeID.Name()); ok && e.Sequence >= doc.Offer.Sequence {
		return nil, nil, fmt.Errorf("%w: %s at sequence %d; the book holds %d", book.ErrStale, e.Name, doc.Offer.Sequence, e.Sequence)
	}
	return doc, env, nil
}

// Admit keeps an offer a peer broker published as its owner, once Check
// passes: in the store, for settlement to rate placements on it, and in
// the book for matching.
func (r *Registry) Admit(ctx context.Context, envelope []byte, owner identity.PrincipalID) (*descriptor.Document, error) {
	doc, env, err := r.Check(envelope, owner)
	if err != nil {
		return nil, err
	}
	if err := r.Settler.RegisterOffer(ctx, doc); err != nil {
		return nil, err
	}
	if err := r.Store.PutOffer(ctx, &store.OfferRow{
		Digest: doc.Digest, Name: doc.Offer.ComputeID.Name(), Provider: doc.Offer.Provider.String(),
		Sequence: int64(doc.Offer.Sequence), Envelope: envelope, CreatedAt: r.Now().UTC(),
	}); err != nil {
		return nil, err
	}
	if err := r.Book.Put(doc, env, owner); err != nil {
		return nil, err
	}
	r.remember(doc)
	return doc, nil
}

// WithdrawFor removes a pool's offer at its owner's word: a withdrawal a
// peer broker published. An offer owned by another broker is left alone.
func (r *Registry) WithdrawFor(ctx context.Context, name string, owner identity.PrincipalID) error {
	e, ok := r.Book.Get(name)
	if !ok {
		return nil
	}
	if e.Owner != owner {
		return fmt.Errorf("%w: %w: %s is owned by %s, not %s", ErrInvalid, book.ErrNotOwner, name, e.Owner, owner)
	}
	return r.Withdraw(ctx, name)
}

// WithdrawnOwn returns the pools this broker owned and withdrew, with the
// sequence of the last offer withdrawn, leaving out those offered again
// since: what anti-entropy tells a peer that still holds them.
func (r *Registry) WithdrawnOwn(ctx context.Context) (map[string]uint64, error) {
	rows, err := r.Store.WithdrawnOffers(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]uint64{}
	for _, row := range rows {
		if _, held := r.Book.Get(row.Name); held {
			continue
		}
		env, err := identity.DecodeEnvelope(row.Envelope)
		if err != nil {
			continue
		}
		var claim struct {
			Broker identity.PrincipalID `json:"broker"`
		}
		if json.Unmarshal(env.Payload, &claim) != nil || claim.Broker != r.Owner {
			continue
		}
		if seq := uint64(row.Sequence); seq >= out[row.Name] {
			out[row.Name] = seq
		}
	}
	return out, nil
}

// open verifies an offer envelope: the provider's signature, the document,
// the provider's right to the pool, and that it has not expired.
func (r *Registry) open(envelope []byte) (*descriptor.Document, *identity.Envelope, error) {
	env, err := identity.DecodeEnvelope(envelope)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if err := env.Verify(identity.Verification{PayloadType: PayloadType, Signers: identity.AnySigner, Now: r.Now()}); err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	doc, err := descriptor.Parse("offer.json", env.Payload)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	o := doc.Offer
	switch {
	case o == nil:
		return nil, nil, fmt.Errorf("%w: the envelope holds a %s, not an offer", ErrInvalid, doc.Kind)
	case env.Signer != o.Provider:
		return nil, nil, fmt.Errorf("%w: the offer names provider %s but is signed by %s", ErrInvalid, o.Provider, env.Signer)
	case !o.ComputeID.OwnedBy(o.Provider):
		return nil, nil, fmt.Errorf("%w: compute identifier %s is not the provider's: its first segment must be %s", ErrInvalid, o.ComputeID, identity.ProviderFingerprint(o.Provider))
	case !r.Now().Before(o.ValidUntil):
		return nil, nil, fmt.Errorf("%w: it expired at %s", ErrInvalid, o.ValidUntil.Format(time.RFC3339))
	}
	return doc, env, nil
}

// Load puts the registered offers back in the book after a restart.
// Offers that have expired since are skipped.
func (r *Registry) Load(ctx context.Context) (int, error) {
	rows, err := r.Store.Offers(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, row := range rows {
		doc, env, err := r.open(row.Envelope)
		if err != nil {
			continue
		}
		// This broker's offers and those its peers published, each
		// under the broker it names.
		err = r.Book.Put(doc, env, doc.Offer.Broker)
		if err != nil && !errors.Is(err, book.ErrStale) && !errors.Is(err, book.ErrExpired) {
			return n, err
		}
		r.remember(doc)
		n++
	}
	return n, nil
}

// Withdraw removes a pool's offer from the book; placements on it run on.
// The withdrawal of an offer this broker owns is gossiped.
func (r *Registry) Withdraw(ctx context.Context, name string) error {
	e, held := r.Book.Get(name)
	if err := r.Store.WithdrawOffer(ctx, name); err != nil {
		return err
	}
	r.Book.Remove(name)
	if held && e.Owner == r.Owner && r.Gossip != nil {
		r.Gossip.PublishWithdrawal(ctx, name, e.Sequence)
	}
	return nil
}

// Get returns a registered offer by digest, withdrawn or replaced or not.
func (r *Registry) Get(ctx context.Context, digest string) (*descriptor.Document, error) {
	r.mu.Lock()
	doc, ok := r.cache[digest]
	r.mu.Unlock()
	if ok {
		return doc, nil
	}
	row, err := r.Store.Offer(ctx, digest)
	if err != nil {
		return nil, err
	}
	env, err := identity.DecodeEnvelope(row.Envelope)
	if err != nil {
		return nil, err
	}
	if doc, err = descriptor.Parse("offer.json", env.Payload); err != nil {
		return nil, err
	}
	r.remember(doc)
	return doc, nil
}

func (r *Registry) remember(doc *descriptor.Document) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cache == nil {
		r.cache = map[string]*descriptor.Document{}
	}
	r.cache[doc.Digest] = doc
}
