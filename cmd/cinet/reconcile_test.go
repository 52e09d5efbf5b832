package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cinet/cinet/broker/service"
	"github.com/cinet/cinet/identity"
	"github.com/cinet/cinet/settlement"
	. "github.com/cinet/cinet/settlement/settlementtest"
)

// reconcileBroker runs a federated broker with no providers, whose
// clearing statements and checkpoints come every second.
func reconcileBroker(t *testing.T, k *identity.Key, members []identity.PrincipalID, bootstrap ...string) *service.Service {
	t.Helper()
	dir := t.TempDir()
	if err := identity.WriteKeyFile(filepath.Join(dir, "broker.key"), k); err != nil {
		t.Fatal(err)
	}
	var ms []string
	for _, m := range members {
		ms = append(ms, m.String())
	}
	cfg := fmt.Sprintf(`region: r-%s
data: %s
listen: 127.0.0.1:0
checkpoint: 1s
principals:
  - {did: %s, role: regulator}
federation:
  listen: [/ip4/127.0.0.1/tcp/0]
  bootstrap: [%s]
  members: [%s]
  statementPeriod: 1s
  statementDelay: 1s
`, k.ID().String()[9:15], dir, Key(6).ID(), strings.Join(bootstrap, ", "), strings.Join(ms, ", "))
	path := filepath.Join(dir, "broker.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := service.LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	svc, err := service.New(ctx, c, slog.New(slog.DiscardHandler))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("broker: %v", err)
		}
	})
	return svc
}

// TestReconcile: two brokers that posted the same cross-broker record
// reconcile — their statements are countersigned on both sides and each
// log is cosigned by the other; once one posts a record the other never
// saw, reconciliation fails and names the statement left open.
func TestReconcile(t *testing.T) {
	members := []identity.PrincipalID{HomeKey.ID(), ExecKey.ID()}
	a := reconcileBroker(t, HomeKey, members)
	b := reconcileBroker(t, ExecKey, members, a.Federation.Addrs()[0])
	ctx := context.Background()
	offer := Offer(t, ExecKey)
	for _, s := range []*service.Service{a, b} {
		if err := s.Settler.RegisterOffer(ctx, offer); err != nil {
			t.Fatal(err)
		}
	}
	post := func(placement string, at ...*service.Service) {
		t.Helper()
		rec := Record(offer, HomeKey, ExecKey, placement, time.Now().UTC().Add(-time.Minute).Truncate(time.Second), 30*time.Second)
		for _, s := range at {
			out, err := s.Settler.Ingest(ctx, [][]byte{Seal(t, ExecKey, rec)})
			if err != nil || out[0].Status != settlement.Accepted {
				t.Fatalf("ingest: %+v %v", out, err)
			}
		}
	}
	keyFile := filepath.Join(t.TempDir(), "regulator.key")
	if err := identity.WriteKeyFile(keyFile, Key(6)); err != nil {
		t.Fatal(err)
	}
	run := func() (int, reconciliation, string) {
		code, out, errOut := cli(t, "", "audit", "reconcile", a.URL(), b.URL(), "--key", keyFile, "-o", "json")
		var rec reconciliation
		if err := json.Unmarshal([]byte(out), &rec); err != nil {
			t.Fatalf("reconcile: %d %v\n%s\n%s", code, err, out, errOut)
		}
		return code, rec, errOut
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(60 * time.Second); !cond(); time.Sleep(100 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("after 60s: %s", what)
			}
		}
	}

	post("p-1", a, b)
	var last reconciliation
	waitFor("the two brokers reconcile", func() bool {
		code, rec, _ := run()
		last = rec
		return code == 0 && len(rec.Pairs) == 1 && rec.Pairs[0].Statements >= 2 && rec.Pairs[0].Records >= 2 &&
			rec.Pairs[0].Logged >= 2*rec.Pairs[0].Statements // each statement proven in both logs
	})
	for _, br := range last.Brokers {
		if br.Witnessed < 0 || len(br.WitnessedBy) != 1 {
			t.Fatalf("not witnessed by the other: %+v", last.Brokers)
		}
	}
	code, out, _ := cli(t, "", "audit", "reconcile", a.URL(), b.URL(), "--key", keyFile)
	if code != 0 || !strings.Contains(out, "reconciled: every check passed") {
		t.Fatalf("reconcile: %d\n%s", code, out)
	}

	// A record only A posted: B will not countersign A's statement.
	rec := Record(offer, HomeKey, ExecKey, "p-2", time.Now().UTC().Add(-2*time.Second).Truncate(time.Second), time.Second)
	if out, err := a.Settler.Ingest(ctx, [][]byte{Seal(t, ExecKey, rec)}); err != nil || out[0].Status != settlement.Accepted {
		t.Fatalf("ingest at a: %+v %v", out, err)
	}
	var errOut string
	waitFor("reconciliation fails on the statement b refused", func() bool {
		var code int
		code, last, errOut = run()
		for _, p := range last.Problems {
			if code == 1 && strings.Contains(p, "never countersigned") && strings.Contains(p, HomeKey.ID().String()+" → "+ExecKey.ID().String()) {
				return true
			}
		}
		return false
	})
	if !strings.Contains(errOut, "reconciliation found") {
		t.Fatalf("stderr: %s", errOut)
	}
}
