package api

import (
	"crypto/rand"
	"fmt"
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
			code, _ := ss.issueCode(c, t0)
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
}

// TestSessionsPerPrincipal: a tenant that signs in over and over — or
// asks for code after code — holds at most PerPrincipal of each, its
// oldest ended first, and never locks anyone else out; when the whole
// table is full, the oldest entry of anyone's goes, not the newcomer.
func TestSessionsPerPrincipal(t *testing.T) {
	key := func() identity.PrincipalID {
		k, err := identity.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k.ID()
	}
	flooder, operator := &Caller{Principal: key(), Role: Tenant}, &Caller{Principal: key(), Role: Operator}
	t0 := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	ss := newSessions()
	signIn := func(c *Caller, at time.Time) string {
		t.Helper()
		code, _ := ss.issueCode(c, at)
		id, _, err := ss.redeem(code, at)
		if err != nil {
			t.Fatalf("%s signing in: %v", c.Role, err)
		}
		return id
	}
	opSession := signIn(operator, t0)
	var first string
	for i := range 10_000 {
		id := signIn(flooder, t0.Add(time.Duration(i)*time.Millisecond))
		if i == 0 {
			first = id
		}
	}
	if n := len(ss.sessions.byPrincipal[flooder.Principal]); n != PerPrincipal {
		t.Errorf("the flooder holds %d sessions, want %d", n, PerPrincipal)
	}
	if _, ok := ss.lookup(first, t0); ok {
		t.Error("the flooder's oldest session outlived PerPrincipal newer ones")
	}
	if _, ok := ss.lookup(opSession, t0.Add(time.Minute)); !ok {
		t.Error("the operator's session ended when another principal signed in 10,000 times")
	}
	signIn(operator, t0.Add(time.Minute))

	// Codes likewise.
	for range 1000 {
		ss.issueCode(flooder, t0)
	}
	if n := len(ss.codes.byPrincipal[flooder.Principal]); n != PerPrincipal {
		t.Errorf("the flooder holds %d codes, want %d", n, PerPrincipal)
	}
	if code, _ := ss.issueCode(operator, t0); code == "" {
		t.Error("no code for the operator")
	}

	// A table full of many principals' entries makes room by its oldest.
	full := newGrants()
	for i := range maxGrants {
		full.add(fmt.Sprint(i), grant{principal: identity.PrincipalID{}, issued: t0.Add(time.Duration(i)), expires: t0.Add(time.Hour)})
		if i%PerPrincipal == 0 {
			full.byPrincipal = map[identity.PrincipalID][]string{} // stand for many principals
		}
	}
	full.add("new", grant{principal: operator.Principal, issued: t0.Add(time.Hour), expires: t0.Add(2 * time.Hour)})
	if _, ok := full.byID["new"]; !ok || len(full.byID) != maxGrants {
		t.Fatalf("a full table: %d entries, the new one kept %v", len(full.byID), ok)
	}
	if _, ok := full.byID["0"]; ok {
		t.Error("a full table kept its oldest entry and dropped another")
	}
}
