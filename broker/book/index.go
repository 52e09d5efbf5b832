package book

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/cinet/cinet/descriptor"
)

// The book's index splits offers into buckets by what no job can trade
// away: the currency they are priced in, the accelerator model (or, for
// offers without accelerators, the size class of their vCPU count), the
// region and the jurisdiction. A job's placement rules then keep or skip
// whole buckets, and within a bucket offers lie in order of their lowest
// hourly rate, each with a copy of its hot data, so that a scan reads
// consecutive memory and a cost decision can stop early.

// A Slot is one offer in a bucket: a copy of its hot data beside it.
type Slot struct {
	Hot
	Entry *Entry
}

// chunkMax bounds a chunk of a bucket: inserting or removing an offer
// moves at most this many slots, however large the bucket.
const chunkMax = 128

// A Chunk is a run of a bucket's slots, consecutive in memory, with
// bounds on what its offers' cost bounds need: a scan can pass over a
// whole chunk that cannot hold an offer it wants.
type Chunk struct {
	Slots        []Slot
	MaxRate      descriptor.Nanos // the highest MaxRate of its slots
	MaxIncrement int64            // the longest minimum increment of its slots
}

// summarize recomputes the chunk's bounds.
func (c *Chunk) summarize() {
	c.MaxRate, c.MaxIncrement = 0, 0
	for i := range c.Slots {
		c.MaxRate, c.MaxIncrement = max(c.MaxRate, c.Slots[i].MaxRate), max(c.MaxIncrement, c.Slots[i].Increment)
	}
}

// A Bucket holds the offers of one currency, model (or CPU size class),
// region and jurisdiction, ordered by lowest hourly rate, then name, in
// chunks of at most chunkMax slots. Read it only within a View.
type Bucket struct {
	chunks []Chunk // each sorted, none empty; chunk i's slots precede chunk i+1's
	n      int
	key    bucketKey

	Region, Jurisdiction int32  // the book's IDs (View.Regions, View.Jurisdictions)
	Model                string // accelerator model; CPUOnly for offers without

	// Upper bounds on what any offer in the bucket has: the largest ever
	// held (they do not fall when offers leave, which only loosens them).
	MaxCPUs, MaxFree, MaxGroups int32
	MaxMemory, MaxDisk          int64
}

// Len returns how many offers the bucket holds.
func (b *Bucket) Len() int { return b.n }

// Chunks returns the bucket's slots in rate order, as runs of consecutive
// memory. They must not be modified or kept past the View.
func (b *Bucket) Chunks() []Chunk { return b.chunks }

// MinRate is the lowest hourly rate of any offer in the bucket; false when
// the bucket is empty.
func (b *Bucket) MinRate() (descriptor.Nanos, bool) {
	if b.n == 0 {
		return 0, false
	}
	return b.chunks[0].Slots[0].MinRate, true
}

// order compares a slot with the key (rate, name): rate first, then name.
func order(s *Slot, rate descriptor.Nanos, name string) int {
	if s.MinRate != rate {
		if s.MinRate < rate {
			return -1
		}
		return 1
	}
	return strings.Compare(s.Entry.Name, name)
}

// find returns where the key sits or would go: the chunk whose last slot
// is the first at or after it, and the position within that chunk.
func (b *Bucket) find(rate descriptor.Nanos, name string) (ci, si int, found bool) {
	ci = sort.Search(len(b.chunks), func(i int) bool {
		c := b.chunks[i].Slots
		return order(&c[len(c)-1], rate, name) >= 0
	})
	if ci == len(b.chunks) {
		return ci, 0, false
	}
	si, found = slices.BinarySearchFunc(b.chunks[ci].Slots, struct{}{}, func(s Slot, _ struct{}) int { return order(&s, rate, name) })
	return ci, si, found
}

func (b *Bucket) add(e *Entry) {
	s := Slot{Hot: e.Hot, Entry: e}
	b.MaxCPUs, b.MaxFree, b.MaxGroups = max(b.MaxCPUs, e.CPUs), max(b.MaxFree, e.Free), max(b.MaxGroups, e.Groups)
	b.MaxMemory, b.MaxDisk = max(b.MaxMemory, e.Memory), max(b.MaxDisk, e.Disk)
	b.n++
	if len(b.chunks) == 0 {
		b.chunks = append(b.chunks, Chunk{Slots: []Slot{s}, MaxRate: s.MaxRate, MaxIncrement: s.Increment}) // grows as it fills: small buckets stay small
		return
	}
	ci, si, _ := b.find(e.MinRate, e.Name)
	if ci == len(b.chunks) { // after every slot: the end of the last chunk
		ci--
		si = len(b.chunks[ci].Slots)
	}
	if c := b.chunks[ci].Slots; len(c) == chunkMax {
		// Split the full chunk in two halves, each with room to grow.
		half := chunkMax / 2
		upper := make([]Slot, chunkMax-half, chunkMax-half+chunkMax/4)
		copy(upper, c[half:])
		clear(c[half:])
		b.chunks[ci].Slots = c[:half]
		b.chunks[ci].summarize()
		b.chunks = slices.Insert(b.chunks, ci+1, Chunk{Slots: upper})
		b.chunks[ci+1].summarize()
		if si > half {
			ci, si = ci+1, si-half
		}
	}
	c := &b.chunks[ci]
	c.Slots = slices.Insert(c.Slots, si, s)
	c.MaxRate, c.MaxIncrement = max(c.MaxRate, s.MaxRate), max(c.MaxIncrement, s.Increment)
}

func (b *Bucket) remove(e *Entry) {
	ci, si, found := b.find(e.MinRate, e.Name)
	if !found {
		return
	}
	b.n--
	c := &b.chunks[ci]
	c.Slots = slices.Delete(c.Slots, si, si+1)
	if len(c.Slots) == 0 {
		b.chunks = slices.Delete(b.chunks, ci, ci+1)
		return
	}
	c.summarize()
}

// setFree updates the copy of e's free quantity.
func (b *Bucket) setFree(e *Entry) {
	b.MaxFree = max(b.MaxFree, e.Free)
	if ci, si, found := b.find(e.MinRate, e.Name); found {
		b.chunks[ci].Slots[si].Free = e.Free
	}
}

// bucketKey names a bucket.
type bucketKey struct {
	modelKey
	region, jurisdiction int32
}

// groupTable interns accelerator group descriptions: offers whose first
// groups are alike in every field share an ID, so that a matching decision
// judges each description once. An ID is freed when no offer holds it and
// reused later; IDs stay fixed while a View is in use, since changes wait
// for the book's lock.
type groupTable struct {
	ids   map[string]int32
	lists [][]descriptor.Accelerator // by ID, the description alone; nil when free
	keys  []string
	refs  []int32
	free  []int32
}

// hold returns the ID of a's description, counting one more holder.
func (t *groupTable) hold(a *descriptor.Accelerator) int32 {
	key := groupKey(a)
	if id, ok := t.ids[key]; ok {
		t.refs[id]++
		return id
	}
	if t.ids == nil {
		t.ids = map[string]int32{}
	}
	spec := []descriptor.Accelerator{*a} // a copy: the table must not keep the offer alive
	spec[0].Frameworks = slices.Clone(a.Frameworks)
	var id int32
	if n := len(t.free); n > 0 {
		id, t.free = t.free[n-1], t.free[:n-1]
		t.lists[id], t.keys[id], t.refs[id] = spec, key, 1
	} else {
		id = int32(len(t.lists))
		t.lists, t.keys, t.refs = append(t.lists, spec), append(t.keys, key), append(t.refs, 1)
	}
	t.ids[key] = id
	return id
}

// release counts one holder fewer of an ID, freeing it at none.
func (t *groupTable) release(id int32) {
	if t.refs[id]--; t.refs[id] > 0 {
		return
	}
	delete(t.ids, t.keys[id])
	t.lists[id], t.keys[id] = nil, ""
	t.free = append(t.free, id)
}

// groupKey is an accelerator group's description as a string.
func groupKey(a *descriptor.Accelerator) string {
	b, err := json.Marshal(a)
	if err != nil { // cannot happen for a parsed offer; keep it apart
		return fmt.Sprintf("%p", a)
	}
	return string(b)
}
