//go:build unix

package local_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
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
	switch os.Getenv("CINET_LOCAL_TEST_HELPER") {
	case "mesh":
		os.Exit(mesh())
	case "serve":
		os.Exit(serve())
	}
	if local.IsShim() {
		os.Exit(local.Shim(os.Args[len(os.Args)-1]))
	}
	os.Exit(m.Run())
}

func newLocal(t testing.TB) adapters.Adapter {
	t.Helper()
	return newLocalWith(t, "")
}

// releaseAllAtEnd releases, when the test ends (before its temporary
// directories go), every placement of the adapter still running: a test
// that fails midway leaves no shim, task or mounted disk behind.
func releaseAllAtEnd(t testing.TB, a adapters.Adapter, workdir string) {
	t.Cleanup(func() {
		entries, _ := os.ReadDir(workdir)
		for _, e := range entries {
			if e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
				a.Release(context.Background(), e.Name())
			}
		}
	})
}

// configs are the ways the adapter runs tasks: in the sandbox, in the
// sandbox on the host's network, and unisolated.
var configs = []struct{ name, extra string }{
	{"sandbox", ``},
	{"hostnet", `, "network": "host"`},
	{"none", `, "isolation": "none"`},
}

func newLocalWith(t testing.TB, extra string) adapters.Adapter {
	t.Helper()
	workdir := t.TempDir()
	a, err := adapters.New("local", []byte(`{"workdir": "`+workdir+`", "killGrace": "1s", "shim": ["`+os.Args[0]+`"]`+extra+`}`))
	if err != nil {
		t.Fatal(err)
	}
	releaseAllAtEnd(t, a, workdir)
	return a
}

func TestConformance(t *testing.T) {
	for _, c := range configs {
		t.Run(c.name, func(t *testing.T) {
			adaptertest.Run(t, adaptertest.Suite{New: func(t testing.TB) adapters.Adapter { return newLocalWith(t, c.extra) }, Shell: []string{"/bin/sh", "-c"}})
		})
	}
}

// TestNodesMeet: the nodes of a placement reach one another at the
// addresses the node contract gives them. Each node listens on its own
// address at the rendezvous port, dials every other node's and sends its
// rank, and prints the ranks it heard from.
func TestNodesMeet(t *testing.T) {
	exe, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range configs {
		t.Run(c.name, func(t *testing.T) {
			const n = 4
			workdir := t.TempDir()
			a, err := adapters.New("local", []byte(`{"workdir": "`+workdir+`", "killGrace": "1s", "shim": ["`+os.Args[0]+`"]`+c.extra+`}`))
			if err != nil {
				t.Fatal(err)
			}
			releaseAllAtEnd(t, a, workdir)
			// Each node runs this test binary, from its own work directory.
			for rank := range n {
				dir := filepath.Join(workdir, "mesh", "work")
				if rank > 0 {
					dir += fmt.Sprintf("-%d", rank)
				}
				if err := os.MkdirAll(dir, 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, "mesh"), exe, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			p := adapters.Placement{ID: "mesh", Job: "j", Nodes: n, Timeout: 2 * time.Minute, Tasks: []descriptor.Task{{
				Name: "main", Command: []string{"/bin/sh", "-c", `exec "$HOME/mesh"`}, Env: map[string]string{"CINET_LOCAL_TEST_HELPER": "mesh"}}}}
			if err := a.Provision(t.Context(), p); err != nil {
				t.Fatal(err)
			}
			st := waitEnd(t, a, "mesh")
			for rank := range n {
				out := adaptertest.Logs(t, a, "mesh", "main", rank, "stdout")
				var want []string
				for k := range n {
					if k != rank {
						want = append(want, fmt.Sprint(k))
					}
				}
				if out != "heard from "+strings.Join(want, ",")+"\n" {
					t.Errorf("node %d: %q (stderr %q)", rank, out, adaptertest.Logs(t, a, "mesh", "main", rank, "stderr"))
				}
			}
			if st.State != adapters.Succeeded {
				t.Fatalf("status %+v", st)
			}
		})
	}
}

// mesh is what each node of TestNodesMeet runs.
func mesh() int {
	fail := func(format string, args ...any) int {
		fmt.Fprintf(os.Stderr, format+"\n", args...)
		return 1
	}
	rank, err1 := strconv.Atoi(os.Getenv("CINET_NODE_RANK"))
	n, err2 := strconv.Atoi(os.Getenv("CINET_NUM_NODES"))
	addrs := strings.Split(os.Getenv("CINET_NODE_ADDRS"), "\n")
	port := os.Getenv("CINET_RENDEZVOUS_PORT")
	if err1 != nil || err2 != nil || len(addrs) != n || addrs[rank] != os.Getenv("CINET_NODE_ADDR") || addrs[0] != os.Getenv("CINET_RENDEZVOUS_ADDR") {
		return fail("a broken contract: rank %q, nodes %q, addrs %q", os.Getenv("CINET_NODE_RANK"), os.Getenv("CINET_NUM_NODES"), addrs)
	}
	l, err := net.Listen("tcp", net.JoinHostPort(addrs[rank], port))
	if err != nil {
		return fail("listening: %v", err)
	}
	heard := make(chan string, n)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				b, _ := io.ReadAll(io.LimitReader(c, 16))
				heard <- string(b)
			}()
		}
	}()
	for k, addr := range addrs {
		if k == rank {
			continue
		}
		for {
			// The peer may not listen yet; the placement's timeout bounds
			// the wait.
			c, err := net.Dial("tcp", net.JoinHostPort(addr, port))
			if err == nil {
				fmt.Fprint(c, rank)
				c.Close()
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	var got []string
	for range n - 1 {
		got = append(got, <-heard)
	}
	slices.Sort(got)
	// Every peer has dialed this node by now, so it may leave: no dial
	// of theirs is still to come.
	fmt.Printf("heard from %s\n", strings.Join(got, ","))
	return 0
}

func waitEnd(t *testing.T, a adapters.Adapter, id string) adapters.Status {
	t.Helper()
	for {
		st, err := a.Status(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		if st.State.Ended() {
			return st
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestTooManyNodes(t *testing.T) {
	a := newLocal(t)
	err := a.Provision(t.Context(), adapters.Placement{ID: "multi", Job: "j", Nodes: 65, Tasks: []descriptor.Task{{Name: "main", Command: []string{"true"}}}})
	if err == nil || !strings.Contains(err.Error(), "65 nodes") {
		t.Fatalf("a 65-node placement: %v", err)
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
		releaseAllAtEnd(t, a, dir)
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

// TestSkyPilotNodeVariables: a SkyPilot task that reads SkyPilot's node
// variables, converted, sees them filled from the node contract on every
// node.
func TestSkyPilotNodeVariables(t *testing.T) {
	const sky = `num_nodes: 3
run: |
  echo "$SKYPILOT_NODE_RANK of $SKYPILOT_NUM_NODES, head $(echo "$SKYPILOT_NODE_IPS" | head -n1), $(echo "$SKYPILOT_NODE_IPS" | wc -l) addresses, $SKYPILOT_NUM_GPUS_PER_NODE GPUs"
`
	im, err := descriptor.ImportSkyPilot("multi.yaml", []byte(sky))
	if err != nil {
		t.Fatal(err)
	}
	job := im.Document.Job
	a := newLocal(t)
	p := adapters.Placement{ID: "sky", Job: "j", Tasks: job.Tasks, Nodes: job.Nodes, Limits: adapters.Limits{Accelerators: 4}}
	if err := a.Provision(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	if st := waitEnd(t, a, "sky"); st.State != adapters.Succeeded {
		t.Fatalf("status %+v", st)
	}
	for rank := range 3 {
		want := fmt.Sprintf("%d of 3, head 127.0.0.1, 3 addresses, 4 GPUs\n", rank)
		if got := adaptertest.Logs(t, a, "sky", job.Tasks[0].Name, rank, "stdout"); got != want {
			t.Errorf("node %d: %q, want %q", rank, got, want)
		}
	}
}

// TestLostNodes: when the shim of a multi-node placement dies, the
// placement is lost and every node's processes are killed, not only the
// first node's.
func TestLostNodes(t *testing.T) {
	dir := t.TempDir()
	a, err := local.New(local.Config{Workdir: dir, Shim: []string{os.Args[0]}, Isolation: local.IsolationNone, KillGrace: descriptor.Duration(time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	releaseAllAtEnd(t, a, dir)
	const n = 3
	p := adapters.Placement{ID: "lostnodes", Job: "j", Nodes: n, Tasks: []descriptor.Task{
		{Name: "main", Command: []string{"/bin/sh", "-c", `echo $$ > "$HOME/pid"; exec sleep 600`}},
	}}
	if err := a.Provision(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	pids := make([]int, n)
	for rank := range n {
		path := filepath.Join(dir, "lostnodes", "work")
		if rank > 0 {
			path += fmt.Sprintf("-%d", rank)
		}
		for deadline := time.Now().Add(30 * time.Second); pids[rank] == 0; time.Sleep(10 * time.Millisecond) {
			data, _ := os.ReadFile(filepath.Join(path, "pid"))
			pids[rank], _ = strconv.Atoi(strings.TrimSpace(string(data)))
			if time.Now().After(deadline) {
				t.Fatalf("node %d never started", rank)
			}
		}
	}
	t.Cleanup(func() {
		for _, pid := range pids {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	var r struct{ ShimPID int }
	data, _ := os.ReadFile(filepath.Join(dir, "lostnodes", "run.json"))
	if err := json.Unmarshal(data, &r); err != nil || r.ShimPID == 0 {
		t.Fatalf("run.json %s: %v", data, err)
	}
	syscall.Kill(r.ShimPID, syscall.SIGKILL)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		st, err := a.Status(t.Context(), "lostnodes")
		if err != nil {
			t.Fatal(err)
		}
		if st.State == adapters.Lost {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status after the shim died: %+v", st)
		}
	}
	for rank, pid := range pids {
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) || isZombie(pid) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("node %d's task (pid %d) outlived its lost placement", rank, pid)
			}
		}
	}
}

// isZombie reports whether a process has exited and waits to be reaped.
func isZombie(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	_, after, _ := strings.Cut(string(data), ") ")
	return strings.HasPrefix(after, "Z")
}

// TestService: a service's ports are exposed for every replica while its
// last task runs, reach that replica, and are ready only once its
// readiness probe passes; when the placement ends they are gone.
func TestService(t *testing.T) {
	exe, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range configs {
		t.Run(c.name, func(t *testing.T) {
			workdir := t.TempDir()
			a, err := adapters.New("local", []byte(`{"workdir": "`+workdir+`", "killGrace": "1s", "shim": ["`+os.Args[0]+`"]`+c.extra+`}`))
			if err != nil {
				t.Fatal(err)
			}
			releaseAllAtEnd(t, a, workdir)
			const replicas = 2
			works := make([]string, replicas)
			for r := range replicas {
				works[r] = filepath.Join(workdir, "svc", "work")
				if r > 0 {
					works[r] += fmt.Sprintf("-%d", r)
				}
				if err := os.MkdirAll(works[r], 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(works[r], "serve"), exe, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			// Free ports on this machine, for the configurations that share
			// its network.
			httpPort, echoPort := freePort(t), freePort(t)
			p := adapters.Placement{ID: "svc", Job: "j", Tasks: []descriptor.Task{
				{Name: "setup", Command: []string{"/bin/sh", "-c", "true"}},
				{Name: "serve", Command: []string{"/bin/sh", "-c", `exec "$HOME/serve"`}, Env: map[string]string{
					"CINET_LOCAL_TEST_HELPER": "serve", "HTTP_PORT": fmt.Sprint(httpPort), "ECHO_PORT": fmt.Sprint(echoPort)}},
			}, Service: &descriptor.Service{Replicas: replicas,
				Ports:     []descriptor.ServicePort{{Name: "http", Port: httpPort, Protocol: "http"}, {Name: "echo", Port: echoPort, Protocol: "tcp"}},
				Readiness: &descriptor.Readiness{Port: "http", Path: "/health", Period: descriptor.Duration(20 * time.Millisecond), Timeout: descriptor.Duration(time.Second)}}}
			if err := a.Provision(t.Context(), p); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { a.Release(context.Background(), "svc") })
			// The endpoints appear, and none is ready while no replica is.
			var eps []adapters.Endpoint
			for deadline := time.Now().Add(30 * time.Second); len(eps) < 2*replicas; time.Sleep(20 * time.Millisecond) {
				st, err := a.Status(t.Context(), "svc")
				if err != nil || st.State.Ended() || time.Now().After(deadline) {
					t.Fatalf("status %+v %v", st, err)
				}
				eps = st.Endpoints
			}
			for _, ep := range eps {
				if ep.Ready {
					t.Fatalf("endpoint %+v ready before its replica passed the probe", ep)
				}
			}
			for _, ep := range eps {
				want := fmt.Sprintf("127.0.0.%d", ep.Replica+1)
				switch ep.Name {
				case "http":
					if ep.URL != "http://"+ep.Address || ep.Protocol != "http" {
						t.Errorf("endpoint %+v", ep)
					}
					// The server may not listen yet: the forwarder then
					// closes the connection, and the request is tried again.
					var body []byte
					retry(t, func() error {
						resp, err := http.Get(ep.URL + "/")
						if err != nil {
							return err
						}
						defer resp.Body.Close()
						body, err = io.ReadAll(resp.Body)
						return err
					})
					if string(body) != "served by "+want+"\n" {
						t.Errorf("replica %d answered %q, want it served by %s", ep.Replica, body, want)
					}
				case "echo":
					var line string
					retry(t, func() error {
						conn, err := net.Dial("tcp", ep.Address)
						if err != nil {
							return err
						}
						defer conn.Close()
						fmt.Fprintln(conn, "ping")
						line, err = bufio.NewReader(conn).ReadString('\n')
						return err
					})
					if line != want+" ping\n" {
						t.Errorf("echo of replica %d: %q", ep.Replica, line)
					}
				default:
					t.Errorf("endpoint %+v", ep)
				}
			}
			// Replica 1 becomes ready; then replica 0.
			for _, r := range []int{1, 0} {
				if err := os.WriteFile(filepath.Join(works[r], "ready"), nil, 0o644); err != nil {
					t.Fatal(err)
				}
				for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
					st, err := a.Status(t.Context(), "svc")
					if err != nil || st.State.Ended() || time.Now().After(deadline) {
						t.Fatalf("waiting for replica %d to be ready: %+v %v", r, st, err)
					}
					ready := map[int]int{}
					for _, ep := range st.Endpoints {
						if ep.Ready {
							ready[ep.Replica]++
						}
					}
					if r == 1 && ready[0] > 0 {
						t.Fatalf("replica 0 ready before its probe could pass: %+v", st.Endpoints)
					}
					if ready[r] == 2 {
						break
					}
				}
			}
			if err := a.Release(t.Context(), "svc"); err != nil {
				t.Fatal(err)
			}
			st := waitEnd(t, a, "svc")
			if st.State != adapters.Cancelled || len(st.Endpoints) != 0 {
				t.Fatalf("after Release: %+v", st)
			}
			for _, ep := range eps {
				if c, err := net.Dial("tcp", ep.Address); err == nil {
					c.Close()
					t.Errorf("endpoint %s still accepts after the service ended", ep.Address)
				}
			}
		})
	}
}

// retry calls f until it succeeds, for up to a minute.
func retry(t *testing.T, f func() error) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// serve is the server each replica of TestService runs: HTTP on
// $HTTP_PORT, whose /health answers 200 once $HOME/ready exists, and a
// line echo on $ECHO_PORT, both at the node's address.
func serve() int {
	addr := os.Getenv("CINET_NODE_ADDR")
	echo, err := net.Listen("tcp", net.JoinHostPort(addr, os.Getenv("ECHO_PORT")))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	go func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				line, _ := bufio.NewReader(c).ReadString('\n')
				fmt.Fprintf(c, "%s %s", addr, line)
			}()
		}
	}()
	mux := http.NewServeMux()
	mux.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) {
		if _, err := os.Stat(filepath.Join(os.Getenv("HOME"), "ready")); err != nil {
			http.Error(w, "not yet", http.StatusServiceUnavailable)
		}
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintf(w, "served by %s\n", addr) })
	err = http.ListenAndServe(net.JoinHostPort(addr, os.Getenv("HTTP_PORT")), mux)
	fmt.Fprintln(os.Stderr, err)
	return 1
}
