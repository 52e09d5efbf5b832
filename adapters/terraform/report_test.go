//go:build unix

package terraform

import (
	"strings"
	"testing"
	"time"
)

// A node's record, as an agent writes it.
const record = `{"kind":"up","time":"2026-01-01T00:00:00Z","pid":10}
{"kind":"started","time":"2026-01-01T00:00:01Z","task":0,"pid":11}
{"kind":"ended","time":"2026-01-01T00:00:02Z","task":0,"cpu":5000000,"peakMemory":4096}
{"kind":"started","time":"2026-01-01T00:00:03Z","task":1,"pid":12}
`

func TestParseEvents(t *testing.T) {
	r, err := parseEvents([]byte(record+`{"kind":"ended","time":"2026-01-01T00:00:04Z","task":1,"exitCode":3}`), 2)
	if err != nil {
		t.Fatal(err)
	}
	if !r.up || len(r.tasks) != 2 || !r.tasks[0].done() || r.tasks[0].cpu != 5*time.Millisecond || r.tasks[0].peakMemory != 4096 {
		t.Fatalf("%+v", r)
	}
	if r.tasks[1].done() {
		t.Fatal("a last line not finished was read")
	}
	for _, tc := range []struct{ name, record, want string }{
		{"not JSON", record + "{\n", "line 5"},
		{"task out of range", `{"kind":"up"}` + "\n" + `{"kind":"started","task":1000000000}` + "\n", "out of order"},
		{"negative task", `{"kind":"up"}` + "\n" + `{"kind":"started","task":-1}` + "\n", "out of order"},
		{"started before up", `{"kind":"started","task":0}` + "\n", "out of order"},
		{"started twice", record + `{"kind":"started","task":1}` + "\n", "out of order"},
		{"ended without start", `{"kind":"up"}` + "\n" + `{"kind":"ended","task":0}` + "\n", "without starting"},
		{"ended twice", record + `{"kind":"ended","time":"2026-01-01T00:00:04Z","task":1}` + "\n" + `{"kind":"ended","time":"2026-01-01T00:00:04Z","task":1}` + "\n", "twice"},
		{"negative CPU", record + `{"kind":"ended","time":"2026-01-01T00:00:04Z","task":1,"cpu":-1}` + "\n", "impossible"},
		{"ends before it starts", record + `{"kind":"ended","time":"2025-01-01T00:00:04Z","task":1}` + "\n", "impossible"},
		{"unknown kind", `{"kind":"paid"}` + "\n", "unknown kind"},
		{"a task after down", `{"kind":"up"}` + "\n" + `{"kind":"down"}` + "\n" + `{"kind":"started","task":0}` + "\n", "out of order"},
		{"down twice", `{"kind":"up"}` + "\n" + `{"kind":"down"}` + "\n" + `{"kind":"down"}` + "\n", "twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := parseEvents([]byte(tc.record), 2); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

// TestStatusOf: a task starts with its first node and ends with its last;
// its exit code is the node's that failed, not those stopped after it.
func TestStatusOf(t *testing.T) {
	at := func(s int) time.Time { return time.Date(2026, 1, 1, 0, 0, s, 0, time.UTC) }
	nodes := []nodeRecord{
		{up: true, tasks: []taskRecord{{started: at(2), ended: at(9), exitCode: -1, signal: "terminated", stopped: stopFailed}}},
		{up: true, tasks: []taskRecord{{started: at(1), ended: at(5), exitCode: 5}}},
		{up: true, tasks: []taskRecord{{started: at(3), ended: at(8), exitCode: -1, signal: "terminated", stopped: stopFailed}}},
	}
	st := statusOf([]string{"main", "after"}, nodes, false)
	if len(st) != 1 || !st[0].Started.Equal(at(1)) || !st[0].End.Equal(at(9)) || st[0].ExitCode != 5 || st[0].Signal != "" {
		t.Fatalf("%+v", st)
	}
	nodes[2].tasks[0].ended = time.Time{}
	if st := statusOf([]string{"main"}, nodes, false); st[0].Ended() {
		t.Fatalf("the task ended while node 2 runs it: %+v", st)
	}
	// A node stopped before it started the task: while the placement
	// runs, the task is open; once it has ended, the others decide.
	nodes[2].tasks = nil
	if st := statusOf([]string{"main"}, nodes, false); st[0].Ended() {
		t.Fatalf("the task ended before node 2 started it: %+v", st)
	}
	if st := statusOf([]string{"main"}, nodes, true); !st[0].Ended() || st[0].ExitCode != 5 || !st[0].End.Equal(at(9)) {
		t.Fatalf("the ended placement's task: %+v", st)
	}
}

// FuzzParseEvents: whatever a node's record holds, reading it and folding
// it into a status neither panics nor grows past the placement's tasks.
func FuzzParseEvents(f *testing.F) {
	f.Add([]byte(record), 2)
	f.Add([]byte(record+`{"kind":"ended","time":"2026-01-01T00:00:04Z","task":1,"exitCode":3}`+"\n"), 2)
	f.Add([]byte(`{"kind":"up"}`+"\n"+`{"kind":"started","task":99999999}`+"\n"), 3)
	f.Fuzz(func(t *testing.T, data []byte, ntasks int) {
		ntasks = max(min(ntasks, 64), 0)
		r, err := parseEvents(data, ntasks)
		if err != nil {
			return
		}
		if len(r.tasks) > ntasks {
			t.Fatalf("%d tasks of %d", len(r.tasks), ntasks)
		}
		names := make([]string, ntasks)
		statusOf(names, []nodeRecord{r, r}, false)
		statusOf(names, []nodeRecord{r, {}}, true)
	})
}
