package main

import (
	"testing"
	"time"
)

func TestParsePeriod(t *testing.T) {
	utc := func(s string) time.Time { v, _ := time.Parse(time.RFC3339, s); return v }
	for _, tc := range []struct {
		in       string
		from, to string
	}{
		{"2026-11", "2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z"},
		{"2026-12", "2026-12-01T00:00:00Z", "2027-01-01T00:00:00Z"},
		{"2026-11-30", "2026-11-30T00:00:00Z", "2026-12-01T00:00:00Z"},
		{"2026-11-30T08:00:00+08:00/2026-11-30T12:00:00Z", "2026-11-30T00:00:00Z", "2026-11-30T12:00:00Z"},
		{"2026-13", "", ""},
		{"2026-11-31", "", ""},
		{"November", "", ""},
		{"2026-11-30T12:00:00Z/2026-11-30T00:00:00Z", "", ""},
	} {
		from, to, err := parsePeriod(tc.in)
		if tc.from == "" {
			if err == nil {
				t.Errorf("%q parsed as %v–%v", tc.in, from, to)
			}
			continue
		}
		if err != nil || !from.Equal(utc(tc.from)) || !to.Equal(utc(tc.to)) || from.Location() != time.UTC {
			t.Errorf("%q: %v–%v %v", tc.in, from, to, err)
		}
	}
}

// FuzzParsePeriod: a period that parses is a non-empty UTC interval.
func FuzzParsePeriod(f *testing.F) {
	for _, s := range []string{"2026-11", "2026-11-30", "2026-11-30T00:00:00Z/2026-12-01T00:00:00Z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		from, to, err := parsePeriod(s)
		if err == nil && (!to.After(from) || from.Location() != time.UTC || to.Location() != time.UTC) {
			t.Fatalf("%q parsed as %v–%v", s, from, to)
		}
	})
}
