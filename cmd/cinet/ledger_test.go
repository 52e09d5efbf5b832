package main

import (
	"bytes"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/transparency-dev/formats/log"
	tproof "github.com/transparency-dev/formats/proof"
	mproof "github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"

	"github.com/cinet/cinet/identity"
	"github.com/cinet/cinet/settlement"
	. "github.com/cinet/cinet/settlement/settlementtest"
)

const at = "--at=2026-11-30T12:00:00Z"

// brokerDir makes a data directory holding k as the broker key, and
// writes the fixture offer beside it.
func brokerDir(t *testing.T, k *identity.Key) (dir, offer string) {
	t.Helper()
	dir = t.TempDir()
	if err := identity.WriteKeyFile(filepath.Join(dir, "broker.key"), k); err != nil {
		t.Fatal(err)
	}
	offer = filepath.Join(dir, "offer.yaml")
	if err := os.WriteFile(offer, []byte(OfferYAML(k.ID())), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, offer
}

// recordsFile writes n hourly records of placement pl, signed by exec, one
// per line, starting hours before Now.
func recordsFile(t *testing.T, dir, name string, home, exec *identity.Key, pl string, n, hours int, extra ...string) (string, []settlement.RecordID) {
	t.Helper()
	doc := Offer(t, exec)
	var b bytes.Buffer
	var ids []settlement.RecordID
	for i := range n {
		r := Record(doc, home, exec, pl, Now.Add(time.Duration(i-hours)*time.Hour), time.Hour)
		r.Sequence = int64(i + 1)
		id, err := r.ID()
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
		b.Write(Seal(t, exec, r))
		b.WriteByte('\n')
	}
	for _, e := range extra {
		b.WriteString(e + "\n")
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path, ids
}

func TestLedgerIngestBalanceStatement(t *testing.T) {
	dir, offer := brokerDir(t, HomeKey)
	data := "--data=" + dir
	good, ids := recordsFile(t, dir, "good.jsonl", HomeKey, HomeKey, "pl-1", 5, 10)
	bad, _ := recordsFile(t, dir, "bad.jsonl", HomeKey, HomeKey, "pl-2", 1, 10, "not an envelope", "")

	code, out, errOut := cli(t, "", "ledger", "ingest", data, at, "--offer", offer, good)
	if code != 0 || !strings.Contains(out, "5 accepted, 0 duplicate, 0 refused") || !strings.Contains(out, string(ids[0])) {
		t.Fatalf("ingest: %d\n%s\n%s", code, out, errOut)
	}
	// Again: duplicates, nothing new; the offer is remembered.
	if code, out, _ := cli(t, "", "ledger", "ingest", data, at, good); code != 0 || !strings.Contains(out, "0 accepted, 5 duplicate, 0 refused") {
		t.Fatalf("ingest again: %d\n%s", code, out)
	}
	code, out, errOut = cli(t, "", "ledger", "ingest", data, at, bad, "-o", "json")
	var results []map[string]any
	if code != 1 || json.Unmarshal([]byte(out), &results) != nil || len(results) != 2 || results[1]["status"] != "refused" || results[1]["reason"] != "malformed" || results[1]["input"] != bad+":2" || !strings.Contains(errOut, "1 of 2 records refused") {
		t.Fatalf("ingest with a bad line: %d\n%s\n%s", code, out, errOut)
	}
	// A record from the future is refused, as the clock says.
	if code, out, _ := cli(t, "", "ledger", "ingest", data, "--at=2026-11-30T00:00:00Z", good); code != 0 || !strings.Contains(out, "5 duplicate") {
		t.Fatalf("ingest with an earlier clock: %d\n%s", code, out)
	}

	code, out, _ = cli(t, "", "ledger", "balance", data, "-o", "json")
	var bal struct {
		Balances []struct {
			Account, Currency, Amount string
		}
		TrialBalance map[string]string
	}
	if code != 0 || json.Unmarshal([]byte(out), &bal) != nil || bal.TrialBalance["CNY"] != "0" || len(bal.Balances) != 3 {
		t.Fatalf("balance: %d\n%s", code, out)
	}
	tenant := string(settlement.AccountOf("tenant", TenantKey.ID()))
	if code, out, _ := cli(t, "", "ledger", "balance", data, "--account", tenant); code != 0 || !strings.Contains(out, tenant+"  CNY") || !strings.Contains(out, "trial balance CNY: 0") {
		t.Fatalf("balance --account: %d\n%s", code, out)
	}
	code, out, _ = cli(t, "", "ledger", "statement", data, "--account", tenant, "--period", "2026-11")
	if code != 0 || strings.Count(out, "job-pl-") != 6 || !strings.Contains(out, "net CNY: -") {
		t.Fatalf("statement: %d\n%s", code, out)
	}
	for _, args := range [][]string{
		{"ledger", "statement", data, "--account", tenant},
		{"ledger", "statement", data, "--account", "bank/x", "--period", "2026-11"},
		{"ledger", "statement", data, "--account", tenant, "--period", "November"},
		{"ledger", "balance", data, "--account", "tenant"},
		{"ledger", "ingest", data, "--at", "yesterday", good},
	} {
		if code, _, errOut := cli(t, "", args...); code != 2 || errOut == "" {
			t.Errorf("%v: exit %d, want 2 with a message; %q", args, code, errOut)
		}
	}

	// FOCUS export of the tenant's charges.
	code, out, _ = cli(t, "", "audit", "export", data, "--format", "focus", "--period", "2026-11", "--account", tenant)
	rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if code != 0 || err != nil || len(rows) < 7 || rows[0][0] != "BilledCost" {
		t.Fatalf("export: %d %v\n%s", code, err, out)
	}
}

// TestAuditProveVerifiesWithStockVerifiers: the files 'cinet audit prove'
// writes verify with 'cinet audit verify' and with the transparency-dev
// and x/mod verifiers, which share no code with cinet's; changing any
// byte of the entry, the proof or the checkpoint makes both fail.
func TestAuditProveVerifiesWithStockVerifiers(t *testing.T) {
	dir, offer := brokerDir(t, HomeKey)
	data := "--data=" + dir
	good, ids := recordsFile(t, dir, "good.jsonl", HomeKey, HomeKey, "pl-1", 7, 10)
	if code, out, errOut := cli(t, "", "ledger", "ingest", data, at, "--offer", offer, good); code != 0 {
		t.Fatalf("ingest: %d\n%s\n%s", code, out, errOut)
	}
	code, cp1, errOut := cli(t, "", "audit", "checkpoint", data)
	if code != 0 || !strings.HasPrefix(cp1, LogOrigin(HomeKey.ID())+"\n14\n") {
		t.Fatalf("checkpoint: %d\n%s\n%s", code, cp1, errOut)
	}
	vkey := strings.TrimSpace(strings.SplitN(errOut, "verifier key: ", 2)[1])
	// cinet id prints the same verifier key from the broker's key file.
	var id map[string]string
	if code, out, errOut := cli(t, "", "id", "--key", filepath.Join(dir, "broker.key"), "-o", "json"); code != 0 || json.Unmarshal([]byte(out), &id) != nil || id["vkey"] != vkey {
		t.Fatalf("cinet id: %d %s %s; want vkey %s", code, out, errOut, vkey)
	}

	proofs := filepath.Join(dir, "proofs")
	code, out, errOut := cli(t, "", "audit", "prove", data, "--record", string(ids[3]), "--out", proofs)
	if code != 0 || strings.Count(out, "\n") != 3 || !strings.Contains(errOut, "cinet audit verify") {
		t.Fatalf("prove: %d\n%s\n%s", code, out, errOut)
	}
	base := strings.TrimSuffix(strings.Fields(out)[0], ".entry")
	read := func(ext string) []byte {
		b, err := os.ReadFile(base + ext)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	entry, checkpoint, receipt := read(".entry"), read(".checkpoint"), read(".tlog-proof")
	if !bytes.Contains(entry, []byte(`"type":"usage-record"`)) {
		t.Fatalf("entry: %s", entry)
	}
	ours := func(entry, checkpoint, receipt []byte) error {
		tmp := t.TempDir()
		files := []string{filepath.Join(tmp, "e"), filepath.Join(tmp, "c"), filepath.Join(tmp, "p")}
		for i, b := range [][]byte{entry, checkpoint, receipt} {
			os.WriteFile(files[i], b, 0o644)
		}
		code, _, errOut := cli(t, "", "audit", "verify", "--vkey", vkey, "--entry", files[0], "--checkpoint", files[1], "--proof", files[2])
		if code != 0 {
			return fmt.Errorf("exit %d: %s", code, errOut)
		}
		return nil
	}
	if err := ours(entry, checkpoint, receipt); err != nil {
		t.Fatal(err)
	}
	if err := stockVerify(vkey, entry, checkpoint, receipt); err != nil {
		t.Fatal(err)
	}
	for i, part := range [][]byte{entry, checkpoint, receipt} {
		for j := range part {
			bad := [3][]byte{entry, checkpoint, receipt}
			bad[i] = bytes.Clone(part)
			bad[i][j] ^= 0x01
			if sameBase64(part, bad[i]) {
				continue // a padding bit of base64: the same bytes, decoded
			}
			if stockVerify(vkey, bad[0], bad[1], bad[2]) == nil {
				t.Fatalf("the stock verifiers accepted file %d with byte %d changed", i, j)
			}
			if j%16 == 0 { // the CLI is slower; every 16th byte of each file
				if ours(bad[0], bad[1], bad[2]) == nil {
					t.Fatalf("cinet audit verify accepted file %d with byte %d changed", i, j)
				}
			}
		}
	}

	// More entries, a second checkpoint, and consistency between the two.
	more, _ := recordsFile(t, dir, "more.jsonl", HomeKey, HomeKey, "pl-9", 3, 5)
	if code, _, _ := cli(t, "", "ledger", "ingest", data, at, more); code != 0 {
		t.Fatal("second ingest failed")
	}
	old := filepath.Join(dir, "old.checkpoint")
	os.WriteFile(old, []byte(cp1), 0o644)
	newer := filepath.Join(dir, "new.checkpoint")
	if code, _, _ := cli(t, "", "audit", "checkpoint", data, "--out", newer); code != 0 {
		t.Fatal("second checkpoint failed")
	}
	if code, out, errOut := cli(t, "", "audit", "consistency", data, old, newer); code != 0 || !strings.Contains(out, "at 14 entries is a prefix of the log at 20") {
		t.Fatalf("consistency: %d\n%s\n%s", code, out, errOut)
	}
	if code, out, _ := cli(t, "", "audit", "consistency", data, "3", "20"); code != 0 || !strings.Contains(out, "consistent") {
		t.Fatalf("consistency by size: %d\n%s", code, out)
	}
	forged := strings.Replace(cp1, "\n14\n", "\n15\n", 1)
	os.WriteFile(old, []byte(forged), 0o644)
	if code, _, errOut := cli(t, "", "audit", "consistency", data, old, newer); code != 1 || !strings.Contains(errOut, "does not verify") {
		t.Fatalf("consistency from a forged checkpoint: %d %s", code, errOut)
	}
}

// sameBase64 reports whether a and b differ only in a line that decodes,
// as standard base64, to the same bytes: a change to the unused low bits
// of a line's last character, which decoders that are not strict ignore.
func sameBase64(a, b []byte) bool {
	la, lb := bytes.Split(a, []byte("\n")), bytes.Split(b, []byte("\n"))
	if len(la) != len(lb) {
		return false
	}
	for k := range la {
		if bytes.Equal(la[k], lb[k]) {
			continue
		}
		da, errA := base64.StdEncoding.DecodeString(string(la[k]))
		db, errB := base64.StdEncoding.DecodeString(string(lb[k]))
		return errA == nil && errB == nil && bytes.Equal(da, db)
	}
	return false
}

// stockVerify checks an inclusion proof with x/mod's note verifier and
// transparency-dev's checkpoint, proof and Merkle code only.
func stockVerify(vkey string, entry, checkpoint, receipt []byte) error {
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return err
	}
	cp, _, _, err := log.ParseCheckpoint(checkpoint, v.Name(), v)
	if err != nil {
		return err
	}
	var p tproof.TLogProof
	if err := p.Unmarshal(receipt); err != nil {
		return err
	}
	if !bytes.Equal(p.Checkpoint, checkpoint) {
		return fmt.Errorf("the proof is for another checkpoint")
	}
	hashes := make([][]byte, len(p.Hashes))
	for i := range p.Hashes {
		hashes[i] = p.Hashes[i][:]
	}
	return mproof.VerifyInclusion(rfc6962.DefaultHasher, p.Index, cp.Size, rfc6962.DefaultHasher.HashLeaf(entry), hashes, cp.Hash)
}

func TestLedgerClearing(t *testing.T) {
	homeDir, _ := brokerDir(t, HomeKey)
	execDir, offer := brokerDir(t, ExecKey) // the executing broker's capacity
	file, _ := recordsFile(t, execDir, "usage.jsonl", HomeKey, ExecKey, "pl-x", 4, 10)
	for _, x := range []struct{ dir, other string }{{homeDir, ExecKey.ID().String()}, {execDir, HomeKey.ID().String()}} {
		if code, out, errOut := cli(t, "", "ledger", "ingest", "--data="+x.dir, "--peer", x.other, at, "--offer", offer, file); code != 0 {
			t.Fatalf("ingest: %d\n%s\n%s", code, out, errOut)
		}
	}
	statement := filepath.Join(homeDir, "nov.statement")
	code, _, errOut := cli(t, "", "ledger", "clearing", "issue", "--data="+homeDir, "--peer", ExecKey.ID().String(), at,
		"--with", ExecKey.ID().String(), "--period", "2026-11-30T00:00:00Z/2026-11-30T12:00:00Z", "--out", statement)
	if code != 0 || !strings.Contains(errOut, "4 records") || !strings.Contains(errOut, "issuer owes counterparty") {
		t.Fatalf("issue: %d\n%s", code, errOut)
	}
	counter := filepath.Join(execDir, "nov.countersignature")
	if code, _, errOut := cli(t, "", "ledger", "clearing", "countersign", "--data="+execDir, "--peer", HomeKey.ID().String(), statement, "--out", counter); code != 0 {
		t.Fatalf("countersign: %d\n%s", code, errOut)
	}
	if code, out, errOut := cli(t, "", "ledger", "clearing", "accept", "--data="+homeDir, "--peer", ExecKey.ID().String(), counter); code != 0 || !strings.Contains(out, "countersigned by") {
		t.Fatalf("accept: %d\n%s\n%s", code, out, errOut)
	}
	if code, out, _ := cli(t, "", "ledger", "clearing", "verify", statement, counter); code != 0 || !strings.Contains(out, "and countersigned by "+ExecKey.ID().String()) {
		t.Fatalf("verify: %d\n%s", code, out)
	}
	if code, _, errOut := cli(t, "", "ledger", "clearing", "verify", counter, statement); code != 1 || errOut == "" {
		t.Fatalf("verify with the files swapped: %d %s", code, errOut)
	}
}
