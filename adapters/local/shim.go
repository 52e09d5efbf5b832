//go:build unix

package local

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/cinet/cinet/adapters"
	"github.com/cinet/cinet/adapters/nodeagent"
	"github.com/cinet/cinet/descriptor"
)

// shimEnv is set in the shim's environment, so that a program that embeds
// the shim (a test binary) can tell it is to run one: "1" for the shim,
// "init" for a task's sandbox init, "probe" for the sandbox probe.
const shimEnv = "CINET_LOCAL_SHIM"

// IsShim reports whether this process was started as a shim.
func IsShim() bool { return os.Getenv(shimEnv) != "" }

// heartbeat is how often the shim records that it is alive while a task
// runs: a placement whose shim dies is billed up to its last record.
const heartbeat = 5 * time.Second

// Shim supervises the placement in dir: it runs the tasks in order, each
// in its sandbox (or, without isolation, in a process group of its own)
// with its output in logs/, records each start and end in run.json,
// enforces the timeout, stops the running task when it receives SIGTERM
// or SIGINT, and returns the process's exit status. It holds dir/lock
// while it lives. A second shim for the same directory exits at once.
//
// The same entry point runs a task's sandbox init and the sandbox probe,
// as the environment says.
func Shim(dir string) int {
	switch os.Getenv(shimEnv) {
	case "init":
		return sandboxInit()
	case "probe":
		return sandboxProbe(dir)
	}
	if err := shim(dir); err != nil {
		fmt.Fprintln(os.Stderr, "cinet local shim:", err)
		return 1
	}
	return 0
}

func shim(dir string) error {
	lock, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	// The lock is held for as long as the file is open: until this
	// function returns, and not a moment less (an unreferenced *os.File is
	// closed by its finalizer).
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return nil // another shim runs this placement
	}
	s, err := readSpec(dir)
	if err != nil {
		return err
	}
	r, err := readRun(dir)
	if err != nil {
		return err
	}
	if r != nil {
		// A run record without a live shim: the placement was lost. It
		// is not run again; the broker decides what to do.
		return nil
	}
	r = &run{ShimPID: os.Getpid(), Seen: time.Now().UTC()}
	sr := &shimRun{dir: dir, s: s, r: r}
	if sb := s.Sandbox; sb != nil {
		uid, held, err := takeUID(filepath.Join(filepath.Dir(dir), uidsDir), sb.UIDs, s.Placement.ID)
		if err != nil {
			return err
		}
		defer held.Close()
		r.UID = uid
		// Unmounted when the run ends (or, if the shim dies first, when
		// the adapter finds the placement lost).
		defer unmountWorkDisks(dir)
		if ok, err := sr.workDisks(sb); !ok || err != nil {
			return err
		}
	}
	if err := sr.save(); err != nil {
		return err
	}
	sr.stop = make(chan os.Signal, 1)
	signal.Notify(sr.stop, syscall.SIGTERM, syscall.SIGINT)
	if p := s.Placement; p.Timeout > 0 {
		sr.deadline = time.After(p.Timeout)
	}
	sr.beat = time.NewTicker(heartbeat)
	defer sr.beat.Stop()
	for i, t := range s.Placement.Tasks {
		goOn, err := sr.task(i, t)
		if err != nil {
			return err
		}
		if !goOn {
			break
		}
	}
	// The disks are unmounted before the end is recorded: whoever acts
	// on a finished placement finds nothing of it mounted.
	if s.Sandbox != nil {
		if err := unmountWorkDisks(dir); err != nil {
			fmt.Fprintln(os.Stderr, "cinet local shim:", err)
		}
	}
	r.Done = true
	return sr.save()
}

// A shimRun is one placement being run by its shim.
type shimRun struct {
	dir      string
	s        *spec
	r        *run
	stop     chan os.Signal
	deadline <-chan time.Time
	beat     *time.Ticker
}

// save records the run for the adapter.
func (sr *shimRun) save() error {
	data, err := json.Marshal(sr.r)
	if err != nil {
		return err
	}
	return adapters.WriteFileAtomic(filepath.Join(sr.dir, runFile), data)
}

// workDisks gives each sandboxed node its work disk; false when one could
// not be made (the run then records that it ended so).
func (sr *shimRun) workDisks(sb *sandboxConf) (bool, error) {
	disk := cmp.Or(sr.s.Placement.Limits.Disk, sb.Disk)
	for inst := range sr.s.Placement.Instances() {
		work := filepath.Join(sr.dir, nodeWork(inst))
		if err := mountWorkDisk(sr.dir, work, disk, sr.r.UID); err != nil {
			sr.r.Done, sr.r.Detail = true, "the work directory could not be made: "+err.Error()
			return false, sr.save()
		}
		if err := os.Chown(work, int(sr.r.UID), int(sr.r.UID)); err != nil {
			return false, err
		}
	}
	return true, nil
}

// task runs task i on every node until it ends, and says whether the
// next task may run.
func (sr *shimRun) task(i int, t descriptor.Task) (bool, error) {
	s, r, p := sr.s, sr.r, sr.s.Placement
	tr := taskRun{}
	tr.Name, tr.Started = t.Name, time.Now().UTC()
	rt, nets, err := s.startNodes(sr.dir, r.UID, i, t)
	if err != nil {
		tr.End, tr.ExitCode = time.Now().UTC(), 127
		r.Tasks = append(r.Tasks, tr)
		r.Detail = fmt.Sprintf("task %s could not start: %v", t.Name, err)
		return false, nil
	}
	tr.PGIDs, tr.Cgroups = rt.pgids(), rt.groups()
	r.Tasks = append(r.Tasks, tr)
	// The last task of a service serves: its ports are exposed and
	// probed while it runs.
	var svc *service
	var svcErr error
	if p.Service != nil && i == len(p.Tasks)-1 {
		if svc, svcErr = startService(p.Service, s.ServiceListen, nets); svcErr != nil {
			fmt.Fprintf(os.Stderr, "exposing the service: %v\n", svcErr)
			rt.terminate(0)
		} else {
			r.Endpoints = svc.endpoints()
		}
	}
	for _, rn := range nets {
		rn.close() // the service holds what it needs
	}
	if err := sr.save(); err != nil {
		rt.terminate(0)
		rt.wait()
		svc.close()
		return false, err
	}
	last := &r.Tasks[len(r.Tasks)-1]
	sr.await(rt, svc, last, t)
	end, acct, err := rt.wait()
	svc.close()
	r.Endpoints = nil
	last.End = time.Now().UTC()
	r.Seen = last.End
	last.ExitCode, last.Signal = end.ExitCode, end.Signal
	last.CPU, last.PeakMemory, last.PGIDs, last.Cgroups = acct.CPU, acct.PeakMemory, nil, nil
	if svcErr != nil {
		last.ExitCode = cmp.Or(last.ExitCode, 127)
	}
	if detail := sr.endDetail(t, end, acct, err, svcErr, last); detail != "" {
		r.Detail = detail
	}
	if err := sr.save(); err != nil {
		return false, err
	}
	return !r.Cancelled && !last.TimedOut && last.ExitCode == 0, nil
}

// await waits for the task to end: it follows the service's endpoints,
// says the shim is alive, and stops the task at the placement's timeout
// or when the placement is released.
func (sr *shimRun) await(rt runningTask, svc *service, last *taskRun, t descriptor.Task) {
	r, p := sr.r, sr.s.Placement
	for {
		select {
		case <-rt.exited():
			return
		case <-svc.changed():
			r.Endpoints = svc.endpoints()
			sr.save()
		case <-sr.beat.C:
			r.Seen = time.Now().UTC()
			sr.save()
		case <-sr.deadline:
			last.TimedOut = true
			r.Detail = fmt.Sprintf("task %s ran past the placement's timeout of %s", t.Name, p.Timeout)
			rt.terminate(sr.s.Grace)
			return
		case <-sr.stop:
			r.Cancelled = true
			rt.terminate(sr.s.Grace)
			return
		}
	}
}

// endDetail says why a task ended as it did, when that needs saying.
func (sr *shimRun) endDetail(t descriptor.Task, end sandboxEnd, acct accounting, err, svcErr error, last *taskRun) string {
	nodes := sr.s.Placement.Instances()
	on := ""
	if nodes > 1 {
		on = fmt.Sprintf(" on node %d of %d", end.Node, nodes)
	}
	switch {
	case svcErr != nil:
		return fmt.Sprintf("the service's ports could not be exposed: %v", svcErr)
	case err != nil:
		return fmt.Sprintf("task %s%s: %v", t.Name, on, err)
	case end.Error != "":
		return fmt.Sprintf("task %s%s: %s", t.Name, on, end.Error)
	case end.Unreported && !sr.r.Cancelled && !last.TimedOut && acct.OOMKills == 0:
		return fmt.Sprintf("task %s%s: its sandbox's init ended without saying how the task ended (its stderr log, and the placement's %s, may say why)", t.Name, on, shimLog)
	case acct.OOMKills > 0:
		return fmt.Sprintf("task %s%s was killed for using more memory than its limit of %s", t.Name, on, descriptor.Quantity(sr.s.Limits.Memory))
	case nodes > 1 && end.failed() && !sr.r.Cancelled && !last.TimedOut:
		return fmt.Sprintf("task %s failed%s (%s); the other nodes were stopped", t.Name, on, end.describe())
	}
	return ""
}

// A runningTask is a task the shim started, in its sandbox or not.
type runningTask interface {
	exited() <-chan struct{}
	// terminate asks the task to stop (SIGTERM), and kills it after the
	// grace.
	terminate(grace time.Duration)
	// wait waits for the task and everything it started to have exited,
	// and returns how it ended and what it used.
	wait() (sandboxEnd, accounting, error)
	pgids() []int       // the process groups to kill, without a sandbox
	groups() []groupRef // the cgroups, in a sandbox
}

// startNodes starts task i of the placement on every node of every
// replica: each node a process of its own (in a sandbox of its own, all of
// a replica's sandboxes in one network namespace), with the node contract
// in its environment, its own work directory and its own logs. It returns
// the run and, for each replica, where its node 0 is reached: the
// network namespace to dial in (nil for the host's) and the address.
func (s *spec) startNodes(dir string, uid uint32, i int, t descriptor.Task) (runningTask, []replicaNet, error) {
	p := s.Placement
	n, replicas := max(p.Nodes, 1), p.Instances()/max(p.Nodes, 1)
	all := &nodeGroup{exit: make(chan struct{}), grace: s.Grace}
	var nets []replicaNet
	// fail stops what started: the replica being started (cur, not yet
	// watched) and the replicas before it.
	fail := func(cur *nodeGroup, netns *os.File, err error) (runningTask, []replicaNet, error) {
		cur.abort()
		all.abort()
		if netns != nil {
			netns.Close()
		}
		for _, rn := range nets {
			rn.close()
		}
		return nil, nil, err
	}
	// A replica's network namespace is needed for its other nodes to join
	// and for its service to be reached.
	shareNet := (n > 1 || p.Service != nil) && s.Sandbox != nil && !s.Sandbox.HostNetwork
	for r := range replicas {
		g := &nodeGroup{exit: make(chan struct{}), grace: s.Grace}
		addrs := nodeAddrs(r*n, n)
		port, err := s.rendezvousPort()
		if err != nil {
			return fail(g, nil, err)
		}
		var netns *os.File
		for rank := range n {
			nt, err := s.startNode(dir, uid, i, t, r*n+rank, adapters.NodeEnv(p, rank, addrs, port), netns, rank == 0 && shareNet)
			if err != nil {
				return fail(g, netns, fmt.Errorf("node %d: %w", r*n+rank, err))
			}
			g.nodes = append(g.nodes, nt)
			if rank == 0 && shareNet {
				netns = nt.netns()
			}
		}
		nets = append(nets, replicaNet{netns: netns, addr: addrs[0]})
		g.watch()
		all.nodes, all.bases = append(all.nodes, g), append(all.bases, r*n)
	}
	all.watch()
	return all, nets, nil
}

// A replicaNet is where node 0 of a replica is reached.
type replicaNet struct {
	netns *os.File // its network namespace; nil for the host's
	addr  string
}

func (rn replicaNet) close() {
	if rn.netns != nil {
		rn.netns.Close()
	}
}

// nodeAddrs are the loopback addresses n nodes are reached at, the first
// being the placement's instance first: instance 0 is 127.0.0.1, instance
// 1 127.0.0.2, and so on.
func nodeAddrs(first, n int) []string {
	addrs := make([]string, n)
	for k := range addrs {
		i := first + k + 1
		addrs[k] = fmt.Sprintf("127.0.%d.%d", i>>8, i&0xff)
	}
	return addrs
}

// rendezvousPort is the node contract's port: in a private network
// namespace every port is free, so it is the conventional 29500; on the
// host's network it is one the kernel finds free.
func (s *spec) rendezvousPort() (int, error) {
	if s.Sandbox != nil && !s.Sandbox.HostNetwork {
		return defaultRendezvousPort, nil
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port for the rendezvous: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

const defaultRendezvousPort = 29500

// tmpSize bounds a task's /tmp: the class's memory, whose cgroup its
// pages are charged to anyway, or 1 GiB when the placement has no memory
// limit.
func (s *spec) tmpSize() int64 {
	if s.Limits.Memory > 0 {
		return s.Limits.Memory
	}
	return 1 << 30
}

// nodeWork is a node's work directory, below the placement's: node 0's is
// work/, node k's work-k/.
func nodeWork(rank int) string {
	if rank == 0 {
		return workDir
	}
	return fmt.Sprintf("%s-%d", workDir, rank)
}

// logPath is where a node's output of a task goes: logs/TASK.STREAM for
// node 0, logs/node-K/TASK.STREAM for node K.
func logPath(dir, task string, node int, stream string) string {
	if node == 0 {
		return filepath.Join(dir, logsDir, task+"."+stream)
	}
	return filepath.Join(dir, logsDir, fmt.Sprintf("node-%d", node), task+"."+stream)
}

// A node is one node's run of a task.
type node interface {
	runningTask
	// netns is its network namespace, when it was started in a sandbox
	// of its own and asked to keep it; the caller closes it.
	netns() *os.File
}

// startNode starts task i on one node, the placement's instance inst, in
// netns when it is given; keepNetns keeps the namespace the node makes.
func (s *spec) startNode(dir string, uid uint32, i int, t descriptor.Task, inst int, nodeEnv []string, netns *os.File, keepNetns bool) (node, error) {
	p := s.Placement
	var out [2]*os.File
	for k, stream := range []string{"stdout", "stderr"} {
		path := logPath(dir, t.Name, inst, stream)
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, err
		}
		f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return nil, err
		}
		defer f.Close() // the task has its own copy
		out[k] = f
	}
	env := append([]string{
		"LANG=C.UTF-8", "CINET_JOB=" + p.Job, "CINET_PLACEMENT=" + p.ID, "CINET_TASK=" + t.Name,
	}, nodeEnv...)
	argv := append(append([]string{}, t.Command...), t.Args...)
	sb := s.Sandbox
	work := filepath.Join(dir, nodeWork(inst))
	// Without a sandbox the task sees the host: the broker's PATH, its
	// work directory where it lies. In one, the sandbox's own.
	if sb == nil {
		env = append(env, "PATH="+os.Getenv("PATH"), "HOME="+work)
	} else {
		env = append(env, "PATH=/usr/local/bin:/usr/bin:/bin", "HOME="+sandboxWork)
	}
	for k, v := range t.Env {
		env = append(env, k+"="+v)
	}
	nt, err := func() (node, error) {
		if sb == nil {
			return startPlain(argv, env, filepath.Join(work, t.Workdir), out[0], out[1])
		}
		root := filepath.Join(dir, rootDir)
		if err := os.MkdirAll(root, 0o700); err != nil {
			return nil, err
		}
		hostname := "cinet"
		if p.Instances() > 1 {
			hostname = fmt.Sprintf("cinet-%d", inst)
		}
		ss := sandboxSpec{
			Root: root, Work: work, Expose: sb.Expose, Hide: sb.Hide, UID: uid,
			Network: !sb.HostNetwork, Argv: argv, Env: env, Dir: filepath.Join(sandboxWork, t.Workdir),
			Hostname: hostname, LogLimit: sb.LogLimit, TmpSize: s.tmpSize(),
		}
		l := limits{CPUs: s.Limits.CPUs, Memory: s.Limits.Memory, PIDs: sb.PIDs}
		return startSandboxed(ss, fmt.Sprintf("%s.%d.%d", p.ID, i, inst), l, out[0], out[1], netns, keepNetns)
	}()
	if err != nil {
		fmt.Fprintf(out[1], "cinet: cannot start task %s: %v\n", t.Name, err)
		return nil, err
	}
	return nt, nil
}

func (e sandboxEnd) failed() bool { return e.ExitCode != 0 || e.Signal != "" || e.Error != "" }

// describe says how a task ended, in words.
func (e sandboxEnd) describe() string {
	if e.Signal != "" {
		return "killed by " + e.Signal
	}
	return fmt.Sprintf("exit code %d", e.ExitCode)
}

// A nodeGroup is a task's run on all of a placement's nodes. It has
// exited when every node has; the first node to fail stops the others.
type nodeGroup struct {
	nodes []runningTask
	grace time.Duration
	exit  chan struct{} // closed when every node has exited and been waited for

	// bases are the instance index of each member's first node, for a
	// group of groups; nil when each member is one node.
	bases []int

	mu       sync.Mutex
	ended    []bool
	ends     []nodeEnd
	first    int  // the first node to fail by itself, or -1
	stopping bool // terminate was called: nodes that fail now were stopped
}

type nodeEnd struct {
	end  sandboxEnd
	acct accounting
	err  error
}

func (e nodeEnd) failed() bool { return e.err != nil || e.end.failed() }

func (g *nodeGroup) watch() {
	g.ended, g.ends, g.first = make([]bool, len(g.nodes)), make([]nodeEnd, len(g.nodes)), -1
	var wg sync.WaitGroup
	for k, n := range g.nodes {
		wg.Go(func() {
			<-n.exited()
			e, a, err := n.wait()
			g.mu.Lock()
			g.ended[k], g.ends[k] = true, nodeEnd{e, a, err}
			stop := g.first < 0 && !g.stopping && g.ends[k].failed()
			if stop {
				g.first = k
			}
			g.mu.Unlock()
			if stop {
				g.terminate(g.grace)
			}
		})
	}
	go func() { wg.Wait(); close(g.exit) }()
}

// abort kills the nodes started so far, of a group that could not start.
func (g *nodeGroup) abort() {
	for _, n := range g.nodes {
		n.terminate(0)
		n.wait()
	}
}

func (g *nodeGroup) exited() <-chan struct{} { return g.exit }

// terminate stops every node that still runs, all at once.
func (g *nodeGroup) terminate(grace time.Duration) {
	g.mu.Lock()
	g.stopping = true
	ended := slices.Clone(g.ended)
	g.mu.Unlock()
	var wg sync.WaitGroup
	for k, n := range g.nodes {
		if !ended[k] {
			wg.Go(func() { n.terminate(grace) })
		}
	}
	wg.Wait()
}

// wait returns how the task ended — as the first node to fail by itself
// ended, else as node 0 did — and what all the nodes used: their
// CPU time and their peak memory, summed.
func (g *nodeGroup) wait() (sandboxEnd, accounting, error) {
	<-g.exit
	var a accounting
	var err error
	for _, e := range g.ends {
		a.CPU += e.acct.CPU
		a.PeakMemory += e.acct.PeakMemory
		a.OOMKills += e.acct.OOMKills
		err = cmp.Or(err, e.err)
	}
	k := max(g.first, 0)
	e := g.ends[k].end
	if g.bases != nil {
		e.Node += g.bases[k]
	} else {
		e.Node = k
	}
	return e, a, err
}

func (g *nodeGroup) pgids() []int {
	var out []int
	for _, n := range g.nodes {
		out = append(out, n.pgids()...)
	}
	return out
}

func (g *nodeGroup) groups() []groupRef {
	var out []groupRef
	for _, n := range g.nodes {
		out = append(out, n.groups()...)
	}
	return out
}

// plainTask is a task run without isolation, in a process group of its
// own, measured by its rusage (nodeagent.Process).
type plainTask struct {
	proc *nodeagent.Process
}

func startPlain(argv, env []string, wd string, stdout, stderr *os.File) (*plainTask, error) {
	proc, err := nodeagent.Start(argv, env, wd, stdout, stderr)
	if err != nil {
		return nil, err
	}
	return &plainTask{proc: proc}, nil
}

func (t *plainTask) exited() <-chan struct{} { return t.proc.Done() }
func (t *plainTask) pgids() []int            { return []int{t.proc.PGID()} }
func (t *plainTask) groups() []groupRef      { return nil }
func (t *plainTask) netns() *os.File         { return nil }

func (t *plainTask) terminate(grace time.Duration) { t.proc.Stop(grace) }

func (t *plainTask) wait() (sandboxEnd, accounting, error) {
	end := t.proc.Wait()
	return sandboxEnd{ExitCode: end.ExitCode, Signal: end.Signal, Error: end.Error}, accounting{CPU: end.CPU, PeakMemory: end.PeakMemory}, nil
}
