// Package jobstest is the suite every jobs.Store passes.
package jobstest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/cinet/cinet/broker/jobs"
)

var ctx = context.Background()

var t0 = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

func job(id, tenant string, at time.Time) *jobs.Job {
	j := &jobs.Job{ID: id, Tenant: tenant, Name: "n-" + id, Digest: "sha256:00", Document: []byte(`{"kind":"Job"}`), CreatedAt: at, UpdatedAt: at}
	j.History = []jobs.Transition{{State: jobs.Submitted, At: at}}
	j.State = jobs.Submitted
	return j
}

// Run runs the suite against stores open returns, each fresh and empty.
func Run(t *testing.T, open func(t *testing.T) jobs.Store) {
	t.Run("CreateGet", func(t *testing.T) {
		s := open(t)
		j := job("j-1", "did:key:a", t0)
		j.Attempts = []jobs.Attempt{{ID: "j-1-1", Offer: "o", Usage: &jobs.Usage{Start: t0, End: t0.Add(time.Second), CPU: time.Millisecond, PeakMemory: 5}}}
		if err := s.Create(ctx, j); err != nil {
			t.Fatal(err)
		}
		if err := s.Create(ctx, job("j-1", "did:key:b", t0)); !errors.Is(err, jobs.ErrExists) {
			t.Fatalf("creating a job twice: %v", err)
		}
		got, err := s.Get(ctx, "j-1")
		if err != nil || got.Tenant != "did:key:a" || string(got.Document) != `{"kind":"Job"}` || !got.CreatedAt.Equal(t0) || got.Attempts[0].Usage.CPU != time.Millisecond {
			t.Fatalf("read back %+v %v", got, err)
		}
		if _, err := s.Get(ctx, "j-none"); !errors.Is(err, jobs.ErrNotFound) {
			t.Fatalf("unknown job: %v", err)
		}
	})
	t.Run("UpdateVersions", func(t *testing.T) {
		s := open(t)
		j := job("j-1", "did:key:a", t0)
		if err := s.Create(ctx, j); err != nil {
			t.Fatal(err)
		}
		stale := *j
		j.State = jobs.Matched
		if err := s.Update(ctx, j); err != nil || j.Version != 1 {
			t.Fatalf("update: %v, version %d", err, j.Version)
		}
		stale.State = jobs.Cancelled
		if err := s.Update(ctx, &stale); !errors.Is(err, jobs.ErrConflict) {
			t.Fatalf("an update from a stale copy: %v", err)
		}
		if got, _ := s.Get(ctx, "j-1"); got.State != jobs.Matched || got.Version != 1 {
			t.Fatalf("after the refused update: %+v", got)
		}
		missing := job("j-2", "did:key:a", t0)
		if err := s.Update(ctx, missing); !errors.Is(err, jobs.ErrNotFound) {
			t.Fatalf("updating a job never created: %v", err)
		}
	})
	t.Run("ConcurrentUpdates", func(t *testing.T) {
		// Of writers racing from the same version, exactly one wins.
		s := open(t)
		j := job("j-1", "did:key:a", t0)
		if err := s.Create(ctx, j); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		wins := 0
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c := *j
				c.Detail = fmt.Sprint(i)
				err := s.Update(ctx, &c)
				if err == nil {
					mu.Lock()
					wins++
					mu.Unlock()
				} else if !errors.Is(err, jobs.ErrConflict) {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if wins != 1 {
			t.Fatalf("%d writers won from the same version", wins)
		}
	})
	t.Run("ListActiveCounts", func(t *testing.T) {
		s := open(t)
		for i := range 10 {
			tenant := "did:key:a"
			if i%2 == 1 {
				tenant = "did:key:b"
			}
			j := job(fmt.Sprintf("j-%02d", i), tenant, t0.Add(time.Duration(i)*time.Minute))
			if err := s.Create(ctx, j); err != nil {
				t.Fatal(err)
			}
			if i < 3 {
				j.State = jobs.Settled
				if err := s.Update(ctx, j); err != nil {
					t.Fatal(err)
				}
			}
		}
		a, err := s.List(ctx, jobs.Filter{Tenant: "did:key:a"})
		if err != nil || len(a) != 5 || a[0].ID != "j-08" || a[4].ID != "j-00" {
			t.Fatalf("tenant a's jobs: %v %v", ids(a), err)
		}
		page, _ := s.List(ctx, jobs.Filter{Limit: 3, Before: t0.Add(5 * time.Minute)})
		if len(page) != 3 || page[0].ID != "j-04" {
			t.Fatalf("a page before j-05: %v", ids(page))
		}
		settled, _ := s.List(ctx, jobs.Filter{State: jobs.Settled})
		if len(settled) != 3 {
			t.Fatalf("settled: %v", ids(settled))
		}
		active, err := s.Active(ctx)
		if err != nil || len(active) != 7 || active[0].ID != "j-03" {
			t.Fatalf("active: %v %v", ids(active), err)
		}
		counts, err := s.Counts(ctx)
		if err != nil || counts[jobs.Settled] != 3 || counts[jobs.Submitted] != 7 {
			t.Fatalf("counts %v %v", counts, err)
		}
	})
}

func ids(js []*jobs.Job) []string {
	var out []string
	for _, j := range js {
		out = append(out, j.ID)
	}
	return out
}
