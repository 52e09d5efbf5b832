package settlement

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// The priced cases are spec/rating.md's worked examples
// (TestRatingSpecExamples).

func TestRateUnpriced(t *testing.T) {
	tiered := offerDoc(t, tieredPrice)
	sh, _ := time.LoadLocation("Asia/Shanghai")
	start := time.Date(2026, 11, 30, 9, 0, 0, 0, sh).UTC()
	// A meter the schedule has no rate for cannot be priced.
	_, err := Rate(usage(tiered, "p", start, time.Hour, m(TokensIn, "5")), tiered.Offer)
	var re *RatingError
	if !errors.As(err, &re) || re.Reason != ReasonUnpriced {
		t.Fatalf("unpriced meter: %v", err)
	}
}

// TestRateTooLarge: an item beyond the largest amount refuses the record
// as absurd_quantity (spec/rating.md §3), like a total beyond it; it is
// not a failure of the broker's.
func TestRateTooLarge(t *testing.T) {
	dear := offerDoc(t, `  currency: CNY
  rates: {instanceHour: "9000000000"}`)
	start := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	_, err := Rate(usage(dear, "p", start, 2*time.Hour, m(InstanceSeconds, "14400")), dear.Offer)
	var re *RatingError
	if !errors.As(err, &re) || re.Reason != ReasonAbsurdQuantity || !strings.Contains(re.Detail, "largest amount") {
		t.Fatalf("an item of 36,000,000,000 CNY: %v", err)
	}
}

// TestTiersFollowLocalTime: tier boundaries are wall-clock times in the
// schedule's zone, so the night of a daylight-saving change is an hour
// shorter (spring) or longer (autumn) in real time.
func TestTiersFollowLocalTime(t *testing.T) {
	o := offerDoc(t, `  currency: EUR
  timezone: Europe/Berlin
  rates: {instanceHour: "1"}
  tiers:
    - {name: night, start: "22:00", end: "06:00", rates: {instanceHour: "0.5"}}`)
	utc := func(s string) time.Time { v, _ := time.Parse(time.RFC3339, s); return v }
	for _, tc := range []struct {
		name       string
		start, end time.Time
		want       []string // tier and duration of each segment
	}{
		{"spring forward", utc("2026-03-28T20:00:00Z"), utc("2026-03-29T06:00:00Z"), []string{"/1h0m0s", "night/7h0m0s", "/2h0m0s"}},
		{"fall back", utc("2026-10-24T19:00:00Z"), utc("2026-10-25T06:00:00Z"), []string{"/1h0m0s", "night/9h0m0s", "/1h0m0s"}},
		{"ordinary night", utc("2026-11-30T20:00:00Z"), utc("2026-12-01T06:00:00Z"), []string{"/1h0m0s", "night/8h0m0s", "/1h0m0s"}},
	} {
		// One meter: one rated item for each stretch a tier is in force.
		rating, err := Rate(usage(o, "p", tc.start, tc.end.Sub(tc.start), m(InstanceSeconds, "1")), o.Offer)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, it := range rating.Items {
			got = append(got, it.Tier+"/"+it.End.Sub(it.Start).String())
		}
		if strings.Join(got, " ") != strings.Join(tc.want, " ") {
			t.Errorf("%s: segments %v, want %v", tc.name, got, tc.want)
		}
	}
}
