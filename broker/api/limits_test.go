package api

import (
	"testing"
	"time"

	"golang.org/x/time/rate"
)

// TestBuckets: a caller's burst, then refusal with the wait until the
// next request; another caller unaffected; idle buckets dropped when the
// table is full; no limit at a negative rate.
func TestBuckets(t *testing.T) {
	now := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	b := newBuckets[string](2, 3)
	for i := range 3 {
		if ok, _ := b.take("a", now); !ok {
			t.Fatalf("request %d of a burst of 3 refused", i)
		}
	}
	ok, wait := b.take("a", now)
	if ok || wait != 500*time.Millisecond {
		t.Fatalf("past the burst: %v, wait %s; want refused, 500ms", ok, wait)
	}
	if ok, _ := b.left("a", now); ok {
		t.Fatal("left says a spent bucket has budget")
	}
	if ok, _ := b.take("b", now); !ok {
		t.Fatal("another caller refused")
	}
	if ok, _ := b.take("a", now.Add(500*time.Millisecond)); !ok {
		t.Fatal("refused after the wait it was told")
	}
	inf := newBuckets[string](rate.Inf, 1)
	for range 1000 {
		if ok, _ := inf.take("a", now); !ok {
			t.Fatal("refused with no limit")
		}
	}
}

// BenchmarkBucketTake is what the limiter costs one request: finding the
// caller's bucket and taking from it.
func BenchmarkBucketTake(b *testing.B) {
	bk := newBuckets[string](rate.Limit(1e9), 1<<30)
	callers := []string{"did:key:z6Mk1", "did:key:z6Mk2", "did:key:z6Mk3", "did:key:z6Mk4"}
	now := time.Now()
	i := 0
	for b.Loop() {
		bk.take(callers[i%len(callers)], now)
		i++
	}
}
