package focus_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cinet/cinet/descriptor"
	"github.com/cinet/cinet/identity"
	"github.com/cinet/cinet/settlement"
	"github.com/cinet/cinet/settlement/focus"
	. "github.com/cinet/cinet/settlement/settlementtest"
	"github.com/cinet/cinet/settlement/storetest"
)

var update = flag.Bool("update", false, "rewrite the golden files")

var ctx = context.Background()

// books returns a home and an executing broker that have both ingested
// records across the night tier boundary, with accelerator and token
// meters.
func books(t *testing.T) (home, exec *settlement.Settler) {
	t.Helper()
	doc := Offer(t, ExecKey)
	var envs [][]byte
	for i, start := range []time.Time{
		time.Date(2026, 11, 29, 13, 30, 0, 0, time.UTC), // 21:30–22:30 Shanghai: crosses into the night tier
		time.Date(2026, 11, 30, 2, 0, 0, 0, time.UTC),   // 10:00–11:00 Shanghai
	} {
		r := Record(doc, HomeKey, ExecKey, "pl-1", start, time.Hour)
		r.Sequence = int64(i + 1)
		r.Meters = append(r.Meters,
			settlement.Meter{Meter: settlement.AcceleratorSeconds, Model: "H100", Quantity: "28800"},
			settlement.Meter{Meter: settlement.TokensOut, Quantity: "1500000"})
		envs = append(envs, Seal(t, ExecKey, r))
	}
	open := func(k *identity.Key, other identity.PrincipalID) *settlement.Settler {
		store, _ := storetest.SQLite(t)
		s, err := settlement.New(settlement.Config{Store: store, Key: k, Origin: "cinet.test/focus", Brokers: []identity.PrincipalID{other}, Now: func() time.Time { return Now }})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.RegisterOffer(ctx, doc); err != nil {
			t.Fatal(err)
		}
		out, err := s.Ingest(ctx, envs)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range out {
			if o.Status != settlement.Accepted {
				t.Fatalf("%+v", o)
			}
		}
		return s
	}
	return open(HomeKey, ExecKey.ID()), open(ExecKey, HomeKey.ID())
}

var (
	from = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	to   = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
)

// TestExportSumsToTheBooks: for every account of both brokers, the
// BilledCost of the rows sums to the net amount the account moved, and
// every mandatory column is filled (ChargeClass is null for regular
// charges).
func TestExportSumsToTheBooks(t *testing.T) {
	home, exec := books(t)
	tenant, provider := settlement.AccountOf("tenant", TenantKey.ID()), settlement.AccountOf("provider", ProviderKey.ID())
	for _, c := range []struct {
		name    string
		s       *settlement.Settler
		broker  identity.PrincipalID
		account settlement.Account
		rows    int
	}{
		// 9 items: 3 meters in each of the first record's 2 tier
		// segments and in the second record; 2 fees per record.
		{"home/tenant", home, HomeKey.ID(), tenant, 9 + 4},
		{"home/fees", home, HomeKey.ID(), settlement.AccountOf("fees", HomeKey.ID()), 2},
		{"home/clearing", home, HomeKey.ID(), settlement.AccountOf("clearing", ExecKey.ID()), 9 + 2},
		{"exec/provider", exec, ExecKey.ID(), provider, 9},
		{"exec/fees", exec, ExecKey.ID(), settlement.AccountOf("fees", ExecKey.ID()), 2},
		{"exec/clearing", exec, ExecKey.ID(), settlement.AccountOf("clearing", HomeKey.ID()), 9 + 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			st, err := c.s.Statement(ctx, c.account, from, to)
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			if err := focus.Write(&buf, &focus.Export{Broker: c.broker, Account: c.account, From: from, To: to, Transactions: st.Transactions}); err != nil {
				t.Fatal(err)
			}
			rows, err := csv.NewReader(&buf).ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			col := map[string]int{}
			for i, name := range rows[0] {
				col[name] = i
			}
			var sum descriptor.Nanos
			for _, r := range rows[1:] {
				for _, name := range focus.Columns[:21] {
					if r[col[name]] == "" && name != "ChargeClass" {
						t.Errorf("row %v: mandatory column %s is empty", r, name)
					}
				}
				n, err := descriptor.ParseNanos(r[col["BilledCost"]])
				if err != nil {
					t.Fatal(err)
				}
				sum += n
			}
			if want := st.Net["CNY"]; sum != want && sum != -want {
				t.Errorf("BilledCost sums to %s; the account moved %s", sum.Decimal(), want.Decimal())
			}
			if got := len(rows) - 1; got != c.rows {
				t.Errorf("%d rows, want %d", got, c.rows)
			}
		})
	}
}

// TestExportGolden pins the CSV of the tenant's charges at the home broker
// and of everything the executing broker bills.
func TestExportGolden(t *testing.T) {
	home, exec := books(t)
	for _, c := range []struct {
		file    string
		s       *settlement.Settler
		broker  identity.PrincipalID
		account settlement.Account
	}{
		{"home-tenant.csv", home, HomeKey.ID(), settlement.AccountOf("tenant", TenantKey.ID())},
		{"exec-billed.csv", exec, ExecKey.ID(), ""},
	} {
		st, err := c.s.Statement(ctx, c.account, from, to)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := focus.Write(&buf, &focus.Export{Broker: c.broker, Account: c.account, From: from, To: to, Transactions: st.Transactions}); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join("testdata", c.file)
		if *update {
			if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf.Bytes(), want) {
			t.Errorf("%s differs (run with -update to accept):\n%s", path, buf.Bytes())
		}
	}
}
