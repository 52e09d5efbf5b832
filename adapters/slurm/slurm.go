//go:build unix

// Package slurm is the adapter for a Slurm cluster (spec/adapters.md §6):
// a placement is a batch job of as many nodes, whose script runs each
// task as a job step on every node (srun) through the node wrapper
// (Node); status comes from Slurm (squeue, then sacct) and the wrapper's
// records, logs from the steps' output files, CPU time and memory from
// Slurm's accounting, and Release is scancel.
package slurm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cinet/cinet/adapters"
	"github.com/cinet/cinet/adapters/nodeagent"
	"github.com/cinet/cinet/descriptor"
)

func init() {
	adapters.Register("slurm", func(raw json.RawMessage, _ adapters.Host) (adapters.Adapter, error) {
		var c Config
		if err := adapters.DecodeConfig(raw, &c); err != nil {
			return nil, err
		}
		return New(c)
	})
}

// Config configures the adapter.
type Config struct {
	// DataDir holds a directory per placement: its batch script, the
	// steps' output and the node wrapper's records. The cluster's nodes
	// must see it at the same path (a shared file system). Required.
	DataDir string `json:"dataDir"`
	// Partition the jobs are submitted to (default: the cluster's default).
	Partition string `json:"partition,omitempty"`
	// Account charged for the jobs (sbatch --account), if any.
	Account string `json:"account,omitempty"`
	// SlurmConf is the cluster's slurm.conf, as SLURM_CONF gives it to
	// Slurm's commands (default: theirs).
	SlurmConf string `json:"slurmConf,omitempty"`
	// Node is the command the steps run as the node wrapper, its
	// arguments following (default: this program with "slurm-node"); the
	// nodes must have it at that path.
	Node []string `json:"node,omitempty"`
}

// Files in a placement's directory.
const (
	placementFile = "placement.json"
	scriptFile    = "job.sh"
	jobIDFile     = "jobid"
	submitting    = "submitting" // written before sbatch: a Provision cut short looks the job up by name
	releasedFile  = "released"
	timedOutFile  = "timedout"
	failedFile    = "failed" // a node's task failed: the others stop theirs
	addrsFile     = "addrs"
	portFile      = "port"
)

// Slurm is the adapter.
type Slurm struct {
	cfg  Config
	node string // the node wrapper's command, quoted for the shell
	mu   sync.Mutex
}

// New checks the commands and that the controller answers.
func New(c Config) (*Slurm, error) {
	if c.DataDir == "" {
		return nil, errors.New("slurm: a dataDir is required (on a file system the nodes share)")
	}
	var err error
	if c.DataDir, err = filepath.Abs(c.DataDir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("slurm: %w", err)
	}
	for _, cmd := range []string{"sbatch", "squeue", "sacct", "scancel", "scontrol", "sinfo", "srun"} {
		if _, err := exec.LookPath(cmd); err != nil {
			return nil, fmt.Errorf("slurm: %s is not installed here: the adapter runs Slurm's commands (Debian: slurm-client)", cmd)
		}
	}
	node := c.Node
	if len(node) == 0 {
		exe, err := os.Executable()
		if err != nil {
			return nil, err
		}
		node = []string{exe, "slurm-node"}
	}
	var q []string
	for _, a := range node {
		q = append(q, shellQuote(a))
	}
	s := &Slurm{cfg: c, node: strings.Join(q, " ")}
	out, err := s.run(context.Background(), "scontrol", "ping")
	if err != nil || !strings.Contains(out, "is UP") {
		return nil, fmt.Errorf("slurm: the controller does not answer (scontrol ping: %s%v): start slurmctld, or name the cluster's slurm.conf in slurmConf", strings.TrimSpace(out), errSuffix(err))
	}
	return s, nil
}

func errSuffix(err error) string {
	if err == nil {
		return ""
	}
	return "; " + err.Error()
}

// run runs one of Slurm's commands and returns its standard output; an
// error carries what it wrote to standard error.
func (s *Slurm) run(ctx context.Context, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = os.Environ()
	if s.cfg.SlurmConf != "" {
		cmd.Env = append(cmd.Env, "SLURM_CONF="+s.cfg.SlurmConf)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s: %v: %s", name, err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// PlacementDir is where a placement's batch script, output and records
// are.
func (s *Slurm) PlacementDir(id string) string { return filepath.Join(s.cfg.DataDir, id) }

func (s *Slurm) dir(id string) (string, error) {
	if !adapters.ValidID(id) {
		return "", fmt.Errorf("slurm: %q is not a placement ID", id)
	}
	return s.PlacementDir(id), nil
}

// Capacity implements adapters.Adapter: the partition's nodes' CPUs and
// memory, as sinfo reports them.
func (s *Slurm) Capacity(ctx context.Context) (adapters.Capacity, error) {
	args := []string{"-h", "-o", "%D %c %m"}
	if s.cfg.Partition != "" {
		args = append(args, "-p", s.cfg.Partition)
	}
	out, err := s.run(ctx, "sinfo", args...)
	if err != nil {
		return adapters.Capacity{}, fmt.Errorf("slurm: %w", err)
	}
	var c adapters.Capacity
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var nodes, cpus int
		var memMB int64
		if _, err := fmt.Sscanf(strings.TrimSuffix(line, "+"), "%d %d %d", &nodes, &cpus, &memMB); err != nil {
			return adapters.Capacity{}, fmt.Errorf("slurm: sinfo said %q", line)
		}
		c.CPUs += nodes * cpus
		c.Memory += int64(nodes) * memMB << 20
	}
	return c, nil
}

// Provision implements adapters.Adapter: it writes the batch script and
// submits it.
func (s *Slurm) Provision(ctx context.Context, p adapters.Placement) error {
	dir, err := s.dir(p.ID)
	if err != nil {
		return err
	}
	if len(p.Tasks) == 0 {
		return errors.New("slurm: a placement has at least one task")
	}
	if p.Service != nil {
		return errors.New("slurm: the slurm adapter does not run services; place the job on another provider")
	}
	for _, t := range p.Tasks {
		if !adapters.ValidID(t.Name) || len(t.Command) == 0 {
			return fmt.Errorf("slurm: task %q: a task has a plain name and a command", t.Name)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := os.Stat(filepath.Join(dir, jobIDFile)); err == nil {
		return nil // submitted already
	}
	name := "cinet-" + p.ID
	if _, err := os.Stat(filepath.Join(dir, submitting)); err == nil {
		// A Provision cut short between sbatch and recording its job:
		// Slurm knows the job by name.
		out, err := s.run(ctx, "squeue", "-h", "--name", name, "-o", "%i")
		if err != nil {
			return fmt.Errorf("slurm: %w", err)
		}
		if id := strings.TrimSpace(out); id != "" {
			return adapters.WriteFileAtomic(filepath.Join(dir, jobIDFile), []byte(id))
		}
	}
	for k := range p.Instances() {
		if err := os.MkdirAll(filepath.Join(dir, "logs", strconv.Itoa(k)), 0o700); err != nil {
			return fmt.Errorf("slurm: %w", err)
		}
	}
	if err := writeJSON(filepath.Join(dir, placementFile), p); err != nil {
		return fmt.Errorf("slurm: %w", err)
	}
	if err := adapters.WriteFileAtomic(filepath.Join(dir, scriptFile), []byte(Script(p, dir, s.node))); err != nil {
		return fmt.Errorf("slurm: %w", err)
	}
	if err := adapters.WriteFileAtomic(filepath.Join(dir, submitting), nil); err != nil {
		return fmt.Errorf("slurm: %w", err)
	}
	out, err := s.run(ctx, "sbatch", s.sbatchArgs(p, dir, name)...)
	if err != nil {
		return fmt.Errorf("slurm: submitting placement %s: %w", p.ID, err)
	}
	id, _, _ := strings.Cut(strings.TrimSpace(out), ";") // --parsable: ID[;cluster]
	if _, err := strconv.Atoi(id); err != nil {
		return fmt.Errorf("slurm: sbatch answered %q, not a job ID", out)
	}
	return adapters.WriteFileAtomic(filepath.Join(dir, jobIDFile), []byte(id))
}

// sbatchArgs asks for the placement's nodes, one task each with the
// class's CPUs and memory, and a time limit above the timeout (which the
// script enforces to the second).
func (s *Slurm) sbatchArgs(p adapters.Placement, dir, name string) []string {
	n := p.Instances()
	args := []string{"--parsable", "--job-name=" + name, "--comment=cinet-placement=" + p.ID,
		"--nodes=" + strconv.Itoa(n), "--ntasks=" + strconv.Itoa(n), "--ntasks-per-node=1",
		"--output=" + filepath.Join(dir, "batch.out"), "--chdir=" + dir}
	cpus := p.Limits.CPUs
	if cpus == 0 {
		cpus = p.Resources.CPUs
	}
	args = append(args, "--cpus-per-task="+strconv.Itoa(max(1, int(math.Ceil(cpus)))))
	mem := p.Limits.Memory
	if mem == 0 {
		mem = int64(p.Resources.Memory)
	}
	if mem > 0 {
		args = append(args, "--mem="+strconv.FormatInt(max(1, (mem+(1<<20)-1)>>20), 10)+"M")
	}
	if p.Limits.Accelerators > 0 {
		args = append(args, "--gres=gpu:"+strconv.Itoa(p.Limits.Accelerators))
	}
	if p.Timeout > 0 {
		args = append(args, "--time="+strconv.Itoa(int(math.Ceil(p.Timeout.Minutes()))+1))
	}
	if s.cfg.Partition != "" {
		args = append(args, "--partition="+s.cfg.Partition)
	}
	if s.cfg.Account != "" {
		args = append(args, "--account="+s.cfg.Account)
	}
	return append(args, filepath.Join(dir, scriptFile))
}

// Script is the batch script of a placement in dir whose steps run node,
// the node wrapper's command (quoted for the shell).
func Script(p adapters.Placement, dir, node string) string {
	n := strconv.Itoa(p.Instances())
	var b strings.Builder
	fmt.Fprintf(&b, `#!/bin/sh
# cinet placement %s of job %s: each task runs as a job step on every
# node, the next once it has exited 0 on all of them (spec/adapters.md §6).
dir=%s
cd "$dir" || exit 1
# The node contract: each node's address, in rank order, and a port.
scontrol show hostnames "$SLURM_JOB_NODELIST" | while read -r n; do
	scontrol show node "$n" | sed -n 's/.*NodeAddr=\([^ ]*\).*/\1/p'
done > addrs.tmp && mv addrs.tmp %s
echo $((20000 + SLURM_JOB_ID %% 10000)) > %s
`, p.ID, p.Job, shellQuote(dir), addrsFile, portFile)
	if p.Timeout > 0 {
		fmt.Fprintf(&b, "# The timeout, to the millisecond (Slurm's --time counts minutes): the node\n# wrappers stop their tasks on the mark; scancel is the backstop.\n(sleep %.3f; touch %s; sleep %d; scancel \"$SLURM_JOB_ID\") &\n",
			p.Timeout.Seconds(), timedOutFile, int((stopGrace+2*time.Second)/time.Second))
	}
	for i, t := range p.Tasks {
		fmt.Fprintf(&b, "srun --kill-on-bad-exit=1 --nodes=%s --ntasks=%s --ntasks-per-node=1 --job-name=%s \\\n\t--output=\"$dir/logs/%%t/%s.stdout\" --error=\"$dir/logs/%%t/%s.stderr\" \\\n\t%s \"$dir\" %d || exit $?\n",
			n, n, t.Name, t.Name, t.Name, node, i)
	}
	return b.String()
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func (s *Slurm) load(id string) (dir, job string, p *adapters.Placement, err error) {
	if dir, err = s.dir(id); err != nil {
		return "", "", nil, err
	}
	b, err := os.ReadFile(filepath.Join(dir, jobIDFile))
	if errors.Is(err, os.ErrNotExist) {
		return "", "", nil, fmt.Errorf("%w: %s", adapters.ErrNotFound, id)
	}
	if err != nil {
		return "", "", nil, err
	}
	p = &adapters.Placement{}
	if err := readJSON(filepath.Join(dir, placementFile), p); err != nil {
		return "", "", nil, err
	}
	return dir, strings.TrimSpace(string(b)), p, nil
}

// jobState is the job's Slurm state ("RUNNING", "COMPLETED", …), from
// squeue while the controller holds it, then from the accounting.
func (s *Slurm) jobState(ctx context.Context, job string) (string, error) {
	out, err := s.run(ctx, "squeue", "-h", "-j", job, "-o", "%T")
	if st := strings.TrimSpace(out); err == nil && st != "" {
		return st, nil
	}
	out, err = s.run(ctx, "sacct", "-j", job, "-X", "-n", "-P", "-o", "State")
	if err != nil {
		return "", fmt.Errorf("slurm: %w", err)
	}
	st, _, _ := strings.Cut(strings.TrimSpace(out), " ") // "CANCELLED by 0"
	return st, nil
}

// gridOf is the wrapper's records as the gang rule reads them.
func gridOf(recs [][]*nodeRecord) nodeagent.Grid {
	g := make(nodeagent.Grid, len(recs))
	for i, nodes := range recs {
		g[i] = make([]*nodeagent.Run, len(nodes))
		for k, r := range nodes {
			if r != nil {
				g[i][k] = &nodeagent.Run{Started: r.Started, Ended: r.Ended, ExitCode: r.ExitCode, Signal: r.Signal, Stopped: r.Stopped, TimedOut: r.Stopped == timedOutFile}
			}
		}
	}
	return g
}

func taskNames(p *adapters.Placement) []string {
	names := make([]string, len(p.Tasks))
	for i, t := range p.Tasks {
		names[i] = t.Name
	}
	return names
}

// records reads the node wrapper's records: [task][node].
func records(dir string, p *adapters.Placement) [][]*nodeRecord {
	out := make([][]*nodeRecord, len(p.Tasks))
	for i := range p.Tasks {
		out[i] = make([]*nodeRecord, p.Instances())
		for k := range out[i] {
			var r nodeRecord
			if readJSON(recordPath(dir, k, i), &r) == nil {
				out[i][k] = &r
			}
		}
	}
	return out
}

// Status implements adapters.Adapter.
func (s *Slurm) Status(ctx context.Context, id string) (adapters.Status, error) {
	dir, job, p, err := s.load(id)
	if err != nil {
		return adapters.Status{}, err
	}
	state, err := s.jobState(ctx, job)
	if err != nil {
		return adapters.Status{}, err
	}
	grid := gridOf(records(dir, p))
	ended := terminal(state)
	st := adapters.Status{State: adapters.Running, Tasks: grid.Tasks(taskNames(p), ended)}
	_, timedOut := os.Stat(filepath.Join(dir, timedOutFile))
	n := p.Instances()
	failedTask, failedNode, failed, _ := grid.Failure()
	if !ended {
		return st, nil
	}
	_, released := os.Stat(filepath.Join(dir, releasedFile))
	last := len(st.Tasks) - 1
	switch {
	case timedOut == nil || state == "TIMEOUT":
		st.State, st.Detail = adapters.Failed, fmt.Sprintf("timed out after %s", p.Timeout)
		if last >= 0 {
			st.Tasks[last].TimedOut = true
		}
	case released == nil:
		st.State = adapters.Cancelled
	case failed != nil:
		st.State = adapters.Failed
		st.Detail = fmt.Sprintf("task %s failed on node %d of %d (%s)", p.Tasks[failedTask].Name, failedNode, n, failed.How())
		if n > 1 {
			st.Detail += "; the other nodes were stopped"
		}
	case state == "COMPLETED" && len(st.Tasks) == len(p.Tasks) && st.ExitCode() == 0:
		st.State = adapters.Succeeded
	case state == "NODE_FAIL" || state == "BOOT_FAIL" || state == "PREEMPTED" || state == "LOST":
		st.State, st.Detail = adapters.Lost, "Slurm says the job is "+state
	case state == "OUT_OF_MEMORY":
		st.State, st.Detail = adapters.Failed, "out of memory: Slurm stopped the job at its memory limit"
	case state == "CANCELLED":
		st.State, st.Detail = adapters.Cancelled, "cancelled in Slurm (scancel) by someone other than the broker"
	default:
		st.State, st.Detail = adapters.Failed, "Slurm says the job is "+state+"; see "+filepath.Join(dir, "batch.out")
	}
	return st, nil
}

// terminal reports whether a Slurm job state is final.
func terminal(state string) bool {
	switch state {
	case "", "PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED", "REQUEUED", "REQUEUE_FED", "REQUEUE_HOLD", "RESIZING", "SIGNALING", "STAGE_OUT", "STOPPED":
		return false
	}
	return true
}

// Logs implements adapters.Adapter.
func (s *Slurm) Logs(ctx context.Context, id, task string, node int, stream string) (io.ReadCloser, error) {
	dir, _, p, err := s.load(id)
	if err != nil {
		return nil, err
	}
	if stream != "stdout" && stream != "stderr" {
		return nil, fmt.Errorf("slurm: stream %q: want stdout or stderr", stream)
	}
	known := false
	for _, t := range p.Tasks {
		known = known || t.Name == task
	}
	if !known {
		return nil, fmt.Errorf("slurm: placement %s has no task %q", id, task)
	}
	if n := p.Instances(); node < 0 || node >= n {
		return nil, fmt.Errorf("slurm: placement %s has no node %d: its nodes are 0 to %d", id, node, n-1)
	}
	f, err := os.Open(filepath.Join(dir, "logs", strconv.Itoa(node), task+"."+stream))
	if errors.Is(err, os.ErrNotExist) {
		return io.NopCloser(strings.NewReader("")), nil
	}
	return f, err
}

// Usage implements adapters.Adapter: wall time from the node wrapper's
// clock; CPU time and memory from Slurm's accounting of each task's step
// (sacct's TotalCPU and TRESUsageInTot), or, for a step the accounting
// has not recorded (yet, or too short for its sampling), what wait4
// reported to the wrapper.
func (s *Slurm) Usage(ctx context.Context, id string) (adapters.Usage, error) {
	dir, job, p, err := s.load(id)
	if err != nil {
		return adapters.Usage{}, err
	}
	steps, err := s.steps(ctx, job)
	if err != nil {
		return adapters.Usage{}, err
	}
	recs := records(dir, p)
	var u adapters.Usage
	now := time.Now().UTC()
	for i, t := range p.Tasks {
		var start, end time.Time
		var cpu time.Duration
		var mem int64
		for _, r := range recs[i] {
			if r == nil {
				continue
			}
			if start.IsZero() || r.Started.Before(start) {
				start = r.Started
			}
			e := r.Ended
			if e.IsZero() {
				e = now
			}
			if e.After(end) {
				end = e
			}
			cpu += r.CPU
			mem += r.PeakMemory
		}
		if start.IsZero() {
			break
		}
		if st, ok := steps[i]; ok {
			if st.cpu > 0 {
				cpu = st.cpu
			}
			mem = max(mem, st.mem)
		}
		if u.Start.IsZero() {
			u.Start = start
		}
		u.End = end
		u.CPU += cpu
		u.PeakMemory = max(u.PeakMemory, mem)
		u.Tasks = append(u.Tasks, adapters.TaskUsage{Name: t.Name, Wall: end.Sub(start), CPU: cpu, PeakMemory: mem})
	}
	return u, nil
}

type stepUsage struct {
	cpu time.Duration
	mem int64
}

// steps reads the accounting of the job's steps: step I is task I.
func (s *Slurm) steps(ctx context.Context, job string) (map[int]stepUsage, error) {
	out, err := s.run(ctx, "sacct", "-j", job, "-n", "-P", "-o", "JobIDRaw,TotalCPU,TRESUsageInTot")
	if err != nil {
		return nil, fmt.Errorf("slurm: %w", err)
	}
	m := map[int]stepUsage{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Split(line, "|")
		if len(f) != 3 {
			continue
		}
		_, step, ok := strings.Cut(f[0], ".")
		i, err := strconv.Atoi(step)
		if !ok || err != nil {
			continue // the job itself, its batch step
		}
		m[i] = stepUsage{cpu: ParseDuration(f[1]), mem: tresMem(f[2])}
	}
	return m, nil
}

// ParseDuration reads a duration as sacct writes it,
// [DD-[HH:]]MM:SS[.mmm]; 0 when it cannot.
func ParseDuration(s string) time.Duration {
	var days int
	if d, rest, ok := strings.Cut(s, "-"); ok {
		n, err := strconv.Atoi(d)
		if err != nil || n < 0 {
			return 0
		}
		days, s = n, rest
	}
	parts := strings.Split(s, ":")
	if len(parts) > 3 {
		return 0
	}
	var total float64
	for _, p := range parts {
		v, err := strconv.ParseFloat(p, 64)
		if err != nil || v < 0 || math.IsInf(v, 0) || math.IsNaN(v) || strings.ContainsAny(p, "+-eEinIN") {
			return 0
		}
		total = total*60 + v
	}
	d := (float64(days)*86400 + total) * float64(time.Second)
	if d > math.MaxInt64 {
		return 0
	}
	return time.Duration(d)
}

// tresMem reads mem=… from a TRES list ("cpu=00:00:01,mem=1234K"), in
// bytes.
func tresMem(s string) int64 {
	for _, kv := range strings.Split(s, ",") {
		v, ok := strings.CutPrefix(kv, "mem=")
		if !ok {
			continue
		}
		q, err := descriptor.ParseQuantity(strings.TrimSuffix(v, "B") + suffixI(v))
		if err == nil {
			return int64(q)
		}
	}
	return 0
}

// suffixI turns Slurm's K, M, G (powers of 1024) into the binary suffix
// quantities take.
func suffixI(v string) string {
	if n := len(v); n > 0 && strings.ContainsRune("KMGTP", rune(v[n-1])) {
		return "i"
	}
	return ""
}

// awaitWrappers waits, up to the wrappers' grace and a little, until
// every task that started on a node has ended there.
func (s *Slurm) awaitWrappers(ctx context.Context, dir string, p *adapters.Placement) {
	deadline := time.Now().Add(stopGrace + 2*time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		running := false
		for _, task := range records(dir, p) {
			for _, r := range task {
				running = running || (r != nil && !r.done())
			}
		}
		if !running {
			return
		}
		time.Sleep(stopPoll)
	}
}

// Release implements adapters.Adapter: it marks the placement released,
// lets the node wrappers stop their tasks, cancels the job (scancel), and
// waits until Slurm says it has ended.
func (s *Slurm) Release(ctx context.Context, id string) error {
	dir, job, p, err := s.load(id)
	if err != nil {
		return err
	}
	state, err := s.jobState(ctx, job)
	if err != nil {
		return err
	}
	if terminal(state) {
		return nil
	}
	if err := adapters.WriteFileAtomic(filepath.Join(dir, releasedFile), nil); err != nil {
		return err
	}
	// The node wrappers stop their tasks, each as one, on seeing the mark;
	// then Slurm ends the job (and whatever was not yet started).
	s.awaitWrappers(ctx, dir, p)
	if _, err := s.run(ctx, "scancel", job); err != nil {
		return fmt.Errorf("slurm: %w", err)
	}
	for {
		state, err := s.jobState(ctx, job)
		if err != nil {
			return err
		}
		if terminal(state) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
