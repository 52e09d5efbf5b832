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

// TestBucketsFull: a table full of busy callers sends newcomers to the
// shared overflow bucket, and is swept for idle callers at most once a
// second; once callers are idle, newcomers get buckets of their own.
func TestBucketsFull(t *testing.T) {
	now := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	b := newBuckets[int](1, 2)
	for i := range maxBuckets {
		b.take(i, now) // each spends one of its two: busy
	}
	if l := b.get(-1, now); l != b.overflow {
		t.Fatal("a newcomer to a full table of busy callers got a bucket of its own")
	}
	swept := b.swept
	b.get(-2, now.Add(500*time.Millisecond))
	if !b.swept.Equal(swept) {
		t.Fatal("the table was swept again within a second")
	}
	// Two seconds on, every bucket is full again: the callers are idle.
	later := now.Add(2 * time.Second)
	if l := b.get(-3, later); l == b.overflow || len(b.m) != 1 {
		t.Fatalf("after the callers went idle: overflow %v, %d buckets held", l == b.overflow, len(b.m))
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
