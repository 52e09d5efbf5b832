package settlement

import (
	"errors"
	"testing"
	"time"
)

func TestRate(t *testing.T) {
	flat, tiered := offerDoc(t, flatPrice), offerDoc(t, tieredPrice)
	sh, _ := time.LoadLocation("Asia/Shanghai")
	at := func(h, min int) time.Time { return time.Date(2026, 11, 30, h, min, 0, 0, sh).UTC() }
	for _, tc := range []struct {
		name       string
		r          *UsageRecord
		charge     string
		items      int
		home, exec string
	}{
		// 2 instances × 1h × 100 = 200; fees 2% and 3%.
		{"flat instance-hours", usage(flat, "p", at(9, 0), time.Hour, m(InstanceSeconds, "7200")), "200", 1, "4", "6"},
		// 16 devices × 0.5h × 10 = 80.
		{"accelerator seconds", usage(flat, "p", at(9, 0), 30*time.Minute, gpu("28800")), "80", 1, "1.6", "2.4"},
		// 1.5M tokens × 2 per million = 3; 3 GiB egress × 0.5 = 1.5.
		{"tokens and egress", usage(flat, "p", at(9, 0), time.Minute, m(TokensOut, "1500000"), m(EgressBytes, "3221225472")), "4.5", 2, "0.09", "0.135"},
		// 21:00–23:00: 1h day at 100, 1h night at 60, per instance.
		{"across a tier boundary", usage(tiered, "p", at(21, 0), 2*time.Hour, m(InstanceSeconds, "14400")), "320", 2, "6.4", "9.6"},
		// 20 min billed as 1h (minimum increment); accelerators split too.
		{"minimum increment", usage(tiered, "p", at(10, 0), 20*time.Minute, m(InstanceSeconds, "2400"), gpu("19200")), "360", 2, "7.2", "10.8"},
		// A third of a second: exact arithmetic, then rounding to nano-units.
		{"rounding", usage(flat, "p", at(9, 0), time.Second, m(InstanceSeconds, "0.333333333333")), "0.009259259", 1, "0.000185185", "0.000277778"},
		// Exact ties: 0.00000009 s × 100/h is 2.5 nano-units, rounded to even 2;
		// 0.00000027 s is 7.5, rounded to 8.
		{"tie rounds to even (down)", usage(flat, "p", at(9, 0), time.Hour, m(InstanceSeconds, "0.00000009")), "0.000000002", 1, "0", "0"},
		{"tie rounds to even (up)", usage(flat, "p", at(9, 0), time.Hour, m(InstanceSeconds, "0.00000027")), "0.000000008", 1, "0", "0"},
		{"zero quantity", usage(flat, "p", at(9, 0), time.Hour, m(InstanceSeconds, "0")), "0", 0, "0", "0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			offer := flat.Offer
			if tc.r.Offer == tiered.Digest {
				offer = tiered.Offer
			}
			r, err := Rate(tc.r, offer)
			if err != nil {
				t.Fatal(err)
			}
			if r.Charge != nanos(tc.charge) || len(r.Items) != tc.items || r.HomeFee != nanos(tc.home) || r.ExecutingFee != nanos(tc.exec) {
				t.Fatalf("charge %s fees %s %s, %d items: %s; want %s fees %s %s, %d items",
					r.Charge.Decimal(), r.HomeFee.Decimal(), r.ExecutingFee.Decimal(), len(r.Items), describeItems(r), tc.charge, tc.home, tc.exec, tc.items)
			}
			if r.Total() != r.Charge+r.HomeFee+r.ExecutingFee || r.Currency != "CNY" {
				t.Fatal("total or currency")
			}
		})
	}
	// A meter the schedule has no rate for cannot be priced.
	_, err := Rate(usage(tiered, "p", at(9, 0), time.Hour, m(TokensIn, "5")), tiered.Offer)
	var re *RatingError
	if !errors.As(err, &re) || re.Reason != ReasonUnpriced {
		t.Fatalf("unpriced meter: %v", err)
	}
}
