//go:build unix

package terraform

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
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

// The node agent runs one node's share of a placement: the infrastructure
// a module creates starts it on each node (spec/adapters.md §3.4), with
// the placement's directory and the node's rank. It runs each task when
// the executor says so, records each start and end with the task's CPU
// time and peak memory, and stops the task when the placement is stopped.
// `cinet terraform-agent` is its command.

// agentPoll is how often the agent looks for the executor's word.
const agentPoll = 10 * time.Millisecond

// agentGrace is how long a stopped task has between SIGTERM and SIGKILL.
const agentGrace = 5 * time.Second

// Agent runs the agent's command line: "run WHERE RANK" runs node RANK of
// a placement, WHERE being the placement's directory or the executor's
// report URL for it (…/placements/ID/TOKEN); "stop DIR RANK" stops it
// and waits until it has ended. It returns the process's exit status.
func Agent(args []string) int {
	if len(args) != 3 || (args[0] != "run" && args[0] != "stop") {
		fmt.Fprintln(os.Stderr, "usage: terraform-agent run|stop DIR RANK")
		return 2
	}
	rank, err := strconv.Atoi(args[2])
	if err != nil || rank < 0 || rank >= maxNodes {
		fmt.Fprintf(os.Stderr, "terraform-agent: rank %q: want 0 to %d\n", args[2], maxNodes-1)
		return 2
	}
	if args[0] == "run" {
		err = runAgent(args[1], rank)
	} else {
		err = stopAgent(args[1], rank, 2*agentGrace)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "terraform-agent:", err)
		return 1
	}
	return 0
}

func runAgent(where string, rank int) error {
	// Out of the session of whatever started it (tofu's provisioner, a
	// cloud instance's boot), so that its end does not end the node.
	syscall.Setsid()
	signal.Ignore(syscall.SIGHUP)
	var ch channel = &fileChannel{dir: where, rank: rank}
	if strings.HasPrefix(where, "http://") || strings.HasPrefix(where, "https://") {
		hc, err := newHTTPChannel(where, rank)
		if err != nil {
			return err
		}
		ch = hc
	}
	unlock, ok, err := ch.lock()
	if err != nil {
		return err
	}
	if !ok {
		return nil // another agent runs this node
	}
	defer unlock()
	p, err := ch.placement()
	if err != nil {
		return err
	}
	if rank >= p.Instances() {
		return fmt.Errorf("placement %s has %d nodes, not %d", p.ID, p.Instances(), rank+1)
	}
	if up, err := ch.up(len(p.Tasks)); err != nil || up {
		return err // a node runs once; an agent started again has nothing to do
	}
	a := &agent{ch: ch, rank: rank, p: p, term: make(chan os.Signal, 1)}
	signal.Notify(a.term, syscall.SIGTERM, syscall.SIGINT)
	if err := a.record(event{Kind: "up", PID: os.Getpid()}); err != nil {
		return err
	}
	// The executor need not wait for this node to fall silent: it says
	// when it ends.
	defer a.record(event{Kind: "down"})
	if !a.await(func() bool { return a.start != nil }) {
		return nil
	}
	st := a.start
	if len(st.Addresses) != p.Instances() {
		return fmt.Errorf("the start has %d addresses for %d nodes", len(st.Addresses), p.Instances())
	}
	work := ch.workDir()
	if err := os.MkdirAll(work, 0o700); err != nil {
		return err
	}
	nodeEnv := adapters.NodeEnv(p, rank, st.Addresses, st.Port)
	for i := range p.Tasks {
		if i > 0 && !a.await(func() bool { return a.allowed > i }) {
			return nil
		}
		code, err := a.runTask(i, work, nodeEnv)
		if err != nil || code != 0 {
			return err
		}
	}
	return nil
}

type agent struct {
	ch      channel
	rank    int
	p       adapters.Placement
	term    chan os.Signal
	stopped string // why the placement was stopped, once it was
	// What the executor last said.
	start   *start
	allowed int
}

// hear asks the executor for its word.
func (a *agent) hear() {
	st, allowed, stop, err := a.ch.control()
	if err != nil {
		return // asked again at the next poll
	}
	if st != nil {
		a.start = st
	}
	a.allowed = max(a.allowed, allowed)
	if a.stopped == "" {
		a.stopped = stop
	}
}

// await waits until cond holds (true) or the placement is stopped
// (false).
func (a *agent) await(cond func() bool) bool {
	t := time.NewTicker(a.ch.poll())
	defer t.Stop()
	for {
		a.hear()
		if a.stopped != "" {
			return false
		}
		if cond() {
			return true
		}
		select {
		case <-a.term:
			a.stopped = stopCancel
		case <-t.C:
		}
	}
}

func (a *agent) record(e event) error {
	e.Time = time.Now().UTC()
	return a.ch.record(e)
}

// runTask runs task i on this node and returns its exit code (-1 when a
// signal ended it).
func (a *agent) runTask(i int, work string, nodeEnv []string) (int, error) {
	t := a.p.Tasks[i]
	var out [2]*os.File
	var flushes []func() error
	for k, stream := range []string{"stdout", "stderr"} {
		f, flush, err := a.ch.output(t.Name, stream)
		if err != nil {
			return 0, err
		}
		defer f.Close()
		out[k] = f
		flushes = append(flushes, flush)
	}
	// The output is delivered whole before the end is recorded.
	flush := func() error {
		var errs []error
		for _, fl := range flushes {
			errs = append(errs, fl())
		}
		return errors.Join(errs...)
	}
	env := nodeagent.Env(&a.p, t, work, nodeEnv)
	proc, err := nodeagent.Start(nodeagent.Argv(t), env, filepath.Join(work, t.Workdir), out[0], out[1])
	if err != nil {
		fmt.Fprintf(out[1], "cinet: starting task %s: %v\n", t.Name, err)
		if err := a.record(event{Kind: "started", Task: i}); err != nil {
			return 0, err
		}
		return 127, errors.Join(flush(), a.record(event{Kind: "ended", Task: i, ExitCode: 127}))
	}
	// The task's process group is recorded, so that the node's stop can
	// end it should this agent die.
	if err := a.record(event{Kind: "started", Task: i, PID: proc.PGID()}); err != nil {
		proc.Signal(syscall.SIGKILL)
		return 0, err
	}
	// The executor's word is heard until the task ends: its stop, or a
	// signal to the agent, stops the task. The agent is the listener's
	// alone until the task has ended and the listener with it.
	stop := make(chan string, 1)
	done, heard := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(heard)
		tick := time.NewTicker(a.ch.poll())
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-a.term:
				a.stopped = cmp.Or(a.stopped, stopCancel)
			case <-tick.C:
				a.hear()
			}
			if a.stopped != "" {
				select {
				case stop <- a.stopped:
				default:
				}
			}
		}
	}()
	end, stoppedBy := proc.Supervise(stop, nil, agentGrace)
	close(done)
	<-heard
	e := event{Kind: "ended", Task: i, Stopped: stoppedBy, ExitCode: end.ExitCode, Signal: end.Signal, CPU: end.CPU, PeakMemory: end.PeakMemory}
	if err := flush(); err != nil {
		fmt.Fprintf(os.Stderr, "terraform-agent: delivering task %s's output: %v\n", t.Name, err)
	}
	if err := a.record(e); err != nil {
		return 0, err
	}
	if stoppedBy != "" && e.ExitCode == 0 {
		return -1, nil // stopped: no later task runs
	}
	return e.ExitCode, nil
}

// stopAgent stops node rank's agent, if it runs, and waits up to wait for
// it to end.
func stopAgent(dir string, rank int, wait time.Duration) error {
	if !agentAlive(dir, rank) {
		// An agent that died leaves its task's process group: it goes.
		if pg := orphanGroup(dir, rank); pg > 0 {
			syscall.Kill(-pg, syscall.SIGKILL)
		}
		return nil
	}
	pid, err := agentPID(dir, rank)
	if err != nil {
		return err
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("signalling node %d's agent (pid %d): %w", rank, pid, err)
	}
	deadline := time.Now().Add(wait)
	for agentAlive(dir, rank) {
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			return fmt.Errorf("node %d's agent (pid %d) did not stop within %s; killed it", rank, pid, wait)
		}
		time.Sleep(agentPoll)
	}
	return nil
}

// agentPID reads the pid node rank's agent recorded when it came up.
func agentPID(dir string, rank int) (int, error) {
	data, err := os.ReadFile(filepath.Join(nodeDir(dir, rank), eventsFile))
	if err != nil {
		return 0, err
	}
	var e event
	line, _, _ := bytes.Cut(data, []byte{'\n'})
	if err := json.Unmarshal(line, &e); err != nil || e.Kind != "up" || e.PID <= 0 {
		return 0, fmt.Errorf("node %d's record does not start with its agent's pid", rank)
	}
	return e.PID, nil
}

// orphanGroup is the process group of a task node rank's agent started
// and did not see end, or 0.
func orphanGroup(dir string, rank int) int {
	data, err := os.ReadFile(filepath.Join(nodeDir(dir, rank), eventsFile))
	if err != nil {
		return 0
	}
	pg := 0
	for _, line := range bytes.Split(data, []byte{'\n'}) {
		var e event
		if json.Unmarshal(line, &e) != nil {
			continue
		}
		switch e.Kind {
		case "started":
			pg = e.PID
		case "ended":
			pg = 0
		}
	}
	return pg
}
