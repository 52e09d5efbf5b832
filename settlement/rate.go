package settlement

import (
	"errors"
	"fmt"
	"strings"

	"github.com/cockroachdb/apd/v3"

	"github.com/cinet/cinet/descriptor"
	"github.com/cinet/cinet/settlement/pricing"
)

// A Rating is what a record costs under an offer's price schedule
// (spec/rating.md; pricing.Rating).
type Rating = pricing.Rating

// A RatedItem prices one meter over one stretch of the period
// (pricing.RatedItem).
type RatedItem = pricing.RatedItem

// rateContext is exact enough for every intermediate product of a
// record's quantities; inexact results (displayed bounds) round half to
// even. It is shared and never modified.
var rateContext = func() *apd.Context {
	c := apd.BaseContext.WithPrecision(100)
	c.Rounding = apd.RoundHalfEven
	return c
}()

// A RatingError refuses a record that cannot be priced.
type RatingError struct {
	Reason Reason
	Detail string
}

func (e *RatingError) Error() string { return string(e.Reason) + ": " + e.Detail }

// Rate prices a record under an offer's schedule, by the one price rule
// (pricing.Rate). A meter the schedule has no rate for is ReasonUnpriced;
// amounts beyond the largest are ReasonAbsurdQuantity.
func Rate(r *UsageRecord, offer *descriptor.Offer) (*Rating, error) {
	usage := make([]pricing.Usage, len(r.Meters))
	for i, m := range r.Meters {
		usage[i] = pricing.Usage{Meter: m.Meter, Model: m.Model, Quantity: m.quantity().Apd()}
	}
	out, err := pricing.Rate(&offer.Price, r.PeriodStart, r.PeriodEnd, usage, pricing.Fees{Home: r.Fees.Home, Executing: r.Fees.Executing})
	switch {
	case errors.Is(err, pricing.ErrUnpriced):
		return nil, &RatingError{ReasonUnpriced, strings.TrimPrefix(err.Error(), pricing.ErrUnpriced.Error()+": ")}
	case errors.Is(err, pricing.ErrTooLarge):
		return nil, &RatingError{ReasonAbsurdQuantity, strings.TrimPrefix(err.Error(), pricing.ErrTooLarge.Error()+": ")}
	case err != nil:
		return nil, fmt.Errorf("settlement: rating: %w", err)
	}
	return out, nil
}
