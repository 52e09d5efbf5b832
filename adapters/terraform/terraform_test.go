//go:build unix

package terraform_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cinet/cinet/adapters"
	"github.com/cinet/cinet/adapters/adaptertest"
	"github.com/cinet/cinet/adapters/terraform"
	"github.com/cinet/cinet/descriptor"
)

// The test binary is its own node agent: the module's nodes start it
// with CINET_TERRAFORM_AGENT=1.
func TestMain(m *testing.M) {
	if os.Getenv("CINET_TERRAFORM_AGENT") == "1" {
		os.Exit(terraform.Agent(os.Args[1:]))
	}
	os.Exit(m.Run())
}

// newAdapter returns an adapter over a fresh data directory whose
// placements are all released when the test ends, so that no node's
// agent outlives it.
func newAdapter(t testing.TB, module string, vars map[string]any) *terraform.Terraform {
	t.Helper()
	return newAdapterWith(t, module, vars, nil)
}

// overHTTP makes the nodes report to the agent server, as nodes off the
// broker's machine do. A silence long enough that no starved agent on a
// loaded machine is taken for lost.
var overHTTP = map[string]any{"reportListen": "127.0.0.1:0", "agentSilence": "30s"}

func newAdapterWith(t testing.TB, module string, vars, extra map[string]any) *terraform.Terraform {
	t.Helper()
	dir := t.TempDir()
	c := map[string]any{
		"binary": adaptertest.Tofu(t), "dataDir": dir, "cpus": 8, "memory": "16Gi",
		"agent": []string{"env", "CINET_TERRAFORM_AGENT=1", os.Args[0]}, "agentStart": "30s",
	}
	if module != "" {
		c["module"] = module
	}
	if vars != nil {
		c["variables"] = vars
	}
	for k, v := range extra {
		c[k] = v
	}
	raw, _ := json.Marshal(c)
	a, err := adapters.New("terraform", raw)
	if err != nil {
		t.Fatal(err)
	}
	tf := a.(*terraform.Terraform)
	t.Cleanup(func() {
		ents, _ := os.ReadDir(filepath.Join(dir, "placements"))
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		for _, e := range ents {
			if err := tf.Release(ctx, e.Name()); err != nil {
				t.Errorf("releasing %s at the end of the test: %v", e.Name(), err)
			}
		}
		tf.Close()
	})
	return tf
}

// TestConformance runs the suite with nodes reporting into the
// placement's directory, and over HTTP to the agent server.
func TestConformance(t *testing.T) {
	for _, mode := range []struct {
		name  string
		extra map[string]any
	}{{"directory", nil}, {"http", overHTTP}} {
		t.Run(mode.name, func(t *testing.T) {
			adaptertest.Run(t, adaptertest.Suite{
				New:   func(t testing.TB) adapters.Adapter { return newAdapterWith(t, "", nil, mode.extra) },
				Shell: []string{"/bin/sh", "-c"},
				Wait:  2 * time.Minute,
			})
		})
	}
}

var ctx = context.Background()

func task(name, script string) descriptor.Task {
	return descriptor.Task{Name: name, Command: []string{"/bin/sh", "-c", script}}
}

func wait(t *testing.T, a adapters.Adapter, id string) adapters.Status {
	t.Helper()
	return adaptertest.Wait(t, a, id, 20*time.Millisecond, 2*time.Minute)
}

// lifecycle reads how far the executor got with a placement.
func lifecycle(t *testing.T, a *terraform.Terraform, id string) map[string]any {
	t.Helper()
	var lc map[string]any
	data, err := os.ReadFile(filepath.Join(a.PlacementDir(id), "lifecycle.json"))
	if err == nil {
		err = json.Unmarshal(data, &lc)
	}
	if err != nil {
		t.Fatal(err)
	}
	return lc
}

// stateResources lists what the placement's state holds.
func stateResources(t *testing.T, a *terraform.Terraform, id string) []any {
	t.Helper()
	var st struct {
		Resources []any `json:"resources"`
	}
	data, err := os.ReadFile(filepath.Join(a.PlacementDir(id), "terraform.tfstate"))
	if err == nil {
		err = json.Unmarshal(data, &st)
	}
	if err != nil {
		t.Fatal(err)
	}
	return st.Resources
}

// TestHalfway: a configuration that fails half-way is destroyed: the
// placement fails with the tool's own diagnostics, the resource that was
// made is gone (its marker too), and the state is empty.
func TestHalfway(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "first")
	a := newAdapter(t, "testdata/halfway", map[string]any{"marker": marker})
	if err := a.Provision(ctx, adapters.Placement{ID: "half", Job: "j", Tasks: []descriptor.Task{task("main", "true")}}); err != nil {
		t.Fatal(err)
	}
	st := wait(t, a, "half")
	if st.State != adapters.Failed || !strings.Contains(st.Detail, "tofu apply") || !strings.Contains(st.Detail, "quota exceeded for instance family") {
		t.Fatalf("status %+v: want failed, with the tool's diagnostics", st)
	}
	if err := a.Release(ctx, "half"); err != nil {
		t.Fatal(err)
	}
	if lc := lifecycle(t, a, "half"); lc["phase"] != "destroyed" {
		t.Fatalf("lifecycle %v", lc)
	}
	if _, err := os.Stat(marker); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("what the apply made is still there: %v", err)
	}
	if res := stateResources(t, a, "half"); len(res) != 0 {
		t.Fatalf("the state still holds %v", res)
	}
	if _, err := os.Stat(filepath.Join(a.PlacementDir("half"), "plan.tfplan")); err != nil {
		t.Fatalf("the plan was not kept: %v", err)
	}
}

// TestReleaseDuringApply: releasing a placement whose apply is under way
// interrupts the tool, which stops cleanly, and destroys what it made.
func TestReleaseDuringApply(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "slow")
	a := newAdapter(t, "testdata/slow", map[string]any{"marker": marker})
	if err := a.Provision(ctx, adapters.Placement{ID: "slow", Job: "j", Tasks: []descriptor.Task{task("main", "true")}}); err != nil {
		t.Fatal(err)
	}
	// Once the second resource's command runs (it writes its pid), the
	// first is in the state.
	for {
		if b, err := os.ReadFile(marker + ".pid"); err == nil && strings.HasSuffix(string(b), "\n") {
			break
		}
		if st, err := a.Status(ctx, "slow"); err != nil || st.State != adapters.Running {
			t.Fatalf("status while applying: %+v %v", st, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := a.Release(ctx, "slow"); err != nil {
		t.Fatal(err)
	}
	st, err := a.Status(ctx, "slow")
	if err != nil || st.State != adapters.Cancelled {
		t.Fatalf("status after release: %+v %v", st, err)
	}
	log, _ := os.ReadFile(filepath.Join(a.PlacementDir("slow"), "tool.log"))
	if _, err := os.Stat(marker); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("what the interrupted apply made is still there: %v; the tool's log:\n%s", err, log)
	}
	if res := stateResources(t, a, "slow"); len(res) != 0 {
		t.Fatalf("the state still holds %v", res)
	}
	// The resource being made when the tool was interrupted left nothing
	// running.
	var pid int
	if _, err := fmt.Sscan(string(must(os.ReadFile(marker+".pid"))), &pid); err != nil || pid <= 0 {
		t.Fatalf("the slow resource's pid: %v", err)
	}
	if running(pid) {
		syscall.Kill(pid, syscall.SIGKILL)
		t.Errorf("the interrupted resource's process %d still runs", pid)
	}
	if !strings.Contains(string(log), "Interrupt received") {
		t.Errorf("the tool was not interrupted gracefully; its log:\n%s", log)
	}
}

// TestTemplatesAreLiteral: a tenant's task that looks like a template
// ("${file(…)}") reaches the module as written, not evaluated by the
// tool on the broker's machine.
func TestTemplatesAreLiteral(t *testing.T) {
	a := newAdapter(t, "testdata/seen", nil)
	hostile := task("main", `echo '${file("/etc/hostname")} %{ if true }yes%{ endif } $${x}' "$CINET_RENDEZVOUS_PORT"`)
	hostile.Env = map[string]string{"SECRET": "${path.cwd}"}
	if err := a.Provision(ctx, adapters.Placement{ID: "tpl", Job: "j", Tasks: []descriptor.Task{hostile}}); err != nil {
		t.Fatal(err)
	}
	if st := wait(t, a, "tpl"); st.State != adapters.Succeeded {
		t.Fatalf("status %+v", st)
	}
	data, err := os.ReadFile(filepath.Join(a.PlacementDir("tpl"), "tasks-seen.json"))
	if err != nil {
		t.Fatal(err)
	}
	var seen []struct {
		Name    string            `json:"name"`
		Command []string          `json:"command"`
		Env     map[string]string `json:"env"`
	}
	if err := json.Unmarshal(data, &seen); err != nil {
		t.Fatalf("%v: %s", err, data)
	}
	if len(seen) != 1 || !slices.Equal(seen[0].Command, hostile.Command) || seen[0].Env["SECRET"] != "${path.cwd}" {
		t.Fatalf("the module was given %s, not the task as written", data)
	}
	if got := adaptertest.Logs(t, a, "tpl", "main", 0, "stdout"); got != `${file("/etc/hostname")} %{ if true }yes%{ endif } $${x} 4242`+"\n" {
		t.Fatalf("the task printed %q", got)
	}
}

// TestBadConfig: a missing or wrong tool, and a configuration short of
// what the adapter needs, are refused with what to fix.
func TestBadConfig(t *testing.T) {
	dir := t.TempDir()
	script := func(name, out string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("#!/bin/sh\necho '"+out+"'\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	old := script("old-tofu", "OpenTofu v1.5.7")
	other := script("other", "Something v9.0.0")
	for _, tc := range []struct {
		name, config, want string
	}{
		{"no binary", `{"binary": "/nonexistent/tofu", "dataDir": "` + dir + `", "cpus": 1, "memory": "1Gi"}`, ".ci/build-tofu"},
		{"too old", `{"binary": "` + old + `", "dataDir": "` + dir + `", "cpus": 1, "memory": "1Gi"}`, "needs OpenTofu 1.6.0 or later"},
		{"not the tool", `{"binary": "` + other + `", "dataDir": "` + dir + `", "cpus": 1, "memory": "1Gi"}`, "not OpenTofu or Terraform"},
		{"no data dir", `{"cpus": 1, "memory": "1Gi"}`, "dataDir is required"},
		{"no capacity", `{"dataDir": "` + dir + `"}`, "cpus and memory are required"},
		{"unknown field", `{"dataDir": "` + dir + `", "cpus": 1, "memory": "1Gi", "regoin": "x"}`, "unknown field"},
		{"reserved variable", `{"binary": "` + adaptertest.Tofu(t) + `", "dataDir": "` + dir + `", "cpus": 1, "memory": "1Gi", "variables": {"tasks": []}}`, "executor's own"},
		{"no module", `{"binary": "` + adaptertest.Tofu(t) + `", "module": "/nonexistent", "dataDir": "` + dir + `", "cpus": 1, "memory": "1Gi"}`, "module"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := adapters.New("terraform", []byte(tc.config))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one that says %q", err, tc.want)
			}
		})
	}
	a := newAdapter(t, "", nil)
	if !strings.HasPrefix(a.Tool(), "OpenTofu v1.") {
		t.Errorf("tool %q", a.Tool())
	}
	svc := adapters.Placement{ID: "svc", Job: "j", Tasks: []descriptor.Task{task("main", "true")}, Service: &descriptor.Service{Replicas: 1}}
	if err := a.Provision(ctx, svc); err == nil || !strings.Contains(err.Error(), "services") {
		t.Errorf("a service was accepted: %v", err)
	}
}

// TestLostNode: a node whose agent dies is lost: the placement ends lost,
// naming the node; the other node is stopped, and the dead agent's task
// does not outlive the placement's destroy.
func TestLostNode(t *testing.T) {
	a := newAdapter(t, "", nil)
	p := adapters.Placement{ID: "lost", Job: "j", Nodes: 2, Tasks: []descriptor.Task{task("main", `echo "up $$"; exec sleep 600`)}}
	if err := a.Provision(ctx, p); err != nil {
		t.Fatal(err)
	}
	pids := make([]int, 2)
	for rank := range pids {
		for pids[rank] == 0 {
			fmt.Sscanf(adaptertest.Logs(t, a, "lost", "main", rank, "stdout"), "up %d", &pids[rank])
			time.Sleep(20 * time.Millisecond)
		}
	}
	events, err := os.ReadFile(filepath.Join(a.PlacementDir("lost"), "nodes", "1", "events.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var up struct{ PID int }
	line, _, _ := strings.Cut(string(events), "\n")
	if err := json.Unmarshal([]byte(line), &up); err != nil || up.PID <= 0 {
		t.Fatalf("node 1's first record %q: %v", line, err)
	}
	if err := syscall.Kill(up.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	st := wait(t, a, "lost")
	if st.State != adapters.Lost || !strings.Contains(st.Detail, "node 1 of 2") {
		t.Fatalf("status %+v: want lost, naming node 1", st)
	}
	if err := a.Release(ctx, "lost"); err != nil {
		t.Fatal(err)
	}
	for rank, pid := range pids {
		if running(pid) {
			t.Errorf("node %d's task (pid %d) outlived the placement", rank, pid)
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// running reports whether a process lives: it exists and is not a zombie
// waiting for init (which adopts what a dead agent leaves) to reap it.
func running(pid int) bool {
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	_, rest, _ := strings.Cut(string(st), ") ")
	return !strings.HasPrefix(rest, "Z")
}

// TestAgentServer: nodes reporting over HTTP reach the placement only
// with its token, write only what an agent could have written, and a
// node that falls silent is lost.
func TestAgentServer(t *testing.T) {
	// Node 1's agent is killed below: its node is lost once silent 5s.
	a := newAdapterWith(t, "", nil, map[string]any{"reportListen": "127.0.0.1:0", "agentSilence": "5s"})
	p := adapters.Placement{ID: "remote", Job: "j", Nodes: 2, Tasks: []descriptor.Task{task("main", `echo "node $CINET_NODE_RANK"; exec sleep 600`)}}
	if err := a.Provision(ctx, p); err != nil {
		t.Fatal(err)
	}
	dir := a.PlacementDir("remote")
	token, err := os.ReadFile(filepath.Join(dir, "agent.token"))
	if err != nil {
		t.Fatal(err)
	}
	conf, _ := os.ReadFile(filepath.Join(dir, "main.tf.json"))
	base := a.ReportURL() + "/placements/remote/" + string(token)
	if !strings.Contains(string(conf), base) {
		t.Fatalf("the nodes are not told to report to %s:\n%s", base, conf)
	}
	for rank := range 2 {
		for !strings.Contains(adaptertest.Logs(t, a, "remote", "main", rank, "stdout"), "node") {
			time.Sleep(20 * time.Millisecond)
		}
	}
	call := func(method, path, body string) (int, string) {
		req, _ := http.NewRequest(method, path, strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	events := filepath.Join(dir, "nodes", "0", "events.jsonl")
	before, _ := os.ReadFile(events)
	for _, tc := range []struct {
		name, method, path, body string
		status                   int
	}{
		{"another token", "GET", a.ReportURL() + "/placements/remote/" + strings.Repeat("0", 64) + "/control?rank=0", "", 403},
		{"another placement", "GET", a.ReportURL() + "/placements/other/" + string(token) + "/control?rank=0", "", 403},
		{"a path", "GET", a.ReportURL() + "/placements/../" + string(token) + "/control?rank=0", "", 404},
		{"no such node", "GET", base + "/control?rank=2", "", 400},
		{"up twice", "POST", base + "/events?rank=0", `{"kind":"up","time":"2026-11-30T00:00:00Z"}`, 409},
		{"a task out of order", "POST", base + "/events?rank=0", `{"kind":"started","time":"2026-11-30T00:00:00Z","task":5}`, 409},
		{"not one line", "POST", base + "/events?rank=0", "{\"kind\":\n\"up\"}", 400},
		{"an event too large", "POST", base + "/events?rank=0", `{"kind":"up","x":"` + strings.Repeat("a", 5000) + `"}`, 413},
		{"output at a wrong offset", "POST", base + "/logs?rank=0&task=main&stream=stdout&offset=999", "x", 409},
		{"output of no task", "POST", base + "/logs?rank=0&task=../../x&stream=stdout&offset=0", "x", 400},
		{"output already had", "POST", base + "/logs?rank=0&task=main&stream=stdout&offset=0", "node 0\n", 204},
	} {
		if status, body := call(tc.method, tc.path, tc.body); status != tc.status {
			t.Errorf("%s: %d %s, want %d", tc.name, status, body, tc.status)
		}
	}
	if after, _ := os.ReadFile(events); !bytes.Equal(before, after) {
		t.Errorf("refused events changed the record:\n%s\n%s", before, after)
	}
	if got := adaptertest.Logs(t, a, "remote", "main", 0, "stdout"); got != "node 0\n" {
		t.Errorf("output %q after a chunk sent again", got)
	}
	// A node that floods its output is cut off at 64 MiB, keeping what it
	// had.
	chunk := strings.Repeat("x", 1<<20)
	offset, status := int64(0), 0
	for range 70 {
		if status, _ = call("POST", fmt.Sprintf("%s/logs?rank=0&task=main&stream=stderr&offset=%d", base, offset), chunk); status != 204 {
			break
		}
		offset += int64(len(chunk))
	}
	if status != 413 || offset > 64<<20 {
		t.Errorf("a flood of output: %d after %d bytes", status, offset)
	}
	// Node 1's agent dies: silent past agentSilence, its node is lost.
	line, _, _ := strings.Cut(string(must(os.ReadFile(filepath.Join(dir, "nodes", "1", "events.jsonl")))), "\n")
	var up struct{ PID int }
	if err := json.Unmarshal([]byte(line), &up); err != nil || up.PID <= 0 {
		t.Fatalf("node 1's first record %q: %v", line, err)
	}
	syscall.Kill(up.PID, syscall.SIGKILL)
	// What a dead agent cannot remove: its node's own directory (on a
	// cloud node, the machine goes with it).
	sum := sha256.Sum256([]byte(base))
	t.Cleanup(func() { os.RemoveAll(filepath.Join(os.TempDir(), fmt.Sprintf("cinet-agent-remote-1-%x", sum[:8]))) })
	st := wait(t, a, "remote")
	if st.State != adapters.Lost || !strings.Contains(st.Detail, "node 1 of 2") {
		t.Fatalf("status %+v: want lost, naming node 1", st)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestNodeWatch: when the infrastructure says a node is gone (a Spot
// interruption), the placement is lost at once, naming the node and why,
// and the other node is stopped.
func TestNodeWatch(t *testing.T) {
	a := newAdapterWith(t, "", nil, map[string]any{"reportListen": "127.0.0.1:0", "agentSilence": "10m"})
	var asked atomic.Int32
	a.WatchNodes(func(_ context.Context, p adapters.Placement) (map[int]string, error) {
		asked.Add(1)
		// Gone once node 1 has started its task.
		if strings.Contains(adaptertest.Logs(t, a, p.ID, "main", 1, "stdout"), "node") {
			return map[int]string{1: "instance i-0b is terminated: Spot instance termination"}, nil
		}
		return nil, nil
	}, 50*time.Millisecond)
	p := adapters.Placement{ID: "spot", Job: "j", Nodes: 2, Tasks: []descriptor.Task{task("main", `echo "node $CINET_NODE_RANK"; echo started; exec sleep 600`)}}
	if err := a.Provision(ctx, p); err != nil {
		t.Fatal(err)
	}
	st := wait(t, a, "spot")
	if st.State != adapters.Lost || st.Detail != "node 1 of 2 is gone: instance i-0b is terminated: Spot instance termination" {
		t.Fatalf("status %+v", st)
	}
	if asked.Load() == 0 {
		t.Fatal("the watch was never asked")
	}
}
