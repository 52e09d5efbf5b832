package store_test

import (
	"context"
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
