//go:build linux

package local

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The sandbox. Each task runs under an init process of its own, which the
// shim starts in new mount, PID, IPC and UTS namespaces (and a network
// namespace with only loopback, unless the configuration shares the
// host's) and puts in the task's control group before the task exists.
// Init builds a root file system from nothing — a tmpfs holding read-only
// binds of the system directories, the job's work directory at /work, a
// fresh /proc, a minimal /dev and a private /tmp — so that the broker's
// data directory, its key and every other placement are not there at all.
// It then starts the task as the job's unprivileged uid with no new
// privileges, reaps whatever the task leaves behind, and reports how the
// task ended. When init exits, the kernel kills every process left in its
// PID namespace, so nothing a task starts outlives it; when the shim
// dies, init sees its control pipe close and does the same.

// sandboxSpec is what the shim tells init, on init's control pipe.
type sandboxSpec struct {
	Root     string   `json:"root"`     // an empty directory to build the root in
	Work     string   `json:"work"`     // the job's work directory, mounted at /work
	Expose   []string `json:"expose"`   // host paths bound read-only at the same path
	Hide     []string `json:"hide"`     // host paths masked by an empty directory
	UID      uint32   `json:"uid"`      // the task's user and group
	Network  bool     `json:"network"`  // whether init is in a private network namespace
	Argv     []string `json:"argv"`     // the task's command
	Env      []string `json:"env"`      // the task's environment
	Dir      string   `json:"dir"`      // its working directory, inside the sandbox
	Hostname string   `json:"hostname"` // the UTS namespace's host name
	LogLimit int64    `json:"logLimit"` // what each of stdout and stderr keeps; 0 for all
	TmpSize  int64    `json:"tmpSize"`  // /tmp's size in bytes; 0 for the kernel's default
}

// sandboxEnd is how the task ended, as init saw it.
type sandboxEnd struct {
	ExitCode int    `json:"exitCode"`
	Signal   string `json:"signal,omitempty"`
	Error    string `json:"error,omitempty"` // the sandbox or the task could not start
	Node     int    `json:"-"`               // which node, of a multi-node task
	// Unreported is set when init ended without a report: it was killed
	// (on a cancel or a timeout, by the shim) or died.
	Unreported bool `json:"-"`
}

// Where the job's work directory is inside the sandbox.
const sandboxWork = "/work"

// sandboxCloneFlags are the namespaces of a task's init.
func sandboxCloneFlags(network bool) uintptr {
	f := uintptr(syscall.CLONE_NEWNS | syscall.CLONE_NEWPID | syscall.CLONE_NEWIPC | syscall.CLONE_NEWUTS)
	if network {
		f |= syscall.CLONE_NEWNET
	}
	return f
}

// A sandboxedTask is one task started under init.
type sandboxedTask struct {
	cmd   *exec.Cmd
	cg    taskGroup
	ref   groupRef
	exit  chan struct{} // closed when init has exited
	ended chan sandboxEnd
	ctl   *os.File // the write end of init's control pipe; closing it kills the task
	ns    *os.File // its network namespace, when kept
}

// startSandboxed starts init for a task: init's stdout and stderr are the
// task's logs. The task's group is created with the limits and holds init
// before init starts the task. Given a network namespace, init joins it
// rather than make one; keepNetns keeps the one it makes open, for
// netns, before the task can end and take it with it.
func startSandboxed(spec sandboxSpec, group string, l limits, stdout, stderr, netns *os.File, keepNetns bool) (*sandboxedTask, error) {
	g, ref, err := newTaskGroup(group, l)
	if err != nil {
		return nil, err
	}
	ctlR, ctlW, err := os.Pipe()
	if err != nil {
		g.remove()
		return nil, err
	}
	endR, endW, err := os.Pipe()
	if err != nil {
		ctlR.Close()
		ctlW.Close()
		g.remove()
		return nil, err
	}
	// Init is this program again, with the shim's own arguments (so that
	// it lands in Shim) and a bare environment: the broker's stays out.
	// Its last argument, the placement's directory, is not passed (init
	// does not read it): a task sees init's command line in /proc/1, and
	// it would name where the broker keeps its data.
	args := slices.Clone(os.Args[1:])
	if len(args) > 0 {
		args[len(args)-1] = "/"
	}
	cmd := exec.Command("/proc/self/exe", args...)
	cmd.Env = []string{shimEnv + "=init", "PATH=/usr/local/bin:/usr/bin:/bin"}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.ExtraFiles = []*os.File{ctlR, endW}
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: sandboxCloneFlags(spec.Network && netns == nil), Setpgid: true}
	if netns != nil {
		err = startInNetns(cmd, netns)
	} else {
		err = cmd.Start()
	}
	ctlR.Close()
	endW.Close()
	if err != nil {
		ctlW.Close()
		endR.Close()
		g.remove()
		return nil, fmt.Errorf("local: starting the sandbox: %w", err)
	}
	t := &sandboxedTask{cmd: cmd, cg: g, ref: ref, exit: make(chan struct{}), ended: make(chan sandboxEnd, 1), ctl: ctlW}
	go func() {
		var e sandboxEnd
		data, _ := io.ReadAll(io.LimitReader(endR, 64<<10))
		endR.Close()
		if json.Unmarshal(data, &e) != nil {
			e = sandboxEnd{ExitCode: -1, Signal: "killed", Unreported: true}
		}
		t.ended <- e
	}()
	go func() { cmd.Wait(); close(t.exit) }()
	if err := g.add(cmd.Process.Pid); err != nil {
		t.destroy()
		return nil, fmt.Errorf("local: putting the task in its cgroup: %w", err)
	}
	if keepNetns && netns == nil {
		// Init waits for its spec, so it and its namespace are there.
		if t.ns, err = os.Open(fmt.Sprintf("/proc/%d/ns/net", cmd.Process.Pid)); err != nil {
			t.destroy()
			return nil, fmt.Errorf("local: opening the sandbox's network namespace: %w", err)
		}
	}
	if err := json.NewEncoder(ctlW).Encode(spec); err != nil {
		if t.ns != nil {
			t.ns.Close()
		}
		t.destroy()
		return nil, fmt.Errorf("local: configuring the sandbox: %w", err)
	}
	return t, nil
}

// terminate asks init to stop the task (SIGTERM to everything in the
// sandbox) and kills the sandbox after the grace.
func (t *sandboxedTask) terminate(grace time.Duration) {
	t.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-t.exit:
	case <-time.After(grace):
		t.cmd.Process.Kill()
	}
}

// wait waits for init to exit, kills whatever is left in the group, and
// returns how the task ended and what the group measured; the group is
// removed.
func (t *sandboxedTask) wait() (sandboxEnd, accounting, error) {
	<-t.exit
	t.ctl.Close()
	e := <-t.ended
	if err := t.cg.kill(); err != nil {
		return e, accounting{}, err
	}
	a, err := t.cg.account()
	if err != nil {
		return e, a, fmt.Errorf("local: reading the task's accounting: %w", err)
	}
	if err := t.cg.remove(); err != nil {
		return e, a, fmt.Errorf("local: removing the task's cgroup: %w", err)
	}
	return e, a, nil
}

func (t *sandboxedTask) exited() <-chan struct{} { return t.exit }
func (t *sandboxedTask) pgids() []int            { return nil }
func (t *sandboxedTask) groups() []groupRef      { return []groupRef{t.ref} }

// netns hands over the network namespace kept at the start.
func (t *sandboxedTask) netns() *os.File {
	ns := t.ns
	t.ns = nil
	return ns
}

// enterNetns moves the calling thread into the network namespace netns.
func enterNetns(netns *os.File) error {
	return unix.Setns(int(netns.Fd()), unix.CLONE_NEWNET)
}

// startInNetns starts cmd in the network namespace netns. A new process
// is made in the namespaces of the thread that makes it, so a thread of
// its own enters the namespace and starts it; that thread is never given
// back to the runtime (it exits with its goroutine), so nothing else runs
// in the namespace.
func startInNetns(cmd *exec.Cmd, netns *os.File) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := enterNetns(netns); err != nil {
			done <- fmt.Errorf("entering the placement's network namespace: %w", err)
			return
		}
		done <- cmd.Start()
	}()
	return <-done
}

// destroy kills a sandbox that could not be set up.
func (t *sandboxedTask) destroy() {
	t.cmd.Process.Kill()
	<-t.exit
	t.ctl.Close()
	t.cg.kill()
	t.cg.remove()
}

// sandboxInit is init: it reads its spec, builds the sandbox, runs the
// task and reports its end. It never returns to the caller's main.
func sandboxInit() int {
	ctl, end := os.NewFile(3, "control"), os.NewFile(4, "end")
	// No descriptor of init's but the task's stdio reaches the task: not
	// its control and report pipes (a task that could write the report
	// would choose its own exit), nor anything init inherited.
	if err := closeOnExecFrom(3); err != nil {
		fmt.Fprintln(os.Stderr, "cinet: cannot set up the sandbox:", err)
		json.NewEncoder(end).Encode(sandboxEnd{ExitCode: 127, Error: "setting up the sandbox: " + err.Error()})
		return 0
	}
	report := func(e sandboxEnd) int {
		json.NewEncoder(end).Encode(e)
		end.Close()
		return 0
	}
	var spec sandboxSpec
	if err := json.NewDecoder(io.LimitReader(ctl, 1<<20)).Decode(&spec); err != nil {
		return report(sandboxEnd{ExitCode: -1, Error: "reading the sandbox's configuration: " + err.Error()})
	}
	if err := spec.enter(); err != nil {
		fmt.Fprintln(os.Stderr, "cinet: cannot set up the sandbox:", err)
		return report(sandboxEnd{ExitCode: 127, Error: "setting up the sandbox: " + err.Error()})
	}
	pid, copied, err := spec.startTask()
	if err != nil {
		fmt.Fprintf(os.Stderr, "cinet: cannot start %q: %v\n", spec.Argv[0], err)
		return report(sandboxEnd{ExitCode: 127, Error: fmt.Sprintf("cannot start %q: %v", spec.Argv[0], err)})
	}
	// The shim's end of the control pipe closes when the shim dies: then
	// nothing supervises the task, and it stops.
	go func() {
		io.Copy(io.Discard, ctl)
		syscall.Kill(-1, syscall.SIGKILL)
		os.Exit(137)
	}()
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		for s := range sigs {
			syscall.Kill(-1, s.(syscall.Signal)) // everything in the namespace but init
		}
	}()
	// Reap every child; the task's end is the sandbox's.
	var e sandboxEnd
	for {
		var ws syscall.WaitStatus
		p, err := syscall.Wait4(-1, &ws, 0, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			e = sandboxEnd{ExitCode: -1, Error: "waiting for the task: " + err.Error()}
			break
		}
		if p != pid {
			continue
		}
		e.ExitCode = ws.ExitStatus()
		if ws.Signaled() {
			e.ExitCode, e.Signal = -1, ws.Signal().String()
		}
		break
	}
	// What the task left running dies with init; kill it first so that it
	// has stopped before its end is reported, and its output, whose pipes
	// close with the last process that holds them, is all in the logs.
	syscall.Kill(-1, syscall.SIGKILL)
	select {
	case <-copied:
	case <-time.After(10 * time.Second):
	}
	return report(e)
}

// enter builds the sandbox's root file system and moves into it.
func (s *sandboxSpec) enter() error {
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("making mounts private: %w", err)
	}
	root := s.Root
	if err := unix.Mount("tmpfs", root, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0755,size=1m"); err != nil {
		return fmt.Errorf("mounting the root: %w", err)
	}
	for _, p := range s.Expose {
		if err := exposeRO(p, filepath.Join(root, p)); err != nil {
			return err
		}
	}
	work := filepath.Join(root, sandboxWork)
	if err := os.MkdirAll(work, 0o755); err != nil {
		return err
	}
	if err := unix.Mount(s.Work, work, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("mounting the work directory: %w", err)
	}
	if err := unix.Mount("", work, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_NOSUID|unix.MS_NODEV, ""); err != nil {
		return fmt.Errorf("mounting the work directory: %w", err)
	}
	mounts := []struct {
		at, fstype, opts string
		flags            uintptr
	}{
		{"proc", "proc", "", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC},
		{"dev", "tmpfs", "mode=0755,size=64k", unix.MS_NOSUID | unix.MS_NOEXEC},
		{"tmp", "tmpfs", tmpOpts(s.TmpSize), unix.MS_NOSUID | unix.MS_NODEV},
		{"dev/shm", "tmpfs", "mode=1777", unix.MS_NOSUID | unix.MS_NODEV},
	}
	for _, m := range mounts {
		at := filepath.Join(root, m.at)
		if err := os.MkdirAll(at, 0o755); err != nil {
			return err
		}
		if err := unix.Mount(m.fstype, at, m.fstype, m.flags, m.opts); err != nil {
			return fmt.Errorf("mounting /%s: %w", m.at, err)
		}
	}
	for _, d := range []string{"null", "zero", "full", "random", "urandom", "tty"} {
		at := filepath.Join(root, "dev", d)
		if err := os.WriteFile(at, nil, 0o666); err != nil {
			return err
		}
		if err := unix.Mount("/dev/"+d, at, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("binding /dev/%s: %w", d, err)
		}
	}
	for name, target := range map[string]string{"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2"} {
		if err := os.Symlink(target, filepath.Join(root, "dev", name)); err != nil {
			return err
		}
	}
	for _, h := range s.Hide {
		// A directory is covered by an empty one, a file by an empty
		// device.
		at := filepath.Join(root, h)
		fi, err := os.Stat(at)
		switch {
		case err != nil:
			continue // not in the sandbox: nothing to hide
		case fi.IsDir():
			err = unix.Mount("tmpfs", at, "tmpfs", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=0555,size=4k")
		default:
			err = unix.Mount("/dev/null", at, "", unix.MS_BIND, "")
		}
		if err != nil {
			return fmt.Errorf("hiding %s: %w", h, err)
		}
	}
	old := filepath.Join(root, ".old")
	if err := os.Mkdir(old, 0o700); err != nil {
		return err
	}
	if err := unix.PivotRoot(root, old); err != nil {
		return fmt.Errorf("pivot_root: %w", err)
	}
	if err := os.Chdir("/"); err != nil {
		return err
	}
	if err := unix.Unmount("/.old", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detaching the host's file system: %w", err)
	}
	if err := os.Remove("/.old"); err != nil {
		return err
	}
	if err := unix.Mount("", "/", "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV, ""); err != nil {
		return fmt.Errorf("making the root read-only: %w", err)
	}
	if s.Network {
		if err := loopbackUp(); err != nil {
			return fmt.Errorf("bringing up loopback: %w", err)
		}
	}
	if s.Hostname != "" {
		if err := unix.Sethostname([]byte(s.Hostname)); err != nil {
			return fmt.Errorf("setting the host name: %w", err)
		}
	}
	return nil
}

// exposeRO makes host path src appear read-only at dst: a directory or a
// file is bound, a symbolic link is made again.
func exposeRO(src, dst string) error {
	fi, err := os.Lstat(src)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	switch {
	case fi.Mode()&os.ModeSymlink != 0:
		target, err := os.Readlink(src)
		if err != nil {
			return err
		}
		return os.Symlink(target, dst)
	case fi.IsDir():
		if err := os.Mkdir(dst, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return err
		}
	default:
		if err := os.WriteFile(dst, nil, 0o644); err != nil {
			return err
		}
	}
	if err := unix.Mount(src, dst, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("binding %s: %w", src, err)
	}
	// Read-only, no set-uid programs and no devices, for the mounts below
	// it too (/etc/hosts and the like are often mounts of their own).
	attr := &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV}
	if err := unix.MountSetattr(-1, dst, unix.AT_RECURSIVE, attr); err != nil {
		if !errors.Is(err, unix.ENOSYS) {
			return fmt.Errorf("making %s read-only: %w", src, err)
		}
		if err := unix.Mount("", dst, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV, ""); err != nil {
			return fmt.Errorf("making %s read-only: %w", src, err)
		}
	}
	return nil
}

// loopbackUp brings up lo in a new network namespace.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return err
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	return unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr)
}

// startTask starts the task as the job's user, in a session of its own,
// with no way to gain privileges (set-uid programs do not elevate). The
// task's stdout and stderr are pipes whose output init copies to its own,
// the log files, up to LogLimit each; copied is closed when both are
// done, which is when every process that held them has ended.
func (s *sandboxSpec) startTask() (pid int, copied <-chan struct{}, err error) {
	if err := os.Chdir(s.Dir); err != nil {
		return 0, nil, err
	}
	var pipes [2][2]*os.File // read and write ends of stdout's and stderr's
	for k := range pipes {
		r, w, err := os.Pipe()
		if err != nil {
			return 0, nil, err
		}
		pipes[k] = [2]*os.File{r, w}
	}
	done := make(chan struct{})
	started := false
	defer func() {
		for _, p := range pipes {
			p[1].Close() // the task has its own
			if !started {
				p[0].Close()
			}
		}
	}()
	for _, kv := range s.Env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			os.Setenv("PATH", v)
		}
	}
	path, err := exec.LookPath(s.Argv[0])
	if err != nil {
		return 0, nil, err
	}
	// no_new_privs is a property of the thread, inherited by the child
	// this thread forks.
	runtime.LockOSThread()
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return 0, nil, fmt.Errorf("setting no_new_privs: %w", err)
	}
	if err := confineThread(); err != nil {
		return 0, nil, err
	}
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return 0, nil, err
	}
	defer devnull.Close()
	p, err := os.StartProcess(path, s.Argv, &os.ProcAttr{
		Dir: s.Dir, Env: s.Env, Files: []*os.File{devnull, pipes[0][1], pipes[1][1]},
		Sys: &syscall.SysProcAttr{
			Credential: &syscall.Credential{Uid: s.UID, Gid: s.UID, Groups: []uint32{}},
			Setsid:     true,
		},
	})
	if err != nil {
		return 0, nil, err
	}
	started = true
	var wg sync.WaitGroup
	for k, out := range []*os.File{os.Stdout, os.Stderr} {
		wg.Go(func() {
			copyCapped(out, pipes[k][0], s.LogLimit)
			pipes[k][0].Close()
		})
	}
	go func() { wg.Wait(); close(done) }()
	return p.Pid, done, nil
}

// copyCapped copies src to dst until src ends, keeping at most limit
// bytes (0: all); past it what comes is read, counted and discarded, and
// a last line says how much.
func copyCapped(dst io.Writer, src io.Reader, limit int64) {
	if limit <= 0 {
		io.Copy(dst, src)
		return
	}
	kept, _ := io.Copy(dst, io.LimitReader(src, limit))
	dropped, _ := io.Copy(io.Discard, src)
	if kept == limit && dropped > 0 {
		fmt.Fprintf(dst, "\n[cinet: output cut at the log limit of %d bytes; %d more bytes were discarded]\n", limit, dropped)
	}
}

// tmpOpts are the mount options of a task's /tmp.
func tmpOpts(size int64) string {
	if size <= 0 {
		return "mode=1777"
	}
	return fmt.Sprintf("mode=1777,size=%d", size)
}

// closeOnExecFrom marks every descriptor from first up close-on-exec.
func closeOnExecFrom(first int) error {
	err := unix.CloseRange(uint(first), ^uint(0), unix.CLOSE_RANGE_CLOEXEC)
	if err == nil {
		return nil
	}
	if !errors.Is(err, unix.ENOSYS) && !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("close_range: %w", err)
	}
	// A kernel before 5.11: each open descriptor in turn.
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return err
	}
	for _, e := range entries {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd < first {
			continue
		}
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC); err != nil && !errors.Is(err, unix.EBADF) {
			return fmt.Errorf("marking descriptor %d close-on-exec: %w", fd, err)
		}
	}
	return nil
}

// CanIsolate reports why this host cannot run the local adapter's
// sandbox, or nil if it can; shim is the command that runs this program
// as a shim.
func CanIsolate(shim []string) error { return probeSandbox(shim, true) }

// probeSandbox checks that this host can build a sandbox: this process can
// create a task's cgroup and start init in new namespaces, where init can
// mount. shim is the command that runs this program as a shim.
func probeSandbox(shim []string, network bool) error {
	if os.Geteuid() != 0 {
		return errors.New("the local adapter's sandbox needs root (to run tasks as their own users, in namespaces and cgroups)")
	}
	g, _, err := newTaskGroup(fmt.Sprintf("probe-%d", os.Getpid()), limits{PIDs: 16})
	if err != nil {
		return err
	}
	defer g.remove()
	dir, err := os.MkdirTemp("", "cinet-probe-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	var out bytes.Buffer
	cmd := exec.Command(shim[0], append(shim[1:], dir)...)
	cmd.Env = []string{shimEnv + "=probe"}
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: sandboxCloneFlags(network)}
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("starting a process in new namespaces: %v %s", err, strings.TrimSpace(out.String()))
	}
	return nil
}

// sandboxProbe runs in the probe's namespaces: it mounts a tmpfs.
func sandboxProbe(dir string) int {
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		fmt.Println("making mounts private:", err)
		return 1
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=4k"); err != nil {
		fmt.Println("mounting a tmpfs:", err)
		return 1
	}
	return 0
}
