package book

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

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
