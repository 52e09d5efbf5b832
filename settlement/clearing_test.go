package settlement_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cinet/cinet/descriptor"
	"github.com/cinet/cinet/identity"
	"github.com/cinet/cinet/settlement"
	"github.com/cinet/cinet/settlement/storetest"
)

// twoBrokers returns two brokers that settle with each other, with records
// going both ways already ingested by both: 10 with A as home broker and B
// executing, 4 the other way round. It returns the records B sealed for
// A's tenants first, so that a test can leave one out.
func twoBrokers(t *testing.T, skipAtB int) (a, b *settlement.Settler) {
	t.Helper()
	as, _ := storetest.SQLite(t)
	bs, _ := storetest.SQLite(t)
	a = newSettler(t, as, homeKey, execKey.ID())
	b = newSettler(t, bs, execKey, homeKey.ID())
	doc, back := offer(t, execKey), offer(t, homeKey) // B's capacity, A's
	var toA, toB [][]byte
	for i := range 10 {
		r := rec(doc, homeKey, execKey, "pl-ab", now.Add(-time.Duration(30-i)*time.Hour), time.Hour)
		r.Sequence = int64(i + 1)
		env := seal(t, execKey, r)
		toA = append(toA, env)
		if i != skipAtB {
			toB = append(toB, env)
		}
	}
	for i := range 4 {
		r := rec(back, execKey, homeKey, "pl-ba", now.Add(-time.Duration(30-i)*time.Hour), 30*time.Minute)
		r.Sequence = int64(i + 1)
		env := seal(t, homeKey, r)
		toA, toB = append(toA, env), append(toB, env)
	}
	for _, x := range []struct {
		s    *settlement.Settler
		envs [][]byte
	}{{a, toA}, {b, toB}} {
		for _, d := range []*descriptor.Document{doc, back} {
			if err := x.s.RegisterOffer(ctx, d); err != nil {
				t.Fatal(err)
			}
		}
		for _, o := range ingest(t, x.s, x.envs...) {
			if o.Status != settlement.Accepted {
				t.Fatalf("%+v", o)
			}
		}
	}
	return a, b
}

var (
	periodStart = now.Add(-48 * time.Hour).Truncate(time.Hour)
	periodEnd   = now.Truncate(time.Hour)
)

func TestClearing(t *testing.T) {
	a, b := twoBrokers(t, -1)
	sizeA := logSize(t, a)
	st, err := a.IssueStatement(ctx, execKey.ID(), periodStart, periodEnd)
	if err != nil {
		t.Fatal(err)
	}
	// A owes B for 10 records and is owed for 4 shorter ones: one net
	// position, in CNY, equal to A's clearing balance with B.
	owed := balance(t, a, settlement.AccountOf("clearing", execKey.ID()))
	if len(st.Statement.Positions) != 1 || st.Statement.Positions[0].Amount != owed || st.Statement.Positions[0].Currency != "CNY" || owed <= 0 {
		t.Fatalf("positions %+v, clearing balance %s", st.Statement.Positions, owed.Decimal())
	}
	if st.Statement.RecordCount != 14 || len(st.Records) != 14 || st.Statement.RecordsDigest != settlement.RecordsDigest(st.Records) {
		t.Fatalf("records %d %d %s", st.Statement.RecordCount, len(st.Records), st.Statement.RecordsDigest)
	}
	if logSize(t, a) != sizeA+1 || st.LogIndex != sizeA {
		t.Fatalf("the statement was not logged once at %d: log %d, index %d", sizeA, logSize(t, a), st.LogIndex)
	}
	again, err := a.IssueStatement(ctx, execKey.ID(), periodStart, periodEnd)
	if err != nil || again.Digest != st.Digest || string(again.Envelope) != string(st.Envelope) || logSize(t, a) != sizeA+1 {
		t.Fatalf("issuing again: %v, digest %s vs %s, log %d", err, again.Digest, st.Digest, logSize(t, a))
	}
	if _, err := settlement.VerifyStatement(st.Envelope, nil); err != nil {
		t.Fatal(err)
	}

	sizeB := logSize(t, b)
	counter, err := b.Countersign(ctx, st.Envelope)
	if err != nil {
		t.Fatal(err)
	}
	if logSize(t, b) != sizeB+1 || counter.Digest != st.Digest {
		t.Fatalf("countersigning: log %d -> %d, digest %s", sizeB, logSize(t, b), counter.Digest)
	}
	if _, err := b.Countersign(ctx, st.Envelope); err != nil || logSize(t, b) != sizeB+1 {
		t.Fatalf("countersigning again: %v, log %d", err, logSize(t, b))
	}
	done, err := a.AddCountersignature(ctx, counter.Countersignature)
	if err != nil {
		t.Fatal(err)
	}
	if logSize(t, a) != sizeA+2 || string(done.Countersignature) != string(counter.Countersignature) {
		t.Fatalf("adding the countersignature: log %d", logSize(t, a))
	}
	got, err := settlement.VerifyStatement(st.Envelope, counter.Countersignature)
	if err != nil || got.Issuer != homeKey.ID() || got.Counterparty != execKey.ID() {
		t.Fatalf("verify: %+v %v", got, err)
	}

	// Swapped or foreign signatures do not verify.
	if _, err := settlement.VerifyStatement(counter.Countersignature, st.Envelope); err == nil {
		t.Error("the countersignature verified as the statement")
	}
	other, err := a.IssueStatement(ctx, execKey.ID(), periodStart, periodEnd.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := settlement.VerifyStatement(other.Envelope, counter.Countersignature); err == nil {
		t.Error("a countersignature of another statement verified")
	}
	forged, _ := identity.Seal(strangerKey, settlement.StatementPayloadType, mustPayload(t, st.Envelope), identity.SealOptions{})
	if _, err := settlement.VerifyStatement(st.Envelope, forged.Encode()); err == nil {
		t.Error("a countersignature by a stranger verified")
	}
	if _, err := a.AddCountersignature(ctx, forged.Encode()); err == nil {
		t.Error("a stranger's countersignature was kept")
	}
	for i := range st.Envelope {
		bad := []byte(string(st.Envelope))
		bad[i] ^= 0x20
		if _, err := settlement.VerifyStatement(bad, counter.Countersignature); err == nil {
			t.Fatalf("changing byte %d of the statement went unnoticed", i)
		}
	}
}

func mustPayload(t *testing.T, envelope []byte) []byte {
	t.Helper()
	env, err := identity.DecodeEnvelope(envelope)
	if err != nil {
		t.Fatal(err)
	}
	return env.Payload
}

// TestClearingMismatch: a counterparty whose books lack a record the
// statement covers refuses to countersign, and says why.
func TestClearingMismatch(t *testing.T) {
	a, b := twoBrokers(t, 3)
	st, err := a.IssueStatement(ctx, execKey.ID(), periodStart, periodEnd)
	if err != nil {
		t.Fatal(err)
	}
	size := logSize(t, b)
	_, err = b.Countersign(ctx, st.Envelope)
	if !errors.Is(err, settlement.ErrStatement) || !strings.Contains(err.Error(), "covers 14") || !strings.Contains(err.Error(), "have 13") || !strings.Contains(err.Error(), "CNY") {
		t.Fatalf("countersigning a statement the books disagree with: %v", err)
	}
	if logSize(t, b) != size {
		t.Fatal("a refused countersignature was logged")
	}
}

func TestIssueStatementRefuses(t *testing.T) {
	a, _ := twoBrokers(t, -1)
	for _, tc := range []struct {
		name     string
		with     identity.PrincipalID
		from, to time.Time
		want     string
	}{
		{"self", homeKey.ID(), periodStart, periodEnd, "not a broker this one settles with"},
		{"stranger", strangerKey.ID(), periodStart, periodEnd, "not a broker this one settles with"},
		{"backwards", execKey.ID(), periodEnd, periodStart, "before it starts"},
		{"future", execKey.ID(), periodStart, now.Add(time.Hour).Truncate(time.Hour), "after now"},
		{"not UTC", execKey.ID(), periodStart.In(time.FixedZone("X", 3600)), periodEnd, "UTC"},
	} {
		if _, err := a.IssueStatement(ctx, tc.with, tc.from, tc.to); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error saying %q", tc.name, err, tc.want)
		}
	}
}
