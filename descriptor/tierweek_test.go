package descriptor

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// naiveTier is the definition of spec/rating.md §5 written out directly:
// the tier whose window holds the instant's local wall-clock time.
func naiveTier(p *PriceSchedule, t time.Time) int {
	lt := t.In(p.Location())
	minute := lt.Hour()*60 + lt.Minute()
	day := weekdays[(int(lt.Weekday())+6)%7]
	prev := weekdays[(int(lt.Weekday())+5)%7]
	for i, tier := range p.Tiers {
		on := func(d string) bool { return len(tier.Days) == 0 || slices.Contains(tier.Days, d) }
		s, e := ClockMinutes(tier.Start), ClockMinutes(tier.End)
		if s < e {
			if on(day) && minute >= s && minute < e {
				return i
			}
		} else if (on(day) && minute >= s) || (on(prev) && minute < e) {
			return i
		}
	}
	return NoTier
}

// TestSegmentsMatchDefinition holds TierWeek.Segments to the naive
// definition over random schedules in zones with daylight saving and odd
// offsets, and random periods with nanosecond starts: the segments tile
// the period, neighbours differ, and every segment's first and last
// nanosecond and points every 17 minutes inside it have its tier.
func TestSegmentsMatchDefinition(t *testing.T) {
	zones := []string{"Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kathmandu", "America/St_Johns", "Asia/Shanghai", "UTC", "Pacific/Chatham"}
	rng := rand.New(rand.NewPCG(1, 2))
	// Days around the 2026 changes of the zones above, and ordinary ones.
	base := []time.Time{
		time.Date(2026, 3, 28, 12, 0, 0, 0, time.UTC), time.Date(2026, 10, 24, 12, 0, 0, 0, time.UTC),
		time.Date(2026, 3, 7, 12, 0, 0, 0, time.UTC), time.Date(2026, 10, 31, 12, 0, 0, 0, time.UTC),
		time.Date(2026, 4, 4, 12, 0, 0, 0, time.UTC), time.Date(2026, 9, 26, 12, 0, 0, 0, time.UTC),
		time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC),
		time.Date(2040, 12, 30, 12, 0, 0, 0, time.UTC), // a year's turn under a zone's recurring rule
	}
	for i := range 3000 {
		loc, err := time.LoadLocation(zones[rng.IntN(len(zones))])
		if err != nil {
			t.Fatal(err)
		}
		p := &PriceSchedule{location: loc}
		for n := rng.IntN(3); n > 0; n-- {
			// Non-overlapping windows: split the day at sorted random minutes.
			p.Tiers = nil
			cuts := []int{}
			for range 2 * n {
				cuts = append(cuts, rng.IntN(24*60))
			}
			slices.Sort(cuts)
			cuts = slices.Compact(cuts)
			for k := 0; k+1 < len(cuts); k += 2 {
				tier := Tier{Start: clock(cuts[k]), End: clock(cuts[k+1])}
				if rng.IntN(4) == 0 {
					tier.Days = []string{weekdays[rng.IntN(7)]}
				}
				p.Tiers = append(p.Tiers, tier)
			}
			if len(p.Tiers) == 1 && rng.IntN(3) == 0 { // a window wrapping midnight
				p.Tiers[0].Start, p.Tiers[0].End = p.Tiers[0].End, p.Tiers[0].Start
			}
		}
		start := base[rng.IntN(len(base))].Add(time.Duration(rng.Int64N(int64(48 * time.Hour))))
		end := start.Add(time.Duration(rng.Int64N(int64(10 * 24 * time.Hour))))
		at := start
		last := -2
		p.Week().Segments(start, end, func(s, e time.Time, tier int) {
			if !s.Equal(at) || !e.After(s) {
				t.Fatalf("case %d (%s %v): segment [%v, %v) does not follow %v", i, loc, p.Tiers, s, e, at)
			}
			if tier == last {
				t.Fatalf("case %d (%s %v): two segments in a row with tier %d at %v", i, loc, p.Tiers, tier, s)
			}
			probes := []time.Time{s, e.Add(-1), s.Add(e.Sub(s) / 2)}
			for x := s.Add(time.Duration(rng.Int64N(int64(time.Minute)))); x.Before(e); x = x.Add(17 * time.Minute) {
				probes = append(probes, x) // no change hides inside a segment
			}
			for _, x := range probes {
				if want := naiveTier(p, x); want != tier {
					t.Fatalf("case %d (%s %v): at %v (%v local) the tier is %d, the segment [%v, %v) says %d",
						i, loc, p.Tiers, x, x.In(loc), want, s, e, tier)
				}
			}
			at, last = e, tier
		})
		if !at.Equal(end) {
			t.Fatalf("case %d: segments end at %v, not %v", i, at, end)
		}
	}
}

func clock(m int) string { return time.Date(0, 1, 1, m/60, m%60, 0, 0, time.UTC).Format("15:04") }
