//go:build unix

// Package nodeagent is what every adapter runs on a node of a placement:
// one task as a process group of its own — its environment (the node
// contract, spec/jobs.md §5), its signals, its stop with a grace, its
// metering by wait4 — and the gang rule that tells, from what each node
// recorded of each task, how the placement stands: tasks run in order on
// every node, and the first task to fail stops them all. The local
// adapter's unsandboxed tasks, the Slurm node wrapper and the Terraform
// node agent use it; the local sandbox runs the same contract inside its
// own init.
package nodeagent

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/cinet/cinet/adapters"
	"github.com/cinet/cinet/descriptor"
)

// Env is the environment of task t of placement p on a node whose work
// directory is work: the node contract (adapters.NodeEnv gives nodeEnv)
// and the task's own variables, which come last and so win.
func Env(p *adapters.Placement, t descriptor.Task, work string, nodeEnv []string) []string {
	env := append([]string{
		"LANG=C.UTF-8", "CINET_JOB=" + p.Job, "CINET_PLACEMENT=" + p.ID, "CINET_TASK=" + t.Name,
		"PATH=" + os.Getenv("PATH"), "HOME=" + work,
	}, nodeEnv...)
	for k, v := range t.Env {
		env = append(env, k+"="+v)
	}
	return env
}

// Argv is the task's command line: its command, then its arguments.
func Argv(t descriptor.Task) []string {
	return append(append([]string{}, t.Command...), t.Args...)
}

// An End is how a task's process ended and what it used.
type End struct {
	ExitCode   int    // -1 when a signal ended it
	Signal     string // the signal that ended it, if one did
	CPU        time.Duration
	PeakMemory int64  // bytes
	Error      string // why it could not be run or waited for

	signo syscall.Signal
}

// Failed reports whether the task did not exit 0.
func (e End) Failed() bool { return e.ExitCode != 0 || e.Signal != "" || e.Error != "" }

// Status is the exit status a shell gives the end: the code, or 128 plus
// the number of the signal that ended it.
func (e End) Status() int {
	if e.Signal != "" {
		return 128 + int(e.signo)
	}
	return e.ExitCode
}

// A Process is a task running as a process group of its own.
type Process struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// Start runs argv in directory dir (created if need be) with env, in a
// process group of its own, its output to stdout and stderr.
func Start(argv, env []string, dir string, stdout, stderr io.Writer) (*Process, error) {
	if len(argv) == 0 {
		return nil, errors.New("nodeagent: no command")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env, cmd.Dir, cmd.Stdout, cmd.Stderr = env, dir, stdout, stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &Process{cmd: cmd, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	return p, nil
}

// PGID is the process group's ID: the task's process's.
func (p *Process) PGID() int { return p.cmd.Process.Pid }

// Done is closed when the task's process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Signal sends sig to the whole process group.
func (p *Process) Signal(sig syscall.Signal) error {
	if err := syscall.Kill(-p.PGID(), sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return err
	}
	return nil
}

// Stop ends the task as one: SIGTERM to its process group, then, if it
// has not exited within grace, SIGKILL. It returns when the process has
// exited.
func (p *Process) Stop(grace time.Duration) {
	if err := p.Signal(syscall.SIGTERM); err != nil {
		p.Signal(syscall.SIGKILL)
	}
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.done:
	case <-t.C:
		p.Signal(syscall.SIGKILL)
		<-p.done
	}
}

// Wait waits for the task's process to exit, kills whatever it left in
// its process group — nothing of a task outlives it — and says how it
// ended.
func (p *Process) Wait() End {
	<-p.done
	p.Signal(syscall.SIGKILL)
	ps := p.cmd.ProcessState
	if ps == nil {
		return End{ExitCode: -1, Error: fmt.Sprint(p.err)}
	}
	var e End
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		e.ExitCode, e.Signal, e.signo = -1, ws.Signal().String(), ws.Signal()
	} else {
		e.ExitCode = ps.ExitCode()
	}
	if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
		e.CPU = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		e.PeakMemory = ru.Maxrss << 10 // kilobytes on Linux
	}
	return e
}

// Supervise waits for the task to end. The first reason stop yields
// stops it (SIGTERM to its process group, SIGKILL after grace); each
// signal sigs yields is passed on to its process group, and stops it
// too ("signal"). It returns how the task ended and why it was stopped
// ("" when it ended by itself).
func (p *Process) Supervise(stop <-chan string, sigs <-chan os.Signal, grace time.Duration) (End, string) {
	var why string
	var kill <-chan time.Time
	stopping := false
	for {
		select {
		case <-p.done:
			return p.Wait(), why
		case s := <-sigs:
			if sig, ok := s.(syscall.Signal); ok {
				p.Signal(sig)
			}
			if why == "" {
				why = "signal"
			}
		case r := <-stop:
			if r == "" || stopping {
				continue
			}
			stopping = true
			if why == "" {
				why = r
			}
			if err := p.Signal(syscall.SIGTERM); err != nil {
				p.Signal(syscall.SIGKILL)
			}
			t := time.NewTimer(grace)
			defer t.Stop()
			kill = t.C
		case <-kill:
			p.Signal(syscall.SIGKILL)
			kill = nil
		}
	}
}
