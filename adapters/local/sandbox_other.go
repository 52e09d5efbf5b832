//go:build unix && !linux

package local

import (
	"errors"
	"os"
	"time"
)

var errNoSandbox = errors.New("the local adapter's sandbox needs Linux namespaces and cgroups; set isolation: none to run tasks unisolated")

type sandboxSpec struct {
	Root, Work   string
	Expose, Hide []string
	UID          uint32
	Network      bool
	Argv, Env    []string
	Dir          string
	Hostname     string
}

type sandboxEnd struct {
	ExitCode int
	Signal   string
	Error    string
	Node     int
}

type accounting struct {
	CPU        time.Duration
	PeakMemory int64
	OOMKills   uint64
}

type limits struct {
	CPUs   float64
	Memory int64
	PIDs   int64
}

type groupRef struct{}

type sandboxedTask struct{ ref groupRef }

const sandboxWork = "/work"

func startSandboxed(sandboxSpec, string, limits, *os.File, *os.File, *os.File, bool) (*sandboxedTask, error) {
	return nil, errNoSandbox
}
func (*sandboxedTask) terminate(time.Duration) {}
func (*sandboxedTask) exited() <-chan struct{} { return nil }
func (*sandboxedTask) pgids() []int            { return nil }
func (t *sandboxedTask) groups() []groupRef    { return []groupRef{t.ref} }
func (*sandboxedTask) netns() *os.File         { return nil }
func (*sandboxedTask) wait() (sandboxEnd, accounting, error) {
	return sandboxEnd{}, accounting{}, errNoSandbox
}
func probeSandbox([]string, bool) error           { return errNoSandbox }
func sandboxInit() int                            { return 1 }
func sandboxProbe(string) int                     { return 1 }
func lostAccounting(groupRef) (accounting, error) { return accounting{}, errNoSandbox }

func CanIsolate([]string) error { return errNoSandbox }

func enterNetns(*os.File) error { return errNoSandbox }
