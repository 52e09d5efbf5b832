//go:build unix

package local_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cinet/cinet/adapters"
	"github.com/cinet/cinet/adapters/adaptertest"
	"github.com/cinet/cinet/adapters/local"
	"github.com/cinet/cinet/descriptor"
)

// The test binary is its own shim: started with CINET_LOCAL_SHIM=1 and a
// placement directory, it supervises that placement.
func TestMain(m *testing.M) {
	if local.IsShim() {
		os.Exit(local.Shim(os.Args[len(os.Args)-1]))
	}
	os.Exit(m.Run())
}

func newLocal(t testing.TB) adapters.Adapter {
	t.Helper()
	a, err := adapters.New("local", []byte(`{"workdir": "`+t.TempDir()+`", "killGrace": "1s", "shim": ["`+os.Args[0]+`"]}`))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestConformance(t *testing.T) {
	adaptertest.Run(t, adaptertest.Suite{New: newLocal, Shell: []string{"/bin/sh", "-c"}})
}

func TestOneNode(t *testing.T) {
	a := newLocal(t)
	err := a.Provision(t.Context(), adapters.Placement{ID: "multi", Job: "j", Nodes: 2, Tasks: []descriptor.Task{{Name: "main", Command: []string{"true"}}}})
	if err == nil || !strings.Contains(err.Error(), "2 nodes") {
		t.Fatalf("a two-node placement: %v", err)
	}
}

func TestConfig(t *testing.T) {
	for _, raw := range []string{`{}`, `{"workdir": "x", "bogus": 1}`, `{"workdir": "x", "memory": "lots"}`} {
		if _, err := adapters.New("local", []byte(raw)); err == nil {
			t.Errorf("config %s accepted", raw)
		}
	}
	a, err := adapters.New("local", []byte(`{"workdir": "`+t.TempDir()+`", "cpus": 3, "memory": "5Gi"}`))
	if err != nil {
		t.Fatal(err)
	}
	c, err := a.Capacity(t.Context())
	if err != nil || c.CPUs != 3 || c.Memory != 5<<30 {
		t.Fatalf("capacity %+v %v", c, err)
	}
}

// TestSurvivesTheBroker: a new adapter over the same directory — a broker
// that restarted — sees the placement still running and then how it
// ended; a placement whose shim is killed is lost, its unfinished task is
// not counted as usage, and Release kills what the task left running.
func TestSurvivesTheBroker(t *testing.T) {
	dir := t.TempDir()
	open := func() adapters.Adapter {
		a, err := local.New(local.Config{Workdir: dir, Shim: []string{os.Args[0]}, KillGrace: descriptor.Duration(time.Second)})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	ctx := t.Context()
	first := open()
	p := adapters.Placement{ID: "long", Job: "j", Tasks: []descriptor.Task{
		{Name: "quick", Command: []string{"/bin/sh", "-c", "true"}},
		{Name: "main", Command: []string{"/bin/sh", "-c", "sleep 0.5; echo done"}},
	}}
	if err := first.Provision(ctx, p); err != nil {
		t.Fatal(err)
	}
	second := open()
	if st, err := second.Status(ctx, "long"); err != nil || st.State != adapters.Running {
		t.Fatalf("after the restart: %+v %v", st, err)
	}
	for {
		st, err := second.Status(ctx, "long")
		if err != nil {
			t.Fatal(err)
		}
		if st.State.Ended() {
			if st.State != adapters.Succeeded {
				t.Fatalf("ended as %+v", st)
			}
			break
		}
		time.Sleep(20 * time.Millisecond)
	}

	lost := adapters.Placement{ID: "lost", Job: "j", Tasks: []descriptor.Task{
		{Name: "quick", Command: []string{"/bin/sh", "-c", "true"}},
		{Name: "main", Command: []string{"/bin/sh", "-c", "echo $$ > pid; sleep 60"}},
	}}
	if err := second.Provision(ctx, lost); err != nil {
		t.Fatal(err)
	}
	var r struct {
		ShimPID int
		Tasks   []json.RawMessage
	}
	for deadline := time.Now().Add(10 * time.Second); len(r.Tasks) < 2; {
		data, _ := os.ReadFile(filepath.Join(dir, "lost", "run.json"))
		json.Unmarshal(data, &r)
		if time.Now().After(deadline) {
			t.Fatal("the task never started")
		}
		time.Sleep(10 * time.Millisecond)
	}
	killed := time.Now()
	syscall.Kill(r.ShimPID, syscall.SIGKILL)
	var st adapters.Status
	for deadline := time.Now().Add(10 * time.Second); st.State != adapters.Lost; {
		st, _ = second.Status(ctx, "lost")
		if time.Now().After(deadline) {
			t.Fatalf("status after the shim died: %+v", st)
		}
		time.Sleep(10 * time.Millisecond)
	}
	u, err := second.Usage(ctx, "lost")
	if err != nil || len(u.Tasks) != 2 || u.Tasks[0].Name != "quick" {
		t.Fatalf("usage of a lost placement: %+v %v", u, err)
	}
	// The lost task counts up to the shim's last sign of life, which is
	// before it was killed.
	if main := u.Tasks[1]; main.Wall < 0 || u.End.After(killed) {
		t.Fatalf("the lost task counts past its shim's death: %+v (killed at %s)", u, killed)
	}
	again, err := second.Usage(ctx, "lost")
	if err != nil || again.CPU != u.CPU || again.End != u.End {
		t.Fatalf("the usage of a lost placement changed: %+v then %+v", u, again)
	}
	if err := second.Release(ctx, "lost"); err != nil {
		t.Fatal(err)
	}
}

// TestStatusWhileProvisioning: a status asked for while Provision is still
// starting the shim says the placement runs, never that it is lost.
func TestStatusWhileProvisioning(t *testing.T) {
	a := newLocal(t)
	for i := range 5 {
		id := fmt.Sprintf("p%d", i)
		done := make(chan error, 1)
		go func() {
			done <- a.Provision(t.Context(), adapters.Placement{ID: id, Job: "j", Tasks: []descriptor.Task{{Name: "main", Command: []string{"/bin/sh", "-c", "sleep 0.2"}}}})
		}()
		for provisioned := false; !provisioned; {
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
				provisioned = true
			default:
			}
			st, err := a.Status(t.Context(), id)
			if err != nil && !errors.Is(err, adapters.ErrNotFound) {
				t.Fatal(err)
			}
			if err == nil && st.State.Ended() {
				t.Fatalf("placement %s is %s while it is provisioned: %s", id, st.State, st.Detail)
			}
		}
		a.Release(t.Context(), id)
	}
}
