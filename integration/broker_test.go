package integration

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "github.com/cinet/cinet/broker/api/v1"
	"github.com/cinet/cinet/broker/client"
	"github.com/cinet/cinet/broker/jobs"
	"github.com/cinet/cinet/identity"
	"github.com/cinet/cinet/settlement"
	. "github.com/cinet/cinet/settlement/settlementtest"
	"github.com/cinet/cinet/settlement/storetest"
)

// A brokerProc is a 'cinet broker run' process and the keys around it.
type brokerProc struct {
	t    testing.TB
	dir  string
	url  string
	cmd  *exec.Cmd
	logs *bytes.Buffer
	keys map[string]string // role → key file
	// in runs the broker and its CLI through this command (a network
	// namespace's 'ip netns exec NS'); host is the address it listens on
	// (default 127.0.0.1).
	in   []string
	host string
}

var (
	brokerKey    = HomeKey
	tenantKey    = TenantKey
	providerKey  = ProviderKey
	regulatorKey = Key(6)
)

// newBrokerDir writes a broker's keys and configuration: a local provider
// with quantity instances of a CPU offer, a tenant and a regulator.
func newBrokerDir(t *testing.T, store string) *brokerProc {
	t.Helper()
	dir := t.TempDir()
	b := &brokerProc{t: t, dir: dir, keys: map[string]string{}}
	for role, k := range map[string]*identity.Key{"broker": brokerKey, "tenant": tenantKey, "provider": providerKey, "regulator": regulatorKey} {
		path := filepath.Join(dir, role+".key")
		if err := identity.WriteKeyFile(path, k); err != nil {
			t.Fatal(err)
		}
		b.keys[role] = path
	}
	cfg := fmt.Sprintf(`region: cn-east-1
data: %s
key: broker.key
listen: 127.0.0.1:0
fee: "0.02"
poll: 50ms
logLevel: info
principals:
  - {did: %s, role: tenant}
  - {did: %s, role: regulator}
providers:
  - provider: %s
    adapter: local
    config: {workdir: %s, killGrace: 1s}
`, dir, tenantKey.ID(), regulatorKey.ID(), providerKey.ID(), filepath.Join(dir, "work"))
	if store != "" {
		cfg += "store: " + store + "\n"
	}
	if err := os.WriteFile(filepath.Join(dir, "broker.yaml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return b
}

// appendConfig adds to the broker's configuration file.
func (b *brokerProc) appendConfig(yaml string) {
	b.t.Helper()
	f, err := os.OpenFile(filepath.Join(b.dir, "broker.yaml"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		b.t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(yaml); err != nil {
		b.t.Fatal(err)
	}
}

// start runs the broker and waits until it is ready.
func (b *brokerProc) start() {
	b.t.Helper()
	b.logs = &bytes.Buffer{}
	argv := append(slices.Clone(b.in), cinetBin, "broker", "run", "--config", filepath.Join(b.dir, "broker.yaml"))
	b.cmd = exec.Command(argv[0], argv[1:]...)
	stdout, err := b.cmd.StdoutPipe()
	if err != nil {
		b.t.Fatal(err)
	}
	b.cmd.Stderr = b.logs
	// If this test binary dies (a panic, its -timeout), the broker dies
	// with it rather than living on as an orphan.
	b.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := b.cmd.Start(); err != nil {
		b.t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		b.cmd.Process.Kill()
		b.cmd.Wait()
		b.t.Fatalf("the broker did not start: %v\n%s", err, b.logs)
	}
	b.url = line[strings.LastIndex(line, " ")+1 : len(line)-1]
	for deadline := time.Now().Add(10 * time.Second); ; {
		resp, err := http.Get(b.url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("the broker is not ready: %v\n%s", err, b.logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	b.t.Cleanup(func() { b.stop(syscall.SIGTERM) })
}

// stop signals the broker and waits for it.
func (b *brokerProc) stop(sig syscall.Signal) {
	if b.cmd == nil || b.cmd.ProcessState != nil {
		return
	}
	b.cmd.Process.Signal(sig)
	b.cmd.Wait()
}

// cli runs the cinet binary against the broker as a role and returns its
// exit status and output.
func (b *brokerProc) cli(role string, args ...string) (int, string, string) {
	b.t.Helper()
	argv := append(append(slices.Clone(b.in), cinetBin), args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), "CINET_BROKER="+b.url, "CINET_KEY="+b.keys[role], "CINET_CONFIG=/nonexistent")
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		b.t.Fatal(err)
	}
	return code, out.String(), errOut.String()
}

func (b *brokerProc) client(role string) *client.Client {
	k, err := identity.LoadKeyFile(b.keys[role])
	if err != nil {
		b.t.Fatal(err)
	}
	return &client.Client{Base: b.url, Key: k}
}

const localOffer = `apiVersion: cinet/v1
kind: Offer
metadata: {name: local-cpu}
computeId: %s
provider: %s
broker: %s
region: cn-east-1
zone: a
jurisdiction: CN
class:
  cpu: {arch: x86_64, count: 2}
  memory: 4Gi
quantity: %d
price:
  currency: USD
  minimumIncrement: 1s
  rates: {vcpuHour: "0.04", gibHour: "0.005"}
validUntil: 2030-12-31T00:00:00Z
sequence: 1
`

// registerOffer registers the provider's CPU offer through the CLI.
func (b *brokerProc) registerOffer(quantity int) {
	b.t.Helper()
	cid, _ := identity.NewComputeID(providerKey.ID(), "cn-east-1", "a", "cpu")
	path := filepath.Join(b.dir, "offer.yaml")
	os.WriteFile(path, []byte(fmt.Sprintf(localOffer, cid, providerKey.ID(), brokerKey.ID(), quantity)), 0o644)
	if code, out, errOut := b.cli("provider", "provider", "register", path); code != 0 {
		b.t.Fatalf("provider register: %d\n%s\n%s", code, out, errOut)
	}
}

func (b *brokerProc) jobFile(name, body string) string {
	path := filepath.Join(b.dir, name+".yaml")
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		b.t.Fatal(err)
	}
	return path
}

func job(name, script, extra string) string {
	return fmt.Sprintf(`apiVersion: cinet/v1
kind: Job
metadata: {name: %s}
tasks:
  - name: main
    command: ["/bin/sh", "-c", %q]
resources: {cpus: 1, memory: 64Mi}
estimatedRuntime: 10s
%s`, name, script, extra)
}

func (b *brokerProc) waitState(id string, states ...jobs.State) *v1.Job {
	b.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		j, err := b.client("tenant").Job(context.Background(), id)
		if err != nil {
			b.t.Fatal(err)
		}
		for _, s := range states {
			if j.State == s {
				return j
			}
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("job %s is %s after 60s, not %v: %+v", id, j.State, states, j.History)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestEndToEnd: a real broker process; jobs submitted with the CLI run as
// processes, are rated, posted, logged and provable; a listed exit code
// restarts a job; a cancelled job's processes stop and it is billed only
// for what ran.
// stores are the databases the broker's end-to-end and crash tests run on.
func stores(t *testing.T) map[string]func(t *testing.T) string {
	return map[string]func(t *testing.T) string{
		"sqlite":   func(*testing.T) string { return "" },
		"postgres": func(t *testing.T) string { return storetest.PostgresSchema(t) },
	}
}

func TestEndToEnd(t *testing.T) {
	for name, store := range stores(t) {
		t.Run("store="+name, func(t *testing.T) { endToEnd(t, store(t)) })
	}
}

// findProcess waits for a process of this machine whose command line
// holds token (a job's processes are in their own PID namespace: the
// host sees them, they do not see the host).
func findProcess(t *testing.T, token string) int {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		entries, _ := os.ReadDir("/proc")
		for _, e := range entries {
			pid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			if cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline")); err == nil && bytes.Contains(cmdline, []byte(token)) && bytes.Contains(cmdline, []byte("/bin/sh")) {
				return pid
			}
		}
	}
	t.Fatalf("no process with %q in its command line", token)
	return 0
}

func endToEnd(t *testing.T, store string) {
	b := newBrokerDir(t, store)
	b.start()
	b.registerOffer(4)
	token := fmt.Sprintf("e2e-%d", time.Now().UnixNano())

	// 1. A job that runs as a process: while it runs the test finds the
	// process; --wait follows it to the end.
	file := b.jobFile("proc", job("proc", ": "+token+"-proc; sleep 1; echo finished", ""))
	cmd := exec.Command(cinetBin, "job", "submit", file, "--wait", "-o", "json")
	cmd.Env = append(os.Environ(), "CINET_BROKER="+b.url, "CINET_KEY="+b.keys["tenant"], "CINET_CONFIG=/nonexistent")
	var out, progress bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &progress
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	findProcess(t, token+"-proc")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("job submit --wait: %v\n%s\n%s", err, out.String(), progress.String())
	}
	var j jobs.Job
	if err := json.Unmarshal(out.Bytes(), &j); err != nil {
		t.Fatal(err)
	}
	if j.Outcome != jobs.Succeeded || j.Cost == nil || j.Cost.Amount <= 0 || !strings.Contains(progress.String(), "running") {
		t.Fatalf("job %+v\n%s", j, progress.String())
	}
	if code, logs, _ := b.cli("tenant", "job", "logs", j.ID); code != 0 || logs != "finished\n" {
		t.Fatalf("job logs: %d %q", code, logs)
	}
	// Rated, posted, logged and provable, by the regulator, offline.
	rec := j.Attempts[0].Record
	if code, out, errOut := b.cli("regulator", "ledger", "statement", "--account", "tenant/"+tenantKey.ID().String(), "--period", j.CreatedAt.Format("2006-01")); code != 0 || !strings.Contains(out, rec) {
		t.Fatalf("statement: %d\n%s\n%s", code, out, errOut)
	}
	proofs := filepath.Join(b.dir, "proofs")
	code, files, errOut := b.cli("regulator", "audit", "prove", "--record", rec, "--out", proofs)
	if code != 0 {
		t.Fatalf("audit prove: %d %s", code, errOut)
	}
	verify := strings.Fields(errOut[strings.Index(errOut, "cinet audit verify"):])
	if code, out, errOut := b.cli("regulator", append([]string{"audit", "verify"}, verify[3:]...)...); code != 0 || !strings.Contains(out, "verified") {
		t.Fatalf("audit verify: %d %s %s (files %s)", code, out, errOut, files)
	}

	// 2. A listed exit code restarts the job.
	file = b.jobFile("flaky", job("flaky", `case "$CINET_PLACEMENT" in *-1) exit 3;; esac; exit 0`, "recovery: {maxRestarts: 1, onExitCodes: [3]}\n"))
	code, out2, errOut := b.cli("tenant", "job", "submit", file, "--wait", "-o", "json")
	if code != 0 {
		t.Fatalf("flaky job: %d\n%s\n%s", code, out2, errOut)
	}
	json.Unmarshal([]byte(out2), &j)
	if len(j.Attempts) != 2 || j.Restarts != 1 || j.Attempts[0].ExitCode != 3 || !j.Attempts[0].Settled || !j.Attempts[1].Settled {
		t.Fatalf("flaky job: %+v", j)
	}
	// A failure --wait reports in its exit status.
	file = b.jobFile("fails", job("fails", "exit 5", ""))
	if code, _, _ := b.cli("tenant", "job", "submit", file, "--wait"); code != 1 {
		t.Fatalf("a failing job: exit %d, want 1", code)
	}

	// A malformed job: located errors, exit 1, nothing submitted.
	bad := b.jobFile("bad", "apiVersion: cinet/v1\nkind: Job\nmetadata: {name: bad}\ntasks:\n  - name: main\n    command: [\"true\"]\nresources:\n  cpus: -2\n")
	if code, _, errOut := b.cli("tenant", "job", "submit", bad); code != 1 || !strings.Contains(errOut, bad+":8:") || !strings.Contains(errOut, "resources.cpus") {
		t.Fatalf("a malformed job: %d\n%s", code, errOut)
	}
	if code, _, errOut := b.cli("tenant", "job", "status", "j-doesnotexist"); code != 1 || !strings.Contains(errOut, "Not Found (404)") {
		t.Fatalf("an unknown job: %d %s", code, errOut)
	}

	// 3. Cancel: the process stops, and only what ran is billed.
	file = b.jobFile("long", job("long", ": "+token+"-long; sleep 30; touch finished", ""))
	code, idOut, errOut := b.cli("tenant", "job", "submit", file)
	if code != 0 {
		t.Fatalf("submit: %d %s", code, errOut)
	}
	id := strings.TrimSpace(idOut)
	pid := findProcess(t, token+"-long")
	time.Sleep(500 * time.Millisecond)
	if code, out, errOut := b.cli("tenant", "job", "cancel", id); code != 0 || !strings.Contains(out, "cancellation requested") {
		t.Fatalf("cancel: %d %s %s", code, out, errOut)
	}
	done := b.waitState(id, jobs.Settled)
	if done.Outcome != jobs.Cancelled {
		t.Fatalf("cancelled job: %+v", done)
	}
	if err := syscall.Kill(pid, 0); err == nil {
		t.Fatalf("the cancelled job's process %d still runs", pid)
	}
	if _, err := os.Stat(filepath.Join(b.dir, "work", done.Attempts[0].ID, "work", "finished")); err == nil {
		t.Fatal("the cancelled job ran to its end")
	}
	u := done.Attempts[0].Usage
	if u == nil || u.End.Sub(u.Start) > 10*time.Second || u.End.Sub(u.Start) < 400*time.Millisecond || done.Cost == nil {
		t.Fatalf("billed usage of the cancelled job: %+v, cost %+v", u, done.Cost)
	}
}

// tenantRecords counts, per usage record, the transactions in the tenant's
// statement of this month at the broker: each must be 1.
func (b *brokerProc) tenantRecords() (map[settlement.RecordID]int, int) {
	b.t.Helper()
	st, err := b.client("regulator").Statement(context.Background(), "tenant/"+tenantKey.ID().String(), time.Now().UTC().Format("2006-01"))
	if err != nil {
		b.t.Fatal(err)
	}
	var s struct {
		Transactions []struct{ Record settlement.RecordID } `json:"transactions"`
	}
	if err := jsonUnmarshal(st, &s); err != nil {
		b.t.Fatal(err)
	}
	seen := map[settlement.RecordID]int{}
	for _, tx := range s.Transactions {
		seen[tx.Record]++
	}
	return seen, len(s.Transactions)
}
