package descriptor

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// NoTier is the tier index of the base rates: no tier is in force.
const NoTier = -1

// A TierWeek is a price schedule's tiers laid over the week in the
// schedule's time zone: which tier, if any, is in force at each minute of
// a local week. It is what both the matcher's estimate and settlement's
// rating cut a run by (spec/rating.md §3), so that they cut it the same
// way.
type TierWeek struct {
	loc   *time.Location
	spans []tierSpan // by start; spans[0].start == 0; neighbours differ in tier
}

// A tierSpan is where one tier (or none) comes into force in the week.
type tierSpan struct {
	start int32 // minute of the week, Monday 00:00 local = 0
	tier  int32 // index into the schedule's tiers, or NoTier
}

const nanosPerMinute = int64(time.Minute)

// Week lays the schedule's tiers over the week. Tiers never overlap (the
// descriptor's checks refuse it), so at each minute at most one applies.
// A tier that wraps midnight belongs to the day it starts on; Sunday's
// runs into Monday.
func (p *PriceSchedule) Week() *TierWeek {
	key := p.weekKey()
	if w, ok := weeks.get(key); ok {
		return w
	}
	w := p.layWeek()
	weeks.put(key, w)
	return w
}

// weeks shares the weeks of schedules alike: most offers of a zone have
// the same tiers, or none. A TierWeek never changes once laid out.
var weeks = weekCache{m: map[string]*TierWeek{}}

type weekCache struct {
	mu sync.Mutex
	m  map[string]*TierWeek
}

func (c *weekCache) get(key string) (*TierWeek, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	w, ok := c.m[key]
	return w, ok
}

func (c *weekCache) put(key string, w *TierWeek) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= 4096 { // a flood of distinct schedules: start again
		clear(c.m)
	}
	c.m[key] = w
}

// weekKey is what the week depends on: the zone and each tier's window.
func (p *PriceSchedule) weekKey() string {
	var b strings.Builder
	b.WriteString(p.Timezone)
	for _, t := range p.Tiers {
		fmt.Fprintf(&b, "|%s-%s", t.Start, t.End)
		for _, d := range t.Days {
			b.WriteString("," + d)
		}
	}
	return b.String()
}

// layWeek lays the schedule's tiers over the week.
func (p *PriceSchedule) layWeek() *TierWeek {
	w := &TierWeek{loc: p.Location()}
	type window struct{ start, end, tier int32 }
	var windows []window
	for ti := range p.Tiers {
		t := &p.Tiers[ti]
		start, end := int32(ClockMinutes(t.Start)), int32(ClockMinutes(t.End))
		length := end - start
		if length <= 0 {
			length += 24 * 60
		}
		for d, day := range weekdays {
			if len(t.Days) > 0 && !slices.Contains(t.Days, day) {
				continue
			}
			s := int32(d)*24*60 + start
			e := s + length
			if e <= minutesPerWeek {
				windows = append(windows, window{s, e, int32(ti)})
			} else {
				windows = append(windows, window{s, minutesPerWeek, int32(ti)}, window{0, e - minutesPerWeek, int32(ti)})
			}
		}
	}
	slices.SortFunc(windows, func(a, b window) int { return int(a.start - b.start) })
	add := func(start, tier int32) {
		if n := len(w.spans); n > 0 && w.spans[n-1].tier == tier {
			return
		}
		w.spans = append(w.spans, tierSpan{start, tier})
	}
	at := int32(0)
	for _, win := range windows {
		if win.start > at {
			add(at, NoTier)
		}
		add(win.start, win.tier)
		at = win.end
	}
	if at < minutesPerWeek || len(w.spans) == 0 {
		add(at, NoTier)
	}
	return w
}

// Location returns the zone the week is laid out in.
func (w *TierWeek) Location() *time.Location { return w.loc }

// Constant reports whether the same tier (or none) is in force all week.
func (w *TierWeek) Constant() bool { return len(w.spans) == 1 }

// Tiers returns the tiers that are ever in force, NoTier included when
// the base rates ever are.
func (w *TierWeek) Tiers() []int {
	var out []int
	for _, s := range w.spans {
		if !slices.Contains(out, int(s.tier)) {
			out = append(out, int(s.tier))
		}
	}
	return out
}

// Changes returns how many times a week the tier in force changes.
func (w *TierWeek) Changes() int {
	n := len(w.spans)
	if n > 1 && w.spans[0].tier == w.spans[n-1].tier {
		n-- // the span before Monday 00:00 goes on into it
	}
	if n == 1 {
		return 0
	}
	return n
}

// NextOffsetChange returns the first instant after t at which the zone's
// UTC offset may change, or the zero time when it never does. (Go's
// ZoneBounds can name t itself at the turn of a year that a zone's
// recurring rule covers; the instant after it is asked then.)
func (w *TierWeek) NextOffsetChange(t time.Time) time.Time {
	_, end := t.In(w.loc).ZoneBounds()
	for probe := t; !end.IsZero() && !end.After(t); {
		probe = probe.Add(time.Minute)
		_, end = probe.In(w.loc).ZoneBounds()
	}
	return end
}

// OnBoundary reports whether t's local time in the week's zone is exactly
// a wall-clock boundary at which the tier in force changes. The same local
// time a week later, under the same UTC offset, is one too.
func (w *TierWeek) OnBoundary(t time.Time) bool {
	lt := t.In(w.loc)
	if lt.Second() != 0 || lt.Nanosecond() != 0 || len(w.spans) == 1 {
		return false
	}
	day := int32((int(lt.Weekday()) + 6) % 7)
	m := day*24*60 + int32(lt.Hour()*60+lt.Minute())
	i, found := slices.BinarySearchFunc(w.spans, m, func(s tierSpan, m int32) int { return int(s.start - m) })
	if !found {
		return false
	}
	prev := w.spans[len(w.spans)-1]
	if i > 0 {
		prev = w.spans[i-1]
	}
	return prev.tier != w.spans[i].tier
}

// spanAt returns the index of the span in force at minute m of the week.
func (w *TierWeek) spanAt(m int32) int {
	i, found := slices.BinarySearchFunc(w.spans, m, func(s tierSpan, m int32) int { return int(s.start - m) })
	if !found {
		i--
	}
	return i
}

// Segments calls fn for each maximal stretch [s, e) of [start, end) during
// which one tier (or none, NoTier) is in force, in order.
//
// The tier in force at an instant is the one whose window holds the
// instant's local wall-clock time in the schedule's zone. So a change of
// UTC offset (daylight saving) moves every boundary with the local clock;
// a boundary the clock skips on a spring-forward day does not happen, and
// the tier in force after the jump is the one the clock then reads; a
// boundary in an hour the clock repeats happens twice. Instants are exact
// to the nanosecond.
func (w *TierWeek) Segments(start, end time.Time, fn func(s, e time.Time, tier int)) {
	if !start.Before(end) {
		return
	}
	if len(w.spans) == 1 {
		fn(start, end, int(w.spans[0].tier))
		return
	}
	segStart, segTier := start, int32(0)
	first := true
	var offset int64      // seconds east of UTC, in force until zoneEnd
	var zoneEnd time.Time // zero: the offset never changes again
	known := false
	t := start
	for t.Before(end) {
		if !known || (!zoneEnd.IsZero() && !t.Before(zoneEnd)) {
			_, off := t.In(w.loc).Zone()
			offset, zoneEnd, known = int64(off), w.NextOffsetChange(t), true
		}
		// Local wall-clock time by arithmetic: 1970-01-01 was a Thursday.
		secs := t.Unix() + offset
		days := secs / 86400
		if secs%86400 < 0 {
			days--
		}
		sod := secs - days*86400
		day := int32(((days+3)%7 + 7) % 7) // Monday = 0
		m := day*24*60 + int32(sod/60)
		into := (sod%60)*int64(time.Second) + int64(t.Nanosecond())
		i := w.spanAt(m)
		tier := w.spans[i].tier
		if first {
			segTier, first = tier, false
		} else if tier != segTier {
			fn(segStart, t, int(segTier))
			segStart, segTier = t, tier
		}
		// Under this UTC offset, the local clock reaches the next span's
		// start after this long.
		next := int32(minutesPerWeek)
		if i+1 < len(w.spans) {
			next = w.spans[i+1].start
		}
		cut := t.Add(time.Duration(int64(next-m)*nanosPerMinute - into))
		if !zoneEnd.IsZero() && zoneEnd.Before(cut) {
			cut = zoneEnd // the offset changes first: look again from there
		}
		if cut.After(end) {
			cut = end
		}
		t = cut
	}
	fn(segStart, end, int(segTier))
}
