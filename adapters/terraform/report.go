//go:build unix

package terraform

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/cinet/cinet/adapters"
	"github.com/cinet/cinet/adapters/nodeagent"
)

// A placement's directory (spec/adapters.md §3.3):
//
//	placement.json      the placement, as Provision received it
//	main.tf.json        the root configuration: the provider's module and its variables
//	terraform.tfstate   the state (local backend)
//	plan.tfplan         the saved plan that was applied, and plan.txt, it in words
//	lifecycle.json      how far the executor got: applying, running, destroying, destroyed
//	control/start.json  written once the infrastructure exists: the nodes' addresses
//	control/go-I        task I (from 1) may start: every node ended task I-1 with 0
//	control/stop        the placement is to stop; holds the reason
//	nodes/K/lock        held by node K's agent while it lives
//	nodes/K/events.jsonl  node K's agent's record: up, each task's start and end
//	nodes/K/logs/T.stdout, T.stderr  task T's output on node K
//	nodes/K/work/       node K's work directory
const (
	placementFile = "placement.json"
	configFile    = "main.tf.json"
	planFile      = "plan.tfplan"
	planText      = "plan.txt"
	lifecycleFile = "lifecycle.json"
	controlDir    = "control"
	startFile     = "start.json"
	stopFile      = "stop"
	nodesDir      = "nodes"
	lockFile      = "lock"
	eventsFile    = "events.jsonl"
)

// Reasons a placement is stopped, as control/stop holds them.
const (
	stopCancel  = "cancel"
	stopTimeout = "timeout"
	stopFailed  = "failed" // another node failed
)

func nodeDir(dir string, rank int) string {
	return filepath.Join(dir, nodesDir, strconv.Itoa(rank))
}

func logPath(dir string, rank int, task, stream string) string {
	return filepath.Join(nodeDir(dir, rank), "logs", task+"."+stream)
}

func goFile(dir string, task int) string {
	return filepath.Join(dir, controlDir, "go-"+strconv.Itoa(task))
}

// start is what the executor tells the agents once the infrastructure
// exists.
type start struct {
	Addresses []string `json:"addresses"`
	Port      int      `json:"port"`
}

// An event is one line of a node's record.
type event struct {
	Kind string    `json:"kind"` // up, started, ended, down (the agent ends)
	Time time.Time `json:"time"`
	Task int       `json:"task,omitempty"` // the task's index
	// Of an ended task:
	ExitCode   int           `json:"exitCode,omitempty"` // -1: killed by a signal
	Signal     string        `json:"signal,omitempty"`
	Stopped    string        `json:"stopped,omitempty"` // the stop reason, when stopped
	CPU        time.Duration `json:"cpu,omitempty"`
	PeakMemory int64         `json:"peakMemory,omitempty"`
	PID        int           `json:"pid,omitempty"` // of up: the agent's; of started: the task's (its process group)
}

// nodeRecord is what a node's events say.
type nodeRecord struct {
	up    bool
	down  bool         // the agent said it ends
	tasks []taskRecord // indexed by task; a task that has not started is absent
}

type taskRecord struct {
	started, ended time.Time
	exitCode       int
	signal         string
	stopped        string
	cpu            time.Duration
	peakMemory     int64
}

func (t taskRecord) done() bool { return !t.ended.IsZero() }

// readNode reads node rank's record of a placement of ntasks tasks.
func readNode(dir string, rank, ntasks int) (nodeRecord, error) {
	data, err := os.ReadFile(filepath.Join(nodeDir(dir, rank), eventsFile))
	if errors.Is(err, os.ErrNotExist) {
		return nodeRecord{}, nil
	}
	if err != nil {
		return nodeRecord{}, err
	}
	r, err := parseEvents(data, ntasks)
	if err != nil {
		return r, fmt.Errorf("terraform: node %d's record: %w", rank, err)
	}
	return r, nil
}

// parseEvents reads a node's record. A last line not finished (being
// written) is left for the next read. Tasks are started in order, each
// once, and end after they start: a record that says otherwise is
// refused, whoever wrote it.
func parseEvents(data []byte, ntasks int) (nodeRecord, error) {
	var r nodeRecord
	data = data[:bytes.LastIndexByte(data, '\n')+1]
	for n, line := range bytes.Split(data, []byte{'\n'}) {
		if len(line) == 0 {
			continue
		}
		var e event
		if err := json.Unmarshal(line, &e); err != nil {
			return r, fmt.Errorf("line %d: %w", n+1, err)
		}
		switch e.Kind {
		case "up":
			if r.up {
				return r, fmt.Errorf("line %d: the node came up twice", n+1)
			}
			r.up = true
		case "down":
			if !r.up || r.down {
				return r, fmt.Errorf("line %d: the node went down before it came up, or twice", n+1)
			}
			r.down = true
		case "started":
			if e.Task != len(r.tasks) || e.Task >= ntasks || !r.up || r.down {
				return r, fmt.Errorf("line %d: task %d started out of order", n+1, e.Task)
			}
			r.tasks = append(r.tasks, taskRecord{started: e.Time})
		case "ended":
			if e.Task != len(r.tasks)-1 || r.tasks[e.Task].done() {
				return r, fmt.Errorf("line %d: task %d ended without starting, or twice", n+1, e.Task)
			}
			if e.CPU < 0 || e.PeakMemory < 0 || e.Time.Before(r.tasks[e.Task].started) {
				return r, fmt.Errorf("line %d: task %d's end is impossible", n+1, e.Task)
			}
			t := &r.tasks[e.Task]
			t.ended, t.exitCode, t.signal, t.stopped = e.Time, e.ExitCode, e.Signal, e.Stopped
			t.cpu, t.peakMemory = e.CPU, e.PeakMemory
		default:
			return r, fmt.Errorf("line %d: unknown kind %q", n+1, e.Kind)
		}
	}
	return r, nil
}

// agentAlive reports whether an agent holds node rank's lock.
func agentAlive(dir string, rank int) bool {
	return adapters.LockHeld(filepath.Join(nodeDir(dir, rank), lockFile))
}

// readStop returns the stop reason, or "" when none was given.
func readStop(dir string) string {
	b, err := os.ReadFile(filepath.Join(dir, controlDir, stopFile))
	if err != nil {
		return ""
	}
	if len(b) == 0 {
		return stopCancel // made by hand: writeStop never leaves it empty
	}
	return string(b)
}

// writeStop asks every node to stop, for a reason; the first reason
// stands. The file appears whole, reason and all (a hard link of a file
// written before), so that no reader sees it empty.
func writeStop(dir, reason string) error {
	path := filepath.Join(dir, controlDir, stopFile)
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	tmp, err := os.CreateTemp(filepath.Join(dir, controlDir), ".stop-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.WriteString(reason)
	if err = errors.Join(err, tmp.Close()); err != nil {
		return err
	}
	if err := os.Link(tmp.Name(), path); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	return nil
}

func readJSON(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("terraform: %s: %w", filepath.Base(path), err)
	}
	return nil
}

// statusOf folds the nodes' records into the placement's tasks by the
// gang rule (nodeagent.Grid.Tasks).
func statusOf(tasks []string, nodes []nodeRecord, final bool) []adapters.TaskStatus {
	return gridOf(nodes, len(tasks)).Tasks(tasks, final)
}

// gridOf is the nodes' records as the gang rule reads them.
func gridOf(nodes []nodeRecord, ntasks int) nodeagent.Grid {
	g := nodeagent.NewGrid(ntasks, len(nodes))
	for k, n := range nodes {
		for i, t := range n.tasks {
			if i < ntasks {
				g[i][k] = &nodeagent.Run{Started: t.started, Ended: t.ended, ExitCode: t.exitCode, Signal: t.signal, Stopped: t.stopped, TimedOut: t.stopped == stopTimeout}
			}
		}
	}
	return g
}
