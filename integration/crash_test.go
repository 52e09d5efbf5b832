package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cinet/cinet/identity"
	"github.com/cinet/cinet/settlement"
	"github.com/cinet/cinet/settlement/auditlog"
	. "github.com/cinet/cinet/settlement/settlementtest"
	"github.com/cinet/cinet/settlement/sqlstore"
	"github.com/cinet/cinet/settlement/storetest"
)

// TestIngestSurvivesSIGKILL kills 'cinet ledger ingest' with SIGKILL at
// random moments, many times, issuing a checkpoint after each kill; then
// re-sends everything and checks that every record was posted exactly
// once, the books balance, and the final log is consistent with every
// checkpoint issued along the way. Set CINET_CRASH_SEED to replay a run.
func TestIngestSurvivesSIGKILL(t *testing.T) {
	for _, store := range []string{"sqlite", "postgres"} {
		t.Run("store="+store, func(t *testing.T) {
			dir := t.TempDir()
			location := filepath.Join(dir, "ledger.db")
			if store == "postgres" {
				location = storetest.PostgresSchema(t)
			}
			crashIngest(t, dir, location)
		})
	}
}

func crashIngest(t *testing.T, dir, location string) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("CINET_CRASH_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	t.Logf("CINET_CRASH_SEED=%d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))

	if err := identity.WriteKeyFile(filepath.Join(dir, "broker.key"), HomeKey); err != nil {
		t.Fatal(err)
	}
	offer := filepath.Join(dir, "offer.yaml")
	os.WriteFile(offer, []byte(OfferYAML(HomeKey.ID())), 0o644)
	// 9,000 records over 60 placements, in 30 files of 300. Round r sends
	// files r-1 and r, so that it re-sends what the last kill may have cut
	// short and then goes on; the ingest commits every 50 records, so a
	// kill lands between commits or in the middle of one.
	const records, files = 9000, 30
	doc := Offer(t, HomeKey)
	var ids []settlement.RecordID
	var paths []string
	for f := range files {
		var b bytes.Buffer
		for i := f * records / files; i < (f+1)*records/files; i++ {
			r := Record(doc, HomeKey, HomeKey, fmt.Sprintf("pl-%d", i%60), Now.Add(-time.Duration(200-i/60)*time.Hour), time.Hour)
			r.Sequence = int64(i/60 + 1)
			id, _ := r.ID()
			ids = append(ids, id)
			b.Write(Seal(t, HomeKey, r))
			b.WriteByte('\n')
		}
		p := filepath.Join(dir, fmt.Sprintf("usage-%02d.jsonl", f))
		os.WriteFile(p, b.Bytes(), 0o644)
		paths = append(paths, p)
	}
	flags := []string{"--data", dir, "--store", location, "--at", Now.Format(time.RFC3339)}
	ingest := func(files ...string) []string {
		return append(append([]string{"ledger", "ingest", "--batch", "50", "--offer", offer}, flags...), files...)
	}

	var checkpoints [][]byte
	kills := 0
	for round := range files {
		cmd := exec.Command(cinetBin, ingest(paths[max(round-1, 0):round+1]...)...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(rng.IntN(400)) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		switch err := cmd.Wait(); {
		case err == nil: // it finished first
		case strings.Contains(err.Error(), "signal: killed"):
			kills++
		default:
			t.Fatalf("round %d: ingest failed on its own: %v\n%s", round, err, tail(out.String()))
		}
		cp := runCinet(t, append([]string{"audit", "checkpoint"}, flags[:4]...)...)
		checkpoints = append(checkpoints, cp)
	}
	var sizes []string
	for _, note := range checkpoints {
		sizes = append(sizes, strings.SplitN(string(note), "\n", 3)[1])
	}
	t.Logf("%d of %d ingest processes killed; log sizes at the checkpoints after each round: %s", kills, files, strings.Join(sizes, " "))

	// Re-send everything, to completion.
	out := runCinet(t, ingest(paths...)...)
	if !bytes.Contains(out, []byte(" 0 refused")) {
		t.Fatalf("final ingest:\n%s", tail(string(out)))
	}

	st, err := sqlstore.Open(context.Background(), location)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	s, err := settlement.New(settlement.Config{Store: st, Key: HomeKey, Origin: "cinet.broker/" + identity.ProviderFingerprint(HomeKey.ID()), Now: func() time.Time { return Now }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// Every record posted, exactly once: one usage-record entry and one
	// transaction each, and nothing else in the log.
	var size int64
	var entries [][]byte
	err = st.View(ctx, func(tx settlement.ReadTx) error {
		rows, err := tx.Records(ids)
		if err != nil {
			return err
		}
		if len(rows) != records {
			return fmt.Errorf("%d of %d records are in the books", len(rows), records)
		}
		if size, err = tx.LogSize(); err != nil {
			return err
		}
		entries, err = tx.ReadEntries(0, size)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, e := range entries {
		var head struct {
			Type string `json:"type"`
			ID   string `json:"id"`
		}
		json.Unmarshal(e, &head)
		switch head.Type {
		case "usage-record":
			seen["record "+digest(e)]++
		case "ledger-transaction":
			seen["tx "+head.ID]++
		default:
			t.Errorf("unexpected log entry: %.200s", e)
		}
	}
	if len(seen) != 2*records || size != 2*records {
		t.Fatalf("the log has %d entries, %d distinct; want %d", size, len(seen), 2*records)
	}
	for k, n := range seen {
		if n != 1 {
			t.Fatalf("%s logged %d times", k, n)
		}
	}
	trial, err := s.TrialBalance(ctx)
	if err != nil || trial["CNY"] != 0 {
		t.Fatalf("trial balance %v %v", trial, err)
	}
	// The tenant was charged once per record: its balance is the sum of
	// the transactions' tenant lines.
	stmt, err := s.Statement(ctx, settlement.AccountOf("tenant", TenantKey.ID()), Now.Add(-200*time.Hour), Now.Add(time.Hour))
	if err != nil || len(stmt.Transactions) != records {
		t.Fatalf("statement: %d transactions, %v", len(stmt.Transactions), err)
	}
	bal, err := s.Balances(ctx, settlement.AccountOf("tenant", TenantKey.ID()))
	if err != nil || len(bal) != 1 || bal[0].Amount != stmt.Net["CNY"] {
		t.Fatalf("tenant balance %v, statement net %s", bal, stmt.Net["CNY"].Decimal())
	}
	// Every checkpoint issued along the way is a prefix of the final log.
	final, err := s.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i, note := range checkpoints {
		cp, err := auditlog.OpenCheckpoint(note, s.VerifierKey())
		if err != nil {
			t.Fatalf("checkpoint %d: %v", i, err)
		}
		if i > 0 {
			prev, _ := auditlog.OpenCheckpoint(checkpoints[i-1], s.VerifierKey())
			if cp.Size < prev.Size {
				t.Fatalf("checkpoint %d went back from %d to %d entries", i, prev.Size, cp.Size)
			}
		}
		p, err := s.ProveConsistency(ctx, cp.Size, final.Size)
		if err != nil {
			t.Fatal(err)
		}
		if err := auditlog.VerifyConsistency(cp, final, p); err != nil {
			t.Fatalf("checkpoint %d (size %d) is not consistent with the final log (size %d): %v", i, cp.Size, final.Size, err)
		}
	}
}

func tail(s string) string {
	if len(s) > 2000 {
		return "…" + s[len(s)-2000:]
	}
	return s
}
