package federation

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/network"

	"github.com/cinet/cinet/broker/book"
	"github.com/cinet/cinet/broker/jobs"
	"github.com/cinet/cinet/identity"
)

// Bounds on what a peer may ask of an offer's owner.
const (
	MaxLease        = 10 * time.Minute // the longest reservation a peer is granted
	MaxReserveCount = 1 << 20
	reserveDeadline = 10 * time.Second
)

type reserveRequest struct {
	Op     string `json:"op"` // "reserve" or "release"
	Offer  string `json:"offer,omitempty"`
	Count  int    `json:"count,omitempty"`
	Holder string `json:"holder,omitempty"` // the asker's reference (a job ID)
	TTL    int64  `json:"ttlMillis,omitempty"`
	ID     string `json:"id,omitempty"` // the reservation to release
}

type reserveResponse struct {
	ID      string    `json:"id,omitempty"`
	Expires time.Time `json:"expires,omitzero"`
	Code    string    `json:"code,omitempty"` // insufficient, unknown-offer, no-reservation, refused
	Error   string    `json:"error,omitempty"`
}

// serveReserve grants and releases reservations on this broker's offers.
// The owner decides alone, under its book's lock, so that concurrent
// requests from any number of brokers never over-allocate. A reservation
// is released only by the broker that holds it.
func (n *Node) serveReserve(s network.Stream) {
	serveOne(n, s, ProtocolReserve, reserveDeadline, MaxReserve, func(_ context.Context, asker identity.PrincipalID, req reserveRequest) any {
		resp := n.reserveFor(asker, req)
		n.m.reservations.WithLabelValues(req.Op + ":" + orDefault(resp.Code, "ok")).Inc()
		return resp
	})
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func (n *Node) reserveFor(asker identity.PrincipalID, req reserveRequest) reserveResponse {
	refuse := func(err error) reserveResponse {
		code, msg := codeOf(err)
		return reserveResponse{Code: code, Error: msg}
	}
	prefix := jobs.LeaseHolder(asker, "")
	switch req.Op {
	case "reserve":
		ttl := time.Duration(req.TTL) * time.Millisecond
		if req.Count < 1 || req.Count > MaxReserveCount || ttl <= 0 || ttl > MaxLease || len(req.Holder) > 256 {
			return refuse(fmt.Errorf("%w: count must be 1 to %d and the lease 1ms to %s", jobs.ErrRefused, MaxReserveCount, MaxLease))
		}
		e, ok := n.cfg.Book.Get(req.Offer)
		if !ok {
			return refuse(fmt.Errorf("%w: %s", book.ErrUnknownOffer, req.Offer))
		}
		if e.Owner != n.self {
			return refuse(fmt.Errorf("%w: %s is owned by %s, which alone reserves it", jobs.ErrRefused, req.Offer, e.Owner))
		}
		r, err := n.cfg.Book.Reserve(req.Offer, req.Count, jobs.LeaseHolder(asker, req.Holder), ttl)
		if err != nil {
			if code, _ := codeOf(err); code == "" {
				err = fmt.Errorf("%w: %w", jobs.ErrRefused, err)
			}
			return refuse(err)
		}
		if n.cfg.Leases != nil {
			ctx, cancel := context.WithTimeout(context.Background(), reserveDeadline)
			defer cancel()
			if err := n.cfg.Leases.PutLease(ctx, r); err != nil {
				// A lease a restart would forget is not granted.
				n.cfg.Book.Release(r.ID)
				n.cfg.Log.Warn("keeping a lease", "offer", req.Offer, "err", err)
				return reserveResponse{Code: codeUnavailable, Error: "the owner could not keep the lease; ask again"}
			}
		}
		return reserveResponse{ID: r.ID, Expires: r.Expires}
	case "release":
		r, ok := n.cfg.Book.ReservationOf(req.ID)
		if !ok || !strings.HasPrefix(r.Holder, prefix) {
			return refuse(fmt.Errorf("%w: %s", book.ErrNoReservation, req.ID))
		}
		if err := n.cfg.Book.Release(req.ID); err != nil {
			return refuse(fmt.Errorf("%w: %w", book.ErrNoReservation, err))
		}
		n.forgetLease(req.ID)
		return reserveResponse{ID: req.ID}
	}
	return refuse(fmt.Errorf("%w: unknown operation %q", jobs.ErrRefused, req.Op))
}

// Reserve asks the broker that owns an offer to hold count instances of it
// for ttl (at most MaxLease). Errors wrap book.ErrInsufficient,
// book.ErrUnknownOffer or jobs.ErrRefused when the owner says so, as
// jobs.Remote promises.
func (n *Node) Reserve(ctx context.Context, owner identity.PrincipalID, offer string, count int, holder string, ttl time.Duration) (book.Reservation, error) {
	resp, err := n.callReserve(ctx, owner, reserveRequest{Op: "reserve", Offer: offer, Count: count, Holder: holder, TTL: ttl.Milliseconds()})
	if err != nil {
		return book.Reservation{}, err
	}
	return book.Reservation{ID: resp.ID, Offer: offer, Count: count, Holder: holder, Expires: resp.Expires}, nil
}

// Release gives a reservation back to the offer's owner.
func (n *Node) Release(ctx context.Context, owner identity.PrincipalID, id string) error {
	_, err := n.callReserve(ctx, owner, reserveRequest{Op: "release", ID: id})
	return err
}

func (n *Node) callReserve(ctx context.Context, owner identity.PrincipalID, req reserveRequest) (reserveResponse, error) {
	var resp reserveResponse
	if err := n.call(ctx, owner, ProtocolReserve, reserveDeadline, MaxReserve, req, &resp); err != nil {
		return reserveResponse{}, err
	}
	if resp.Code != "" {
		return resp, errorOf(owner, resp.Code, resp.Error)
	}
	return resp, nil
}

// Leases keeps the leases this broker granted: broker/store implements it.
type Leases interface {
	PutLease(ctx context.Context, r book.Reservation) error
	DeleteLease(ctx context.Context, id string) error
	// Leases returns those that run out after now, forgetting the rest.
	Leases(ctx context.Context, now time.Time) ([]book.Reservation, error)
}

// restoreLeases holds again, after a restart, the leases granted before
// it that have not run out.
func (n *Node) restoreLeases(ctx context.Context) error {
	if n.cfg.Leases == nil {
		return nil
	}
	kept, err := n.cfg.Leases.Leases(ctx, n.cfg.Now())
	if err != nil {
		return fmt.Errorf("federation: reading the leases kept: %w", err)
	}
	for _, r := range kept {
		if err := n.cfg.Book.Restore(r); err != nil {
			n.cfg.Log.Warn("a lease kept from before the restart cannot be held again", "lease", r.ID, "offer", r.Offer, "err", err)
			n.forgetLease(r.ID)
		}
	}
	if len(kept) > 0 {
		n.cfg.Log.Info("leases held again after a restart", "leases", len(kept))
	}
	return nil
}

// forgetLease drops a lease from the store: released or confirmed.
func (n *Node) forgetLease(id string) {
	if n.cfg.Leases == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), reserveDeadline)
	defer cancel()
	if err := n.cfg.Leases.DeleteLease(ctx, id); err != nil {
		// It runs out on its own; kept, it is held again after a restart
		// only until then.
		n.cfg.Log.Warn("forgetting a lease", "lease", id, "err", err)
	}
}
