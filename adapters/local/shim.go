//go:build unix

package local

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

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
	if sb := s.Sandbox; sb != nil {
		uid, held, err := takeUID(filepath.Join(filepath.Dir(dir), uidsDir), sb.UIDs, s.Placement.ID)
		if err != nil {
			return err
		}
		defer held.Close()
		r.UID = uid
		if err := os.Chown(filepath.Join(dir, workDir), int(uid), int(uid)); err != nil {
			return err
		}
	}
	save := func() error {
		data, err := json.Marshal(r)
		if err != nil {
			return err
		}
		return writeAtomic(filepath.Join(dir, runFile), data)
	}
	if err := save(); err != nil {
		return err
	}

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	p := s.Placement
	var deadline <-chan time.Time
	if p.Timeout > 0 {
		deadline = time.After(p.Timeout)
	}
	beat := time.NewTicker(heartbeat)
	defer beat.Stop()
	for i, t := range p.Tasks {
		stdout, err := os.OpenFile(filepath.Join(dir, logsDir, t.Name+".stdout"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return err
		}
		stderr, err := os.OpenFile(filepath.Join(dir, logsDir, t.Name+".stderr"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return err
		}
		tr := taskRun{}
		tr.Name, tr.Started = t.Name, time.Now().UTC()
		rt, err := s.start(dir, r.UID, i, t, stdout, stderr)
		if err != nil {
			tr.End, tr.ExitCode = time.Now().UTC(), 127
			fmt.Fprintf(stderr, "cinet: cannot start task %s: %v\n", t.Name, err)
			r.Tasks = append(r.Tasks, tr)
			r.Detail = fmt.Sprintf("task %s could not start: %v", t.Name, err)
			stdout.Close()
			stderr.Close()
			break
		}
		tr.PGID, tr.Cgroup = rt.pgid(), rt.group()
		r.Tasks = append(r.Tasks, tr)
		if err := save(); err != nil {
			rt.terminate(0)
			rt.wait()
			return err
		}
		last := &r.Tasks[len(r.Tasks)-1]
	wait:
		for {
			select {
			case <-rt.exited():
				break wait
			case <-beat.C:
				r.Seen = time.Now().UTC()
				save()
			case <-deadline:
				last.TimedOut = true
				r.Detail = fmt.Sprintf("task %s ran past the placement's timeout of %s", t.Name, p.Timeout)
				rt.terminate(s.Grace)
				break wait
			case <-stop:
				r.Cancelled = true
				rt.terminate(s.Grace)
				break wait
			}
		}
		end, acct, err := rt.wait()
		stdout.Close()
		stderr.Close()
		last.End = time.Now().UTC()
		r.Seen = last.End
		last.ExitCode, last.Signal = end.ExitCode, end.Signal
		last.CPU, last.PeakMemory, last.PGID, last.Cgroup = acct.CPU, acct.PeakMemory, 0, nil
		switch {
		case err != nil:
			r.Detail = fmt.Sprintf("task %s: %v", t.Name, err)
		case end.Error != "":
			r.Detail = fmt.Sprintf("task %s: %s", t.Name, end.Error)
		case acct.OOMKills > 0:
			r.Detail = fmt.Sprintf("task %s was killed for using more memory than its limit of %s", t.Name, descriptor.Quantity(s.Limits.Memory))
		}
		if err := save(); err != nil {
			return err
		}
		if r.Cancelled || last.TimedOut || last.ExitCode != 0 {
			break
		}
	}
	r.Done = true
	return save()
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
	pgid() int        // the process group to kill, without a sandbox
	group() *groupRef // the cgroup, in a sandbox
}

// start starts task i of the placement.
func (s *spec) start(dir string, uid uint32, i int, t descriptor.Task, stdout, stderr *os.File) (runningTask, error) {
	p := s.Placement
	env := []string{
		"LANG=C.UTF-8", "CINET_JOB=" + p.Job, "CINET_PLACEMENT=" + p.ID, "CINET_TASK=" + t.Name,
	}
	argv := append(append([]string{}, t.Command...), t.Args...)
	sb := s.Sandbox
	// Without a sandbox the task sees the host: the broker's PATH, its
	// work directory where it lies. In one, the sandbox's own.
	if sb == nil {
		env = append(env, "PATH="+os.Getenv("PATH"), "HOME="+filepath.Join(dir, workDir))
	} else {
		env = append(env, "PATH=/usr/local/bin:/usr/bin:/bin", "HOME="+sandboxWork)
	}
	for k, v := range t.Env {
		env = append(env, k+"="+v)
	}
	if sb == nil {
		return startPlain(argv, env, filepath.Join(dir, workDir, t.Workdir), stdout, stderr)
	}
	root := filepath.Join(dir, rootDir)
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, err
	}
	ss := sandboxSpec{
		Root: root, Work: filepath.Join(dir, workDir), Expose: sb.Expose, Hide: sb.Hide, UID: uid,
		Network: !sb.HostNetwork, Argv: argv, Env: env, Dir: filepath.Join(sandboxWork, t.Workdir),
		Hostname: "cinet",
	}
	l := limits{CPUs: s.Limits.CPUs, Memory: s.Limits.Memory, PIDs: sb.PIDs}
	st, err := startSandboxed(ss, fmt.Sprintf("%s.%d", p.ID, i), l, stdout, stderr)
	if err != nil {
		return nil, err
	}
	return st, nil
}

// plainTask is a task run without isolation, in a process group of its
// own, measured by its rusage.
type plainTask struct {
	cmd  *exec.Cmd
	exit chan struct{}
	err  error
}

func startPlain(argv, env []string, wd string, stdout, stderr *os.File) (*plainTask, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = wd
	if err := os.MkdirAll(wd, 0o755); err != nil {
		return nil, err
	}
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	t := &plainTask{cmd: cmd, exit: make(chan struct{})}
	go func() { t.err = cmd.Wait(); close(t.exit) }()
	return t, nil
}

func (t *plainTask) exited() <-chan struct{} { return t.exit }
func (t *plainTask) pgid() int               { return t.cmd.Process.Pid }
func (t *plainTask) group() *groupRef        { return nil }

func (t *plainTask) terminate(grace time.Duration) {
	pgid := t.cmd.Process.Pid
	if err := syscall.Kill(-pgid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		syscall.Kill(-pgid, syscall.SIGKILL)
		return
	}
	select {
	case <-t.exit:
	case <-time.After(grace):
		syscall.Kill(-pgid, syscall.SIGKILL)
	}
}

func (t *plainTask) wait() (sandboxEnd, accounting, error) {
	<-t.exit
	// Whatever the task left behind in its group goes with it.
	syscall.Kill(-t.cmd.Process.Pid, syscall.SIGKILL)
	var e sandboxEnd
	var a accounting
	ps := t.cmd.ProcessState
	if ps == nil {
		return sandboxEnd{ExitCode: -1, Error: t.err.Error()}, a, nil
	}
	e.ExitCode = ps.ExitCode()
	if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
		a.CPU = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		a.PeakMemory = ru.Maxrss << 10 // kilobytes on Linux
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		e.Signal = ws.Signal().String()
	}
	return e, a, nil
}
