package settlement_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cinet/cinet/descriptor"
	"github.com/cinet/cinet/identity"
	"github.com/cinet/cinet/settlement"
	"github.com/cinet/cinet/settlement/auditlog"
	"github.com/cinet/cinet/settlement/settlementtest"
	"github.com/cinet/cinet/settlement/storetest"
)

var ctx = context.Background()

var (
	homeKey     = settlementtest.HomeKey
	execKey     = settlementtest.ExecKey
	tenantKey   = settlementtest.TenantKey
	providerKey = settlementtest.ProviderKey
	strangerKey = settlementtest.StrangerKey
	now         = settlementtest.Now
	offer       = settlementtest.Offer
	rec         = settlementtest.Record
	seal        = settlementtest.Seal
)

var stores = []struct {
	name string
	open storetest.Opener
}{{"sqlite", storetest.SQLite}, {"postgres", storetest.Postgres}}

func newSettler(t testing.TB, s settlement.Store, k *identity.Key, brokers ...identity.PrincipalID) *settlement.Settler {
	t.Helper()
	st, err := settlement.New(settlement.Config{Store: s, Key: k, Origin: "cinet.test/" + k.ID().String()[8:20], Brokers: brokers, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func ingest(t testing.TB, s *settlement.Settler, inputs ...[]byte) []settlement.Outcome {
	t.Helper()
	out, err := s.Ingest(ctx, inputs)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func balance(t testing.TB, s *settlement.Settler, account settlement.Account) descriptor.Nanos {
	t.Helper()
	b, err := s.Balances(ctx, account)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) == 0 {
		return 0
	}
	return b[0].Amount
}

func logSize(t testing.TB, s *settlement.Settler) int64 {
	t.Helper()
	cp, err := s.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return cp.Size
}

func TestIngestLocal(t *testing.T) {
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			store, _ := st.open(t)
			b := newSettler(t, store, homeKey)
			doc := offer(t, homeKey)
			if err := b.RegisterOffer(ctx, doc); err != nil {
				t.Fatal(err)
			}
			r := rec(doc, homeKey, homeKey, "pl-1", now.Add(-3*time.Hour), time.Hour) // 17:00–18:00 local: day rate
			env := seal(t, homeKey, r)
			out := ingest(t, b, env, env)
			if out[0].Status != settlement.Accepted || out[1].Status != settlement.Duplicate {
				t.Fatalf("outcomes %+v", out)
			}
			tx := out[0].Transaction
			if tx.Role != settlement.RoleLocal || tx.TenantCharge() != 105e9 {
				t.Fatalf("transaction %+v charge %s", tx, tx.TenantCharge().Decimal())
			}
			if again := ingest(t, b, env); again[0].Status != settlement.Duplicate || again[0].LogIndex != out[0].LogIndex {
				t.Fatalf("re-sent record: %+v", again[0])
			}
			for acc, want := range map[settlement.Account]descriptor.Nanos{
				settlement.AccountOf("tenant", tenantKey.ID()):     -105e9,
				settlement.AccountOf("provider", providerKey.ID()): 100e9,
				settlement.AccountOf("fees", homeKey.ID()):         5e9,
			} {
				if got := balance(t, b, acc); got != want {
					t.Errorf("%s: %s, want %s", acc, got.Decimal(), want.Decimal())
				}
			}
			// The log holds the record and the transaction.
			if n := logSize(t, b); n != 2 {
				t.Fatalf("log size %d, want 2", n)
			}
			p, err := b.Prove(ctx, out[0].Record)
			if err != nil {
				t.Fatal(err)
			}
			var entry struct {
				Type     string          `json:"type"`
				Envelope json.RawMessage `json:"envelope"`
			}
			if err := json.Unmarshal(p.Entry, &entry); err != nil || entry.Type != "usage-record" || !bytes.Equal(entry.Envelope, env) {
				t.Fatalf("record entry %s", p.Entry)
			}
			if _, idx, err := auditlog.VerifyReceipt(p.Receipt, p.Entry, b.VerifierKey(), nil); err != nil || idx != p.Index {
				t.Fatalf("receipt: %v", err)
			}
		})
	}
}

func TestIngestRefusals(t *testing.T) {
	doc := offer(t, homeKey)
	base := func() *settlement.UsageRecord {
		return rec(doc, homeKey, homeKey, "pl-r", now.Add(-5*time.Hour), time.Hour)
	}
	tampered := seal(t, homeKey, base())
	tampered[bytes.Index(tampered, []byte(`"signature":"`))+15] ^= 1
	for _, tc := range []struct {
		name   string
		input  func() []byte
		reason settlement.Reason
	}{
		{"not an envelope", func() []byte { return []byte("hello") }, settlement.ReasonMalformed},
		{"bad signature", func() []byte { return tampered }, settlement.ReasonBadSignature},
		{"unknown broker", func() []byte {
			r := base()
			r.ExecutingBroker = strangerKey.ID()
			return seal(t, strangerKey, r)
		}, settlement.ReasonUnknownBroker},
		{"signed by another broker", func() []byte {
			r := base()
			r.ExecutingBroker = execKey.ID()
			env, _ := identity.SealJSON(homeKey, settlement.RecordPayloadType, r, identity.SealOptions{})
			return env.Encode()
		}, settlement.ReasonBadSignature},
		{"not involved", func() []byte {
			r := base()
			r.HomeBroker, r.ExecutingBroker = execKey.ID(), execKey.ID()
			return seal(t, execKey, r)
		}, settlement.ReasonNotInvolved},
		{"unknown offer", func() []byte { r := base(); r.Offer = "sha256:" + fmt.Sprintf("%064d", 0); return seal(t, homeKey, r) }, settlement.ReasonUnknownOffer},
		{"offer mismatch", func() []byte { r := base(); r.Provider = tenantKey.ID(); return seal(t, homeKey, r) }, settlement.ReasonOfferMismatch},
		{"executed on capacity another broker owns", func() []byte {
			r := base() // the offer is this broker's capacity, not execKey's
			r.ExecutingBroker = execKey.ID()
			return seal(t, execKey, r)
		}, settlement.ReasonOfferMismatch},
		{"unknown meter", func() []byte {
			r := base()
			r.Meters = []settlement.Meter{{Meter: "disk-iops", Quantity: "5"}}
			return seal(t, homeKey, r)
		}, settlement.ReasonUnknownMeter},
		{"negative quantity", func() []byte { r := base(); r.Meters[0].Quantity = "-3600"; return seal(t, homeKey, r) }, settlement.ReasonInvalidQuantity},
		{"absurd quantity", func() []byte { r := base(); r.Meters[0].Quantity = "7201"; return seal(t, homeKey, r) }, settlement.ReasonAbsurdQuantity},
		{"absurd accelerator", func() []byte {
			r := base()
			r.Meters = []settlement.Meter{{Meter: settlement.AcceleratorSeconds, Model: "A100", Quantity: "1"}}
			return seal(t, homeKey, r)
		}, settlement.ReasonAbsurdQuantity},
		{"period backwards", func() []byte { r := base(); r.PeriodEnd = r.PeriodStart; return seal(t, homeKey, r) }, settlement.ReasonInvalidPeriod},
		{"future period", func() []byte {
			r := rec(doc, homeKey, homeKey, "pl-f", now.Add(time.Hour), time.Hour)
			return seal(t, homeKey, r)
		}, settlement.ReasonFuturePeriod},
		{"overlapping period", func() []byte {
			r := base()
			r.PeriodStart = r.PeriodStart.Add(-30 * time.Minute)
			r.Sequence = 2
			return seal(t, homeKey, r)
		}, settlement.ReasonOverlappingPeriod},
		{"fee out of range", func() []byte { r := base(); r.Fees.Home = descriptor.MustDecimal("1.5"); return seal(t, homeKey, r) }, settlement.ReasonInvalidFee},
		{"unpriced meter", func() []byte {
			r := base()
			r.Placement = "pl-unpriced"
			r.Meters = append(r.Meters, settlement.Meter{Meter: settlement.TokensIn, Quantity: "10"})
			return seal(t, homeKey, r)
		}, settlement.ReasonUnpriced},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store, _ := storetest.SQLite(t)
			b := newSettler(t, store, homeKey, execKey.ID())
			if err := b.RegisterOffer(ctx, doc); err != nil {
				t.Fatal(err)
			}
			// A settled record for the overlap case.
			if out := ingest(t, b, seal(t, homeKey, base())); out[0].Status != settlement.Accepted {
				t.Fatalf("base record: %+v", out[0])
			}
			before := logSize(t, b)
			balances, _ := b.Balances(ctx, "")
			input := tc.input()
			out := ingest(t, b, input)
			if out[0].Status != settlement.Refused || out[0].Reason != tc.reason || out[0].Detail == "" {
				t.Fatalf("outcome %+v, want refused with %s", out[0], tc.reason)
			}
			if after := logSize(t, b); after != before+1 {
				t.Fatalf("the refusal was not logged: log %d -> %d", before, after)
			}
			if now, _ := b.Balances(ctx, ""); fmt.Sprint(now) != fmt.Sprint(balances) {
				t.Fatalf("a refusal changed the books: %v -> %v", balances, now)
			}
			again := ingest(t, b, input)
			if again[0].Status != settlement.Refused || again[0].LogIndex != out[0].LogIndex || logSize(t, b) != before+1 {
				t.Fatalf("a re-sent refusal was logged again: %+v", again[0])
			}
		})
	}
}

// TestTransientRefusals: bytes refused for a reason that can pass (a
// future period, an unknown offer or broker) are accepted when sent again
// after it has; while it holds they are refused without a new log entry.
func TestTransientRefusals(t *testing.T) {
	doc := offer(t, homeKey)
	store, _ := storetest.SQLite(t)
	clock := now
	var trust []identity.PrincipalID
	open := func() *settlement.Settler {
		s, err := settlement.New(settlement.Config{Store: store, Key: homeKey, Origin: "cinet.test/transient", Brokers: trust, Now: func() time.Time { return clock }})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := open()
	future := seal(t, homeKey, rec(doc, homeKey, homeKey, "pl-future", now.Add(time.Hour), time.Hour))
	early := seal(t, homeKey, rec(doc, homeKey, homeKey, "pl-early", now.Add(-2*time.Hour), time.Hour))
	theirs := offer(t, execKey)
	r := rec(theirs, homeKey, execKey, "pl-stranger", now.Add(-2*time.Hour), time.Hour)
	stranger := seal(t, execKey, r)

	out := ingest(t, s, future, early, stranger)
	want := []settlement.Reason{settlement.ReasonFuturePeriod, settlement.ReasonUnknownOffer, settlement.ReasonUnknownBroker}
	for i, o := range out {
		if o.Status != settlement.Refused || o.Reason != want[i] {
			t.Fatalf("input %d: %+v, want refused with %s", i, o, want[i])
		}
	}
	size := logSize(t, s)
	again := ingest(t, s, future, early, stranger)
	for i, o := range again {
		if o.Status != settlement.Refused || o.LogIndex != out[i].LogIndex {
			t.Fatalf("input %d refused again as %+v, want the first refusal %+v", i, o, out[i])
		}
	}
	if logSize(t, s) != size {
		t.Fatal("refusing the same bytes for the same reason logged again")
	}

	// The period comes, the offer is registered, the broker becomes known.
	clock = now.Add(3 * time.Hour)
	trust = []identity.PrincipalID{execKey.ID()}
	s = open()
	for _, d := range []*descriptor.Document{doc, theirs} {
		if err := s.RegisterOffer(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	for i, o := range ingest(t, s, future, early, stranger) {
		if o.Status != settlement.Accepted {
			t.Fatalf("input %d after the reason passed: %+v", i, o)
		}
	}
	if got := logSize(t, s); got != size+6 {
		t.Fatalf("log grew from %d to %d, want a record and a transaction entry for each of 3", size, got)
	}
}

// flakyStore fails reads on demand, as a database connection can.
type flakyStore struct {
	settlement.Store
	fail bool
}

func (f *flakyStore) View(ctx context.Context, fn func(settlement.ReadTx) error) error {
	if f.fail {
		return errors.New("read tcp 127.0.0.1:5432: connection reset by peer")
	}
	return f.Store.View(ctx, fn)
}

// TestDuplicateBeatsLaterReasons: a record already posted that arrives
// again is a duplicate even if it would now be refused — here because the
// clock runs behind — and nothing is logged.
func TestDuplicateBeatsLaterReasons(t *testing.T) {
	store, _ := storetest.SQLite(t)
	doc := offer(t, homeKey)
	input := seal(t, homeKey, rec(doc, homeKey, homeKey, "pl-d", now.Add(-time.Hour), time.Hour))
	s := newSettler(t, store, homeKey)
	s.RegisterOffer(ctx, doc)
	first := ingest(t, s, input)
	size := logSize(t, s)
	early, err := settlement.New(settlement.Config{Store: store, Key: homeKey, Origin: "cinet.test/" + homeKey.ID().String()[8:20], Now: func() time.Time { return now.Add(-3 * time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	if out := ingest(t, early, input); out[0].Status != settlement.Duplicate || out[0].LogIndex != first[0].LogIndex {
		t.Fatalf("resent with the clock behind: %+v", out[0])
	}
	if logSize(t, s) != size {
		t.Fatal("the duplicate was logged")
	}
}

// TestIngestStoreFailure: when reading the offer fails, Ingest fails and
// refuses nothing — a database hiccup is not the record's fault — and the
// batch sent again is accepted.
func TestIngestStoreFailure(t *testing.T) {
	doc := offer(t, homeKey)
	real, _ := storetest.SQLite(t)
	store := &flakyStore{Store: real}
	s := newSettler(t, store, homeKey)
	if err := s.RegisterOffer(ctx, doc); err != nil {
		t.Fatal(err)
	}
	input := seal(t, homeKey, rec(doc, homeKey, homeKey, "pl-1", now.Add(-2*time.Hour), time.Hour))
	store.fail = true
	if out, err := s.Ingest(ctx, [][]byte{input}); err == nil || !strings.Contains(err.Error(), "connection reset") {
		t.Fatalf("ingest with a failing store: %+v, %v", out, err)
	}
	store.fail = false
	if out := ingest(t, s, input); out[0].Status != settlement.Accepted {
		t.Fatalf("sent again: %+v", out[0])
	}
}

// TestHomeAndExecutingBooksMirror: the home and the executing broker each
// post the same records; their clearing accounts for each other mirror.
func TestHomeAndExecutingBooksMirror(t *testing.T) {
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			hs, _ := st.open(t)
			es, _ := storetest.SQLite(t)
			home := newSettler(t, hs, homeKey, execKey.ID())
			exec := newSettler(t, es, execKey, homeKey.ID())
			doc := offer(t, execKey)
			for _, b := range []*settlement.Settler{home, exec} {
				if err := b.RegisterOffer(ctx, doc); err != nil {
					t.Fatal(err)
				}
			}
			var envs [][]byte
			for i := range 24 {
				r := rec(doc, homeKey, execKey, "pl-m", now.Add(-time.Duration(48-i)*time.Hour), time.Hour)
				r.Sequence = int64(i + 1)
				envs = append(envs, seal(t, execKey, r))
			}
			for _, b := range []*settlement.Settler{home, exec} {
				for _, o := range ingest(t, b, envs...) {
					if o.Status != settlement.Accepted {
						t.Fatalf("%+v", o)
					}
				}
				tb, err := b.TrialBalance(ctx)
				if err != nil || tb["CNY"] != 0 {
					t.Fatalf("trial balance %v %v", tb, err)
				}
			}
			owed := balance(t, home, settlement.AccountOf("clearing", execKey.ID()))
			due := balance(t, exec, settlement.AccountOf("clearing", homeKey.ID()))
			if owed <= 0 || owed != -due {
				t.Fatalf("home owes exec %s, exec is owed %s", owed.Decimal(), (-due).Decimal())
			}
			if balance(t, home, settlement.AccountOf("provider", providerKey.ID())) != 0 || balance(t, exec, settlement.AccountOf("tenant", tenantKey.ID())) != 0 {
				t.Fatal("a broker posted to accounts of the other's side")
			}
			// Provider earnings + exec fee = what home owes exec.
			if p, f := balance(t, exec, settlement.AccountOf("provider", providerKey.ID())), balance(t, exec, settlement.AccountOf("fees", execKey.ID())); p+f != owed {
				t.Fatalf("provider %s + fee %s != %s", p.Decimal(), f.Decimal(), owed.Decimal())
			}
		})
	}
}

func TestHolds(t *testing.T) {
	store, _ := storetest.SQLite(t)
	b := newSettler(t, store, homeKey)
	doc := offer(t, homeKey)
	b.RegisterOffer(ctx, doc)
	tenant := settlement.AccountOf("tenant", tenantKey.ID())
	if _, err := b.PlaceHold(ctx, "job-pl-h", tenant, "CNY", 250e9); err != nil {
		t.Fatal(err)
	}
	// A second hold for the job is the first one, said so by type.
	if h, err := b.PlaceHold(ctx, "job-pl-h", tenant, "CNY", 1); !errors.Is(err, settlement.ErrHoldExists) || !errors.Is(err, settlement.ErrHold) || h == nil || h.Amount != 250e9 {
		t.Fatalf("a second hold for one job: %+v, %v", h, err)
	}
	// Three hours of day rate: 105 each; the third exceeds the hold.
	for i := range 3 {
		r := rec(doc, homeKey, homeKey, "pl-h", now.Add(-time.Duration(6-i)*time.Hour), time.Hour)
		r.Sequence = int64(i + 1)
		ingest(t, b, seal(t, homeKey, r))
	}
	hs, _ := b.Holds(ctx, "job-pl-h")
	if h := hs[0]; h.Captured != 250e9 || h.Remaining() != 0 || h.Released != 0 {
		t.Fatalf("hold after usage %+v", h)
	}
	h, err := b.ReleaseHold(ctx, "job-pl-h")
	if err != nil || h.Open || h.Released != 0 || h.Captured != 250e9 {
		t.Fatalf("released %+v %v", h, err)
	}
	if balance(t, b, tenant) != -315e9 {
		t.Fatalf("the tenant pays for all usage, hold or not: %s", balance(t, b, tenant).Decimal())
	}
	if _, err := b.PlaceHold(ctx, "job-2", tenant, "CNY", 100e9); err != nil {
		t.Fatal(err)
	}
	h, _ = b.ReleaseHold(ctx, "job-2")
	if h.Released != 100e9 || h.Captured != 0 {
		t.Fatalf("an unused hold is released whole: %+v", h)
	}
}

// TestOversizedTransactionRefused: a month-long record on a schedule with
// a nightly tier is cut into more rated items than one log entry holds;
// it is refused with a reason that says so, and the rest of its batch is
// settled.
func TestOversizedTransactionRefused(t *testing.T) {
	src := strings.Replace(settlementtest.OfferYAML(homeKey.ID()), `rates: {instanceHour: "100", acceleratorHour: "10", tokensOutPerMillion: "2"}`,
		`rates: {instanceHour: "100", vcpuHour: "1", gibHour: "0.1", acceleratorHour: "10", tokensOutPerMillion: "2"}`, 1)
	doc, err := descriptor.Parse("offer.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	store, _ := storetest.SQLite(t)
	s := newSettler(t, store, homeKey)
	s.RegisterOffer(ctx, doc)
	long := rec(doc, homeKey, homeKey, "pl-long", now.Add(-31*24*time.Hour), 31*24*time.Hour)
	long.Meters = append(long.Meters,
		settlement.Meter{Meter: settlement.VCPUSeconds, Quantity: "1000"},
		settlement.Meter{Meter: settlement.GiBSeconds, Quantity: "1000"},
		settlement.Meter{Meter: settlement.AcceleratorSeconds, Model: "H100", Quantity: "1000"},
		settlement.Meter{Meter: settlement.TokensOut, Quantity: "1000"})
	short := rec(doc, homeKey, homeKey, "pl-short", now.Add(-time.Hour), time.Hour)
	out := ingest(t, s, seal(t, homeKey, long), seal(t, homeKey, short))
	if out[0].Status != settlement.Refused || out[0].Reason != settlement.ReasonInvalidPeriod || !strings.Contains(out[0].Detail, "shorter periods") {
		t.Fatalf("month-long record: %+v", out[0])
	}
	if out[1].Status != settlement.Accepted {
		t.Fatalf("the record beside it: %+v", out[1])
	}
}

// TestMembersAreDynamic: a broker admitted to the federation while the
// settler runs has its records accepted from then on, without a restart.
func TestMembersAreDynamic(t *testing.T) {
	store, _ := storetest.SQLite(t)
	var admitted atomic.Bool
	s, err := settlement.New(settlement.Config{Store: store, Key: homeKey, Origin: "cinet.test/members", Now: func() time.Time { return now },
		Members: identity.SignerFunc(func(id identity.PrincipalID) bool { return admitted.Load() && id == execKey.ID() })})
	if err != nil {
		t.Fatal(err)
	}
	doc := offer(t, execKey)
	if err := s.RegisterOffer(ctx, doc); err != nil {
		t.Fatal(err)
	}
	env := seal(t, execKey, rec(doc, homeKey, execKey, "pl-member", now.Add(-2*time.Hour), time.Hour))
	if out := ingest(t, s, env); out[0].Reason != settlement.ReasonUnknownBroker {
		t.Fatalf("before admission: %+v", out[0])
	}
	admitted.Store(true)
	if out := ingest(t, s, env); out[0].Status != settlement.Accepted {
		t.Fatalf("after admission: %+v", out[0])
	}
}
