package book

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cinet/cinet/descriptor"
)

// TestBucketAgainstSortedSlice holds a bucket's chunked order to a plain
// sorted slice through random adds, removes and free-quantity changes,
// with rates that tie often, so that splits, empty chunks and ties by name
// all happen.
func TestBucketAgainstSortedSlice(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	for round := range 20 {
		b := &Bucket{}
		held := map[string]*Entry{}
		for step := range 3000 {
			name := fmt.Sprintf("p%d", rng.IntN(600))
			switch e, ok := held[name]; {
			case ok && rng.IntN(3) == 0:
				b.remove(e)
				delete(held, name)
			case ok:
				e.Free = int32(rng.IntN(64))
				b.setFree(e)
			default:
				e := &Entry{Name: name}
				e.MinRate = descriptor.Nanos(rng.IntN(40 + round*50))
				e.MaxRate = e.MinRate + descriptor.Nanos(rng.IntN(30))
				e.Increment = int64(rng.IntN(5))
				e.Free = int32(rng.IntN(64))
				b.add(e)
				held[name] = e
			}
			if step%97 != 0 && step != 2999 {
				continue
			}
			want := make([]*Entry, 0, len(held))
			for _, e := range held {
				want = append(want, e)
			}
			slices.SortFunc(want, func(x, y *Entry) int {
				if x.MinRate != y.MinRate {
					return int(x.MinRate - y.MinRate)
				}
				return strings.Compare(x.Name, y.Name)
			})
			var got []*Slot
			for _, ch := range b.Chunks() {
				c := ch.Slots
				if len(c) == 0 || len(c) > chunkMax {
					t.Fatalf("round %d step %d: a chunk of %d slots", round, step, len(c))
				}
				for i := range c {
					got = append(got, &c[i])
					if c[i].MaxRate > ch.MaxRate || c[i].Increment > ch.MaxIncrement {
						t.Fatalf("round %d step %d: %s (max rate %d, increment %d) exceeds its chunk's bounds (%d, %d)",
							round, step, c[i].Entry.Name, c[i].MaxRate, c[i].Increment, ch.MaxRate, ch.MaxIncrement)
					}
				}
			}
			if len(got) != len(want) || b.Len() != len(want) {
				t.Fatalf("round %d step %d: bucket holds %d slots (Len %d), want %d", round, step, len(got), b.Len(), len(want))
			}
			for i, s := range got {
				if s.Entry != want[i] || s.Free != want[i].Free || s.MinRate != want[i].MinRate {
					t.Fatalf("round %d step %d: slot %d is %s (rate %d, free %d), want %s (rate %d, free %d)",
						round, step, i, s.Entry.Name, s.MinRate, s.Free, want[i].Name, want[i].MinRate, want[i].Free)
				}
				if s.Free > b.MaxFree {
					t.Fatalf("round %d step %d: %s has %d free, above the bucket's bound %d", round, step, s.Entry.Name, s.Free, b.MaxFree)
				}
			}
		}
	}
}

// TestGroupIDsFreed: a peer that floods offers whose accelerator groups
// all differ does not grow the book's table of group descriptions past
// what it holds at once; IDs of withdrawn offers are reused, and matching
// decisions see each offer's own description under its ID.
func TestGroupIDsFreed(t *testing.T) {
	c := &clock{monday}
	b := New(c.now)
	doc := func(pool string, count int) *descriptor.Document {
		d := offerDoc(t, pool, 1, 1, monday.Add(time.Hour), "")
		d.Offer.Class.Accelerators = []descriptor.Accelerator{{Model: "H20", Count: count}}
		return d
	}
	for round := range 5 {
		var names []string
		counts := map[string]int{}
		for i := range 20 {
			count := 1 + round*20 + i // a description no offer had before
			d := doc(fmt.Sprintf("r%dp%d", round, i), count)
			if err := b.Put(d, nil, owner); err != nil {
				t.Fatal(err)
			}
			names = append(names, d.Offer.ComputeID.Name())
			counts[d.Offer.ComputeID.Name()] = count
		}
		b.View(func(v View) {
			if v.Groups() > 20 {
				t.Fatalf("round %d: %d group IDs for 20 offers", round, v.Groups())
			}
			for _, n := range names {
				e := v.b.entries[n]
				if g := v.Group(e.Group); g.Count != counts[n] || e.Accelerators[0].Count != counts[n] {
					t.Fatalf("round %d: %s has %d devices, its group ID %d describes %d, its entry %d", round, n, counts[n], e.Group, g.Count, e.Accelerators[0].Count)
				}
			}
		})
		for _, n := range names {
			b.Remove(n)
		}
	}
}

// BenchmarkPutOneBucket measures what adding an offer costs when every
// offer of the book falls in one bucket — a peer flooding one region and
// model — at 1,000, 10,000 and 100,000 offers held: a chunk bounds the
// slots an insert moves, so the cost per offer stays flat.
func BenchmarkPutOneBucket(b *testing.B) {
	for _, n := range []int{1_000, 10_000, 100_000} {
		b.Run(fmt.Sprintf("held=%d", n), func(b *testing.B) {
			c := &clock{monday}
			bk := New(c.now)
			docs := make([]*descriptor.Document, n+b.N)
			until := monday.Add(time.Hour)
			for i := range docs {
				// Rates spread so that inserts land all over the bucket.
				docs[i] = offerDoc(b, fmt.Sprintf("p%d", i), 1, 1, until, "")
				docs[i].Offer.Price.Rates.InstanceHour = descriptor.MustDecimal(fmt.Sprintf("%d.%04d", 1+(i*7919)%97, (i*104729)%10000))
			}
			for _, d := range docs[:n] {
				if err := bk.Put(d, nil, owner); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			for i := range b.N {
				if err := bk.Put(docs[n+i], nil, owner); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
