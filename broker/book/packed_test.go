package book

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cinet/cinet/descriptor"
	"github.com/cinet/cinet/identity"
)

// TestEntryKeepsDocument: the book keeps an offer's document deflated and
// its envelope without the payload, yet gives back the very document, the
// offer it parses to, and an envelope whose signature still verifies.
func TestEntryKeepsDocument(t *testing.T) {
	key, err := identity.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	until := monday.Add(time.Hour)
	many := make([]string, 64)
	for i := range many {
		many[i] = fmt.Sprintf("k%03d: \"%x%s\"", i, i*7919, strings.Repeat("v", i%50))
	}
	cases := []struct {
		name, labels, class string
		signed              bool
	}{
		{"unsigned", "", "", false},
		{"signed", "", "", true},
		{"labels", `{tier: premium, name: "値 ✓ \"quoted\""}`, "", true},
		{"accelerators", "", `
  accelerators:
    - {model: H100, count: 8, frameworks: [{name: cuda, version: "12.4"}]}
    - {model: V100, count: 2}`, true},
		{"large", "{" + strings.Join(many, ", ") + "}", "", true},
	}
	c := &clock{monday}
	b := New(c.now)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			labels := ""
			if tc.labels != "" {
				labels = ", labels: " + tc.labels
			}
			src := fmt.Sprintf(`apiVersion: cinet/v1
kind: Offer
metadata: {name: %[1]s%[2]s}
computeId: ci:%[3]s/cn-east-1/a/%[1]s
provider: %[4]s
broker: %[4]s
region: cn-east-1
zone: a
jurisdiction: CN
class:
  cpu: {arch: x86_64, count: 8}
  memory: 32Gi%[5]s
quantity: 4
price:
  currency: CNY
  market: spot
  timezone: Asia/Shanghai
  rates: {instanceHour: "10"}
  tiers: [{name: night, start: "00:00", end: "08:00", rates: {instanceHour: "8"}}]
validUntil: %[6]s
sequence: 1
`, tc.name, labels, fingerprint, provider, tc.class, until.Format(time.RFC3339))
			d, err := descriptor.Parse(tc.name, []byte(src))
			if err != nil {
				t.Fatal(err)
			}
			var env *identity.Envelope
			if tc.signed {
				if env, err = identity.Seal(key, "application/vnd.cinet.offer+json", d.Canonical, identity.SealOptions{Expires: until, Seq: 7}); err != nil {
					t.Fatal(err)
				}
			}
			if err := b.Put(d, env, owner); err != nil {
				t.Fatal(err)
			}
			e, _ := b.Get(d.Offer.ComputeID.Name())
			if got, err := e.Canonical(); err != nil || !bytes.Equal(got, d.Canonical) {
				t.Fatalf("Canonical: %v\n got %s\nwant %s", err, got, d.Canonical)
			}
			if len(e.packed) >= len(d.Canonical) && tc.name != "large" {
				t.Errorf("kept %d bytes of a %d-byte document", len(e.packed), len(d.Canonical))
			}
			o, err := e.Offer()
			if err != nil || !reflect.DeepEqual(o, d.Offer) {
				t.Fatalf("Offer: %v\n got %+v\nwant %+v", err, o, d.Offer)
			}
			got, err := e.Envelope()
			if err != nil || e.Signed() != tc.signed || (got != nil) != tc.signed {
				t.Fatalf("Envelope: %v, %v, signed %v", got, err, e.Signed())
			}
			if !tc.signed {
				return
			}
			if !bytes.Equal(got.Encode(), env.Encode()) {
				t.Fatalf("Envelope encodes as\n%s\nnot\n%s", got.Encode(), env.Encode())
			}
			if err := got.Verify(identity.Verification{PayloadType: env.PayloadType, Signers: identity.AnySigner, Now: monday}); err != nil {
				t.Fatal(err)
			}
			got.Payload[0] = 'x' // the caller's copy
			if again, _ := e.Envelope(); !bytes.Equal(again.Payload, d.Canonical) {
				t.Fatal("changing a returned envelope changed the book's")
			}
		})
	}
}

// TestSharedValuesReleased: the values the book shares among offers —
// regions, jurisdictions, currencies, providers, zones, markets, processor
// names, labels, frameworks, group descriptions — and the index buckets of
// regions and models leave the book with the last offer holding them, also
// when offers are replaced or refused as stale, so that a peer publishing
// ever different values cannot grow the book beyond the offers it holds.
func TestSharedValuesReleased(t *testing.T) {
	c := &clock{monday}
	b := New(c.now)
	until := monday.Add(time.Hour)
	for round := range 3 {
		for i := range 30 {
			pool := fmt.Sprintf("p%d", i)
			d := offerDoc(t, pool, round+1, 4, until, "")
			d.Offer.Metadata.Labels = map[string]string{"round": fmt.Sprint(round), "offer": pool}
			d.Offer.Zone = fmt.Sprintf("zone-%d-%d", round, i)
			d.Offer.Class.CPU.Vendor = fmt.Sprintf("vendor-%d-%d", round, i)
			d.Offer.Class.Accelerators = []descriptor.Accelerator{{Model: fmt.Sprintf("M-%d-%d", round, i), Count: 1 + round*30 + i}}
			d.Offer.Region = fmt.Sprintf("r-%d-%d", round, i)
			d.Offer.Jurisdiction = fmt.Sprintf("J%d%d", round, i)
			d.Offer.Price.Currency = fmt.Sprintf("C%d%d", round, i)
			key, err := identity.GenerateKey(rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			d.Offer.Provider = key.ID()
			if err := b.Put(d, nil, owner); err != nil {
				t.Fatal(err)
			}
			// The same sequence again is refused and must hold nothing.
			if err := b.Put(d, nil, owner); err == nil {
				t.Fatal("a stale offer was accepted")
			}
		}
		// 30 zones and vendors, the broker, the arch, the market: 63
		// strings; 30 label maps and one empty frameworks map; 30 group
		// descriptions.
		if n, m, g := b.strs.len(), b.stringMaps.len(), len(b.groups.ids); n != 63 || m != 31 || g != 30 {
			t.Fatalf("round %d: %d strings, %d maps, %d groups shared; want 63, 31, 30", round, n, m, g)
		}
		for _, tab := range []*symbols{&b.regions, &b.jurisdictions, &b.currencies, &b.providers} {
			// A replacing offer takes its ID before the one replaced lets
			// go: one ID more than names, reused round after round.
			if len(tab.ids) != 30 || len(tab.names) > 31 {
				t.Fatalf("round %d: a table holds %d names under %d IDs, want 30 under at most 31", round, len(tab.ids), len(tab.names))
			}
		}
		if len(b.buckets) != 30 || len(b.byModel) != 30 {
			t.Fatalf("round %d: %d buckets under %d model keys, want 30 and 30", round, len(b.buckets), len(b.byModel))
		}
	}
	for i := range 30 {
		b.Remove(fmt.Sprintf("ci:%s/cn-east-1/a/p%d", fingerprint, i))
	}
	if n, m, g := b.strs.len(), b.stringMaps.len(), len(b.groups.ids); n != 0 || m != 0 || g != 0 || b.Len() != 0 {
		t.Fatalf("with the book empty it shares %d strings, %d maps, %d groups", n, m, g)
	}
	for _, tab := range []*symbols{&b.regions, &b.jurisdictions, &b.currencies, &b.providers} {
		if len(tab.ids) != 0 || slices.ContainsFunc(tab.names, func(n string) bool { return n != "" }) {
			t.Fatalf("with the book empty a table still holds %v", tab.names)
		}
	}
	if len(b.buckets) != 0 || len(b.byModel) != 0 {
		t.Fatalf("with the book empty it keeps %d buckets under %d model keys", len(b.buckets), len(b.byModel))
	}
}

// TestConcurrentChurnAndReaders: while writers put, replace and withdraw
// offers whose regions, labels and groups come and go (freeing and
// reusing IDs and dropping buckets), readers walk the index, look IDs up
// and read entries' documents. Run with -race: every reader sees a
// consistent book, and every entry it meets gives back its own document.
func TestConcurrentChurnAndReaders(t *testing.T) {
	c := &clock{monday}
	b := New(c.now)
	until := monday.Add(time.Hour)
	docs := make([][]*descriptor.Document, 4) // by writer, then round
	for w := range docs {
		for i := range 40 {
			region := fmt.Sprintf("r%d-%d", w, i) // each replacement moves the pool to a region of its own
			d := offerDoc(t, fmt.Sprintf("w%dp%d", w, i%10), 1+i/10, 4, until, "")
			d.Offer.Region = region
			d.Offer.Metadata.Labels = map[string]string{"round": fmt.Sprint(i / 10)}
			d.Offer.Class.Accelerators = []descriptor.Accelerator{{Model: "H20", Count: 1 + i%3}}
			docs[w] = append(docs[w], d)
		}
	}
	errs := make(chan error, 8)
	stop := make(chan struct{})
	for w := range docs {
		go func() {
			for i, d := range docs[w] {
				if err := b.Put(d, nil, owner); err != nil {
					errs <- err
					return
				}
				if i%7 == 6 {
					b.Remove(d.Offer.ComputeID.Name())
				}
			}
			errs <- nil
		}()
	}
	for range 4 {
		go func() {
			for {
				select {
				case <-stop:
					errs <- nil
					return
				default:
				}
				var seen []*Entry
				var bad error
				b.View(func(v View) { seen, bad = readIndex(v) })
				if bad != nil {
					errs <- bad
					return
				}
				for _, e := range seen[:min(len(seen), 3)] {
					o, err := e.Offer()
					if err != nil || o.ComputeID.Name() != e.Name {
						errs <- fmt.Errorf("%s: parsed again as %v, %v", e.Name, o, err)
						return
					}
				}
			}
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// readIndex walks the H20 buckets, checking each slot against its entry.
func readIndex(v View) ([]*Entry, error) {
	var seen []*Entry
	regions := v.Regions()
	for _, bk := range v.Buckets("CNY", "H20") {
		if bk.Len() == 0 || regions[bk.Region] == "" {
			return nil, fmt.Errorf("a bucket of %d offers in region ID %d (%q)", bk.Len(), bk.Region, regions[bk.Region])
		}
		for _, ch := range bk.Chunks() {
			for _, s := range ch.Slots {
				if g := v.Group(s.Group); g.Model != "H20" {
					return nil, fmt.Errorf("%s: group %d is a %s", s.Entry.Name, s.Group, g.Model)
				}
				if regions[s.Region] != s.Entry.Attrs.Region {
					return nil, fmt.Errorf("%s: slot region %q, entry %q", s.Entry.Name, regions[s.Region], s.Entry.Attrs.Region)
				}
				seen = append(seen, s.Entry)
			}
		}
	}
	return seen, nil
}
