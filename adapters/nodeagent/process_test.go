//go:build unix

package nodeagent

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cinet/cinet/adapters"
	"github.com/cinet/cinet/descriptor"
)

// TestEnv: the node contract, then the task's own variables, which win.
func TestEnv(t *testing.T) {
	p := &adapters.Placement{ID: "j-x-1", Job: "j-x"}
	task := descriptor.Task{Name: "main", Env: map[string]string{"HOME": "/mine", "A": "b"}}
	env := Env(p, task, "/work/0", []string{"CINET_NODE_RANK=0"})
	last := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		last[k] = v
	}
	for k, want := range map[string]string{"CINET_JOB": "j-x", "CINET_PLACEMENT": "j-x-1", "CINET_TASK": "main", "CINET_NODE_RANK": "0", "HOME": "/mine", "A": "b", "LANG": "C.UTF-8"} {
		if last[k] != want {
			t.Errorf("%s=%q, want %q (%v)", k, last[k], want, env)
		}
	}
}

// TestExitAndMeter: a task's exit code, its CPU time and memory; its
// directory is made.
func TestExitAndMeter(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "work", "sub")
	var out bytes.Buffer
	p, err := Start([]string{"/bin/sh", "-c", "pwd; i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; exit 3"}, []string{"PATH=/usr/bin:/bin"}, dir, &out, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	end, why := p.Supervise(nil, nil, time.Second)
	if end.ExitCode != 3 || end.Signal != "" || why != "" || end.Status() != 3 || !end.Failed() {
		t.Fatalf("%+v %q", end, why)
	}
	if end.CPU <= 0 || end.PeakMemory <= 0 {
		t.Errorf("not metered: %+v", end)
	}
	if strings.TrimSpace(out.String()) != dir {
		t.Errorf("ran in %q, want %q", out.String(), dir)
	}
}

// TestStopEndsTheGroup: a stop ends the whole process group — a shell and
// the child it waits on — with SIGTERM, then SIGKILL after the grace for
// what ignores it; nothing of the task outlives it.
func TestStopEndsTheGroup(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "child")
	p, err := Start([]string{"/bin/sh", "-c", "trap '' TERM; sleep 300 & echo $! > " + pidFile + "; wait"}, nil, t.TempDir(), os.Stdout, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	var child int
	for deadline := time.Now().Add(10 * time.Second); child == 0; time.Sleep(10 * time.Millisecond) {
		if b, err := os.ReadFile(pidFile); err == nil && len(bytes.TrimSpace(b)) > 0 {
			if child, err = strconv.Atoi(strings.TrimSpace(string(b))); err != nil {
				t.Fatal(err)
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the task never started its child")
		}
	}
	stop := make(chan string, 1)
	stop <- "released"
	end, why := p.Supervise(stop, nil, 200*time.Millisecond)
	if why != "released" || end.Signal == "" || end.Status() != 128+int(syscall.SIGKILL) {
		t.Fatalf("%+v %q", end, why)
	}
	if err := syscall.Kill(child, 0); err == nil {
		for deadline := time.Now().Add(5 * time.Second); syscall.Kill(child, 0) == nil; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				syscall.Kill(child, syscall.SIGKILL)
				t.Fatalf("the task's child %d outlived it", child)
			}
		}
	}
}

// TestSignalsPassOn: a signal to the supervisor reaches the task's group
// and counts as a stop.
func TestSignalsPassOn(t *testing.T) {
	p, err := Start([]string{"/bin/sh", "-c", "sleep 300"}, nil, t.TempDir(), os.Stdout, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	sigs := make(chan os.Signal, 1)
	sigs <- syscall.SIGTERM
	end, why := p.Supervise(nil, sigs, time.Minute)
	if why != "signal" || end.Signal == "" || end.Status() != 128+int(syscall.SIGTERM) {
		t.Fatalf("%+v %q", end, why)
	}
}

// TestNoCommand: a task that cannot start says why.
func TestNoCommand(t *testing.T) {
	if _, err := Start(nil, nil, t.TempDir(), os.Stdout, os.Stderr); err == nil {
		t.Fatal("started nothing")
	}
	if _, err := Start([]string{"/no/such/program"}, nil, t.TempDir(), os.Stdout, os.Stderr); err == nil {
		t.Fatal("started a program that does not exist")
	}
}
