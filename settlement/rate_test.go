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
		var got []string
		for _, seg := range tierSegments(&o.Offer.Price, tc.start, tc.end) {
			name := ""
			if seg.tier != nil {
				name = seg.tier.Name
			}
			got = append(got, name+"/"+seg.end.Sub(seg.start).String())
		}
		if strings.Join(got, " ") != strings.Join(tc.want, " ") {
			t.Errorf("%s: segments %v, want %v", tc.name, got, tc.want)
		}
	}
}
