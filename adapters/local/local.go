//go:build unix

// Package local runs placements as processes on the provider's own
// machine: a working directory per placement, each task a real process in
// a sandbox of its own (sandbox.go) — an unprivileged user per placement,
// its own mount, PID, IPC, UTS and network namespaces, a root file system
// that holds nothing of the broker's or of other jobs, and a cgroup with
// the offer's CPU, memory and process limits — its output captured to
// files, its CPU time and peak memory measured by the cgroup and its wall
// time by the supervisor, none of which the task can write.
//
// A placement of N nodes runs each task as N such sandboxes at once, one
// per node, each with its own work directory, logs and cgroup, all in one
// network namespace where node K is 127.0.0.(K+1): the node contract of
// spec/jobs.md §6.
//
// Each placement runs under a small supervisor process, the shim (Shim),
// started in a session of its own so that it outlives the broker: a broker
// that restarts finds its placements running, or finds how they ended, in
// the placement's directory. The shim holds a lock on the directory for as
// long as it lives, which is how the adapter tells a running placement from
// one whose supervisor died (lost).
package local

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cinet/cinet/adapters"
	"github.com/cinet/cinet/descriptor"
)

func init() {
	adapters.Register("local", func(raw json.RawMessage, host adapters.Host) (adapters.Adapter, error) {
		var c Config
		if err := adapters.DecodeConfig(raw, &c); err != nil {
			return nil, err
		}
		if err := c.ForHost(host); err != nil {
			return nil, fmt.Errorf("local: %w", err)
		}
		return New(c)
	})
}

// Config configures the local adapter.
type Config struct {
	// Workdir holds a directory per placement. Required.
	Workdir string `json:"workdir"`
	// CPUs and Memory override the machine's capacity ("8Gi").
	CPUs   int                 `json:"cpus,omitempty"`
	Memory descriptor.Quantity `json:"memory,omitempty"`
	// Shim is the command that runs a placement's shim, given the
	// placement's directory as its last argument. Default: this program,
	// with the argument "local-shim" (cinet's hidden command).
	Shim []string `json:"shim,omitempty"`
	// KillGrace is how long a task has to exit after SIGTERM before
	// SIGKILL (default 5s).
	KillGrace descriptor.Duration `json:"killGrace,omitempty"`
	// Isolation is "sandbox" (the default) or "none": tasks run as the
	// broker's own user, unconfined and measured by rusage. A host that
	// cannot build the sandbox refuses to start the adapter unless it is
	// "none", which only a development broker should use.
	Isolation string `json:"isolation,omitempty"`
	// UIDs is the range of user IDs given to placements, one each while
	// it runs: "FIRST-LAST" (default 1000000-1065535). No other user of
	// the machine may own IDs in it.
	UIDs string `json:"uids,omitempty"`
	// Network is "none" (the default: tasks see only their own loopback)
	// or "host" (tasks share the machine's network).
	Network string `json:"network,omitempty"`
	// PIDs bounds the processes and threads of a task (default 1024).
	PIDs int64 `json:"pids,omitempty"`
	// Expose lists the host paths tasks see, read-only, at the same
	// place (default: /usr /bin /sbin /lib /lib32 /lib64 /libx32 /etc
	// /opt). A task also sees /work (its placement's work directory, its
	// HOME), /tmp, /proc and a minimal /dev.
	Expose []string `json:"expose,omitempty"`
	// Hide lists host paths tasks must not see even where an exposed path
	// holds them: the broker's data directory and key belong here. Workdir
	// is always hidden.
	Hide []string `json:"hide,omitempty"`
	// LogLimit caps what one stream (stdout or stderr) of one task on one
	// node keeps, in the sandbox (default 64Mi): past it the stream is
	// cut, what follows is counted and discarded, and a last line says
	// so.
	LogLimit descriptor.Quantity `json:"logLimit,omitempty"`
	// DefaultDisk is the size of a node's /work when the offer's class
	// names no disk (default 10Gi): every sandboxed node's /work is a
	// file system of its own (spec/jobs.md §8).
	DefaultDisk descriptor.Quantity `json:"defaultDisk,omitempty"`
	// Retention is how long a placement's directory — its work
	// directories, logs and run record — is kept after the broker
	// released it, once settled (default 168h, a week).
	Retention descriptor.Duration `json:"retention,omitempty"`
	// ServiceListen is the IP address a service's ports are exposed on,
	// each at a port the kernel picks (default 127.0.0.1: this machine
	// only; a broker sets it to a loopback address that is none of its
	// console's hosts, whose cookies a service there would receive). Only with the sandbox's own network may it be other than a
	// loopback address: on the host's network a service's port is the
	// host's, and exposing it would let a job publish any service of
	// this machine's loopback.
	ServiceListen string `json:"serviceListen,omitempty"`
}

// Isolation modes.
const (
	IsolationSandbox = "sandbox"
	IsolationNone    = "none"
)

// DefaultExpose is what tasks see of the host by default.
var DefaultExpose = []string{"/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/opt"}

// ForHost fits the configuration to the broker that runs it: tasks
// never see the broker's private paths; tenants' services are exposed on
// a loopback address none of the broker's hosts is (127.0.0.2 on, unless
// serviceListen says where, which must not be one of them); and tasks run
// unisolated only where the broker allows it.
func (c *Config) ForHost(h adapters.Host) error {
	if c.Isolation == IsolationNone && h.RequireIsolation {
		return errors.New("isolation: none lets every job read the broker's key and other jobs' files; only cinet dev may use it")
	}
	if c.ServiceListen != "" {
		for _, r := range h.Reserved {
			if ip, rip := net.ParseIP(c.ServiceListen), net.ParseIP(r); strings.EqualFold(c.ServiceListen, r) || (ip != nil && rip != nil && ip.Equal(rip)) {
				return fmt.Errorf("serviceListen %s is a host the console is reached by: every tenant's service there would receive the console's session cookies; expose services on another address", c.ServiceListen)
			}
		}
	} else if len(h.Reserved) > 0 {
		for i := 2; i < 255; i++ {
			if ip := fmt.Sprintf("127.0.0.%d", i); !slices.Contains(h.Reserved, ip) {
				c.ServiceListen = ip
				break
			}
		}
	}
	for _, p := range h.Private {
		abs, err := filepath.Abs(p)
		if err != nil {
			return err
		}
		c.Hide = append(c.Hide, abs)
	}
	return nil
}

// Validate checks the configuration without touching the machine.
func (c *Config) Validate() error {
	if c.Workdir == "" {
		return errors.New("local: a workdir is required")
	}
	switch c.Isolation {
	case "", IsolationSandbox, IsolationNone:
	default:
		return fmt.Errorf("local: isolation %q: want sandbox or none", c.Isolation)
	}
	switch c.Network {
	case "", "none", "host":
	default:
		return fmt.Errorf("local: network %q: want none or host", c.Network)
	}
	if c.UIDs != "" {
		if _, err := parseUIDRange(c.UIDs); err != nil {
			return fmt.Errorf("local: %w", err)
		}
	}
	if c.ServiceListen != "" {
		ip := net.ParseIP(c.ServiceListen)
		switch {
		case ip == nil:
			return fmt.Errorf("local: serviceListen %q: want an IP address", c.ServiceListen)
		case !ip.IsLoopback() && (c.Network == "host" || c.Isolation == IsolationNone):
			return fmt.Errorf("local: serviceListen %s: tasks on the host's network (network: host or isolation: none) may only be exposed on loopback, or a job could publish this machine's own loopback services", c.ServiceListen)
		}
	}
	if c.PIDs < 0 {
		return fmt.Errorf("local: pids %d: want a positive bound", c.PIDs)
	}
	for _, p := range append(append([]string{}, c.Expose...), c.Hide...) {
		if !filepath.IsAbs(p) || filepath.Clean(p) != p || p == "/" {
			return fmt.Errorf("local: %q: exposed and hidden paths are clean absolute paths other than /", p)
		}
	}
	return nil
}

// Isolated reports whether tasks run in the sandbox.
func (c *Config) Isolated() bool { return c.Isolation != IsolationNone }

// Local is the adapter.
type Local struct {
	cfg     Config
	grace   time.Duration
	sandbox *sandboxConf // nil without isolation
	// mu serializes Provision per adapter, so one shim starts per
	// placement, and the accounting of lost placements.
	mu sync.Mutex
	// sweepMu guards swept, when released placements were last swept.
	sweepMu sync.Mutex
	swept   time.Time
}

// New returns a local adapter. With isolation (the default) it first
// checks that this host can build the sandbox, and refuses to start if not.
func New(c Config) (*Local, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(c.Workdir)
	if err != nil {
		return nil, err
	}
	c.Workdir = dir
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("local: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("local: %w", err)
	}
	if len(c.Shim) == 0 {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("local: finding this program to run shims: %w", err)
		}
		c.Shim = []string{exe, "local-shim"}
	}
	grace := c.KillGrace.Std()
	if grace <= 0 {
		grace = 5 * time.Second
	}
	l := &Local{cfg: c, grace: grace}
	if c.Isolated() {
		sb := &sandboxConf{PIDs: c.PIDs, HostNetwork: c.Network == "host", Expose: c.Expose, Hide: []string{dir}, LogLimit: int64(c.LogLimit), Disk: int64(c.DefaultDisk)}
		if sb.Disk == 0 {
			sb.Disk = DefaultDisk
		}
		if sb.PIDs == 0 {
			sb.PIDs = 1024
		}
		if sb.LogLimit == 0 {
			sb.LogLimit = DefaultLogLimit
		}
		if sb.Expose == nil {
			sb.Expose = DefaultExpose
		}
		for _, h := range c.Hide {
			abs, err := filepath.Abs(h)
			if err != nil {
				return nil, err
			}
			sb.Hide = append(sb.Hide, abs)
		}
		if sb.UIDs, err = parseUIDRange(cmp.Or(c.UIDs, defaultUIDs)); err != nil {
			return nil, err
		}
		if err := probeSandbox(c.Shim, !sb.HostNetwork); err != nil {
			return nil, fmt.Errorf("local: this host cannot isolate tasks: %v (isolation: none runs them unisolated, for development only)", err)
		}
		l.sandbox = sb
	}
	return l, nil
}

// Files of a placement's directory.
const (
	placementFile = "placement.json" // what to run, written before the shim starts
	runFile       = "run.json"       // the shim's record of the run, replaced atomically
	lockFile      = "lock"           // flock'd by the shim for as long as it lives
	shimLog       = "shim.log"
	logsDir       = "logs"
	workDir       = "work"  // the job's, owned by its user; /work in the sandbox
	rootDir       = "root"  // where a task's init builds its root file system
	uidsDir       = ".uids" // in the workdir: a lock file per user ID taken
)

// spec is what the shim runs: the placement, the kill grace and the
// sandbox (nil without isolation).
type spec struct {
	Placement adapters.Placement `json:"placement"`
	Grace     time.Duration      `json:"grace"`
	Sandbox   *sandboxConf       `json:"sandbox,omitempty"`
	Limits    adapters.Limits    `json:"limits"`
	// ServiceListen is the host address a service's ports are exposed on.
	ServiceListen string `json:"serviceListen,omitempty"`
}

// sandboxConf is the adapter's sandbox configuration, as the shim needs it.
type sandboxConf struct {
	UIDs        uidRange `json:"uids"`
	HostNetwork bool     `json:"hostNetwork,omitempty"`
	PIDs        int64    `json:"pids"`
	Expose      []string `json:"expose"`
	Hide        []string `json:"hide"`
	LogLimit    int64    `json:"logLimit"`
	Disk        int64    `json:"disk"` // a node's /work when the class names none
}

// Defaults of the sandbox: what one stream of one task keeps, and a
// node's disk when the class names none.
const (
	DefaultLogLimit = 64 << 20
	DefaultDisk     = 10 << 30
)

// run is the shim's record of a placement's run. The task cannot reach
// it: it is outside the sandbox, in a directory only root may enter.
type run struct {
	ShimPID int       `json:"shimPid"`
	UID     uint32    `json:"uid,omitempty"`
	Seen    time.Time `json:"seen"` // when the shim last said it was alive
	Tasks   []taskRun `json:"tasks"`
	Done    bool      `json:"done"`
	// Lost: the shim died; the adapter ended the record from the last
	// time the shim was seen and the cgroup's accounting.
	Lost      bool   `json:"lost,omitempty"`
	Cancelled bool   `json:"cancelled,omitempty"`
	Detail    string `json:"detail,omitempty"`
	// Endpoints are a service's, while its last task runs.
	Endpoints []adapters.Endpoint `json:"endpoints,omitempty"`
}

type taskRun struct {
	adapters.TaskStatus
	PGIDs   []int      `json:"pgids,omitempty"`   // without a sandbox, while it runs: a process group per node
	Cgroups []groupRef `json:"cgroups,omitempty"` // in a sandbox, while it runs: a cgroup per node
	// PGID and Cgroup are the single node's, in records written before
	// placements had nodes; they are read, never written.
	PGID       int           `json:"pgid,omitempty"`
	Cgroup     *groupRef     `json:"cgroup,omitempty"`
	CPU        time.Duration `json:"cpu"`        // of every node
	PeakMemory int64         `json:"peakMemory"` // summed over the nodes
}

// maxNodes bounds the nodes of a placement on one machine.
const maxNodes = 64

var taskNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)

// Workdir is the directory holding a directory per placement.
func (l *Local) Workdir() string { return l.cfg.Workdir }

func (l *Local) dir(id string) (string, error) {
	if !adapters.ValidID(id) {
		return "", fmt.Errorf("local: %q is not a placement ID", id)
	}
	return filepath.Join(l.cfg.Workdir, id), nil
}

// Capacity implements adapters.Adapter: the configured capacity, or the
// machine's CPUs and memory.
func (l *Local) Capacity(context.Context) (adapters.Capacity, error) {
	c := adapters.Capacity{CPUs: l.cfg.CPUs, Memory: int64(l.cfg.Memory)}
	if c.CPUs == 0 {
		c.CPUs = runtime.NumCPU()
	}
	if c.Memory == 0 {
		m, err := machineMemory()
		if err != nil {
			return adapters.Capacity{}, err
		}
		c.Memory = m
	}
	return c, nil
}

// Provision implements adapters.Adapter.
func (l *Local) Provision(ctx context.Context, p adapters.Placement) error {
	dir, err := l.dir(p.ID)
	if err != nil {
		return err
	}
	l.sweep(time.Now())
	if len(p.Tasks) == 0 {
		return errors.New("local: a placement has at least one task")
	}
	if n := p.Instances(); n > maxNodes {
		return fmt.Errorf("local: the job asks for %d nodes; the local adapter runs at most %d on one machine", n, maxNodes)
	}
	for _, t := range p.Tasks {
		if !taskNameRE.MatchString(t.Name) {
			return fmt.Errorf("local: task name %q: want 1 to 63 of A-Z a-z 0-9 _ . - ", t.Name)
		}
		if len(t.Command) == 0 {
			return fmt.Errorf("local: task %s has no command; the local adapter runs commands, not images", t.Name)
		}
		if t.Workdir != "" && (filepath.IsAbs(t.Workdir) || !filepath.IsLocal(t.Workdir)) {
			return fmt.Errorf("local: task %s: workdir %q must be a relative path inside the placement's directory", t.Name, t.Workdir)
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, err := os.Stat(filepath.Join(dir, runFile)); err == nil {
		return nil // the shim has started: provisioned before
	}
	if alive(dir) {
		return nil
	}
	mk := []string{dir, filepath.Join(dir, logsDir)}
	for inst := range p.Instances() {
		mk = append(mk, filepath.Join(dir, nodeWork(inst)))
	}
	for _, d := range mk {
		if err := os.Mkdir(d, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("local: %w", err)
		}
	}
	data, err := json.Marshal(spec{Placement: p, Grace: l.grace, Sandbox: l.sandbox, Limits: p.Limits, ServiceListen: cmp.Or(l.cfg.ServiceListen, "127.0.0.1")})
	if err != nil {
		return err
	}
	if err := adapters.WriteFileAtomic(filepath.Join(dir, placementFile), data); err != nil {
		return fmt.Errorf("local: %w", err)
	}
	logf, err := os.OpenFile(filepath.Join(dir, shimLog), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("local: %w", err)
	}
	defer logf.Close()
	cmd := exec.Command(l.cfg.Shim[0], append(l.cfg.Shim[1:], dir)...)
	cmd.Env = append(os.Environ(), shimEnv+"=1")
	cmd.Stdout, cmd.Stderr = logf, logf
	// A session of its own: the shim outlives the broker and gets none of
	// its terminal's signals.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("local: starting the shim: %w", err)
	}
	go cmd.Wait() // reap it if it ends while this process lives
	// Wait until the shim has taken its lock and written its record, so
	// that a Status right after sees it running.
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(filepath.Join(dir, runFile)); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	return fmt.Errorf("local: the shim for %s did not start; see %s", p.ID, filepath.Join(dir, shimLog))
}

// readRun reads a placement's run record; nil when the shim has not
// written one yet.
func readRun(dir string) (*run, error) {
	data, err := os.ReadFile(filepath.Join(dir, runFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var r run
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("local: %s: %w", runFile, err)
	}
	return &r, nil
}

// load reads a placement's run record and whether its shim is alive. The
// liveness is read first: a shim that is not alive has written its last
// record, so a record read after is final. (Read the other way round, a
// shim that finishes between the two reads would look lost.)
func (l *Local) load(id string) (dir string, r *run, live bool, err error) {
	if dir, err = l.dir(id); err != nil {
		return "", nil, false, err
	}
	if _, err := os.Stat(filepath.Join(dir, placementFile)); errors.Is(err, os.ErrNotExist) {
		return "", nil, false, fmt.Errorf("%w: %s", adapters.ErrNotFound, id)
	}
	live = alive(dir)
	if r, err = readRun(dir); err != nil || r == nil || live || r.Done {
		return dir, r, live, err
	}
	r, err = l.endLost(dir)
	return dir, r, false, err
}

// endLost ends the record of a placement whose shim died: what still runs
// of its task is killed, and the task is counted up to the last time the
// shim was seen alive, with the CPU time and memory its cgroup measured —
// never from anything the task could write.
func (l *Local) endLost(dir string) (*run, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	r, err := readRun(dir)
	if err != nil || r == nil || r.Done {
		return r, err
	}
	if n := len(r.Tasks); n > 0 && !r.Tasks[n-1].Ended() {
		t := &r.Tasks[n-1]
		if t.Cgroup != nil {
			t.Cgroups = append(t.Cgroups, *t.Cgroup)
		}
		if t.PGID > 0 {
			t.PGIDs = append(t.PGIDs, t.PGID)
		}
		for _, g := range t.Cgroups {
			a, err := lostAccounting(g)
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				return nil, fmt.Errorf("local: the accounting of lost placement %s: %w", filepath.Base(dir), err)
			}
			t.CPU += a.CPU
			t.PeakMemory += a.PeakMemory
		}
		for _, pgid := range t.PGIDs {
			syscall.Kill(-pgid, syscall.SIGKILL)
		}
		t.End, t.ExitCode, t.Signal = r.Seen, -1, "killed"
		t.Cgroup, t.PGID, t.Cgroups, t.PGIDs = nil, 0, nil, nil
		if t.End.Before(t.Started) {
			t.End = t.Started
		}
	}
	unmountWorkDisks(dir)
	r.Done, r.Lost = true, true
	r.Detail = "the shim supervising the placement died; its usage counts up to " + r.Seen.Format(time.RFC3339)
	data, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	if err := adapters.WriteFileAtomic(filepath.Join(dir, runFile), data); err != nil {
		return nil, err
	}
	return r, nil
}

// waitForProvision returns once no Provision holds the lock: one that was
// starting a shim has then written its record, or given up.
func (l *Local) waitForProvision() {
	l.mu.Lock()
	defer l.mu.Unlock()
}

// Status implements adapters.Adapter.
func (l *Local) Status(ctx context.Context, id string) (adapters.Status, error) {
	dir, r, live, err := l.load(id)
	if err == nil && r == nil && !live {
		// Provision may be starting the shim, under the lock: wait for it
		// and look again, rather than call the placement lost.
		l.waitForProvision()
		dir, r, live, err = l.load(id)
	}
	if err != nil {
		return adapters.Status{}, err
	}
	if r == nil {
		if live {
			return adapters.Status{State: adapters.Running}, nil
		}
		return adapters.Status{State: adapters.Lost, Detail: "the shim never started; see " + filepath.Join(dir, shimLog)}, nil
	}
	st := adapters.Status{Detail: r.Detail}
	if !r.Done {
		st.Endpoints = r.Endpoints
	}
	for _, t := range r.Tasks {
		st.Tasks = append(st.Tasks, t.TaskStatus)
	}
	switch {
	case !r.Done:
		st.State = adapters.Running
	case r.Lost:
		st.State = adapters.Lost
	case r.Cancelled:
		st.State = adapters.Cancelled
	default:
		st.State = adapters.Succeeded
		p, err := readSpec(dir)
		if err != nil {
			return adapters.Status{}, err
		}
		if len(r.Tasks) < len(p.Placement.Tasks) || st.ExitCode() != 0 {
			st.State = adapters.Failed
		}
	}
	return st, nil
}

func readSpec(dir string) (*spec, error) {
	data, err := os.ReadFile(filepath.Join(dir, placementFile))
	if err != nil {
		return nil, err
	}
	var s spec
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("local: %s: %w", placementFile, err)
	}
	return &s, nil
}

// Logs implements adapters.Adapter.
func (l *Local) Logs(ctx context.Context, id, task string, node int, stream string) (io.ReadCloser, error) {
	dir, _, _, err := l.load(id)
	if err != nil {
		return nil, err
	}
	if stream != "stdout" && stream != "stderr" {
		return nil, fmt.Errorf("local: stream %q: want stdout or stderr", stream)
	}
	s, err := readSpec(dir)
	if err != nil {
		return nil, err
	}
	known := false
	for _, t := range s.Placement.Tasks {
		known = known || t.Name == task
	}
	if !known {
		return nil, fmt.Errorf("local: placement %s has no task %q", id, task)
	}
	if n := s.Placement.Instances(); node < 0 || node >= n {
		return nil, fmt.Errorf("local: placement %s has no node %d: its nodes are 0 to %d", id, node, n-1)
	}
	f, err := os.Open(logPath(dir, task, node, stream))
	if errors.Is(err, os.ErrNotExist) {
		return io.NopCloser(strings.NewReader("")), nil // not started yet
	}
	return f, err
}

// Usage implements adapters.Adapter. Tasks that ended count in full; a
// task still running counts its wall time up to now (its CPU time and
// memory are read when it ends); a task whose shim died counts up to the
// shim's last sign of life.
func (l *Local) Usage(ctx context.Context, id string) (adapters.Usage, error) {
	_, r, _, err := l.load(id)
	if err != nil {
		return adapters.Usage{}, err
	}
	var u adapters.Usage
	if r == nil {
		return u, nil
	}
	for _, t := range r.Tasks {
		end := t.End
		if end.IsZero() {
			end = time.Now().UTC()
		}
		if u.Start.IsZero() {
			u.Start = t.Started
		}
		u.End = end
		u.CPU += t.CPU
		u.PeakMemory = max(u.PeakMemory, t.PeakMemory)
		u.Tasks = append(u.Tasks, adapters.TaskUsage{Name: t.Name, Wall: end.Sub(t.Started), CPU: t.CPU, PeakMemory: t.PeakMemory})
	}
	return u, nil
}

// Release implements adapters.Adapter: it asks the shim to stop the
// running task (SIGTERM to the task, SIGKILL after the grace) and waits
// for it to record the end. A placement whose shim is gone was ended by
// load.
func (l *Local) Release(ctx context.Context, id string) error {
	dir, r, live, err := l.load(id)
	if err != nil {
		return err
	}
	if r == nil || r.Done {
		if r != nil {
			return markReleased(dir)
		}
		return nil
	}
	defer func() {
		if r != nil && r.Done {
			markReleased(dir)
		}
	}()
	if live {
		if err := syscall.Kill(r.ShimPID, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("local: signalling the shim of %s: %w", id, err)
		}
		deadline := time.Now().Add(l.grace + 5*time.Second)
		for time.Now().Before(deadline) {
			if r, err = readRun(dir); err == nil && r.Done {
				return nil
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(20 * time.Millisecond):
			}
		}
		return fmt.Errorf("local: the shim of %s did not stop the placement within %s", id, l.grace+5*time.Second)
	}
	return nil
}

// alive reports whether a shim holds the placement's lock.
func alive(dir string) bool { return adapters.LockHeld(filepath.Join(dir, lockFile)) }

// machineMemory reads MemTotal from /proc/meminfo.
func machineMemory() (int64, error) {
	data, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, fmt.Errorf("local: reading the machine's memory: %w; set memory in the config", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("local: /proc/meminfo: %q", line)
			}
			return kb << 10, nil
		}
	}
	return 0, errors.New("local: /proc/meminfo has no MemTotal; set memory in the config")
}

var _ adapters.Adapter = (*Local)(nil)
