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
)

// shimEnv is set in the shim's environment, so that a program that embeds
// the shim (a test binary) can tell it is to run one.
const shimEnv = "CINET_LOCAL_SHIM"

// IsShim reports whether this process was started as a shim.
func IsShim() bool { return os.Getenv(shimEnv) == "1" }

// Shim supervises the placement in dir: it runs the tasks in order, each
// in its own process group with its output in logs/, records each start
// and end in run.json, enforces the timeout, stops the running task when
// it receives SIGTERM or SIGINT, and returns the process's exit status.
// It holds dir/lock while it lives. A second shim for the same directory
// exits at once.
func Shim(dir string) int {
	if err := shim(dir); err != nil {
		fmt.Fprintln(os.Stderr, "cinet local shim:", err)
		return 1
	}
	return 0
}

func shim(dir string) error {
	lock, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return err
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return nil // another shim runs this placement
	}
	// The lock is held until this process exits; lock stays open.
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
	r = &run{ShimPID: os.Getpid()}
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
	base := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + filepath.Join(dir, workDir),
		"LANG=C.UTF-8",
		"CINET_JOB=" + p.Job,
		"CINET_PLACEMENT=" + p.ID,
	}
	for _, t := range p.Tasks {
		stdout, err := os.OpenFile(filepath.Join(dir, logsDir, t.Name+".stdout"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return err
		}
		stderr, err := os.OpenFile(filepath.Join(dir, logsDir, t.Name+".stderr"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return err
		}
		argv := append(append([]string{}, t.Command...), t.Args...)
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Dir = filepath.Join(dir, workDir, t.Workdir)
		os.MkdirAll(cmd.Dir, 0o755)
		cmd.Env = append(append([]string{}, base...), "CINET_TASK="+t.Name)
		for k, v := range t.Env {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		cmd.Stdout, cmd.Stderr = stdout, stderr
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		tr := taskRun{}
		tr.Name, tr.Started = t.Name, time.Now().UTC()
		if err := cmd.Start(); err != nil {
			tr.End, tr.ExitCode = time.Now().UTC(), 127
			fmt.Fprintf(stderr, "cinet: cannot start %q: %v\n", argv[0], err)
			r.Tasks = append(r.Tasks, tr)
			r.Detail = fmt.Sprintf("task %s could not start: %v", t.Name, err)
			stdout.Close()
			stderr.Close()
			break
		}
		tr.PGID = cmd.Process.Pid
		r.Tasks = append(r.Tasks, tr)
		if err := save(); err != nil {
			syscall.Kill(-tr.PGID, syscall.SIGKILL)
			return err
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		var waitErr error
		select {
		case waitErr = <-done:
		case <-deadline:
			r.Tasks[len(r.Tasks)-1].TimedOut = true
			r.Detail = fmt.Sprintf("task %s ran past the placement's timeout of %s", t.Name, p.Timeout)
			waitErr = terminate(tr.PGID, done, s.Grace)
		case <-stop:
			r.Cancelled = true
			waitErr = terminate(tr.PGID, done, s.Grace)
		}
		// Whatever the task left behind in its group goes with it.
		syscall.Kill(-tr.PGID, syscall.SIGKILL)
		stdout.Close()
		stderr.Close()
		last := &r.Tasks[len(r.Tasks)-1]
		last.End = time.Now().UTC()
		if ps := cmd.ProcessState; ps != nil {
			last.ExitCode = ps.ExitCode()
			if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
				last.CPU = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
				last.PeakMemory = ru.Maxrss << 10 // kilobytes on Linux
			}
			if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				last.Signal = ws.Signal().String()
			}
		} else if waitErr != nil {
			last.ExitCode = -1
			r.Detail = waitErr.Error()
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

// terminate stops a task's process group: SIGTERM, then SIGKILL after the
// grace. It returns the task's wait error.
func terminate(pgid int, done <-chan error, grace time.Duration) error {
	if err := syscall.Kill(-pgid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return err
	}
	select {
	case err := <-done:
		return err
	case <-time.After(grace):
		syscall.Kill(-pgid, syscall.SIGKILL)
		return <-done
	}
}
