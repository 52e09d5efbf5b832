package api

import (
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"github.com/cinet/cinet/identity"
)

// TestSessionTimes: a code is good for CodeTTL and once; a session lasts
// SessionTTL; the stores stay bounded.
func TestSessionTimes(t *testing.T) {
	k, err := identity.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	c := &Caller{Principal: k.ID(), Role: Tenant}
	t0 := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name  string
		after time.Duration
		ok    bool
		msg   string
	}{
		{"fresh", 0, true, ""},
		{"just in time", CodeTTL - time.Nanosecond, true, ""},
		{"at expiry", CodeTTL, false, "expired"},
		{"long after", time.Hour, false, "expired"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ss := newSessions()
			code, _, err := ss.issueCode(c, t0)
			if err != nil {
				t.Fatal(err)
			}
			id, g, err := ss.redeem(code, t0.Add(tc.after))
			if (err == nil) != tc.ok || (err != nil && !strings.Contains(err.Error(), tc.msg)) {
				t.Fatalf("redeem after %s: %v", tc.after, err)
			}
			if !tc.ok {
				return
			}
			if g.principal != c.Principal || g.role != Tenant || g.csrf == "" || id == "" {
				t.Fatalf("grant %+v", g)
			}
			if _, _, err := ss.redeem(code, t0.Add(tc.after)); err == nil {
				t.Fatal("a code redeemed twice")
			}
			at := t0.Add(tc.after)
			if _, ok := ss.lookup(id, at.Add(SessionTTL-time.Nanosecond)); !ok {
				t.Fatal("a session ended early")
			}
			if _, ok := ss.lookup(id, at.Add(SessionTTL)); ok {
				t.Fatal("a session outlived its time")
			}
		})
	}
	// Flooding with codes stops at the bound and starts again as they
	// expire.
	ss := newSessions()
	for range maxCodes {
		if _, _, err := ss.issueCode(c, t0); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := ss.issueCode(c, t0); err == nil {
		t.Fatal("codes without bound")
	}
	if _, _, err := ss.issueCode(c, t0.Add(CodeTTL)); err != nil {
		t.Fatalf("after the codes expired: %v", err)
	}
}
