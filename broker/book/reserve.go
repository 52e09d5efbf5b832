package book

import (
	"errors"
	"fmt"
	"strconv"
	"time"
)

// A Reservation holds instances of one offer for a job until it is
// released or expires. The owning broker is the only one that grants
// reservations on its offers, so concurrent requests never over-allocate.
type Reservation struct {
	ID      string
	Offer   string // the pool's name
	Count   int
	Holder  string // who asked, for the record (a job ID)
	Expires time.Time
}

// ErrInsufficient is returned when an offer lacks the free quantity asked
// for; ErrUnknownOffer when the book holds no such offer.
var (
	ErrInsufficient  = errors.New("book: not enough free instances")
	ErrUnknownOffer  = errors.New("book: no such offer")
	ErrNoReservation = errors.New("book: no such reservation")
)

// Reserve holds count instances of the offer for ttl.
func (b *Book) Reserve(offer string, count int, holder string, ttl time.Duration) (Reservation, error) {
	if count < 1 || ttl <= 0 {
		return Reservation{}, fmt.Errorf("book: reserve %d instances for %s: count and duration must be positive", count, ttl)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	b.sweepLocked(now)
	e, ok := b.entries[offer]
	if !ok {
		return Reservation{}, fmt.Errorf("%w: %s", ErrUnknownOffer, offer)
	}
	if int(e.Free) < count {
		return Reservation{}, fmt.Errorf("%w: %s has %d free, %d asked", ErrInsufficient, offer, e.Free, count)
	}
	e.setFree(e.Free - int32(count))
	b.nextRes++
	r := &Reservation{ID: b.resPrefix + strconv.FormatUint(b.nextRes, 10), Offer: offer, Count: count, Holder: holder, Expires: now.Add(ttl)}
	b.reservations[r.ID] = r
	b.resExpiry = append(b.resExpiry, r)
	return *r, nil
}

// Release returns a reservation's instances to the offer.
func (b *Book) Release(id string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	r, ok := b.reservations[id]
	if !ok {
		return fmt.Errorf("%w: %s", ErrNoReservation, id)
	}
	b.releaseLocked(r)
	for i, x := range b.resExpiry {
		if x == r {
			b.resExpiry = append(b.resExpiry[:i], b.resExpiry[i+1:]...)
			break
		}
	}
	return nil
}

func (b *Book) releaseLocked(r *Reservation) {
	delete(b.reservations, r.ID)
	if e, ok := b.entries[r.Offer]; ok {
		e.setFree(min(e.Quantity, e.Free+int32(r.Count)))
		b.gen.Add(1) // freed capacity may serve a waiting job
	}
}

// ReservationOf returns a reservation held now, by ID.
func (b *Book) ReservationOf(id string) (Reservation, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.sweepLocked(b.now())
	r, ok := b.reservations[id]
	if !ok {
		return Reservation{}, false
	}
	return *r, true
}

// Confirm turns a lease into a reservation held for a placement: when the
// reservation id is held now and check approves it, it passes to holder
// and expires ttl from now. The change is made under the book's lock, so
// the instances are never free in between.
func (b *Book) Confirm(id string, check func(Reservation) error, holder string, ttl time.Duration) (Reservation, error) {
	if ttl <= 0 {
		return Reservation{}, fmt.Errorf("book: confirm %s for %s: the duration must be positive", id, ttl)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	b.sweepLocked(now)
	r, ok := b.reservations[id]
	if !ok {
		return Reservation{}, fmt.Errorf("%w: %s (released, or its lease ran out)", ErrNoReservation, id)
	}
	if err := check(*r); err != nil {
		return Reservation{}, err
	}
	r.Holder, r.Expires = holder, now.Add(ttl)
	return *r, nil
}

// Restore holds a reservation kept from before a restart, under its own
// ID, until it expires: ErrInsufficient when the offer no longer has the
// instances free, ErrUnknownOffer when the book no longer holds it.
func (b *Book) Restore(r Reservation) error {
	if r.Count < 1 || r.ID == "" {
		return fmt.Errorf("book: restore %q of %d instances: an ID and a positive count", r.ID, r.Count)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	b.sweepLocked(now)
	if !now.Before(r.Expires) {
		return fmt.Errorf("%w: %s ran out at %s", ErrNoReservation, r.ID, r.Expires.Format(time.RFC3339))
	}
	if _, ok := b.reservations[r.ID]; ok {
		return nil
	}
	e, ok := b.entries[r.Offer]
	if !ok {
		return fmt.Errorf("%w: %s", ErrUnknownOffer, r.Offer)
	}
	if int(e.Free) < r.Count {
		return fmt.Errorf("%w: %s has %d free, %d to restore", ErrInsufficient, r.Offer, e.Free, r.Count)
	}
	e.setFree(e.Free - int32(r.Count))
	kept := r
	b.reservations[r.ID] = &kept
	b.resExpiry = append(b.resExpiry, &kept)
	return nil
}
