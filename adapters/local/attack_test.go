//go:build linux

package local_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cinet/cinet/adapters"
	"github.com/cinet/cinet/adapters/local"
	"github.com/cinet/cinet/descriptor"
)

// The attacks a tenant's job tried on the local adapter, each replayed as
// a job, each shown to fail. They need the sandbox, so root.

// broker is a broker's data directory holding a key, with the adapter's
// workdir inside it, as `cinet broker run` lays it out.
type broker struct {
	data, key string
	a         *local.Local
}

const brokerSecret = "BROKER-KEY-SECRET-0123456789"

func newBroker(t *testing.T, cfg local.Config) *broker {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the sandbox needs root")
	}
	data := t.TempDir()
	os.Chmod(data, 0o700)
	key := filepath.Join(data, "broker.key")
	if err := os.WriteFile(key, []byte(brokerSecret), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.Workdir = filepath.Join(data, "placements")
	cfg.Shim = []string{os.Args[0]}
	cfg.KillGrace = descriptor.Duration(time.Second)
	cfg.Hide = append(cfg.Hide, data)
	a, err := local.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	releaseAllAtEnd(t, a, cfg.Workdir)
	return &broker{data: data, key: key, a: a}
}

func sh(name, script string) descriptor.Task {
	return descriptor.Task{Name: name, Command: []string{"/bin/sh", "-c", script}}
}

func (b *broker) run(t *testing.T, p adapters.Placement) adapters.Status {
	t.Helper()
	if p.Job == "" {
		p.Job = "job-" + p.ID
	}
	if err := b.a.Provision(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	return b.wait(t, p.ID)
}

func (b *broker) wait(t *testing.T, id string) adapters.Status {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		st, err := b.a.Status(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		if st.State.Ended() {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("placement %s still %s after a minute", id, st.State)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (b *broker) logs(t *testing.T, id, task, stream string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(b.a.Workdir(), id, "logs", task+"."+stream))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return string(data)
}

// runRecord reads what the shim recorded of a placement.
func (b *broker) runRecord(t *testing.T, id string) (rec struct {
	ShimPID int
	UID     uint32
}) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(b.a.Workdir(), id, "run.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &rec); err != nil {
		t.Fatal(err)
	}
	return rec
}

// processesOf lists the host's processes whose real uid is uid.
func processesOf(t *testing.T, uid uint32) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		f, err := os.Open(filepath.Join("/proc", e.Name(), "status"))
		if err != nil {
			continue
		}
		s := bufio.NewScanner(f)
		for s.Scan() {
			if rest, ok := strings.CutPrefix(s.Text(), "Uid:"); ok {
				if fields := strings.Fields(rest); len(fields) > 0 && fields[0] == strconv.FormatUint(uint64(uid), 10) {
					pids = append(pids, pid)
				}
			}
		}
		f.Close()
	}
	return pids
}

// waitRunning waits until a task of the placement has written marker to
// its stdout.
func (b *broker) waitFor(t *testing.T, id, task, marker string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(b.logs(t, id, task, "stdout"), marker) {
		if time.Now().After(deadline) {
			t.Fatalf("%s/%s never wrote %q; stderr: %s", id, task, marker, b.logs(t, id, task, "stderr"))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestAttackReadSecrets: a job cannot read the broker's key, another
// job's files, placement or logs, by relative path, absolute path or
// through /proc.
func TestAttackReadSecrets(t *testing.T) {
	b := newBroker(t, local.Config{})
	victim := adapters.Placement{ID: "victim", Job: "victim-job", Tasks: []descriptor.Task{{
		Name: "main", Command: []string{"/bin/sh", "-c", "echo VICTIM-FILE-SECRET > secret.txt; echo ready; sleep 30"},
		Env: map[string]string{"TOKEN": "VICTIM-ENV-SECRET"},
	}}}
	if err := b.a.Provision(t.Context(), victim); err != nil {
		t.Fatal(err)
	}
	b.waitFor(t, "victim", "main", "ready")
	victimDir := filepath.Join(b.a.Workdir(), "victim")
	paths := []string{
		"../../broker.key", "../../../broker.key", "../../../../broker.key", b.key,
		filepath.Join(victimDir, "work", "secret.txt"), filepath.Join(victimDir, "placement.json"),
		filepath.Join(victimDir, "logs", "main.stdout"), "../victim/work/secret.txt", "../../victim/placement.json",
		"/proc/1/root" + b.key, "/proc/1/environ",
	}
	var script strings.Builder
	for _, p := range paths {
		fmt.Fprintf(&script, "cat '%s' 2>/dev/null; ", p)
	}
	// Every process the job can see, and what it can read of them.
	script.WriteString(`for p in /proc/[0-9]*; do cat $p/environ $p/root` + b.key + ` 2>/dev/null; done; `)
	script.WriteString(`grep -rs SECRET / --exclude-dir=proc --exclude-dir=sys --exclude-dir=usr; echo attack-done`)
	st := b.run(t, adapters.Placement{ID: "attacker", Tasks: []descriptor.Task{sh("main", script.String())}})
	out := b.logs(t, "attacker", "main", "stdout")
	if !strings.Contains(out, "attack-done") {
		t.Fatalf("the attack did not run: %+v; stderr %s", st, b.logs(t, "attacker", "main", "stderr"))
	}
	for _, secret := range []string{brokerSecret, "VICTIM-FILE-SECRET", "VICTIM-ENV-SECRET"} {
		if strings.Contains(out, secret) {
			t.Errorf("the attacking job read %s:\n%s", secret, out)
		}
	}
	b.a.Release(t.Context(), "victim")
}

// TestAttackKillOthers: a job cannot signal another job's processes, nor
// its own supervisor and init; the victim runs to its end.
func TestAttackKillOthers(t *testing.T) {
	b := newBroker(t, local.Config{})
	victim := adapters.Placement{ID: "victim", Job: "v", Tasks: []descriptor.Task{sh("main", "echo ready; sleep 1; echo survived")}}
	if err := b.a.Provision(t.Context(), victim); err != nil {
		t.Fatal(err)
	}
	b.waitFor(t, "victim", "main", "ready")
	rec := b.runRecord(t, "victim")
	pids := processesOf(t, rec.UID)
	if len(pids) == 0 {
		t.Fatal("the victim's processes are not found by its uid")
	}
	var script strings.Builder
	script.WriteString("kill -9 -1; kill -9 1; kill -9 $PPID; ")
	fmt.Fprintf(&script, "kill -9 %d; ", rec.ShimPID)
	for _, p := range pids {
		fmt.Fprintf(&script, "kill -9 %d; kill -9 -%d; ", p, p)
	}
	script.WriteString("echo attack-done")
	b.run(t, adapters.Placement{ID: "attacker", Tasks: []descriptor.Task{sh("main", script.String())}})
	if !strings.Contains(b.logs(t, "attacker", "main", "stdout"), "attack-done") {
		t.Fatalf("the attack did not run: %s", b.logs(t, "attacker", "main", "stderr"))
	}
	if st := b.wait(t, "victim"); st.State != adapters.Succeeded || !strings.Contains(b.logs(t, "victim", "main", "stdout"), "survived") {
		t.Fatalf("the victim: %+v, stdout %q", st, b.logs(t, "victim", "main", "stdout"))
	}
}

// TestAttackForgeMetering: a job that burns CPU, then tries to rewrite
// its run record and kill its supervisor, is billed what it used.
func TestAttackForgeMetering(t *testing.T) {
	b := newBroker(t, local.Config{})
	forged := `{"shimPid":1,"tasks":[{"name":"main","started":"2026-01-01T00:00:00Z","ended":"2026-01-01T00:00:00.001Z","exitCode":0,"cpu":1}],"done":true}`
	script := `i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done; ` +
		`for f in ../run.json ../../run.json /work/../run.json run.json; do echo '` + forged + `' > $f; done 2>/dev/null; ` +
		`kill -9 $PPID 1 2>/dev/null; echo attack-done`
	st := b.run(t, adapters.Placement{ID: "forger", Tasks: []descriptor.Task{sh("main", script)}})
	if st.State != adapters.Succeeded || !strings.Contains(b.logs(t, "forger", "main", "stdout"), "attack-done") {
		t.Fatalf("status %+v; stderr %s", st, b.logs(t, "forger", "main", "stderr"))
	}
	u, err := b.a.Usage(t.Context(), "forger")
	if err != nil {
		t.Fatal(err)
	}
	if u.CPU < 50*time.Millisecond || u.Wall() < u.CPU/2 || u.Start.Year() == 2026 && u.Start.Month() == 1 {
		t.Fatalf("usage %+v: the busy loop's CPU time is missing or the forged record was read", u)
	}
}

// TestAttackOutliveJob: children that leave the job's session and process
// group (setsid, double fork, nohup) are gone when the job ends.
func TestAttackOutliveJob(t *testing.T) {
	b := newBroker(t, local.Config{})
	script := `setsid sh -c 'sleep 300' & (sh -c 'sleep 300 &' &); nohup sleep 300 >/dev/null 2>&1 & echo started`
	st := b.run(t, adapters.Placement{ID: "escape", Tasks: []descriptor.Task{sh("main", script)}})
	if st.State != adapters.Succeeded {
		t.Fatalf("status %+v: %s", st, b.logs(t, "escape", "main", "stderr"))
	}
	rec := b.runRecord(t, "escape")
	if left := processesOf(t, rec.UID); len(left) > 0 {
		t.Fatalf("processes %v of the job outlived it", left)
	}
}

// TestLimits: the memory and process limits hold, and the task is told
// why it ended.
func TestLimits(t *testing.T) {
	b := newBroker(t, local.Config{PIDs: 32})
	st := b.run(t, adapters.Placement{ID: "memory", Limits: adapters.Limits{Memory: 64 << 20, CPUs: 1},
		Tasks: []descriptor.Task{sh("main", `x=$(head -c 300000000 /dev/zero | tr '\0' a); echo allocated`)}})
	if st.State != adapters.Failed || strings.Contains(b.logs(t, "memory", "main", "stdout"), "allocated") {
		t.Fatalf("a task past its memory limit: %+v", st)
	}
	if !strings.Contains(st.Detail, "memory") {
		t.Errorf("detail %q does not say the task ran out of memory", st.Detail)
	}
	u, _ := b.a.Usage(t.Context(), "memory")
	if u.PeakMemory > 64<<20+1<<20 {
		t.Errorf("peak memory %d past the 64 MiB limit", u.PeakMemory)
	}

	fork := "import os, time\nn = 0\nfor i in range(100):\n    try:\n        if os.fork() == 0:\n            time.sleep(30)\n            os._exit(0)\n        n += 1\n    except OSError as e:\n        err = e\nprint('launched', n, err, flush=True)\ntime.sleep(30)\n"
	pids := adapters.Placement{ID: "pids", Job: "pids", Tasks: []descriptor.Task{{Name: "main", Command: []string{"/usr/bin/python3", "-c", fork}}}}
	if err := b.a.Provision(t.Context(), pids); err != nil {
		t.Fatal(err)
	}
	b.waitFor(t, "pids", "main", "launched")
	n := len(processesOf(t, b.runRecord(t, "pids").UID))
	if n > 32 || n < 2 {
		t.Errorf("%d processes of the job run under a limit of 32", n)
	}
	if out := b.logs(t, "pids", "main", "stdout"); !strings.Contains(out, "Resource temporarily unavailable") || strings.Contains(out, "launched 100") {
		t.Errorf("the task was not refused a fork: %q", out)
	}
	b.a.Release(t.Context(), "pids")
}

// TestLockHeld: the shim keeps its lock for as long as it lives, however
// often the garbage collector runs: many-task placements, run side by
// side, all succeed and none is declared lost.
func TestLockHeld(t *testing.T) {
	// 10 runs in the ordinary test run (3 under the race detector);
	// CINET_TEST_LOCK_RUNS=100 is the
	// long form (the lost-lock fault it guards against struck 3 runs in 3).
	runs, tasks := 10, 64
	if raceEnabled {
		runs = 3
	}
	if n, err := strconv.Atoi(os.Getenv("CINET_TEST_LOCK_RUNS")); err == nil && n > 0 {
		runs = n
	}
	b := newBroker(t, local.Config{})
	var ts []descriptor.Task
	for i := range tasks {
		ts = append(ts, descriptor.Task{Name: fmt.Sprintf("t%d", i), Command: []string{"/bin/true"}})
	}
	var wg sync.WaitGroup
	errs := make(chan error, runs)
	sem := make(chan struct{}, 4)
	for i := range runs {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			id := fmt.Sprintf("gc-%d", i)
			if err := b.a.Provision(t.Context(), adapters.Placement{ID: id, Job: id, Tasks: ts}); err != nil {
				errs <- err
				return
			}
			for {
				st, err := b.a.Status(t.Context(), id)
				if err != nil {
					errs <- err
					return
				}
				if st.State.Ended() {
					if st.State != adapters.Succeeded || len(st.Tasks) != tasks {
						errs <- fmt.Errorf("%s ended %s after %d tasks: %s", id, st.State, len(st.Tasks), st.Detail)
					}
					return
				}
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestIsolationConfig: bad sandbox settings are refused before anything runs.
func TestIsolationConfig(t *testing.T) {
	for _, raw := range []string{`{"workdir": "x", "isolation": "chroot"}`, `{"workdir": "x", "network": "bridge"}`,
		`{"workdir": "x", "uids": "10-5"}`, `{"workdir": "x", "uids": "0-5"}`, `{"workdir": "x", "hide": ["relative"]}`,
		`{"workdir": "x", "expose": ["/"]}`, `{"workdir": "x", "serviceListen": "localhost"}`,
		`{"workdir": "x", "network": "host", "serviceListen": "0.0.0.0"}`, `{"workdir": "x", "isolation": "none", "serviceListen": "192.0.2.1"}`} {
		if _, err := adapters.New("local", []byte(raw)); err == nil {
			t.Errorf("config %s accepted", raw)
		}
	}
}

// TestServiceCannotReachTheHost: a tenant declares as its service's port
// one that a service of the provider's machine listens on. In the sandbox
// the port is the tenant's own network's: its endpoint never reaches the
// machine's service.
func TestServiceCannotReachTheHost(t *testing.T) {
	host, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	accepted := make(chan struct{}, 16)
	go func() {
		for {
			c, err := host.Accept()
			if err != nil {
				return
			}
			accepted <- struct{}{}
			c.Close()
		}
	}()
	port := host.Addr().(*net.TCPAddr).Port
	b := newBroker(t, local.Config{})
	p := adapters.Placement{ID: "snoop", Job: "snoop", Tasks: []descriptor.Task{{Name: "main", Command: []string{"/bin/sleep", "600"}}},
		Service: &descriptor.Service{Replicas: 1, Ports: []descriptor.ServicePort{{Name: "db", Port: port, Protocol: "tcp"}},
			Readiness: &descriptor.Readiness{Port: "db", Period: descriptor.Duration(20 * time.Millisecond), Timeout: descriptor.Duration(time.Second)}}}
	if err := b.a.Provision(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	defer b.a.Release(context.Background(), "snoop")
	var ep adapters.Endpoint
	for deadline := time.Now().Add(30 * time.Second); ep.Address == ""; time.Sleep(10 * time.Millisecond) {
		st, err := b.a.Status(t.Context(), "snoop")
		if err != nil || st.State.Ended() || time.Now().After(deadline) {
			t.Fatalf("status %+v %v", st, err)
		}
		if len(st.Endpoints) > 0 {
			ep = st.Endpoints[0]
		}
	}
	for range 5 {
		c, err := net.Dial("tcp", ep.Address)
		if err != nil {
			t.Fatal(err)
		}
		// The forwarder closes the connection when the dial in the
		// sandbox's network is refused: a read ends.
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Fatal("the endpoint answered")
		}
		c.Close()
	}
	if st, _ := b.a.Status(t.Context(), "snoop"); len(st.Endpoints) != 1 || st.Endpoints[0].Ready {
		t.Errorf("a service nothing serves is ready: %+v", st.Endpoints)
	}
	select {
	case <-accepted:
		t.Fatal("the tenant's endpoint reached the machine's own service")
	default:
	}
}

// TestAttackForgeExit: a task that writes an ending of its own choosing to
// the descriptors init reports on, then exits 7, is recorded as failed
// with 7, and its text is nowhere; it holds no descriptor but its stdio.
func TestAttackForgeExit(t *testing.T) {
	b := newBroker(t, local.Config{})
	forged := `{"exitCode":0,"error":"\u001b]8;;http://evil\u0007forged\u001b]8;;\u0007"}`
	script := `ls /proc/self/fd | tr '\n' ' '; echo; for fd in 3 4 5 6 7 8 9; do echo '` + forged + `' >&$fd; done 2>/dev/null; exit 7`
	st := b.run(t, adapters.Placement{ID: "forger", Tasks: []descriptor.Task{sh("main", script)}})
	if st.State != adapters.Failed || len(st.Tasks) != 1 || st.Tasks[0].ExitCode != 7 {
		t.Fatalf("a task that exited 7 after forging its end: %+v", st)
	}
	if strings.Contains(st.Detail, "forged") {
		t.Fatalf("the forged text reached the status: %+v", st)
	}
	// ls holds its own directory open as 3; nothing else is there.
	if fds := strings.TrimSpace(b.logs(t, "forger", "main", "stdout")); fds != "0 1 2 3" {
		t.Errorf("the task's descriptors: %q, want 0 1 2 (and ls's own 3)", fds)
	}
}

// TestAttackKernelSurface: the system calls the seccomp filter denies
// fail with EPERM inside a task — new user namespaces (unshare -Ur, clone),
// keyrings, io_uring, eBPF, perf, ptrace, mount — and a key a job could
// have left in its uid's keyring for the next job is never made.
func TestAttackKernelSurface(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("the syscall numbers below are amd64's")
	}
	b := newBroker(t, local.Config{})
	// perl's syscall() with raw numbers: -1 and errno on failure.
	calls := map[string]string{
		"unshare(CLONE_NEWUSER)": `syscall(272, 0x10000000)`,
		"clone(CLONE_NEWUSER)":   `syscall(56, 0x10000000|17, 0, 0, 0, 0)`,
		"add_key(user keyring)":  `syscall(248, $user, $name, $secret, 6, -4)`,
		"keyctl(user keyring)":   `syscall(250, 0, -4, 0)`,
		"request_key":            `syscall(249, $user, $name, 0, 0)`,
		"io_uring_setup":         `syscall(425, 4, $buf)`,
		"bpf(prog load)":         `syscall(321, 5, $buf, 128)`,
		"perf_event_open":        `syscall(298, $buf, 0, -1, -1, 0)`,
		"ptrace(TRACEME)":        `syscall(101, 0, 0, 0, 0)`,
		"mount(tmpfs)":           `syscall(165, $none, $tmp, $tmpfs, 0, 0)`,
		"setns":                  `syscall(308, 0, 0)`,
		"clone3":                 `syscall(435, $buf, 88)`,
		"open_by_handle_at":      `syscall(304, 0, $buf, 0)`,
		"process_vm_readv(init)": `syscall(310, 1, 0, 0, 0, 0, 0)`,
		"kexec_load":             `syscall(246, 0, 0, 0, 0)`,
	}
	var script strings.Builder
	// Buffers and strings in variables: syscall() may write to what it is
	// given, and perl's literals are read-only.
	script.WriteString(`my ($user, $name, $secret, $none, $tmp, $tmpfs) = ("user", "leftover", "secret", "none", "/tmp", "tmpfs"); `)
	for name, call := range calls {
		fmt.Fprintf(&script, "my $buf = \"\\0\" x 128; $! = 0; $r = %s; print \"%s=\", ($r == -1 ? 0+$! : \"ok\"), \"\\n\";\n", call, name)
	}
	task := descriptor.Task{Name: "main", Command: []string{"/usr/bin/perl", "-e", script.String()}}
	shell := sh("shell", `unshare -Ur true 2>/dev/null && echo unshare-ok || echo unshare-refused`)
	st := b.run(t, adapters.Placement{ID: "surface", Tasks: []descriptor.Task{task, shell}})
	if st.State != adapters.Succeeded {
		t.Fatalf("status %+v; stderr %s", st, b.logs(t, "surface", "main", "stderr"))
	}
	got := map[string]string{}
	for line := range strings.SplitSeq(b.logs(t, "surface", "main", "stdout"), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			got[k] = v
		}
	}
	for name := range calls {
		want := "1" // EPERM
		if name == "clone3" {
			want = "38" // ENOSYS: the C library falls back to clone
		}
		if got[name] != want {
			t.Errorf("%s: %q, want errno %s", name, got[name], want)
		}
	}
	if out := b.logs(t, "surface", "shell", "stdout"); !strings.Contains(out, "unshare-refused") {
		t.Errorf("unshare -Ur in a task: %q", out)
	}
	// Threads and processes still start (clone without CLONE_NEWUSER).
	st = b.run(t, adapters.Placement{ID: "forks", Tasks: []descriptor.Task{sh("main", `(echo child) & wait; echo parent`)}})
	if out := b.logs(t, "forks", "main", "stdout"); st.State != adapters.Succeeded || out != "child\nparent\n" {
		t.Fatalf("forking under the filter: %+v %q", st, out)
	}
}

// TestAttackHostPaths: init's command line, which any task reads in
// /proc/1, names none of the host's paths.
func TestAttackHostPaths(t *testing.T) {
	b := newBroker(t, local.Config{})
	st := b.run(t, adapters.Placement{ID: "paths", Tasks: []descriptor.Task{sh("main", `tr '\0' ' ' < /proc/1/cmdline; echo`)}})
	out := b.logs(t, "paths", "main", "stdout")
	if st.State != adapters.Succeeded || out == "" {
		t.Fatalf("status %+v: %q", st, out)
	}
	if strings.Contains(out, b.data) {
		t.Errorf("/proc/1/cmdline names the broker's data directory: %q", out)
	}
}

// TestAttackFloodLogsAndTmp: a task that writes 3 MiB to stdout keeps
// the log limit's worth and a last line saying how much was discarded;
// one that fills /tmp is stopped at its class's memory; its output
// descriptors are pipes, whose links name no host path.
func TestAttackFloodLogsAndTmp(t *testing.T) {
	b := newBroker(t, local.Config{LogLimit: descriptor.Quantity(1 << 20)})
	flood := sh("main", `head -c 3145728 /dev/zero | tr '\0' a; readlink /proc/self/fd/1 /proc/self/fd/2 >&2`)
	st := b.run(t, adapters.Placement{ID: "flood", Tasks: []descriptor.Task{flood}})
	if st.State != adapters.Succeeded {
		t.Fatalf("status %+v", st)
	}
	out := b.logs(t, "flood", "main", "stdout")
	const note = "\n[cinet: output cut at the log limit of 1048576 bytes; 2097152 more bytes were discarded]\n"
	if len(out) != 1<<20+len(note) || !strings.HasSuffix(out, note) {
		t.Fatalf("a 3 MiB stdout kept %d bytes, ending %q", len(out), out[max(0, len(out)-120):])
	}
	if links := b.logs(t, "flood", "main", "stderr"); strings.Contains(links, b.data) || strings.Count(links, "pipe:") != 2 {
		t.Errorf("the task's output descriptors: %q", links)
	}

	fill := sh("main", `head -c 134217728 /dev/zero > /tmp/big; echo "exit $?"; du -m /tmp/big | cut -f1`)
	st = b.run(t, adapters.Placement{ID: "tmp", Limits: adapters.Limits{Memory: 256 << 20}, Tasks: []descriptor.Task{fill}})
	out = b.logs(t, "tmp", "main", "stdout")
	if st.State != adapters.Succeeded || !strings.Contains(out, "exit 0") {
		t.Fatalf("128 MiB in a /tmp of 256 MiB: %+v %q %s", st, out, b.logs(t, "tmp", "main", "stderr"))
	}
	st = b.run(t, adapters.Placement{ID: "tmp2", Limits: adapters.Limits{Memory: 64 << 20}, Tasks: []descriptor.Task{fill}})
	out = b.logs(t, "tmp2", "main", "stdout")
	if strings.Contains(out, "exit 0") {
		t.Fatalf("128 MiB in a /tmp of a 64 MiB class was kept: %+v %q", st, out)
	}
}

// TestAttackFillDisk: a placement whose class has a disk of 64 MiB
// cannot write more than that to its work directory, which
// /proc/self/mountinfo shows as a file system of its own, naming no host
// path; when the placement ends the mount goes and the image stays.
func TestAttackFillDisk(t *testing.T) {
	b := newBroker(t, local.Config{})
	// A refused fallocate may keep what it allocated: the file goes.
	script := `fallocate -l 100M /work/big 2>/dev/null && echo big-kept || echo big-refused; rm -f /work/big; ` +
		`head -c 33554432 /dev/zero > /work/ok && echo ok-kept; ` +
		`head -c 67108864 /dev/zero > /work/more 2>/dev/null && echo more-kept || echo more-refused; ` +
		`df -B1M --output=size /work | tail -1; cat /proc/self/mountinfo >&2`
	st := b.run(t, adapters.Placement{ID: "fill", Limits: adapters.Limits{Disk: 64 << 20}, Tasks: []descriptor.Task{sh("main", script)}})
	out, info := b.logs(t, "fill", "main", "stdout"), b.logs(t, "fill", "main", "stderr")
	if st.State != adapters.Succeeded {
		t.Fatalf("status %+v: %s %s", st, out, info)
	}
	for _, want := range []string{"big-refused", "ok-kept", "more-refused"} {
		if !strings.Contains(out, want) {
			t.Errorf("a 64 MiB work disk: want %s in %q", want, out)
		}
	}
	if strings.Contains(info, b.data) {
		t.Errorf("/proc/self/mountinfo names the broker's data directory:\n%s", info)
	}
	work := filepath.Join(b.a.Workdir(), "fill", "work")
	if mounts, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(mounts), work) {
		t.Errorf("the work disk is still mounted at %s after the placement ended", work)
	}
	if _, err := os.Stat(filepath.Join(b.a.Workdir(), "fill", "disk", "work.img")); err != nil {
		t.Errorf("the work disk's image: %v", err)
	}
}

// TestRetention: a placement's directory, work disk and all, stays until
// the broker released it and the retention has passed, then goes; one
// not released stays, whatever its age.
func TestRetention(t *testing.T) {
	b := newBroker(t, local.Config{Retention: descriptor.Duration(time.Nanosecond)})
	for _, id := range []string{"released", "kept"} {
		b.run(t, adapters.Placement{ID: id, Limits: adapters.Limits{Disk: 32 << 20}, Tasks: []descriptor.Task{sh("main", "echo done > /work/out")}})
	}
	if err := b.a.Release(t.Context(), "released"); err != nil {
		t.Fatal(err)
	}
	// Readable after Release, until the next sweep.
	if st, err := b.a.Status(t.Context(), "released"); err != nil || st.State != adapters.Succeeded {
		t.Fatalf("a released placement's status: %+v %v", st, err)
	}
	b.run(t, adapters.Placement{ID: "next", Tasks: []descriptor.Task{sh("main", "true")}})
	if _, err := os.Stat(filepath.Join(b.a.Workdir(), "released")); !os.IsNotExist(err) {
		t.Errorf("a placement released past its retention was kept: %v", err)
	}
	if _, err := b.a.Status(t.Context(), "released"); err == nil {
		t.Error("a removed placement still has a status")
	}
	if _, err := os.Stat(filepath.Join(b.a.Workdir(), "kept", "run.json")); err != nil {
		t.Errorf("a placement never released was removed: %v", err)
	}
}

// TestDiskUnmountedWhenDirectoryRemoved: a placement whose directory is
// removed from under it while it runs (its images, record and all) still
// has its disk unmounted when it ends: nothing is left mounted.
func TestDiskUnmountedWhenDirectoryRemoved(t *testing.T) {
	b := newBroker(t, local.Config{})
	if err := b.a.Provision(t.Context(), adapters.Placement{ID: "gone", Job: "gone", Tasks: []descriptor.Task{sh("main", "echo up; sleep 2")}}); err != nil {
		t.Fatal(err)
	}
	b.waitFor(t, "gone", "main", "up")
	dir := filepath.Join(b.a.Workdir(), "gone")
	rec := b.runRecord(t, "gone")
	for _, f := range []string{"disk", "run.json", "placement.json"} {
		os.RemoveAll(filepath.Join(dir, f))
	}
	// The shim ends with its task.
	deadline := time.Now().Add(60 * time.Second)
	for syscall.Kill(rec.ShimPID, 0) == nil {
		if time.Now().After(deadline) {
			t.Fatal("the shim did not end")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if mounts, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(mounts), filepath.Join(dir, "work")) {
		t.Fatalf("the work disk of a placement whose directory was removed is still mounted")
	}
}
