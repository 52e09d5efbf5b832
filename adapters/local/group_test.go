//go:build unix

package local

import (
	"os"
	"sync"
	"testing"
	"time"
)

// fakeNode is a node that ends when told to, as told.
type fakeNode struct {
	exit chan struct{}
	end  sandboxEnd
	acct accounting

	mu         sync.Mutex
	terminated bool
}

func newFakeNode(end sandboxEnd, acct accounting) *fakeNode {
	return &fakeNode{exit: make(chan struct{}), end: end, acct: acct}
}

func (n *fakeNode) exited() <-chan struct{} { return n.exit }
func (n *fakeNode) terminate(time.Duration) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.terminated {
		n.terminated = true
		n.end = sandboxEnd{ExitCode: -1, Signal: "terminated"}
		close(n.exit)
	}
}
func (n *fakeNode) wait() (sandboxEnd, accounting, error) {
	<-n.exit
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.end, n.acct, nil
}
func (n *fakeNode) pgids() []int       { return nil }
func (n *fakeNode) groups() []groupRef { return nil }
func (n *fakeNode) netns() *os.File    { return nil }

// finish ends the node by itself, as its task exiting would.
func (n *fakeNode) finish() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.terminated = true
	close(n.exit)
}

func (n *fakeNode) wasTerminated() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.end.Signal == "terminated"
}

// TestNodeGroup: a task on many nodes ends as the first node to fail
// ended, stops the nodes still running when one fails, leaves them alone
// while all succeed, and counts every node's CPU time and peak memory.
func TestNodeGroup(t *testing.T) {
	ok := func(cpu time.Duration, mem int64) *fakeNode {
		return newFakeNode(sandboxEnd{}, accounting{CPU: cpu, PeakMemory: mem})
	}
	t.Run("all succeed", func(t *testing.T) {
		nodes := []*fakeNode{ok(1*time.Second, 100), ok(2*time.Second, 200), ok(3*time.Second, 300)}
		g := group(nodes)
		for _, n := range nodes {
			n.finish()
		}
		<-g.exited()
		end, acct, err := g.wait()
		if err != nil || end.failed() || acct.CPU != 6*time.Second || acct.PeakMemory != 600 {
			t.Fatalf("end %+v acct %+v err %v", end, acct, err)
		}
		for k, n := range nodes {
			if n.wasTerminated() {
				t.Errorf("node %d was stopped though none failed", k)
			}
		}
	})
	t.Run("one fails", func(t *testing.T) {
		failing := newFakeNode(sandboxEnd{ExitCode: 5}, accounting{CPU: time.Second, PeakMemory: 50})
		later := newFakeNode(sandboxEnd{ExitCode: 7}, accounting{})
		nodes := []*fakeNode{ok(time.Second, 100), later, failing, ok(time.Second, 100)}
		g := group(nodes)
		failing.finish()
		<-g.exited() // the others are stopped: nothing else ends them
		end, acct, _ := g.wait()
		if end.ExitCode != 5 || end.Node != 2 {
			t.Fatalf("ended %+v, want node 2's exit code 5", end)
		}
		if acct.CPU != 3*time.Second || acct.PeakMemory != 250 {
			t.Fatalf("accounting %+v", acct)
		}
		for _, k := range []int{0, 1, 3} {
			if !nodes[k].wasTerminated() {
				t.Errorf("node %d was not stopped", k)
			}
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		nodes := []*fakeNode{ok(0, 0), ok(0, 0)}
		g := group(nodes)
		g.terminate(0)
		<-g.exited()
		if end, _, _ := g.wait(); end.Signal != "terminated" || end.Node != 0 {
			t.Fatalf("ended %+v", end)
		}
	})
}

func group(nodes []*fakeNode) *nodeGroup {
	g := &nodeGroup{exit: make(chan struct{})}
	for _, n := range nodes {
		g.nodes = append(g.nodes, n)
	}
	g.watch()
	return g
}
