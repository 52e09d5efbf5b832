// Package adaptertest is the conformance suite every adapter passes: it
// provisions placements of small shell tasks and checks status, exit
// codes, task order, logs, measured usage, timeouts, cancellation,
// idempotence and the node contract of multi-node placements through the
// adapters.Adapter interface alone.
package adaptertest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/cinet/cinet/adapters"
	"github.com/cinet/cinet/descriptor"
)

// Suite describes the adapter under test.
type Suite struct {
	// New returns a fresh adapter for one test.
	New func(t testing.TB) adapters.Adapter
	// Shell is the command prefix that runs a POSIX shell script given as
	// its last argument, on the backend ("/bin/sh", "-c").
	Shell []string
	// Poll is how often to ask for status (default 20ms); Wait bounds a
	// placement's run (default 30s).
	Poll, Wait time.Duration
}

// Run runs the suite.
func Run(t *testing.T, s Suite) {
	if s.Poll == 0 {
		s.Poll = 20 * time.Millisecond
	}
	if s.Wait == 0 {
		s.Wait = 30 * time.Second
	}
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, Suite)
	}{
		{"Capacity", testCapacity},
		{"Succeeds", testSucceeds},
		{"ExitCode", testExitCode},
		{"TaskOrder", testTaskOrder},
		{"Logs", testLogs},
		{"Usage", testUsage},
		{"Timeout", testTimeout},
		{"Cancel", testCancel},
		{"Idempotent", testIdempotent},
		{"Unknown", testUnknown},
		{"Many", testMany},
		{"Nodes", testNodes},
		{"NodeFails", testNodeFails},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, s)
		})
	}
}

var ctx = context.Background()

func (s Suite) task(name, script string) descriptor.Task {
	return descriptor.Task{Name: name, Command: append(append([]string{}, s.Shell...), script)}
}

func placement(id string, tasks ...descriptor.Task) adapters.Placement {
	return adapters.Placement{ID: id, Job: "job-" + id, Tasks: tasks, Nodes: 1,
		Resources: descriptor.Resources{CPUs: 1, Memory: 64 << 20}}
}

// wait polls until the placement ends and returns its status.
func (s Suite) wait(t testing.TB, a adapters.Adapter, id string) adapters.Status {
	t.Helper()
	return Wait(t, a, id, s.Poll, s.Wait)
}

// Wait asks for a placement's status every poll until it has ended, and
// returns it; the test fails if it has not ended within limit.
func Wait(t testing.TB, a adapters.Adapter, id string, poll, limit time.Duration) adapters.Status {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		st, err := a.Status(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if st.State.Ended() {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("placement %s still %s after %s", id, st.State, limit)
		}
		time.Sleep(poll)
	}
}

func (s Suite) provision(t testing.TB, a adapters.Adapter, p adapters.Placement) {
	t.Helper()
	if err := a.Provision(ctx, p); err != nil {
		t.Fatal(err)
	}
}

func logs(t testing.TB, a adapters.Adapter, id, task, stream string) string {
	t.Helper()
	return Logs(t, a, id, task, 0, stream)
}

// Logs returns all a task has written to a stream on one node so far,
// failing the test if the adapter cannot say.
func Logs(t testing.TB, a adapters.Adapter, id, task string, node int, stream string) string {
	t.Helper()
	rc, err := a.Logs(ctx, id, task, node, stream)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func testCapacity(t *testing.T, s Suite) {
	c, err := s.New(t).Capacity(ctx)
	if err != nil || c.CPUs < 1 || c.Memory < 1<<20 {
		t.Fatalf("capacity %+v %v", c, err)
	}
}

func testSucceeds(t *testing.T, s Suite) {
	a := s.New(t)
	s.provision(t, a, placement("ok", s.task("main", "exit 0")))
	st := s.wait(t, a, "ok")
	if st.State != adapters.Succeeded || len(st.Tasks) != 1 || st.ExitCode() != 0 || st.Tasks[0].Name != "main" || !st.Tasks[0].Ended() {
		t.Fatalf("status %+v", st)
	}
}

func testExitCode(t *testing.T, s Suite) {
	a := s.New(t)
	s.provision(t, a, placement("fails", s.task("main", "exit 42")))
	st := s.wait(t, a, "fails")
	if st.State != adapters.Failed || st.ExitCode() != 42 {
		t.Fatalf("status %+v, want failed with 42", st)
	}
}

// testTaskOrder: tasks run in order, each after the one before exited 0,
// and a failing task stops the rest.
func testTaskOrder(t *testing.T, s Suite) {
	a := s.New(t)
	s.provision(t, a, placement("order",
		s.task("first", "echo one"), s.task("second", "echo two; exit 3"), s.task("third", "echo three")))
	st := s.wait(t, a, "order")
	if st.State != adapters.Failed || len(st.Tasks) != 2 || st.Tasks[1].Name != "second" || st.ExitCode() != 3 {
		t.Fatalf("status %+v", st)
	}
	if st.Tasks[1].Started.Before(st.Tasks[0].End) {
		t.Fatal("the second task started before the first ended")
	}
	if got := logs(t, a, "order", "third", "stdout"); got != "" {
		t.Fatalf("the third task ran after the second failed: %q", got)
	}
}

func testLogs(t *testing.T, s Suite) {
	a := s.New(t)
	task := s.task("main", `echo "out $CINET_TASK $GREETING"; echo err >&2`)
	task.Env = map[string]string{"GREETING": "hello"}
	s.provision(t, a, placement("logs", task))
	s.wait(t, a, "logs")
	if got := logs(t, a, "logs", "main", "stdout"); got != "out main hello\n" {
		t.Errorf("stdout %q", got)
	}
	if got := logs(t, a, "logs", "main", "stderr"); got != "err\n" {
		t.Errorf("stderr %q", got)
	}
	if _, err := a.Logs(ctx, "logs", "nosuch", 0, "stdout"); err == nil {
		t.Error("logs of a task that does not exist")
	}
	if _, err := a.Logs(ctx, "logs", "main", 0, "stdin"); err == nil {
		t.Error("logs of a stream that does not exist")
	}
	for _, node := range []int{-1, 1} {
		if _, err := a.Logs(ctx, "logs", "main", node, "stdout"); err == nil {
			t.Errorf("logs of node %d of a one-node placement", node)
		}
	}
}

// testUsage: wall time covers a sleep; a busy loop shows CPU time; memory
// is measured.
func testUsage(t *testing.T, s Suite) {
	a := s.New(t)
	s.provision(t, a, placement("usage",
		s.task("sleep", "sleep 0.3"),
		s.task("busy", "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done")))
	if st := s.wait(t, a, "usage"); st.State != adapters.Succeeded {
		t.Fatalf("status %+v", st)
	}
	u, err := a.Usage(ctx, "usage")
	if err != nil {
		t.Fatal(err)
	}
	if u.Wall() < 300*time.Millisecond || len(u.Tasks) != 2 || u.Tasks[0].Wall < 300*time.Millisecond {
		t.Errorf("wall %s, tasks %+v: the sleep alone is 300ms", u.Wall(), u.Tasks)
	}
	if u.Tasks[1].CPU <= 0 || u.CPU < u.Tasks[1].CPU {
		t.Errorf("CPU %s, busy task %s: a busy loop uses CPU", u.CPU, u.Tasks[1].CPU)
	}
	if u.PeakMemory <= 0 {
		t.Errorf("peak memory %d", u.PeakMemory)
	}
	if u.CPU > u.Wall()*time.Duration(64) {
		t.Errorf("CPU %s is implausible for wall %s", u.CPU, u.Wall())
	}
}

func testTimeout(t *testing.T, s Suite) {
	a := s.New(t)
	p := placement("timeout", s.task("main", "sleep 30"))
	p.Timeout = 300 * time.Millisecond
	s.provision(t, a, p)
	start := time.Now()
	st := s.wait(t, a, "timeout")
	if st.State != adapters.Failed || !st.Tasks[0].TimedOut || st.Detail == "" {
		t.Fatalf("status %+v, want failed by timeout", st)
	}
	if time.Since(start) > 20*time.Second {
		t.Fatalf("the timeout took %s to act", time.Since(start))
	}
}

// testCancel: Release stops a running placement — no later step of its
// script runs — and its usage covers what ran.
func testCancel(t *testing.T, s Suite) {
	a := s.New(t)
	s.provision(t, a, placement("cancel", s.task("main", "echo started; sleep 30; echo finished")))
	deadline := time.Now().Add(s.Wait)
	for !strings.Contains(logs(t, a, "cancel", "main", "stdout"), "started") {
		if time.Now().After(deadline) {
			t.Fatal("the task never started")
		}
		time.Sleep(s.Poll)
	}
	if st, _ := a.Status(ctx, "cancel"); st.State != adapters.Running {
		t.Fatalf("status before cancelling: %+v", st)
	}
	if err := a.Release(ctx, "cancel"); err != nil {
		t.Fatal(err)
	}
	st := s.wait(t, a, "cancel")
	if st.State != adapters.Cancelled {
		t.Fatalf("status after Release: %+v", st)
	}
	if got := logs(t, a, "cancel", "main", "stdout"); strings.Contains(got, "finished") {
		t.Fatalf("the task went on after Release: %q", got)
	}
	u, err := a.Usage(ctx, "cancel")
	if err != nil || u.Wall() <= 0 || u.Wall() > 20*time.Second {
		t.Fatalf("usage after cancel: %+v %v", u, err)
	}
	if err := a.Release(ctx, "cancel"); err != nil {
		t.Fatalf("releasing again: %v", err)
	}
}

// testIdempotent: provisioning the same placement twice runs it once.
func testIdempotent(t *testing.T, s Suite) {
	a := s.New(t)
	p := placement("twice", s.task("main", "echo ran"))
	s.provision(t, a, p)
	s.provision(t, a, p)
	s.wait(t, a, "twice")
	s.provision(t, a, p)
	if got := logs(t, a, "twice", "main", "stdout"); got != "ran\n" {
		t.Fatalf("stdout %q: the placement ran more than once", got)
	}
	if err := a.Release(ctx, "twice"); err != nil {
		t.Fatal(err)
	}
	if st, err := a.Status(ctx, "twice"); err != nil || st.State != adapters.Succeeded {
		t.Fatalf("status after releasing an ended placement: %+v %v", st, err)
	}
}

func testUnknown(t *testing.T, s Suite) {
	a := s.New(t)
	if _, err := a.Status(ctx, "never"); !errors.Is(err, adapters.ErrNotFound) {
		t.Errorf("status of an unknown placement: %v", err)
	}
	if _, err := a.Usage(ctx, "never"); !errors.Is(err, adapters.ErrNotFound) {
		t.Errorf("usage of an unknown placement: %v", err)
	}
	if err := a.Provision(ctx, placement("../escape", s.task("main", "true"))); err == nil {
		t.Error("a placement ID that is a path was accepted")
	}
	if err := a.Provision(ctx, placement("empty")); err == nil {
		t.Error("a placement without tasks was accepted")
	}
}

// testMany: many short placements, watched without pause, all end as
// they should. (A placement ending between two reads of its state must not
// look lost; the window is narrow, and the load test in integration/ is
// what first showed it.)
func testMany(t *testing.T, s Suite) {
	a := s.New(t)
	const n = 40
	for i := range n {
		s.provision(t, a, placement(fmt.Sprintf("many-%d", i), s.task("main", "true")))
	}
	for i := range n {
		id := fmt.Sprintf("many-%d", i)
		for {
			st, err := a.Status(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if st.State.Ended() {
				if st.State != adapters.Succeeded {
					t.Fatalf("placement %s ended %s: %s", id, st.State, st.Detail)
				}
				break
			}
		}
	}
}

// contractScript prints the node contract as the task sees it, one
// variable per line (the addresses joined by commas).
const contractScript = `echo "rank=$CINET_NODE_RANK"; echo "nodes=$CINET_NUM_NODES"; echo "addr=$CINET_NODE_ADDR"; ` +
	`echo "addrs=$(echo "$CINET_NODE_ADDRS" | tr '\n' ,)"; echo "rendezvous=$CINET_RENDEZVOUS_ADDR:$CINET_RENDEZVOUS_PORT"; ` +
	`echo "accelerators=$CINET_ACCELERATORS_PER_NODE"; echo "task=$CINET_TASK"`

// contract reads what contractScript printed.
func contract(out string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			m[k] = v
		}
	}
	return m
}

// testNodes: every task runs once on every node, each node with its rank,
// the node count, every node's address (its own among them, in rank
// order, all different), one rendezvous at node 0's address, and the
// devices per node; each node's output is its own; the second task starts
// once the first has ended on every node. A one-node placement has the
// contract too.
func testNodes(t *testing.T, s Suite) {
	a := s.New(t)
	const n = 3
	p := placement("nodes", s.task("first", contractScript), s.task("second", `echo "second on $CINET_NODE_RANK"`))
	p.Nodes, p.Limits.Accelerators = n, 2
	s.provision(t, a, p)
	st := s.wait(t, a, "nodes")
	if st.State != adapters.Succeeded || len(st.Tasks) != 2 {
		t.Fatalf("status %+v", st)
	}
	if st.Tasks[1].Started.Before(st.Tasks[0].End) {
		t.Fatal("the second task started before the first had ended on every node")
	}
	var addrs []string
	seen := map[string]bool{}
	for rank := range n {
		c := contract(Logs(t, a, "nodes", "first", rank, "stdout"))
		if addrs == nil {
			addrs = strings.Split(strings.TrimSuffix(c["addrs"], ","), ",")
		}
		want := map[string]string{"rank": fmt.Sprint(rank), "nodes": fmt.Sprint(n), "accelerators": "2", "task": "first",
			"addrs": strings.Join(addrs, ",") + ","}
		for k, v := range want {
			if c[k] != v {
				t.Errorf("node %d: %s=%q, want %q (all: %v)", rank, k, c[k], v, c)
			}
		}
		if len(addrs) != n || rank >= len(addrs) || c["addr"] != addrs[rank] || seen[c["addr"]] || c["addr"] == "" {
			t.Errorf("node %d: address %q among %q", rank, c["addr"], addrs)
		}
		seen[c["addr"]] = true
		if port, ok := strings.CutPrefix(c["rendezvous"], addrs[0]+":"); !ok || port == "" || port == "0" || strings.Trim(port, "0123456789") != "" {
			t.Errorf("node %d: rendezvous %q", rank, c["rendezvous"])
		}
		if got := Logs(t, a, "nodes", "second", rank, "stdout"); got != fmt.Sprintf("second on %d\n", rank) {
			t.Errorf("node %d's output of the second task: %q", rank, got)
		}
	}
	if _, err := a.Logs(ctx, "nodes", "first", n, "stdout"); err == nil {
		t.Errorf("logs of node %d of a %d-node placement", n, n)
	}
	one := placement("one", s.task("main", contractScript))
	s.provision(t, a, one)
	s.wait(t, a, "one")
	c := contract(logs(t, a, "one", "main", "stdout"))
	if c["rank"] != "0" || c["nodes"] != "1" || c["accelerators"] != "0" || c["addrs"] != c["addr"]+"," || !strings.HasPrefix(c["rendezvous"], c["addr"]+":") {
		t.Errorf("the contract of a one-node placement: %v", c)
	}
}

// testNodeFails: when one node's task fails the others are stopped, the
// placement fails with that node's exit code, and no later task runs.
func testNodeFails(t *testing.T, s Suite) {
	a := s.New(t)
	p := placement("nodefails",
		s.task("main", `if [ "$CINET_NODE_RANK" = 1 ]; then exit 5; fi; echo started; sleep 600; echo finished`),
		s.task("after", "echo after"))
	p.Nodes = 3
	s.provision(t, a, p)
	st := s.wait(t, a, "nodefails") // within the suite's Wait, far short of the sleep
	if st.State != adapters.Failed || st.ExitCode() != 5 || len(st.Tasks) != 1 || !strings.Contains(st.Detail, "node 1") {
		t.Fatalf("status %+v, want failed with node 1's exit code 5", st)
	}
	for _, rank := range []int{0, 2} {
		if got := Logs(t, a, "nodefails", "main", rank, "stdout"); strings.Contains(got, "finished") {
			t.Errorf("node %d went on after node 1 failed: %q", rank, got)
		}
		if got := Logs(t, a, "nodefails", "after", rank, "stdout"); got != "" {
			t.Errorf("node %d ran the next task: %q", rank, got)
		}
	}
}
