package nodeagent

import (
	"testing"
	"time"
)

func at(s int) time.Time { return time.Date(2026, 1, 1, 0, 0, s, 0, time.UTC) }

// run is a run that started at s and ended at e (0: runs) with code.
func run(s, e, code int, stopped string) *Run {
	r := &Run{Started: at(s), ExitCode: code, Stopped: stopped}
	if e > 0 {
		r.Ended = at(e)
	}
	if code == -1 {
		r.Signal = "terminated"
	}
	return r
}

// TestGangRule: the first task to fail by itself is the failure, the
// nodes stopped after it are not; the next task starts when every node
// passed the one before; a task spans its first start and last end and
// carries the failing node's code.
func TestGangRule(t *testing.T) {
	for _, tc := range []struct {
		name         string
		grid         Grid
		final        bool
		failTask     int
		failNode     int
		failed       bool
		passed       int
		ended        []bool
		codes        []int
		wantTasksLen int
	}{
		{name: "nothing started", grid: NewGrid(2, 2), passed: 0, wantTasksLen: 0},
		{name: "one node runs", grid: Grid{{run(1, 0, 0, ""), nil}, {nil, nil}}, passed: 0, ended: []bool{false}, codes: []int{0}, wantTasksLen: 1},
		{name: "first task passed everywhere", grid: Grid{{run(1, 3, 0, ""), run(2, 4, 0, "")}, {run(5, 0, 0, ""), nil}},
			passed: 1, ended: []bool{true, false}, codes: []int{0, 0}, wantTasksLen: 2},
		{name: "all passed", grid: Grid{{run(1, 3, 0, ""), run(2, 4, 0, "")}}, passed: 1, ended: []bool{true}, codes: []int{0}, wantTasksLen: 1},
		{name: "node 1 fails, node 0 is stopped after it",
			grid:     Grid{{run(1, 9, -1, "failed"), run(1, 5, 3, "")}},
			failTask: 0, failNode: 1, failed: true, passed: 0, ended: []bool{true}, codes: []int{3}, wantTasksLen: 1},
		{name: "the earliest failure wins",
			grid:     Grid{{run(1, 9, 4, ""), run(1, 5, 3, "")}},
			failTask: 0, failNode: 1, failed: true, ended: []bool{true}, codes: []int{3}, wantTasksLen: 1},
		{name: "killed by itself is a failure",
			grid:     Grid{{run(1, 6, -1, ""), run(1, 8, -1, "failed")}},
			failTask: 0, failNode: 0, failed: true, ended: []bool{true}, codes: []int{-1}, wantTasksLen: 1},
		{name: "released: stopped runs are no failure",
			grid: Grid{{run(1, 6, -1, "released"), run(1, 6, -1, "released")}}, ended: []bool{true}, codes: []int{-1}, wantTasksLen: 1},
		{name: "open while a node has not started it",
			grid: Grid{{run(1, 6, 2, ""), nil}}, failTask: 0, failNode: 0, failed: true, ended: []bool{false}, codes: []int{0}, wantTasksLen: 1},
		{name: "closed once the placement ended",
			grid: Grid{{run(1, 6, 2, ""), nil}}, final: true, failTask: 0, failNode: 0, failed: true, ended: []bool{true}, codes: []int{2}, wantTasksLen: 1},
		{name: "a run with no end was killed with the placement",
			grid: Grid{{run(1, 6, 0, ""), run(2, 0, 0, "")}}, final: true, ended: []bool{true}, codes: []int{-1}, wantTasksLen: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			task, node, r, ok := tc.grid.Failure()
			if ok != tc.failed || (ok && (task != tc.failTask || node != tc.failNode || r == nil)) {
				t.Errorf("failure: task %d node %d %v; want task %d node %d %v", task, node, ok, tc.failTask, tc.failNode, tc.failed)
			}
			if got := tc.grid.Passed(); got != tc.passed {
				t.Errorf("passed %d, want %d", got, tc.passed)
			}
			names := make([]string, len(tc.grid))
			tasks := tc.grid.Tasks(names, tc.final)
			if len(tasks) != tc.wantTasksLen {
				t.Fatalf("%d tasks, want %d: %+v", len(tasks), tc.wantTasksLen, tasks)
			}
			for i, ts := range tasks {
				if ts.Ended() != tc.ended[i] || ts.ExitCode != tc.codes[i] {
					t.Errorf("task %d: ended %v code %d; want %v %d (%+v)", i, ts.Ended(), ts.ExitCode, tc.ended[i], tc.codes[i], ts)
				}
			}
		})
	}
}

// TestTaskSpan: a task starts with its first node and ends with its last.
func TestTaskSpan(t *testing.T) {
	g := Grid{{run(2, 9, -1, "failed"), run(1, 5, 5, ""), run(3, 8, -1, "failed")}}
	ts := g.Tasks([]string{"main"}, false)
	if len(ts) != 1 || !ts[0].Started.Equal(at(1)) || !ts[0].End.Equal(at(9)) || ts[0].ExitCode != 5 || ts[0].Signal != "" {
		t.Fatalf("%+v", ts)
	}
}
