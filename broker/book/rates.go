package book

import (
	"math"
	"slices"
	"time"

	"github.com/cinet/cinet/descriptor"
)

const minutesPerWeek = 7 * 24 * 60

// A rateSegment is a stretch of the week, in minutes from Monday 00:00 in
// the schedule's time zone, during which one instance costs perHour.
type rateSegment struct {
	start   int // minute of the week
	perHour descriptor.Nanos
}

// A Timeline is an offer's hourly instance price across the week. Time
// zones with daylight saving shift tiers with local time, as a price list
// written in local time means.
type Timeline struct {
	loc      *time.Location
	segments []rateSegment // sorted by start; segments[0].start == 0
	Min, Max descriptor.Nanos
	Zone     int32 // the book's ID for loc
}

// Flat reports whether the price never changes through the week.
func (tl *Timeline) Flat() bool { return len(tl.segments) == 1 }

// instanceRate is the hourly price of one instance under rates, layered on
// base: a tier's rates replace the base rates for the meters it lists.
func instanceRate(base, tier *descriptor.Rates, class *descriptor.ComputeClass) descriptor.Nanos {
	merged := *base
	if tier != nil {
		for _, pick := range []struct{ dst, src *descriptor.Decimal }{
			{&merged.InstanceHour, &tier.InstanceHour}, {&merged.VCPUHour, &tier.VCPUHour},
			{&merged.GiBHour, &tier.GiBHour}, {&merged.AcceleratorHour, &tier.AcceleratorHour},
		} {
			if pick.src.IsSet() {
				*pick.dst = *pick.src
			}
		}
	}
	return descriptor.NanosFromDecimal(merged.InstanceRate(class))
}

// NewTimeline builds the weekly price timeline of an offer. Tiers never
// overlap (the descriptor validates it), so the week is the base rate with
// the tiers' windows laid over it.
func NewTimeline(o *descriptor.Offer) *Timeline {
	base := instanceRate(&o.Price.Rates, nil, &o.Class)
	type window struct {
		start, end int // minutes of the week, end exclusive, start < end
		rate       descriptor.Nanos
	}
	var windows []window
	for ti := range o.Price.Tiers {
		t := &o.Price.Tiers[ti]
		rate := instanceRate(&o.Price.Rates, &t.Rates, &o.Class)
		start, end := descriptor.ClockMinutes(t.Start), descriptor.ClockMinutes(t.End)
		length := end - start
		if length <= 0 {
			length += 24 * 60
		}
		for d, day := range []string{"mon", "tue", "wed", "thu", "fri", "sat", "sun"} {
			if len(t.Days) > 0 && !slices.Contains(t.Days, day) {
				continue
			}
			s := d*24*60 + start
			e := s + length
			if e <= minutesPerWeek {
				windows = append(windows, window{s, e, rate})
			} else { // Sunday's window running into Monday
				windows = append(windows, window{s, minutesPerWeek, rate}, window{0, e - minutesPerWeek, rate})
			}
		}
	}
	slices.SortFunc(windows, func(a, b window) int { return a.start - b.start })
	tl := &Timeline{loc: o.Price.Location(), Min: descriptor.MaxNanos}
	add := func(start int, rate descriptor.Nanos) {
		if n := len(tl.segments); n > 0 && tl.segments[n-1].perHour == rate {
			return
		}
		tl.segments = append(tl.segments, rateSegment{start, rate})
		tl.Min, tl.Max = min(tl.Min, rate), max(tl.Max, rate)
	}
	at := 0
	for _, w := range windows {
		if w.start > at {
			add(at, base)
		}
		add(w.start, w.rate)
		at = w.end
	}
	if at < minutesPerWeek || len(tl.segments) == 0 {
		add(at, base)
	}
	return tl
}

// minuteOfWeek returns t's minute from Monday 00:00 in loc and the seconds
// into that minute.
func minuteOfWeek(t time.Time, loc *time.Location) (int, int) {
	lt := t.In(loc)
	day := (int(lt.Weekday()) + 6) % 7 // Monday = 0
	return day*24*60 + lt.Hour()*60 + lt.Minute(), lt.Second()
}

// Cost returns what one instance costs from start for d, and the highest
// hourly rate in force during that time.
func (tl *Timeline) Cost(start time.Time, d time.Duration) (total, peak descriptor.Nanos) {
	if len(tl.segments) == 1 {
		return tl.segments[0].perHour.MulDiv(int64(d/time.Second), 3600), tl.segments[0].perHour
	}
	remaining := int64(d / time.Second)
	t := start
	for remaining > 0 {
		m, sec := minuteOfWeek(t, tl.loc)
		i := tl.segmentAt(m)
		next := minutesPerWeek
		if i+1 < len(tl.segments) {
			next = tl.segments[i+1].start
		}
		span := int64(next-m)*60 - int64(sec)
		span = min(span, remaining)
		rate := tl.segments[i].perHour
		total = total.Add(rate.MulDiv(span, 3600))
		peak = max(peak, rate)
		remaining -= span
		t = t.Add(time.Duration(span) * time.Second)
	}
	return total, peak
}

// A Start is where a run begins on one time zone's weekly clock, worked out
// once per decision for every offer priced in that zone.
type Start struct {
	at        time.Time
	minute    int   // of the week, Monday 00:00 = 0
	second    int   // into that minute
	safeUntil int64 // Unix ns: the zone's UTC offset holds until here
}

// StartIn returns the start position of t in loc.
func StartIn(t time.Time, loc *time.Location) Start {
	m, s := minuteOfWeek(t, loc)
	_, end := t.In(loc).ZoneBounds()
	safe := int64(math.MaxInt64)
	if !end.IsZero() {
		safe = end.UnixNano()
	}
	return Start{at: t, minute: m, second: s, safeUntil: safe}
}

// CostFrom is Cost for a run starting at st, which must be in the
// timeline's zone. While the run stays within one UTC offset it walks the
// week by arithmetic; across a daylight-saving change it walks in local
// time, as Cost does.
func (tl *Timeline) CostFrom(st Start, d time.Duration) (total, peak descriptor.Nanos) {
	if len(tl.segments) == 1 {
		return tl.segments[0].perHour.MulDiv(int64(d/time.Second), 3600), tl.segments[0].perHour
	}
	if st.at.Add(d).UnixNano() > st.safeUntil {
		return tl.Cost(st.at, d)
	}
	remaining := int64(d / time.Second)
	m, sec := st.minute, st.second
	i := tl.segmentAt(m)
	for remaining > 0 {
		next := minutesPerWeek
		if i+1 < len(tl.segments) {
			next = tl.segments[i+1].start
		}
		span := min(int64(next-m)*60-int64(sec), remaining)
		rate := tl.segments[i].perHour
		total = total.Add(rate.MulDiv(span, 3600))
		peak = max(peak, rate)
		remaining -= span
		m, sec = next, 0
		i++
		if m == minutesPerWeek {
			m, i = 0, 0
		}
	}
	return total, peak
}

func (tl *Timeline) segmentAt(m int) int {
	i, found := slices.BinarySearchFunc(tl.segments, m, func(s rateSegment, m int) int { return s.start - m })
	if !found {
		i--
	}
	return i
}
