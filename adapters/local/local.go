//go:build unix

// Package local runs placements as processes on the provider's own
// machine: a working directory per placement, each task a real process in
// its own process group, its output captured to files, its wall time, CPU
// time and peak memory measured by the operating system.
//
// Each placement runs under a small supervisor process, the shim (Shim),
// started in a session of its own so that it outlives the broker: a broker
// that restarts finds its placements running, or finds how they ended, in
// the placement's directory. The shim holds a lock on the directory for as
// long as it lives, which is how the adapter tells a running placement from
// one whose supervisor died (lost).
package local

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cinet/cinet/adapters"
	"github.com/cinet/cinet/descriptor"
)

func init() {
	adapters.Register("local", func(raw json.RawMessage) (adapters.Adapter, error) {
		var c Config
		if len(raw) > 0 {
			dec := json.NewDecoder(bytes.NewReader(raw))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&c); err != nil {
				return nil, fmt.Errorf("config: %w", err)
			}
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
}

// Local is the adapter.
type Local struct {
	cfg   Config
	grace time.Duration
	mu    sync.Mutex // serializes Provision per adapter, so one shim starts per placement
}

// New returns a local adapter.
func New(c Config) (*Local, error) {
	if c.Workdir == "" {
		return nil, errors.New("local: a workdir is required")
	}
	dir, err := filepath.Abs(c.Workdir)
	if err != nil {
		return nil, err
	}
	c.Workdir = dir
	if err := os.MkdirAll(dir, 0o755); err != nil {
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
	return &Local{cfg: c, grace: grace}, nil
}

// Files of a placement's directory.
const (
	placementFile = "placement.json" // what to run, written before the shim starts
	runFile       = "run.json"       // the shim's record of the run, replaced atomically
	lockFile      = "lock"           // flock'd by the shim for as long as it lives
	shimLog       = "shim.log"
	logsDir       = "logs"
	workDir       = "work"
)

// spec is what the shim runs: the placement and the kill grace.
type spec struct {
	Placement adapters.Placement `json:"placement"`
	Grace     time.Duration      `json:"grace"`
}

// run is the shim's record of a placement's run.
type run struct {
	ShimPID   int       `json:"shimPid"`
	Tasks     []taskRun `json:"tasks"`
	Done      bool      `json:"done"`
	Cancelled bool      `json:"cancelled,omitempty"`
	Detail    string    `json:"detail,omitempty"`
}

type taskRun struct {
	adapters.TaskStatus
	PGID       int           `json:"pgid"`
	CPU        time.Duration `json:"cpu"`
	PeakMemory int64         `json:"peakMemory"`
}

var taskNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)

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
	if len(p.Tasks) == 0 {
		return errors.New("local: a placement has at least one task")
	}
	if p.Nodes > 1 {
		return fmt.Errorf("local: the job asks for %d nodes; the local adapter runs jobs on one machine, one node", p.Nodes)
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
	if err := os.MkdirAll(filepath.Join(dir, logsDir), 0o755); err != nil {
		return fmt.Errorf("local: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(dir, workDir), 0o755); err != nil {
		return fmt.Errorf("local: %w", err)
	}
	data, err := json.Marshal(spec{Placement: p, Grace: l.grace})
	if err != nil {
		return err
	}
	if err := writeAtomic(filepath.Join(dir, placementFile), data); err != nil {
		return fmt.Errorf("local: %w", err)
	}
	logf, err := os.OpenFile(filepath.Join(dir, shimLog), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
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
	r, err = readRun(dir)
	return dir, r, live, err
}

// Status implements adapters.Adapter.
func (l *Local) Status(ctx context.Context, id string) (adapters.Status, error) {
	dir, r, live, err := l.load(id)
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
	for _, t := range r.Tasks {
		st.Tasks = append(st.Tasks, t.TaskStatus)
	}
	switch {
	case !r.Done && live:
		st.State = adapters.Running
	case !r.Done:
		st.State = adapters.Lost
		st.Detail = "the shim supervising the placement died before it ended"
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
func (l *Local) Logs(ctx context.Context, id, task, stream string) (io.ReadCloser, error) {
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
	f, err := os.Open(filepath.Join(dir, logsDir, task+"."+stream))
	if errors.Is(err, os.ErrNotExist) {
		return io.NopCloser(strings.NewReader("")), nil // not started yet
	}
	return f, err
}

// Usage implements adapters.Adapter. Tasks that ended count in full; a
// task still running counts up to now; a task whose shim died counts not
// at all, since its end was never seen.
func (l *Local) Usage(ctx context.Context, id string) (adapters.Usage, error) {
	_, r, live, err := l.load(id)
	if err != nil {
		return adapters.Usage{}, err
	}
	var u adapters.Usage
	if r == nil {
		return u, nil
	}
	running := !r.Done && live
	for _, t := range r.Tasks {
		end := t.End
		if end.IsZero() {
			if !running {
				continue
			}
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
// running task (SIGTERM to the task's process group, SIGKILL after the
// grace) and waits for it to record the end; if the shim is gone, it kills
// the last task's process group itself.
func (l *Local) Release(ctx context.Context, id string) error {
	dir, r, live, err := l.load(id)
	if err != nil {
		return err
	}
	if r == nil || r.Done {
		return nil
	}
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
	// Lost: make sure nothing of it still runs.
	if n := len(r.Tasks); n > 0 && r.Tasks[n-1].PGID > 0 {
		syscall.Kill(-r.Tasks[n-1].PGID, syscall.SIGKILL)
	}
	return nil
}

// alive reports whether a shim holds the placement's lock.
func alive(dir string) bool {
	f, err := os.Open(filepath.Join(dir, lockFile))
	if err != nil {
		return false
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB); err != nil {
		return true // held
	}
	syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	return false
}

func writeAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

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
