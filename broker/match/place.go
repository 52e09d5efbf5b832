package match

import (
	"context"
	"errors"
	"fmt"

	"github.com/cinet/cinet/descriptor"
)

// An Attempt is one reservation request made while placing a job.
type Attempt struct {
	Offer string
	Err   error // nil for the granted reservation
}

// A Reserver asks an offer's owning broker to reserve capacity for the job
// — this broker's own book, or a peer over the network. It returns nil when
// the reservation is granted. It must respect ctx's deadline: a broker that
// does not answer in time counts as a refusal.
type Reserver func(ctx context.Context, c Candidate) error

// MaxAttempts bounds the reservation requests one placement makes.
const MaxAttempts = 20

// ErrAttemptsExhausted is wrapped when a placement gives up after
// MaxAttempts refusals.
var ErrAttemptsExhausted = errors.New("match: every candidate asked refused")

// Place walks the candidates in order and asks each owner for a
// reservation until one is granted. A refusal or timeout moves to the next
// candidate; when the list runs out, the job is matched again without the
// refused offers. It returns the candidate granted and every attempt made.
func (m *Matcher) Place(ctx context.Context, doc *descriptor.Document, opts Options, reserve Reserver) (Candidate, []Attempt, error) {
	exclude := map[string]bool{}
	for name := range opts.Exclude {
		exclude[name] = true
	}
	var attempts []Attempt
	for len(attempts) < MaxAttempts {
		res, err := m.Match(doc, Options{K: opts.K, Exclude: exclude})
		if err != nil {
			return Candidate{}, attempts, err
		}
		for _, c := range res.Candidates {
			if err := ctx.Err(); err != nil {
				return Candidate{}, attempts, err
			}
			err := reserve(ctx, c)
			attempts = append(attempts, Attempt{Offer: c.Entry.Name, Err: err})
			if err == nil {
				return c, attempts, nil
			}
			exclude[c.Entry.Name] = true
			if len(attempts) == MaxAttempts {
				break
			}
		}
	}
	return Candidate{}, attempts, fmt.Errorf("%w: %d attempts", ErrAttemptsExhausted, len(attempts))
}
