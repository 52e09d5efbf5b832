package settlement

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/gowebpki/jcs"

	"github.com/cinet/cinet/identity"
	"github.com/cinet/cinet/identity/canonjson"
)

// assertCanonical fails unless out is what the RFC 8785 canonicalizer
// makes of it.
func assertCanonical(t testing.TB, name string, out []byte) {
	t.Helper()
	want, err := jcs.Transform(out)
	if err != nil {
		t.Fatalf("%s: %v\n%s", name, err, out)
	}
	if !bytes.Equal(out, want) {
		t.Fatalf("%s is not canonical:\n got %s\nwant %s", name, out, want)
	}
}

// TestEntriesAreCanonical: every record and log entry the settler writes
// is RFC 8785 canonical, on the direct path (plain ASCII) and the fallback
// (non-ASCII, control characters, large numbers).
func TestEntriesAreCanonical(t *testing.T) {
	doc := offerDoc(t, flatPrice)
	full := usage(doc, "pl-1", t0, time.Hour, m(InstanceSeconds, "7200"), gpu("25000.5"), m(TokensOut, "0"))
	odd := *full
	odd.Job = "job-é\u2028\x01<&>\"\\u"
	big := *full
	big.Sequence = 1 << 60
	for name, r := range map[string]*UsageRecord{"full": full, "odd strings": &odd, "large sequence": &big} {
		c, err := r.Canonical()
		if err != nil {
			t.Fatal(err)
		}
		assertCanonical(t, "record "+name, c)
	}

	env, err := SealRecord(execKey, full)
	if err != nil {
		t.Fatal(err)
	}
	e, err := recordEntry(env)
	if err != nil {
		t.Fatal(err)
	}
	assertCanonical(t, "usage-record entry", e)

	for _, detail := range []string{"plain", "period 2026-11-30T01:00:00Z–2026-11-30T02:00:00Z overlaps", "ctl\x7f\t\n", `back\slash "quoted" \u0041`} {
		for _, rec := range []RecordID{"", "sha256:00"} {
			e, err := refusalEntry(&Refusal{Digest: "sha256:ab", Record: rec, Reason: ReasonOverlappingPeriod, Detail: detail, ReceivedAt: t0.Add(time.Nanosecond)})
			if err != nil {
				t.Fatal(err)
			}
			assertCanonical(t, "refusal entry", e)
		}
	}

	rating, err := Rate(full, doc.Offer)
	if err != nil {
		t.Fatal(err)
	}
	local := *full
	local.HomeBroker = execKey.ID()
	for name, c := range map[string]struct {
		r    *UsageRecord
		self identity.PrincipalID
	}{
		"home":      {full, homeKey.ID()},
		"executing": {full, execKey.ID()},
		"local":     {&local, execKey.ID()},
	} {
		tx, err := post(c.r, "sha256:00", rating, c.self, t0)
		if err != nil {
			t.Fatal(err)
		}
		e, err := transactionEntry(tx)
		if err != nil {
			t.Fatal(err)
		}
		assertCanonical(t, "transaction entry "+name, e)
		if got := strings.Count(string(e), `"account":`); got != 3 {
			t.Errorf("transaction entry %s has %d lines, want one per account (3): %s", name, got, e)
		}
	}
}

// FuzzDecodeRecord: whatever DecodeRecord accepts is canonical JSON that
// encodes back to itself, and nothing it accepts makes it panic.
func FuzzDecodeRecord(f *testing.F) {
	doc := offerDoc(f, flatPrice)
	r := usage(doc, "pl-1", t0, time.Hour, m(InstanceSeconds, "7200"), gpu("25000.5"))
	c, err := r.Canonical()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(c)
	f.Add([]byte(`{}`))
	f.Add(bytes.Replace(c, []byte(`"job":"job-pl-1"`), []byte(`"job":"j\u00e9"`), 1))
	f.Add(bytes.Replace(c, []byte(`"sequence":1`), []byte(`"sequence":9007199254740993`), 1))
	f.Fuzz(func(t *testing.T, payload []byte) {
		r, err := DecodeRecord(payload)
		if err != nil {
			return
		}
		assertCanonical(t, "accepted payload", payload)
		again, err := r.Canonical()
		if err != nil || !bytes.Equal(again, payload) {
			t.Fatalf("accepted payload does not encode back to itself: %v\n%s\n%s", err, payload, again)
		}
		_, _ = r.checkShape()
	})
}

// FuzzDecodeStatement: whatever DecodeStatement accepts is canonical JSON
// that encodes back to itself.
func FuzzDecodeStatement(f *testing.F) {
	st := ClearingStatement{Counterparty: execKey.ID(), Issuer: homeKey.ID(), PeriodStart: t0, PeriodEnd: t0.Add(time.Hour),
		Positions: []Position{{Amount: 12_500_000_000, Currency: "CNY"}, {Amount: -1, Currency: "USD"}}, RecordCount: 2, RecordsDigest: RecordsDigest([]RecordID{"sha256:b", "sha256:a"})}
	c, err := canonjson.Marshal(st)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(c)
	f.Add(bytes.Replace(c, []byte(`"positions":[`), []byte(`"positions":null,"x":[`), 1))
	f.Fuzz(func(t *testing.T, payload []byte) {
		st, err := DecodeStatement(payload)
		if err != nil {
			return
		}
		assertCanonical(t, "accepted statement", payload)
		again, err := canonjson.Marshal(st)
		if err != nil || !bytes.Equal(again, payload) {
			t.Fatalf("accepted statement does not encode back to itself: %v\n%s\n%s", err, payload, again)
		}
	})
}
