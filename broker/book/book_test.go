package book

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cinet/cinet/descriptor"
	"github.com/cinet/cinet/identity"
	"github.com/cinet/cinet/settlement/pricing"
)

// clock is an injectable test clock.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

// A Monday, 06:00 in Shanghai.
var monday = time.Date(2026, 11, 29, 22, 0, 0, 0, time.UTC)

const provider = "did:key:z6Mks48eSrUKafTKbm8Cvsentvn9xaxXwge3E3xPv11Bwik2"
const fingerprint = "4xudxs76i6fhwzlfejczdta7pa"

// offerDoc builds an offer for pool with the given sequence, quantity,
// validity end and extra YAML.
func offerDoc(t testing.TB, pool string, seq, quantity int, until time.Time, extra string) *descriptor.Document {
	t.Helper()
	src := fmt.Sprintf(`apiVersion: cinet/v1
kind: Offer
metadata: {name: %s}
computeId: ci:%s/cn-east-1/a/%s
provider: %s
broker: %s
region: cn-east-1
zone: a
jurisdiction: CN
class:
  cpu: {arch: x86_64, count: 8}
  memory: 32Gi
quantity: %d
price:
  currency: CNY
  timezone: Asia/Shanghai
  rates: {instanceHour: "10"}
%s
validUntil: %s
sequence: %d
`, pool, fingerprint, pool, provider, owner, quantity, extra, until.Format(time.RFC3339), seq)
	d, err := descriptor.Parse(pool, []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

var owner = identity.MustParsePrincipalID(provider)

// TestPutChecksOwner: an offer enters the book only from the broker it
// names as its owner, so that a peer cannot claim another's capacity.
func TestPutChecksOwner(t *testing.T) {
	b := New((&clock{monday}).now)
	other := identity.MustParsePrincipalID("did:key:z6MkvhVViYBE4mnmVqqiJiPVFfynt7nAe9TXn4iAnkJEVNBg")
	err := b.Put(offerDoc(t, "p1", 1, 4, monday.Add(time.Hour), ""), nil, other)
	if !errors.Is(err, ErrNotOwner) || !strings.Contains(err.Error(), other.String()) || b.Len() != 0 {
		t.Fatalf("Put from a broker the offer does not name: %v (book holds %d)", err, b.Len())
	}
}

func TestPutReplaceAndStale(t *testing.T) {
	c := &clock{monday}
	b := New(c.now)
	until := monday.Add(time.Hour)
	if err := b.Put(offerDoc(t, "p1", 2, 4, until, ""), nil, owner); err != nil {
		t.Fatal(err)
	}
	for _, seq := range []int{1, 2} {
		if err := b.Put(offerDoc(t, "p1", seq, 9, until, ""), nil, owner); !errors.Is(err, ErrStale) {
			t.Fatalf("seq %d: %v, want ErrStale", seq, err)
		}
	}
	if err := b.Put(offerDoc(t, "p1", 3, 9, until, ""), nil, owner); err != nil {
		t.Fatal(err)
	}
	e, _ := b.Get("ci:" + fingerprint + "/cn-east-1/a/p1")
	if e.Sequence != 3 || int(e.Free) != 9 || b.Len() != 1 {
		t.Fatalf("after replace: seq %d free %d len %d", e.Sequence, int(e.Free), b.Len())
	}
	b.View(func(v View) {
		if n := slotsIn(v.CPUBuckets("CNY", 8)); n != 1 {
			t.Fatalf("CPU index holds %d entries, want 1", n)
		}
	})
	if err := b.Put(offerDoc(t, "p2", 1, 1, monday, ""), nil, owner); !errors.Is(err, ErrExpired) {
		t.Fatalf("put of a lapsed offer: %v", err)
	}
}

func TestExpiryOnInjectedClock(t *testing.T) {
	c := &clock{monday}
	b := New(c.now)
	for i := range 10 {
		if err := b.Put(offerDoc(t, fmt.Sprintf("p%d", i), 1, 1, monday.Add(time.Duration(i+1)*time.Minute), ""), nil, owner); err != nil {
			t.Fatal(err)
		}
	}
	c.t = monday.Add(5*time.Minute + time.Second)
	b.Sweep()
	if b.Len() != 5 {
		t.Fatalf("after 5 minutes %d offers remain, want 5", b.Len())
	}
	b.View(func(v View) {
		if n := slotsIn(v.CPUBuckets("CNY", 1)); n != 5 {
			t.Fatalf("indexes hold %d slots, want 5", n)
		}
	})
	c.t = monday.Add(time.Hour)
	b.Sweep()
	if b.Len() != 0 {
		t.Fatalf("%d offers outlived their validity", b.Len())
	}
}

func TestReservations(t *testing.T) {
	c := &clock{monday}
	b := New(c.now)
	name := "ci:" + fingerprint + "/cn-east-1/a/p1"
	if err := b.Put(offerDoc(t, "p1", 1, 4, monday.Add(time.Hour), ""), nil, owner); err != nil {
		t.Fatal(err)
	}
	r1, err := b.Reserve(name, 3, "job-1", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Reserve(name, 2, "job-2", time.Minute); !errors.Is(err, ErrInsufficient) {
		t.Fatalf("over-allocation: %v", err)
	}
	if _, err := b.Reserve("ci:nope", 1, "job-2", time.Minute); !errors.Is(err, ErrUnknownOffer) {
		t.Fatalf("unknown offer: %v", err)
	}
	// A newer announcement keeps the reserved instances held.
	if err := b.Put(offerDoc(t, "p1", 2, 4, monday.Add(time.Hour), ""), nil, owner); err != nil {
		t.Fatal(err)
	}
	if e, _ := b.Get(name); int(e.Free) != 1 {
		t.Fatalf("free after re-announcement %d, want 1", int(e.Free))
	}
	if err := b.Release(r1.ID); err != nil {
		t.Fatal(err)
	}
	if err := b.Release(r1.ID); !errors.Is(err, ErrNoReservation) {
		t.Fatalf("double release: %v", err)
	}
	if e, _ := b.Get(name); int(e.Free) != 4 {
		t.Fatalf("free after release %d, want 4", int(e.Free))
	}
	if _, err := b.Reserve(name, 4, "job-3", time.Minute); err != nil {
		t.Fatal(err)
	}
	c.t = monday.Add(2 * time.Minute)
	b.Sweep()
	if e, _ := b.Get(name); int(e.Free) != 4 {
		t.Fatalf("an expired reservation still holds: free %d", int(e.Free))
	}
}

// TestConcurrentReservationsNeverOverAllocate races many reservers.
func TestConcurrentReservationsNeverOverAllocate(t *testing.T) {
	b := New((&clock{monday}).now)
	name := "ci:" + fingerprint + "/cn-east-1/a/p1"
	if err := b.Put(offerDoc(t, "p1", 1, 10, monday.Add(time.Hour), ""), nil, owner); err != nil {
		t.Fatal(err)
	}
	granted := make(chan int, 100)
	done := make(chan struct{})
	for i := range 100 {
		go func() {
			defer func() { done <- struct{}{} }()
			if _, err := b.Reserve(name, 1+i%3, "j", time.Minute); err == nil {
				granted <- 1 + i%3
			}
		}()
	}
	for range 100 {
		<-done
	}
	close(granted)
	total := 0
	for n := range granted {
		total += n
	}
	if total > 10 {
		t.Fatalf("granted %d instances of 10", total)
	}
	if e, _ := b.Get(name); int(e.Free) != 10-total {
		t.Fatalf("free %d after granting %d", int(e.Free), total)
	}
}

func TestEstimate(t *testing.T) {
	night := `  tiers:
    - {name: night, start: "22:00", end: "06:00", rates: {instanceHour: "4"}}
    - {name: weekend, days: [sat, sun], start: "06:00", end: "22:00", rates: {instanceHour: "7"}}`
	d := offerDoc(t, "p1", 1, 1, monday.Add(200*time.Hour), night)
	tl := pricing.NewPrices(d.Offer)
	if tl.Min != 4*1_000_000_000 || tl.Max != 10*1_000_000_000 {
		t.Fatalf("min %s max %s", tl.Min.Decimal(), tl.Max.Decimal())
	}
	sh, _ := time.LoadLocation("Asia/Shanghai")
	at := func(day, hour, minute int) time.Time { return time.Date(2026, 11, 30+day, hour, minute, 0, 0, sh) } // Monday 30 Nov
	for _, tc := range []struct {
		name  string
		start time.Time
		d     time.Duration
		total string
		peak  string
	}{
		{"day only", at(0, 9, 0), 2 * time.Hour, "20", "10"},
		{"night only", at(0, 23, 0), 2 * time.Hour, "8", "4"},
		{"across 06:00", at(0, 5, 0), 2 * time.Hour, "14", "10"},
		{"across 22:00 mid-minute", at(0, 21, 30), time.Hour, "7", "10"},
		{"Friday night into Saturday", at(4, 20, 0), 12 * time.Hour, "66", "10"}, // 2h×10 + 8h×4 + 2h×7
		{"whole week", at(0, 0, 0), 7 * 24 * time.Hour, "1248", "10"},            // 56h×4 + 80h×10 + 32h×7
		{"one second", at(0, 9, 0), time.Second, "0.002777778", "10"},
		{"half a second", at(0, 9, 0), 500 * time.Millisecond, "0.001388889", "10"},
		{"1.5 s", at(0, 9, 0), 1500 * time.Millisecond, "0.004166667", "10"},
		{"half a second each side of 22:00", at(0, 21, 59).Add(59500 * time.Millisecond), time.Second, "0.001944445", "10"}, // 0.5 s×10 + 0.5 s×4, each rounded
	} {
		total, peak := tl.Estimate(tc.start, tc.d, 1)
		if total.Decimal() != tc.total || peak.Decimal() != tc.peak {
			t.Errorf("%s: cost %s peak %s, want %s and %s", tc.name, total.Decimal(), peak.Decimal(), tc.total, tc.peak)
		}
	}
}

// TestGeneration: the generation moves on exactly when the book changes
// in a way that can help a job that found no capacity.
func TestGeneration(t *testing.T) {
	c := &clock{monday}
	b := New(c.now)
	g := b.Generation()
	step := func(what string, change func(), moves bool) {
		t.Helper()
		change()
		now := b.Generation()
		if (now != g) != moves {
			t.Fatalf("%s: generation %d → %d, want moved=%v", what, g, now, moves)
		}
		g = now
	}
	step("nothing", func() {}, false)
	d := offerDoc(t, "p1", 1, 2, monday.Add(48*time.Hour), "")
	step("an offer added", func() { mustPut(t, b, d) }, true)
	var r Reservation
	step("capacity reserved", func() {
		var err error
		if r, err = b.Reserve("ci:"+fingerprint+"/cn-east-1/a/p1", 1, "h", time.Hour); err != nil {
			t.Fatal(err)
		}
	}, false)
	step("capacity released", func() { b.Release(r.ID) }, true)
	step("reserved again", func() { b.Reserve("ci:"+fingerprint+"/cn-east-1/a/p1", 2, "h", time.Minute) }, false)
	step("the reservation lapses", func() { c.t = c.t.Add(2 * time.Minute); b.Sweep() }, true)
	later := offerDoc(t, "p2", 1, 1, monday.Add(48*time.Hour), "validFrom: "+c.t.Add(time.Hour).Format(time.RFC3339))
	step("an offer valid later added", func() { mustPut(t, b, later) }, true)
	step("time passes short of its validFrom", func() { c.t = c.t.Add(59 * time.Minute) }, false)
	step("its validFrom comes", func() { c.t = c.t.Add(time.Minute) }, true)
	step("nothing more", func() { c.t = c.t.Add(time.Hour) }, false)
	step("an offer withdrawn", func() { b.Remove("ci:" + fingerprint + "/cn-east-1/a/p2") }, false)
}

func mustPut(t *testing.T, b *Book, d *descriptor.Document) {
	t.Helper()
	if err := b.Put(d, nil, owner); err != nil {
		t.Fatal(err)
	}
}

// TestConfirm: a lease confirmed for a placement keeps its instances past
// the lease's end; one that ran out, or that the check refuses, is not
// confirmed and holds nothing.
func TestConfirm(t *testing.T) {
	c := &clock{monday}
	b := New(c.now)
	name := "ci:" + fingerprint + "/cn-east-1/a/p1"
	if err := b.Put(offerDoc(t, "p1", 1, 4, monday.Add(48*time.Hour), ""), nil, owner); err != nil {
		t.Fatal(err)
	}
	lease, err := b.Reserve(name, 2, "peer j-1", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	refused := errors.New("not yours")
	if _, err := b.Confirm(lease.ID, func(Reservation) error { return refused }, "x", time.Hour); !errors.Is(err, refused) {
		t.Fatalf("a refused check confirmed: %v", err)
	}
	var seen Reservation
	r, err := b.Confirm(lease.ID, func(r Reservation) error { seen = r; return nil }, "placement j-1-1", 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if seen.Holder != "peer j-1" || r.Holder != "placement j-1-1" || !r.Expires.Equal(monday.Add(24*time.Hour)) {
		t.Fatalf("check saw %+v; confirmed %+v", seen, r)
	}
	c.t = monday.Add(time.Hour)
	b.Sweep()
	if e, _ := b.Get(name); int(e.Free) != 2 {
		t.Fatalf("a confirmed reservation lapsed with its lease: free %d, want 2", int(e.Free))
	}
	other, err := b.Reserve(name, 2, "peer j-2", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	c.t = c.t.Add(2 * time.Minute)
	if _, err := b.Confirm(other.ID, func(Reservation) error { return nil }, "late", time.Hour); !errors.Is(err, ErrNoReservation) {
		t.Fatalf("a lapsed lease was confirmed: %v", err)
	}
	if e, _ := b.Get(name); int(e.Free) != 2 {
		t.Fatalf("free %d after the lapsed lease, want 2", int(e.Free))
	}
}

// slotsIn counts the slots of buckets, chunk by chunk.
func slotsIn(bs []*Bucket) int {
	n := 0
	for _, b := range bs {
		for _, c := range b.Chunks() {
			n += len(c.Slots)
		}
	}
	return n
}
