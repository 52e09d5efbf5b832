package store_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/cinet/cinet/broker/book"
	"github.com/cinet/cinet/broker/jobs"
	"github.com/cinet/cinet/broker/jobs/jobstest"
	"github.com/cinet/cinet/broker/store"
	"github.com/cinet/cinet/settlement/storetest"
)

func openSQLite(t *testing.T) *store.Store {
	s, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "broker.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func openPostgres(t *testing.T) *store.Store {
	s, err := store.Open(context.Background(), storetest.PostgresSchema(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestJobsSQLite(t *testing.T) {
	jobstest.Run(t, func(t *testing.T) jobs.Store { return openSQLite(t) })
}

func TestJobsPostgres(t *testing.T) {
	jobstest.Run(t, func(t *testing.T) jobs.Store { return openPostgres(t) })
}

func TestOffersAndNonces(t *testing.T) {
	for name, open := range map[string]func(*testing.T) *store.Store{"sqlite": openSQLite, "postgres": openPostgres} {
		t.Run(name, func(t *testing.T) {
			s := open(t)
			ctx := context.Background()
			now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
			o := &store.OfferRow{Digest: "sha256:1", Name: "ci:x/r/z/p", Provider: "did:key:p", Sequence: 1, Envelope: []byte("env"), CreatedAt: now}
			for range 2 {
				if err := s.PutOffer(ctx, o); err != nil {
					t.Fatal(err)
				}
			}
			if all, err := s.Offers(ctx); err != nil || len(all) != 1 || string(all[0].Envelope) != "env" {
				t.Fatalf("offers %v %v", all, err)
			}
			if err := s.WithdrawOffer(ctx, o.Name); err != nil {
				t.Fatal(err)
			}
			if all, _ := s.Offers(ctx); len(all) != 0 {
				t.Fatal("a withdrawn offer is listed")
			}
			if got, err := s.Offer(ctx, "sha256:1"); err != nil || !got.Withdrawn {
				t.Fatalf("a withdrawn offer by digest: %+v %v", got, err)
			}
			if fresh, err := s.UseNonce(ctx, "n1", now.Add(time.Minute)); !fresh || err != nil {
				t.Fatalf("first use: %v %v", fresh, err)
			}
			if fresh, _ := s.UseNonce(ctx, "n1", now.Add(time.Minute)); fresh {
				t.Fatal("a nonce was accepted twice")
			}
			if err := s.ForgetNonces(ctx, now.Add(2*time.Minute)); err != nil {
				t.Fatal(err)
			}
			if fresh, _ := s.UseNonce(ctx, "n1", now.Add(3*time.Minute)); !fresh {
				t.Fatal("an expired nonce was not forgotten")
			}
		})
	}
}

// TestTokens: issued tokens are listed until they expire, revoked once
// (the first time stands), and forgotten after they expire, on every
// database.
func TestTokens(t *testing.T) {
	for name, open := range map[string]func(*testing.T) *store.Store{"sqlite": openSQLite, "postgres": openPostgres} {
		t.Run(name, func(t *testing.T) {
			s := open(t)
			ctx := context.Background()
			now := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
			for i, ttl := range []time.Duration{time.Hour, time.Minute, 2 * time.Hour} {
				row := &store.TokenRow{ID: fmt.Sprint("t", i), Principal: "did:key:z6Mk" + fmt.Sprint(i), Role: "tenant", Issued: now.Add(time.Duration(i)), Expires: now.Add(ttl)}
				if err := s.PutToken(ctx, row); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.PutToken(ctx, &store.TokenRow{ID: "t0", Principal: "x", Role: "operator", Issued: now, Expires: now.Add(time.Hour)}); err == nil {
				t.Fatal("a token ID was recorded twice")
			}
			if _, err := s.Token(ctx, "none"); !errors.Is(err, store.ErrNoToken) {
				t.Fatalf("an unknown token: %v", err)
			}
			got, err := s.RevokeToken(ctx, "t0", now.Add(time.Second))
			if err != nil || !got.Revoked.Equal(now.Add(time.Second)) || got.Principal != "did:key:z6Mk0" {
				t.Fatalf("revoking: %+v %v", got, err)
			}
			if again, err := s.RevokeToken(ctx, "t0", now.Add(time.Minute)); err != nil || !again.Revoked.Equal(now.Add(time.Second)) {
				t.Fatalf("revoking again: %+v %v", again, err)
			}
			if _, err := s.RevokeToken(ctx, "none", now); !errors.Is(err, store.ErrNoToken) {
				t.Fatalf("revoking an unknown token: %v", err)
			}
			list, err := s.Tokens(ctx, now.Add(30*time.Minute))
			if err != nil || len(list) != 2 || list[0].ID != "t0" || list[0].Revoked.IsZero() || list[1].ID != "t2" || !list[1].Revoked.IsZero() {
				t.Fatalf("tokens listed: %+v %v", list, err)
			}
			if err := s.ForgetTokens(ctx, now.Add(90*time.Minute)); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Token(ctx, "t0"); !errors.Is(err, store.ErrNoToken) {
				t.Fatalf("an expired token kept: %v", err)
			}
			if tok, err := s.Token(ctx, "t2"); err != nil || tok.Role != "tenant" {
				t.Fatalf("a good token forgotten: %+v %v", tok, err)
			}
		})
	}
}

// TestLeases: leases are kept until deleted or run out, on every database.
func TestLeases(t *testing.T) {
	for name, open := range map[string]func(*testing.T) *store.Store{"sqlite": openSQLite, "postgres": openPostgres} {
		t.Run(name, func(t *testing.T) {
			s := open(t)
			ctx := context.Background()
			now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
			for _, r := range []book.Reservation{
				{ID: "r1", Offer: "ci:x/r/z/a", Count: 2, Holder: "did:key:z6Mk… j-1", Expires: now.Add(time.Minute)},
				{ID: "r2", Offer: "ci:x/r/z/a", Count: 1, Holder: "did:key:z6Mk… j-2", Expires: now.Add(-time.Second)},
				{ID: "r3", Offer: "ci:x/r/z/b", Count: 1, Holder: "did:key:z6Mk… j-3", Expires: now.Add(2 * time.Minute)},
			} {
				if err := s.PutLease(ctx, r); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.DeleteLease(ctx, "r3"); err != nil {
				t.Fatal(err)
			}
			if err := s.DeleteLease(ctx, "never"); err != nil {
				t.Fatal(err)
			}
			got, err := s.Leases(ctx, now)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 || got[0].ID != "r1" || got[0].Count != 2 || !got[0].Expires.Equal(now.Add(time.Minute)) || got[0].Holder != "did:key:z6Mk… j-1" {
				t.Fatalf("leases %+v", got)
			}
		})
	}
}
