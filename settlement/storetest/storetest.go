// Package storetest is the conformance suite every settlement.Store
// implementation passes, and helpers that open the stores cinet ships for
// tests: SQLite in a temporary directory, and PostgreSQL in a fresh schema.
package storetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/cinet/cinet/descriptor"
	"github.com/cinet/cinet/settlement"
	"github.com/cinet/cinet/settlement/auditlog"
	"github.com/cinet/cinet/settlement/sqlstore"
)

// Opener opens a fresh, empty store for one test; reopen opens the same
// store again after it was closed.
type Opener func(t testing.TB) (s settlement.Store, reopen func() settlement.Store)

// SQLite opens a store in a file under t.TempDir().
func SQLite(t testing.TB) (settlement.Store, func() settlement.Store) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "books.db")
	open := func() settlement.Store {
		s, err := sqlstore.Open(context.Background(), path)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := open()
	t.Cleanup(func() { s.Close() })
	return s, open
}

// PostgresURL is the server tests use: $CINET_TEST_POSTGRES, or the local
// default.
func PostgresURL() string {
	if u := os.Getenv("CINET_TEST_POSTGRES"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

// PostgresSchema creates a schema on the test server, dropped when the
// test ends, and returns a URL whose connections use it. Without a server
// the test is skipped, unless $CINET_TEST_POSTGRES_REQUIRED is set (as in
// .ci/run), when it fails.
func PostgresSchema(t testing.TB) string {
	t.Helper()
	admin, err := sql.Open("pgx", PostgresURL())
	if err == nil {
		err = admin.Ping()
	}
	if err != nil {
		if os.Getenv("CINET_TEST_POSTGRES_REQUIRED") != "" {
			t.Fatalf("PostgreSQL at %s: %v", PostgresURL(), err)
		}
		t.Skipf("no PostgreSQL at %s (%v); set CINET_TEST_POSTGRES", PostgresURL(), err)
	}
	var b [6]byte
	rand.Read(b[:])
	schema := "cinet_test_" + hex.EncodeToString(b[:])
	if _, err := admin.Exec("CREATE SCHEMA " + schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		admin.Exec("DROP SCHEMA " + schema + " CASCADE")
		admin.Close()
	})
	sep := "?"
	if bytes.ContainsRune([]byte(PostgresURL()), '?') {
		sep = "&"
	}
	return PostgresURL() + sep + "search_path=" + schema
}

// Postgres opens a store in a new schema of the test server (see
// PostgresSchema).
func Postgres(t testing.TB) (settlement.Store, func() settlement.Store) {
	t.Helper()
	url := PostgresSchema(t)
	open := func() settlement.Store {
		s, err := sqlstore.Open(context.Background(), url)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := open()
	t.Cleanup(func() { s.Close() })
	return s, open
}

var (
	start = time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	ctx   = context.Background()
)

func record(i int, placement string) *settlement.RecordRow {
	return &settlement.RecordRow{
		ID: settlement.RecordID(fmt.Sprintf("sha256:%064x", i)), Job: "job-" + placement, Placement: placement, Sequence: int64(i),
		ComputeID: "ci:x/r/z/p", Offer: "sha256:offer", Tenant: "did:key:t", Provider: "did:key:p",
		HomeBroker: "did:key:h", ExecutingBroker: "did:key:e",
		PeriodStart: start.Add(time.Duration(i) * time.Hour), PeriodEnd: start.Add(time.Duration(i+1) * time.Hour),
		LogIndex: int64(i), ReceivedAt: start,
	}
}

func transaction(r *settlement.RecordRow, amount descriptor.Nanos) *settlement.Transaction {
	tx := &settlement.Transaction{
		ID: string(r.ID), Record: r.ID, Role: settlement.RoleLocal, Currency: "USD", PostedAt: start, LogIndex: 1_000_000 + r.LogIndex,
		Items: []settlement.RatedItem{{Meter: settlement.InstanceSeconds, Start: r.PeriodStart, End: r.PeriodEnd, ConsumedQty: "3600", PricingQuantity: "1", PricingUnit: "Hours", UnitPrice: "1", Amount: amount}},
	}
	tx.Lines = []settlement.Line{{Account: "tenant/did:key:t", Amount: -amount}, {Account: "provider/did:key:p", Amount: amount}}
	return tx
}

// appendEntries appends entries to the store's log inside tx.
func appendEntries(tx settlement.Tx, entries ...[]byte) error {
	size, err := tx.LogSize()
	if err != nil {
		return err
	}
	hashes, err := auditlog.Append(size, entries, tlog.HashReaderFunc(tx.ReadHashes))
	if err != nil {
		return err
	}
	return tx.AppendLog(size, entries, hashes)
}

// Run runs the suite against stores open returns.
func Run(t *testing.T, open Opener) {
	t.Run("RoundTrip", func(t *testing.T) { testRoundTrip(t, open) })
	t.Run("Atomic", func(t *testing.T) { testAtomic(t, open) })
	t.Run("DatabaseErrorMidTransaction", func(t *testing.T) { testDatabaseError(t, open) })
	t.Run("Balances", func(t *testing.T) { testBalances(t, open) })
	t.Run("Holds", func(t *testing.T) { testHolds(t, open) })
	t.Run("Log", func(t *testing.T) { testLog(t, open) })
	t.Run("Checkpoints", func(t *testing.T) { testCheckpoints(t, open) })
	t.Run("ConcurrentWriters", func(t *testing.T) { testConcurrent(t, open) })
	t.Run("Reopen", func(t *testing.T) { testReopen(t, open) })
	t.Run("Statements", func(t *testing.T) { testStatements(t, open) })
}

func mustUpdate(t testing.TB, s settlement.Store, fn func(settlement.Tx) error) {
	t.Helper()
	if err := s.Update(ctx, fn); err != nil {
		t.Fatal(err)
	}
}

func testRoundTrip(t *testing.T, open Opener) {
	s, _ := open(t)
	r1, r2 := record(1, "pl-a"), record(2, "pl-a")
	mustUpdate(t, s, func(tx settlement.Tx) error {
		if err := tx.PutOffer("sha256:offer", []byte(`{"kind":"Offer"}`)); err != nil {
			return err
		}
		if err := tx.PutOffer("sha256:offer", []byte(`{"kind":"Offer"}`)); err != nil { // idempotent
			return err
		}
		if err := tx.InsertRecords([]*settlement.RecordRow{r1, r2}); err != nil {
			return err
		}
		t2 := transaction(r2, 7e9)
		t2.HomeFee = 1e8
		t2.Lines = []settlement.Line{{Account: "tenant/did:key:t", Amount: -7e9 - 1e8}, {Account: "provider/did:key:p", Amount: 7e9}, {Account: "fees/did:key:h", Amount: 1e8}}
		if err := tx.InsertTransactions([]*settlement.Transaction{transaction(r1, 5e9), t2}); err != nil {
			return err
		}
		return tx.InsertRefusals([]*settlement.Refusal{{Digest: "sha256:bad", Reason: settlement.ReasonBadSignature, Detail: "x", ReceivedAt: start, LogIndex: 9}})
	})
	err := s.View(ctx, func(tx settlement.ReadTx) error {
		doc, err := tx.Offer("sha256:offer")
		if err != nil || string(doc) != `{"kind":"Offer"}` {
			return fmt.Errorf("offer: %q %v", doc, err)
		}
		if _, err := tx.Offer("sha256:none"); !errors.Is(err, settlement.ErrNotFound) {
			return fmt.Errorf("missing offer: %v", err)
		}
		recs, err := tx.Records([]settlement.RecordID{r1.ID, r2.ID, "sha256:none"})
		if err != nil || len(recs) != 2 {
			return fmt.Errorf("records: %d %v", len(recs), err)
		}
		if got := recs[r2.ID]; !got.PeriodEnd.Equal(r2.PeriodEnd) || got.Job != r2.Job || got.LogIndex != 2 || got.PeriodEnd.Location() != time.UTC {
			return fmt.Errorf("record read back as %+v", got)
		}
		periods, err := tx.Periods([]string{"pl-a", "pl-a", "pl-b"})
		if err != nil || len(periods) != 2 {
			return fmt.Errorf("periods: %v %v", periods, err)
		}
		refusals, err := tx.Refusals([]string{"sha256:bad", "sha256:good"})
		if err != nil || len(refusals) != 1 || refusals["sha256:bad"].Reason != settlement.ReasonBadSignature {
			return fmt.Errorf("refusals: %v %v", refusals, err)
		}
		txs, err := tx.Transactions("provider/did:key:p", start, start.Add(24*time.Hour))
		if err != nil || len(txs) != 2 || txs[0].Amount("provider/did:key:p") != 5e9 || txs[0].Usage.ID != r1.ID || txs[0].Currency != "USD" || txs[0].LogIndex != 1_000_001 {
			return fmt.Errorf("transactions: %+v %v", txs, err)
		}
		t2 := txs[1]
		if len(t2.Items) != 1 || len(t2.Lines) != 3 || t2.HomeFee != 1e8 || t2.ExecutingFee != 0 || t2.Transaction.Record != r2.ID || t2.Role != settlement.RoleLocal || !t2.PostedAt.Equal(start) {
			return fmt.Errorf("transaction read back as %+v", t2.Transaction)
		}
		if it := t2.Items[0]; it.PricingUnit != "Hours" || it.Amount != 7e9 || !it.Start.Equal(r2.PeriodStart) || it.ConsumedQty != "3600" || it.Meter != settlement.InstanceSeconds {
			return fmt.Errorf("item read back as %+v", it)
		}
		if l := t2.Lines[2]; l.Account != "fees/did:key:h" || l.Amount != 1e8 {
			return fmt.Errorf("lines read back as %+v", t2.Lines)
		}
		fees, err := tx.Transactions("fees/did:key:h", start, start.Add(24*time.Hour))
		if err != nil || len(fees) != 1 || fees[0].ID != string(r2.ID) {
			return fmt.Errorf("fee transactions: %+v %v", fees, err)
		}
		if txs, _ := tx.Transactions("", start.Add(2*time.Hour+1), start.Add(24*time.Hour)); len(txs) != 1 {
			return fmt.Errorf("transactions are selected by the record's period end: got %d", len(txs))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func testAtomic(t *testing.T, open Opener) {
	s, _ := open(t)
	boom := errors.New("boom")
	err := s.Update(ctx, func(tx settlement.Tx) error {
		r := record(1, "pl")
		if err := tx.InsertRecords([]*settlement.RecordRow{r}); err != nil {
			return err
		}
		if err := tx.InsertTransactions([]*settlement.Transaction{transaction(r, 1e9)}); err != nil {
			return err
		}
		if err := appendEntries(tx, []byte("a"), []byte("b")); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update = %v", err)
	}
	assertEmpty(t, s)
}

// assertEmpty checks that nothing was written.
func assertEmpty(t *testing.T, s settlement.Store) {
	t.Helper()
	err := s.View(ctx, func(tx settlement.ReadTx) error {
		recs, err := tx.Records([]settlement.RecordID{record(1, "pl").ID, record(2, "pl").ID})
		if err != nil || len(recs) != 0 {
			return fmt.Errorf("records survived: %d %v", len(recs), err)
		}
		bal, err := tx.Balances("")
		if err != nil || len(bal) != 0 {
			return fmt.Errorf("balances survived: %v %v", bal, err)
		}
		if n, err := tx.LogSize(); err != nil || n != 0 {
			return fmt.Errorf("log size %d %v", n, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// testDatabaseError makes the database itself fail part-way through a
// transaction — a primary-key violation after other rows are written —
// and checks that nothing is left half-written.
func testDatabaseError(t *testing.T, open Opener) {
	s, _ := open(t)
	err := s.Update(ctx, func(tx settlement.Tx) error {
		r := record(1, "pl")
		if err := tx.InsertRecords([]*settlement.RecordRow{r}); err != nil {
			return err
		}
		if err := appendEntries(tx, []byte("a")); err != nil {
			return err
		}
		if err := tx.InsertTransactions([]*settlement.Transaction{transaction(r, 1e9)}); err != nil {
			return err
		}
		return tx.InsertRecords([]*settlement.RecordRow{record(2, "pl"), r}) // r again: a key violation
	})
	if err == nil {
		t.Fatal("a duplicate primary key was accepted")
	}
	assertEmpty(t, s)
	// The store is still usable.
	mustUpdate(t, s, func(tx settlement.Tx) error { return tx.InsertRecords([]*settlement.RecordRow{record(1, "pl")}) })
}

func testBalances(t *testing.T, open Opener) {
	s, _ := open(t)
	var txs []*settlement.Transaction
	var rows []*settlement.RecordRow
	for i := range 50 {
		r := record(i, "pl")
		rows = append(rows, r)
		txs = append(txs, transaction(r, descriptor.Nanos(1_000_000_001*(i+1))))
	}
	mustUpdate(t, s, func(tx settlement.Tx) error {
		if err := tx.InsertRecords(rows); err != nil {
			return err
		}
		return tx.InsertTransactions(txs)
	})
	var want descriptor.Nanos
	for i := range 50 {
		want += descriptor.Nanos(1_000_000_001 * (i + 1))
	}
	err := s.View(ctx, func(tx settlement.ReadTx) error {
		bal, err := tx.Balances("")
		if err != nil || len(bal) != 2 {
			return fmt.Errorf("balances %v %v", bal, err)
		}
		if bal[0].Account != "provider/did:key:p" || bal[0].Amount != want || bal[1].Amount != -want {
			return fmt.Errorf("balances %+v, want ±%d", bal, want)
		}
		one, err := tx.Balances("tenant/did:key:t")
		if err != nil || len(one) != 1 || one[0].Amount != -want {
			return fmt.Errorf("one balance %+v %v", one, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	unbalanced := transaction(record(99, "pl"), 5)
	unbalanced.Lines[1].Amount = 4
	err = s.Update(ctx, func(tx settlement.Tx) error { return tx.InsertTransactions([]*settlement.Transaction{unbalanced}) })
	if err == nil {
		t.Fatal("an unbalanced transaction was written")
	}
	overflow := transaction(record(98, "pl"), descriptor.MaxNanos-1)
	if err := s.Update(ctx, func(tx settlement.Tx) error { return tx.InsertTransactions([]*settlement.Transaction{overflow}) }); err == nil {
		t.Fatal("a balance overflowed silently")
	}
}

func testHolds(t *testing.T, open Opener) {
	s, _ := open(t)
	h := &settlement.Hold{Job: "j1", Account: "tenant/did:key:t", Currency: "USD", Amount: 10e9, Open: true, CreatedAt: start}
	mustUpdate(t, s, func(tx settlement.Tx) error { return tx.PutHolds([]*settlement.Hold{h}) })
	h.Captured = 4e9
	mustUpdate(t, s, func(tx settlement.Tx) error { return tx.PutHolds([]*settlement.Hold{h}) })
	bad := *h
	bad.Captured, bad.Released = 8e9, 3e9
	if err := s.Update(ctx, func(tx settlement.Tx) error { return tx.PutHolds([]*settlement.Hold{&bad}) }); err == nil {
		t.Fatal("a hold was allowed to go negative")
	}
	err := s.View(ctx, func(tx settlement.ReadTx) error {
		holds, err := tx.Holds([]string{"j1", "j2"})
		if err != nil || len(holds) != 1 || holds["j1"].Captured != 4e9 || holds["j1"].Remaining() != 6e9 || !holds["j1"].Open {
			return fmt.Errorf("holds %+v %v", holds, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func testLog(t *testing.T, open Opener) {
	s, _ := open(t)
	var all [][]byte
	for batch := range 40 {
		var entries [][]byte
		for j := range batch%7 + 1 {
			entries = append(entries, []byte(fmt.Sprintf("entry %d.%d", batch, j)))
		}
		all = append(all, entries...)
		mustUpdate(t, s, func(tx settlement.Tx) error { return appendEntries(tx, entries...) })
	}
	err := s.View(ctx, func(tx settlement.ReadTx) error {
		n, err := tx.LogSize()
		if err != nil || n != int64(len(all)) {
			return fmt.Errorf("size %d %v", n, err)
		}
		got, err := tx.ReadEntries(0, n)
		if err != nil {
			return err
		}
		for i := range all {
			if !bytes.Equal(got[i], all[i]) {
				return fmt.Errorf("entry %d read back as %q", i, got[i])
			}
		}
		// The stored tree is the tree of the entries.
		var mem tlog.HashReaderFunc
		memHashes := map[int64]tlog.Hash{}
		mem = func(ix []int64) ([]tlog.Hash, error) {
			out := make([]tlog.Hash, len(ix))
			for i, x := range ix {
				out[i] = memHashes[x]
			}
			return out, nil
		}
		hs, _ := auditlog.Append(0, all, mem)
		for _, h := range hs {
			memHashes[h.Index] = h.Hash
		}
		want, _ := tlog.TreeHash(n, mem)
		got2, err := tlog.TreeHash(n, tlog.HashReaderFunc(tx.ReadHashes))
		if err != nil || got2 != want {
			return fmt.Errorf("stored tree hash %v, want %v (%v)", got2, want, err)
		}
		if _, err := tx.ReadEntries(n-1, 2); err == nil {
			return errors.New("read past the end of the log")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Update(ctx, func(tx settlement.Tx) error { return tx.AppendLog(3, [][]byte{[]byte("x")}, nil) }); err == nil {
		t.Fatal("appended in the middle of the log")
	}
}

func testCheckpoints(t *testing.T, open Opener) {
	s, _ := open(t)
	mustUpdate(t, s, func(tx settlement.Tx) error { return appendEntries(tx, []byte("a"), []byte("b"), []byte("c")) })
	if err := s.View(ctx, func(tx settlement.ReadTx) error {
		_, _, err := tx.LatestCheckpoint()
		if !errors.Is(err, settlement.ErrNotFound) {
			return fmt.Errorf("no checkpoint yet: %v", err)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	t2, t3 := time.Date(2026, 11, 30, 10, 0, 0, 1, time.UTC), time.Date(2026, 11, 30, 11, 0, 0, 2, time.UTC)
	mustUpdate(t, s, func(tx settlement.Tx) error { return tx.PutCheckpoint(2, []byte("two"), t2) })
	mustUpdate(t, s, func(tx settlement.Tx) error { return tx.PutCheckpoint(3, []byte("three"), t3) })
	if err := s.Update(ctx, func(tx settlement.Tx) error { return tx.PutCheckpoint(1, []byte("one"), t3) }); err == nil {
		t.Fatal("a checkpoint went backwards")
	}
	if err := s.Update(ctx, func(tx settlement.Tx) error { return tx.PutCheckpoint(4, []byte("four"), t3) }); err == nil {
		t.Fatal("a checkpoint beyond the log was kept")
	}
	s.View(ctx, func(tx settlement.ReadTx) error {
		rows, err := tx.Checkpoints(10)
		if err != nil || len(rows) != 2 || rows[0].Size != 3 || !rows[0].SignedAt.Equal(t3) || string(rows[0].Note) != "three" ||
			rows[1].Size != 2 || !rows[1].SignedAt.Equal(t2) {
			t.Errorf("checkpoints %+v %v", rows, err)
		}
		if rows, err := tx.Checkpoints(1); err != nil || len(rows) != 1 || rows[0].Size != 3 {
			t.Errorf("the newest checkpoint %+v %v", rows, err)
		}
		return nil
	})
	s.View(ctx, func(tx settlement.ReadTx) error {
		note, size, err := tx.LatestCheckpoint()
		if err != nil || size != 3 || string(note) != "three" {
			t.Errorf("latest %q %d %v", note, size, err)
		}
		return nil
	})
}

// testConcurrent runs writers at once; each appends and posts. The log
// and balances must come out as if they ran one after another.
func testConcurrent(t *testing.T, open Opener) {
	s, _ := open(t)
	const writers, each = 4, 10
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				n := w*each + i
				err := s.Update(ctx, func(tx settlement.Tx) error {
					r := record(n, fmt.Sprintf("pl-%d", n))
					if err := tx.InsertRecords([]*settlement.RecordRow{r}); err != nil {
						return err
					}
					if err := tx.InsertTransactions([]*settlement.Transaction{transaction(r, 1e9)}); err != nil {
						return err
					}
					return appendEntries(tx, []byte(fmt.Sprint(n)))
				})
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	s.View(ctx, func(tx settlement.ReadTx) error {
		n, _ := tx.LogSize()
		bal, _ := tx.Balances("provider/did:key:p")
		if n != writers*each || len(bal) != 1 || bal[0].Amount != writers*each*1e9 {
			t.Errorf("after concurrent writers: log %d, balance %+v", n, bal)
		}
		if _, err := tlog.TreeHash(n, tlog.HashReaderFunc(tx.ReadHashes)); err != nil {
			t.Errorf("tree: %v", err)
		}
		return nil
	})
}

func testReopen(t *testing.T, open Opener) {
	s, reopen := open(t)
	mustUpdate(t, s, func(tx settlement.Tx) error { return appendEntries(tx, []byte("kept")) })
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := reopen()
	defer s2.Close()
	s2.View(ctx, func(tx settlement.ReadTx) error {
		e, err := tx.ReadEntries(0, 1)
		if err != nil || string(e[0]) != "kept" {
			t.Errorf("after reopening: %q %v", e, err)
		}
		return nil
	})
}

func testStatements(t *testing.T, open Opener) {
	s, _ := open(t)
	row := &settlement.StatementRow{Digest: "sha256:s1", Issuer: "did:key:a", Counterparty: "did:key:b", PeriodStart: start, PeriodEnd: start.Add(time.Hour), Envelope: []byte("env"), LogIndex: 4}
	mustUpdate(t, s, func(tx settlement.Tx) error { return tx.PutStatement(row) })
	row.Countersignature = []byte("counter")
	mustUpdate(t, s, func(tx settlement.Tx) error { return tx.PutStatement(row) })
	s.View(ctx, func(tx settlement.ReadTx) error {
		for _, who := range []string{"did:key:a", "did:key:b"} {
			got, err := tx.Statements(who)
			if err != nil || len(got) != 1 || string(got[0].Countersignature) != "counter" || !got[0].PeriodEnd.Equal(row.PeriodEnd) {
				t.Errorf("statements with %s: %+v %v", who, got, err)
			}
		}
		return nil
	})
}
