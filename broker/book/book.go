package book

import (
	"bytes"
	"container/heap"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"math/bits"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cinet/cinet/descriptor"
	"github.com/cinet/cinet/identity"
	"github.com/cinet/cinet/settlement/pricing"
)

// An Entry is one offer in the book. Its fields are set when it enters and
// never change; only its free quantity does, under the book's lock.
//
// The book does not keep the parsed offer: a million offers would not fit
// in memory. It keeps the signed document, what matching reads, and the
// fields callers ask for often; Offer parses the document again for the
// rest.
type Entry struct {
	Name       string               // the compute identifier's name, the book's key
	Owner      identity.PrincipalID // the broker the offer came from, which grants reservations
	ProvidedBy identity.PrincipalID // the offer's provider
	Sequence   uint64               // the offer's sequence number
	Quantity   int32                // instances offered, reserved or not
	// Accelerators are the offer's accelerator groups, shared with the
	// offers that describe them alike: read only.
	Accelerators []descriptor.Accelerator
	Attrs        *descriptor.OfferAttributes // what CEL expressions see; Quantity is the free quantity

	// Precomputed for matching: what a scan reads (Hot), the price
	// timeline, and the tie-break seed.
	Hot
	Prices pricing.Prices

	expiryIdx int32 // position in the expiry heap
	digest    [sha256.Size]byte
	packed    []byte             // the offer document in canonical JSON, deflated (pack)
	env       *identity.Envelope // the provider's signed offer, its payload left out when it is the document; nil for an unsigned local offer
	buckets   []*Bucket          // the index buckets holding a slot of the entry
}

// Offer parses the offer document again, for the rare reader that needs
// more of it than the entry's fields (about 30 µs). It fails only if the
// document no longer parses, which would mean the descriptor rules changed
// under a running book.
func (e *Entry) Offer() (*descriptor.Offer, error) {
	doc, err := e.Canonical()
	if err != nil {
		return nil, err
	}
	d, err := descriptor.ParseOffer(e.Name, doc)
	if err != nil {
		return nil, fmt.Errorf("book: offer %s no longer parses: %w", e.Name, err)
	}
	return d.Offer, nil
}

// Canonical returns the offer document in canonical JSON, whose digest is
// Digest.
func (e *Entry) Canonical() ([]byte, error) { return unpack(e.packed) }

// Signed reports whether the offer came signed by its provider: every
// offer but a broker's unsigned local ones.
func (e *Entry) Signed() bool { return e.env != nil }

// Envelope returns the provider's signed offer, nil for an unsigned local
// offer. The envelope is the caller's.
func (e *Entry) Envelope() (*identity.Envelope, error) {
	if e.env == nil {
		return nil, nil
	}
	env := *e.env
	if env.Payload == nil {
		doc, err := e.Canonical()
		if err != nil {
			return nil, err
		}
		env.Payload = doc
	}
	return &env, nil
}

// Hot is what a feasibility scan reads of an offer: sizes, validity, free
// quantity and small integer IDs (interned by the book) for the strings a
// job's rules compare and for its first accelerator group. Index buckets
// keep copies side by side (Slot), so that a scan reads consecutive
// memory; Free is kept in step with reservations in every copy.
type Hot struct {
	ValidFrom, ValidUntil int64 // Unix nanoseconds
	Memory, Disk          int64
	NameHash              uint64 // seeds deterministic tie-breaks
	pricing.CostBounds           // MinRate is the lowest hourly instance price in the week
	Free                  int32  // quantity minus active reservations; changes under the book's lock (Book.Free)
	CPUs                  int32
	Groups                int32 // accelerator groups
	Region                int32 // View.Regions()[Region] is the region's name
	Jurisdiction          int32 // View.Jurisdictions()[Jurisdiction]
	Currency              int32 // View.Currencies()[Currency]
	Provider              int32 // View.Providers()[Provider]
	// Group is the ID of the first accelerator group's description
	// (View.Group); offers that describe a group alike share it. -1 for
	// offers without accelerators.
	Group int32
}

// Digest returns the offer document's digest, "sha256:<hex>".
func (e *Entry) Digest() string { return "sha256:" + hex.EncodeToString(e.digest[:]) }

// setFree changes an entry's free quantity and every hot copy of it.
func (e *Entry) setFree(n int32) {
	e.Free = n
	e.Attrs.Quantity = int64(n) // expressions see the free quantity
	for _, b := range e.buckets {
		b.setFree(e)
	}
}

// CPUOnly is the accelerator-index key of offers without accelerators.
const CPUOnly = ""

// Book is a broker's offer book. It is safe for concurrent use: matching
// reads under a shared lock while offers and reservations change under an
// exclusive one.
type Book struct {
	now func() time.Time

	mu            sync.RWMutex
	entries       map[string]*Entry
	buckets       map[bucketKey]*Bucket
	byModel       map[modelKey][]*Bucket // a model's (or CPU size class's) buckets, one per region and jurisdiction
	regions       symbols
	jurisdictions symbols
	currencies    symbols
	providers     symbols
	groups        groupTable
	strs          strs
	stringMaps    stringMaps
	expiry        expiryHeap
	reservations  map[string]*Reservation
	resExpiry     []*Reservation // unordered; reservations are few
	nextRes       uint64
	resPrefix     string // tells this book's reservations from an earlier one's

	// gen counts the changes that can let a job be placed that could not
	// be before: an offer added or replaced, capacity freed, an offer
	// coming into its validity. nextValid is the earliest validFrom still
	// ahead (Unix ns), math.MaxInt64 when none is.
	gen       atomic.Uint64
	nextValid atomic.Int64

	// The largest rounding allowance of any offer ever held (Prices.Loss),
	// for bounds over offers not yet looked at.
	maxLossPerWeek, maxLossFixed int64
}

// New returns an empty book on the given clock (time.Now when nil).
func New(now func() time.Time) *Book {
	if now == nil {
		now = time.Now
	}
	b := &Book{
		now:          now,
		entries:      map[string]*Entry{},
		buckets:      map[bucketKey]*Bucket{},
		byModel:      map[modelKey][]*Bucket{},
		reservations: map[string]*Reservation{},
		resPrefix:    randomPrefix(),
	}
	b.nextValid.Store(math.MaxInt64)
	return b
}

// Generation returns a number that changes whenever the book changes in
// a way that can let a job be placed that could not be before: an offer
// added or replaced, capacity freed, an offer reaching its validFrom. A
// job that found no capacity need not be matched again while it stays
// the same. It is cheap: an atomic read, unless an offer has just become
// valid.
func (b *Book) Generation() uint64 {
	now := b.now().UnixNano()
	if now >= b.nextValid.Load() {
		b.mu.Lock()
		if now >= b.nextValid.Load() {
			next := int64(math.MaxInt64)
			for _, e := range b.entries {
				if e.ValidFrom > now {
					next = min(next, e.ValidFrom)
				}
			}
			b.nextValid.Store(next)
			b.gen.Add(1)
		}
		b.mu.Unlock()
	}
	return b.gen.Load()
}

// randomPrefix names a book's reservations: "r-" and 8 random hex digits,
// so that an ID kept from before a restart never names a reservation of
// the new book.
func randomPrefix() string {
	var b [4]byte
	rand.Read(b[:])
	return "r-" + hex.EncodeToString(b[:]) + "-"
}

// Errors Put returns; callers branch on them to decide whether a gossiped
// offer is worth forwarding.
var (
	ErrStale   = errors.New("book: offer is not newer than the one held")
	ErrExpired = errors.New("book: offer has expired")
	// ErrNotOwner: the offer names another broker as its owner than the
	// one it came from.
	ErrNotOwner = errors.New("book: offer is owned by another broker")
)

// Put adds an offer or replaces the one held for the same pool when its
// sequence is higher. The offer must already be verified: its signature,
// its provider's right to the pool, and its validity. owner is the broker
// it came from, which must be the broker the offer names: the owner of the
// capacity, which grants reservations on it.
func (b *Book) Put(doc *descriptor.Document, env *identity.Envelope, owner identity.PrincipalID) error {
	o := doc.Offer
	if o == nil {
		return fmt.Errorf("book: %s is not an offer", doc.Kind)
	}
	if o.Broker != owner {
		return fmt.Errorf("%w: %s names broker %s as its owner, not %s", ErrNotOwner, o.ComputeID.Name(), o.Broker, owner)
	}
	now := b.now()
	if !now.Before(o.ValidUntil) {
		return fmt.Errorf("%w: %s lapsed at %s", ErrExpired, o.ComputeID.Name(), o.ValidUntil.Format(time.RFC3339))
	}
	e := newEntry(doc, env, owner)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.sweepLocked(now)
	old, replacing := b.entries[e.Name]
	if replacing && e.Sequence <= old.Sequence {
		return fmt.Errorf("%w: %s has sequence %d, the book holds %d", ErrStale, e.Name, e.Sequence, old.Sequence)
	}
	b.holdShared(e, o)
	if replacing {
		// Reservations granted on the old offer still hold capacity.
		e.setFree(max(0, e.Free-(old.Quantity-old.Free)))
		b.removeLocked(old)
	}
	b.entries[e.Name] = e
	b.index(e)
	perWeek, fixed := e.Prices.Loss()
	b.maxLossPerWeek, b.maxLossFixed = max(b.maxLossPerWeek, perWeek), max(b.maxLossFixed, fixed)
	heap.Push(&b.expiry, e)
	if e.ValidFrom > now.UnixNano() && e.ValidFrom < b.nextValid.Load() {
		b.nextValid.Store(e.ValidFrom)
	}
	b.gen.Add(1)
	return nil
}

// holdShared gives an entry the book's IDs for its region, jurisdiction,
// currency, provider and first accelerator group, and points what it holds
// alike with other offers at the book's shared copies; removeLocked lets
// go of them.
func (b *Book) holdShared(e *Entry, o *descriptor.Offer) {
	a := e.Attrs
	e.Region = b.regions.hold(o.Region)
	e.Jurisdiction = b.jurisdictions.hold(o.Jurisdiction)
	e.Currency = b.currencies.hold(o.Price.Currency)
	e.Provider = b.providers.hold(a.Provider)
	a.Provider = b.providers.names[e.Provider]
	a.Region = b.regions.names[e.Region]
	a.Jurisdiction = b.jurisdictions.names[e.Jurisdiction]
	a.Price.Currency = b.currencies.names[e.Currency]
	a.Broker = b.strs.hold(a.Broker)
	a.Zone = b.strs.hold(a.Zone)
	a.Market = b.strs.hold(a.Market)
	a.CPU.Arch = b.strs.hold(a.CPU.Arch)
	a.CPU.Vendor = b.strs.hold(a.CPU.Vendor)
	a.Frameworks = b.stringMaps.hold(a.Frameworks)
	a.Labels = b.stringMaps.hold(a.Labels)
	e.Group = -1
	switch gs := o.Class.Accelerators; len(gs) {
	case 0:
	case 1:
		e.Group = b.groups.hold(&gs[0])
		e.Accelerators = b.groups.lists[e.Group]
	default:
		e.Group = b.groups.hold(&gs[0])
		e.Accelerators = gs
	}
	if e.Accelerators != nil {
		a.Accelerator.Model = e.Accelerators[0].Model
	}
}

// releaseShared lets go of what holdShared held.
func (b *Book) releaseShared(e *Entry) {
	a := e.Attrs
	for _, s := range []string{a.Broker, a.Zone, a.Market, a.CPU.Arch, a.CPU.Vendor} {
		b.strs.release(s)
	}
	b.stringMaps.release(a.Frameworks)
	b.stringMaps.release(a.Labels)
	if e.Group >= 0 {
		b.groups.release(e.Group)
	}
	b.regions.release(e.Region)
	b.jurisdictions.release(e.Jurisdiction)
	b.currencies.release(e.Currency)
	b.providers.release(e.Provider)
}

func newEntry(doc *descriptor.Document, env *identity.Envelope, owner identity.PrincipalID) *Entry {
	o := doc.Offer
	name := o.ComputeID.Name()
	h := fnv.New64a()
	h.Write([]byte(name))
	e := &Entry{
		Name:       name,
		Owner:      owner,
		ProvidedBy: o.Provider,
		Sequence:   o.Sequence,
		Quantity:   int32(o.Quantity),
		Attrs:      o.Attributes(),
		packed:     pack(doc.Canonical),
		Hot: Hot{
			CPUs:       int32(o.Class.CPU.Count),
			Groups:     int32(len(o.Class.Accelerators)),
			Memory:     int64(o.Class.Memory),
			Disk:       int64(o.Class.Disk),
			ValidFrom:  o.ValidFrom.UnixNano(),
			ValidUntil: o.ValidUntil.UnixNano(),
		},
	}
	e.Free = int32(o.Quantity)
	e.NameHash = h.Sum64()
	e.Prices.Init(o)
	e.CostBounds = e.Prices.Bounds()
	if d, err := hex.DecodeString(strings.TrimPrefix(doc.Digest, "sha256:")); err == nil {
		copy(e.digest[:], d)
	}
	if o.ValidFrom.IsZero() {
		e.ValidFrom = math.MinInt64
	}
	if e.Attrs.ComputeID == name {
		e.Attrs.ComputeID = name
	}
	if env != nil {
		kept := *env
		if bytes.Equal(env.Payload, doc.Canonical) {
			kept.Payload = nil // Envelope inflates it
		}
		e.env = &kept
	}
	return e
}

// modelKey keys the accelerator index: offers are only ever matched within
// one currency, so the currency is part of the key; CPU-only offers are
// further split by size class, so a job visits only instances big enough.
type modelKey struct {
	currency, model string
	cpuClass        int
}

// cpuClass is floor(log2(vCPUs)): instances with 8 to 15 vCPUs share class 3.
func cpuClass(cpus int) int { return bits.Len(uint(cpus)) - 1 }

// maxCPUClass bounds the classes CPUOnlyAtLeast visits: 2^30 vCPUs.
const maxCPUClass = 30

func (b *Book) index(e *Entry) {
	var models []string
	for _, a := range e.Accelerators {
		if !slices.Contains(models, a.Model) {
			models = append(models, a.Model)
		}
	}
	if len(models) == 0 {
		models = append(models, CPUOnly)
	}
	for _, m := range models {
		key := bucketKey{modelKey{currency: e.Attrs.Price.Currency, model: m}, e.Region, e.Jurisdiction}
		if m == CPUOnly {
			key.cpuClass = cpuClass(int(e.CPUs))
		}
		bk := b.buckets[key]
		if bk == nil {
			bk = &Bucket{key: key, Region: e.Region, Jurisdiction: e.Jurisdiction, Model: m}
			b.buckets[key] = bk
			b.byModel[key.modelKey] = append(b.byModel[key.modelKey], bk)
		}
		bk.add(e)
		e.buckets = append(e.buckets, bk)
	}
}

func (b *Book) removeLocked(e *Entry) {
	for _, bk := range e.buckets {
		bk.remove(e)
		if bk.n == 0 { // its region, model or currency may never come back
			delete(b.buckets, bk.key)
			list := slices.DeleteFunc(b.byModel[bk.key.modelKey], func(x *Bucket) bool { return x == bk })
			if len(list) == 0 {
				delete(b.byModel, bk.key.modelKey)
			} else {
				b.byModel[bk.key.modelKey] = list
			}
		}
	}
	e.buckets = nil
	b.releaseShared(e)
	delete(b.entries, e.Name)
	if e.expiryIdx >= 0 && int(e.expiryIdx) < len(b.expiry) && b.expiry[e.expiryIdx] == e {
		heap.Remove(&b.expiry, int(e.expiryIdx))
	}
}

// Remove withdraws the offer for a pool; it reports whether one was held.
func (b *Book) Remove(name string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	e, ok := b.entries[name]
	if ok {
		b.removeLocked(e)
	}
	return ok
}

// Sweep drops lapsed offers and reservations. Writers sweep as they go;
// a broker also calls Sweep on a timer so an idle book does not hold
// lapsed offers.
func (b *Book) Sweep() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.sweepLocked(b.now())
}

func (b *Book) sweepLocked(now time.Time) {
	for len(b.expiry) > 0 && now.UnixNano() >= b.expiry[0].ValidUntil {
		b.removeLocked(b.expiry[0])
	}
	kept := b.resExpiry[:0]
	for _, r := range b.resExpiry {
		if now.Before(r.Expires) {
			kept = append(kept, r)
			continue
		}
		b.releaseLocked(r)
	}
	clear(b.resExpiry[len(kept):])
	b.resExpiry = kept
}

// Len returns how many offers the book holds.
func (b *Book) Len() int {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return len(b.entries)
}

// Get returns the entry for a pool.
func (b *Book) Get(name string) (*Entry, bool) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	e, ok := b.entries[name]
	return e, ok
}

// Now returns the book's clock reading.
func (b *Book) Now() time.Time { return b.now() }

// A View is read access to the book for one matching decision; the book
// does not change while a View is in use.
type View struct{ b *Book }

// View runs fn with the book locked for reading.
func (b *Book) View(fn func(View)) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	fn(View{b})
}

// All calls fn for every offer, in no particular order, until fn returns
// false.
func (v View) All(fn func(*Entry) bool) {
	for _, e := range v.b.entries {
		if !fn(e) {
			return
		}
	}
}

// Len returns the number of offers.
func (v View) Len() int { return len(v.b.entries) }

// Buckets returns the buckets of offers priced in currency with an
// accelerator of the model, one per region and jurisdiction. The slice
// must not be modified or kept.
func (v View) Buckets(currency, model string) []*Bucket {
	return v.b.byModel[modelKey{currency: currency, model: model}]
}

// CPUBuckets returns the buckets of offers without accelerators priced in
// currency whose instances may have at least cpus vCPUs: whole size
// classes, so some offers may still be too small.
func (v View) CPUBuckets(currency string, cpus float64) []*Bucket {
	var out []*Bucket
	for c := cpuClass(int(cpus)); c <= maxCPUClass; c++ {
		out = append(out, v.b.byModel[modelKey{currency: currency, model: CPUOnly, cpuClass: c}]...)
	}
	return out
}

// Groups returns how many distinct accelerator group descriptions the
// book has interned: Hot.Group is below it.
func (v View) Groups() int { return len(v.b.groups.lists) }

// Group returns the accelerator group description with an ID.
func (v View) Group(id int32) *descriptor.Accelerator { return &v.b.groups.lists[id][0] }

// MaxLoss returns the largest rounding allowance (Prices.Loss) of any
// offer the book has held: a bound for offers a scan has not reached.
func (v View) MaxLoss() (perWeek, fixed int64) { return v.b.maxLossPerWeek, v.b.maxLossFixed }

// Regions returns every region the book has interned, indexed by the IDs
// entries carry ("" at an ID no entry holds). The slice must not be
// modified.
func (v View) Regions() []string { return v.b.regions.names }

// Jurisdictions returns the interned jurisdictions, indexed by ID.
func (v View) Jurisdictions() []string { return v.b.jurisdictions.names }

// Currencies returns the interned currencies, indexed by ID.
func (v View) Currencies() []string { return v.b.currencies.names }

// Providers returns the interned provider IDs, indexed by ID.
func (v View) Providers() []string { return v.b.providers.names }

// CurrencyID returns the ID of a currency, or -1 if no offer uses it.
func (v View) CurrencyID(code string) int32 { return v.b.currencies.lookup(code) }

// ProviderID returns the ID of a provider, or -1 if it has no offers.
func (v View) ProviderID(did string) int32 { return v.b.providers.lookup(did) }

// Free returns an entry's free quantity now. An entry's other fields never
// change, but Free changes with reservations: read it only through the
// book (or within View).
func (b *Book) Free(e *Entry) int {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return int(e.Free)
}

// Snapshot returns every entry, for anti-entropy and listing.
func (b *Book) Snapshot() []*Entry {
	b.mu.RLock()
	defer b.mu.RUnlock()
	out := make([]*Entry, 0, len(b.entries))
	for _, e := range b.entries {
		out = append(out, e)
	}
	return out
}

// expiryHeap orders entries by the end of their validity.
type expiryHeap []*Entry

func (h expiryHeap) Len() int { return len(h) }
func (h expiryHeap) Less(i, j int) bool {
	return h[i].ValidUntil < h[j].ValidUntil
}
func (h expiryHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].expiryIdx, h[j].expiryIdx = int32(i), int32(j)
}
func (h *expiryHeap) Push(x any) {
	e := x.(*Entry)
	e.expiryIdx = int32(len(*h))
	*h = append(*h, e)
}
func (h *expiryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	e.expiryIdx = -1
	return e
}

// symbols interns strings as small integers. An ID is freed when no entry
// holds it and reused later, so that a peer publishing ever different
// regions or providers cannot grow the table beyond the offers the book
// holds; IDs stay fixed while a View is in use, since changes wait for
// the book's lock. A freed ID's name is "".
type symbols struct {
	ids   map[string]int32
	names []string
	refs  []int32
	free  []int32
}

// hold returns name's ID, counting one more holder.
func (s *symbols) hold(name string) int32 {
	if id, ok := s.ids[name]; ok {
		s.refs[id]++
		return id
	}
	if s.ids == nil {
		s.ids = map[string]int32{}
	}
	var id int32
	if n := len(s.free); n > 0 {
		id, s.free = s.free[n-1], s.free[:n-1]
		s.names[id], s.refs[id] = name, 1
	} else {
		id = int32(len(s.names))
		s.names, s.refs = append(s.names, name), append(s.refs, 1)
	}
	s.ids[name] = id
	return id
}

// release counts one holder of id fewer, freeing it at none.
func (s *symbols) release(id int32) {
	if s.refs[id]--; s.refs[id] > 0 {
		return
	}
	delete(s.ids, s.names[id])
	s.names[id] = ""
	s.free = append(s.free, id)
}

func (s *symbols) lookup(name string) int32 {
	if id, ok := s.ids[name]; ok {
		return id
	}
	return -1
}
