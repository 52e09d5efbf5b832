package nodeagent

import (
	"fmt"
	"time"

	"github.com/cinet/cinet/adapters"
)

// A Run is what one node recorded of one task of a placement.
type Run struct {
	Started  time.Time
	Ended    time.Time // zero while it runs
	ExitCode int       // -1 when a signal ended it
	Signal   string
	// Stopped is why the placement's stop ended it (released, timed out,
	// another node failed, a signal from the scheduler); "" when it ended
	// by itself.
	Stopped  string
	TimedOut bool // the stop was the placement's timeout
}

// Done reports whether the run has ended.
func (r *Run) Done() bool { return !r.Ended.IsZero() }

// Failed reports whether the run ended by itself other than with 0.
func (r *Run) Failed() bool {
	return r.Done() && r.Stopped == "" && (r.ExitCode != 0 || r.Signal != "")
}

// How says how the run ended: "exit code 2", "killed by SIGKILL".
func (r *Run) How() string {
	if r.Signal != "" {
		return "killed by " + r.Signal
	}
	return fmt.Sprintf("exit code %d", r.ExitCode)
}

// A Grid is what every node recorded of every task of a placement:
// Grid[task][node], nil where the node has not started the task. It is
// the gang rule in one place: every node runs the tasks in order, a task
// starts on all nodes once every node ended the one before it with 0, and
// the first task to fail by itself stops the placement on every node.
type Grid [][]*Run

// NewGrid returns a grid of tasks × nodes with nothing recorded.
func NewGrid(tasks, nodes int) Grid {
	g := make(Grid, tasks)
	for i := range g {
		g[i] = make([]*Run, nodes)
	}
	return g
}

// Failure returns the first run to fail by itself — the earliest to end,
// then the lowest task, then the lowest node — or ok false. The runs the
// placement's stop ended after it are not failures of their own.
func (g Grid) Failure() (task, node int, run *Run, ok bool) {
	for i, nodes := range g {
		for k, r := range nodes {
			if r != nil && r.Failed() && (run == nil || r.Ended.Before(run.Ended)) {
				task, node, run = i, k, r
			}
		}
	}
	return task, node, run, run != nil
}

// Passed is how many tasks, in order, every node ended with 0: the next
// task may start on every node; Passed() == len(g) is success.
func (g Grid) Passed() int {
	for i, nodes := range g {
		for _, r := range nodes {
			if r == nil || !r.Done() || r.ExitCode != 0 || r.Signal != "" || r.Stopped != "" {
				return i
			}
		}
	}
	return len(g)
}

// Tasks folds the grid into the placement's tasks, as far as they have
// started: a task starts when its first node starts it and ends when its
// last node ends it; its exit code is the failing node's, else the first
// node's that did not exit 0. Once the placement has ended (final), a node
// that never started a task does not keep it open, and a run that started
// and recorded no end was killed with the placement.
func (g Grid) Tasks(names []string, final bool) []adapters.TaskStatus {
	var out []adapters.TaskStatus
	for i, name := range names {
		if i >= len(g) {
			break
		}
		ts := adapters.TaskStatus{Name: name}
		endedAll, killed := true, false
		var failed, other *Run
		for _, r := range g[i] {
			if r == nil {
				endedAll = endedAll && final
				continue
			}
			if ts.Started.IsZero() || r.Started.Before(ts.Started) {
				ts.Started = r.Started
			}
			if !r.Done() {
				endedAll = endedAll && final
				killed = killed || final
				continue
			}
			if r.Ended.After(ts.End) {
				ts.End = r.Ended
			}
			if r.Failed() && (failed == nil || r.Ended.Before(failed.Ended)) {
				failed = r
			}
			if other == nil && (r.ExitCode != 0 || r.Signal != "") {
				other = r
			}
			ts.TimedOut = ts.TimedOut || r.TimedOut
		}
		if ts.Started.IsZero() {
			break
		}
		if ts.End.IsZero() || !endedAll {
			ts.End = time.Time{}
			if final {
				ts.End = ts.Started
				for _, r := range g[i] {
					if r != nil && r.Ended.After(ts.End) {
						ts.End = r.Ended
					}
				}
			}
		}
		switch {
		case !ts.Ended():
		case failed != nil:
			ts.ExitCode, ts.Signal = failed.ExitCode, failed.Signal
		case killed:
			ts.ExitCode, ts.Signal = -1, "killed"
		case other != nil:
			ts.ExitCode, ts.Signal = other.ExitCode, other.Signal
		}
		out = append(out, ts)
	}
	return out
}
