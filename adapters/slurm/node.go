//go:build unix

package slurm

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cinet/cinet/adapters"
	"github.com/cinet/cinet/adapters/nodeagent"
)

// nodeRecord is what the node wrapper records of one task on one node,
// in nodes/K/task-I.json: written when the task starts, and again when it
// ends.
type nodeRecord struct {
	Started    time.Time     `json:"started"`
	Ended      time.Time     `json:"ended,omitzero"`
	ExitCode   int           `json:"exitCode"` // -1: a signal ended it
	Signal     string        `json:"signal,omitempty"`
	Stopped    string        `json:"stopped,omitempty"` // why the placement's stop ended it: a mark's name, or "signal"
	CPU        time.Duration `json:"cpu,omitempty"`
	PeakMemory int64         `json:"peakMemory,omitempty"`
}

func (r nodeRecord) done() bool { return !r.Ended.IsZero() }

// stopPoll is how often the wrapper looks for the adapter's marks;
// stopGrace how long a stopped task has between SIGTERM and SIGKILL.
const (
	stopPoll  = 50 * time.Millisecond
	stopGrace = 5 * time.Second
)

func recordPath(dir string, rank, task int) string {
	return filepath.Join(dir, "nodes", strconv.Itoa(rank), fmt.Sprintf("task-%d.json", task))
}

// Node runs one task of a placement on the node srun started it on: the
// batch script runs `cinet slurm-node DIR I` as each task's step, on
// every node. It sets the node contract from Slurm's variables and the
// addresses the batch script wrote, runs the task in a process group of
// its own, passes SIGTERM and SIGINT on to it, records its start and end
// with the CPU time and peak memory wait4 reports, and exits as the task
// did. It returns the process's exit status.
func Node(args []string) int {
	if len(args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: slurm-node DIR TASK")
		return 2
	}
	code, err := node(args[0], args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "cinet slurm-node:", err)
		return 127
	}
	return code
}

func node(dir, taskArg string) (int, error) {
	i, err := strconv.Atoi(taskArg)
	if err != nil {
		return 0, fmt.Errorf("task %q is not a number", taskArg)
	}
	var p adapters.Placement
	if err := readJSON(filepath.Join(dir, placementFile), &p); err != nil {
		return 0, err
	}
	if i < 0 || i >= len(p.Tasks) {
		return 0, fmt.Errorf("placement %s has no task %d", p.ID, i)
	}
	rank, err := strconv.Atoi(os.Getenv("SLURM_PROCID"))
	if err != nil || rank < 0 || rank >= p.Instances() {
		return 0, fmt.Errorf("SLURM_PROCID %q: not a node of placement %s's %d", os.Getenv("SLURM_PROCID"), p.ID, p.Instances())
	}
	addrs, err := readLines(filepath.Join(dir, addrsFile))
	if err != nil || len(addrs) != p.Instances() {
		return 0, fmt.Errorf("the batch script's node addresses (%s): %d for %d nodes: %v", addrsFile, len(addrs), p.Instances(), err)
	}
	portLine, err := readLines(filepath.Join(dir, portFile))
	if err != nil || len(portLine) != 1 {
		return 0, fmt.Errorf("the batch script's rendezvous port (%s): %v", portFile, err)
	}
	port, err := strconv.Atoi(portLine[0])
	if err != nil {
		return 0, err
	}
	t := p.Tasks[i]
	work := filepath.Join(dir, "work", strconv.Itoa(rank))
	if err := os.MkdirAll(work, 0o700); err != nil {
		return 0, err
	}
	if err := os.MkdirAll(filepath.Dir(recordPath(dir, rank, i)), 0o700); err != nil {
		return 0, err
	}
	env := nodeagent.Env(&p, t, work, adapters.NodeEnv(p, rank, addrs, port))
	rec := nodeRecord{Started: time.Now().UTC()}
	if err := writeJSON(recordPath(dir, rank, i), rec); err != nil {
		return 0, err
	}
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	proc, err := nodeagent.Start(nodeagent.Argv(t), env, filepath.Join(work, t.Workdir), os.Stdout, os.Stderr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "cinet: starting task %s: %v\n", t.Name, err)
		rec.Ended, rec.ExitCode = time.Now().UTC(), 127
		return 127, writeJSON(recordPath(dir, rank, i), rec)
	}
	// The task stops as one: its whole process group at once, when the
	// placement is released or times out or another node's task failed
	// (the adapter's marks, before it cancels the job), or Slurm signals
	// the step. Slurm's own stop signals the step's processes one by one,
	// which lets a shell outlive its child for a moment and go on to its
	// next command.
	stop := make(chan string, 1)
	done := make(chan struct{})
	go func() {
		tick := time.NewTicker(stopPoll)
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
				for _, mark := range []string{releasedFile, timedOutFile, failedFile} {
					if _, err := os.Stat(filepath.Join(dir, mark)); err == nil {
						select {
						case stop <- mark:
						default:
						}
						return
					}
				}
			case <-done:
				return
			}
		}
	}()
	end, why := proc.Supervise(stop, sig, stopGrace)
	close(done)
	rec.Ended = time.Now().UTC()
	rec.ExitCode, rec.Signal, rec.Stopped, rec.CPU, rec.PeakMemory = end.ExitCode, end.Signal, why, end.CPU, end.PeakMemory
	code := end.Status()
	if err := writeJSON(recordPath(dir, rank, i), rec); err != nil {
		return code, err
	}
	if code != 0 {
		// The first node to fail stops the others itself, each task as one,
		// before srun's kill-on-bad-exit signals their processes one by one.
		adapters.WriteFileAtomic(filepath.Join(dir, failedFile), []byte(strconv.Itoa(rank)))
		deadline := time.Now().Add(stopGrace + time.Second)
		for time.Now().Before(deadline) && othersRunning(dir, &p, i, rank) {
			time.Sleep(stopPoll)
		}
	}
	return code, nil
}

// othersRunning reports whether a node other than rank has started task
// i and not ended it.
func othersRunning(dir string, p *adapters.Placement, i, rank int) bool {
	for k := range p.Instances() {
		var r nodeRecord
		if k != rank && readJSON(recordPath(dir, k, i), &r) == nil && !r.done() {
			return true
		}
	}
	return false
}

func readLines(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			out = append(out, l)
		}
	}
	return out, sc.Err()
}

func readJSON(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("slurm: %s: %w", filepath.Base(path), err)
	}
	return nil
}

func writeJSON(path string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return adapters.WriteFileAtomic(path, data)
}
