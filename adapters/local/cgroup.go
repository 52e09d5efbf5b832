//go:build linux

package local

import (
	"errors"
	"fmt"
	"os"
	"path"
	"slices"
	"syscall"
	"time"

	"github.com/containerd/cgroups/v3"
	"github.com/containerd/cgroups/v3/cgroup1"
	"github.com/containerd/cgroups/v3/cgroup2"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// A task's control group holds the task and everything it starts: the
// kernel enforces its limits there and accounts for its CPU time and
// memory in files the task cannot write. Version 2 is used where the
// controllers are on the unified hierarchy; elsewhere (version 1, or the
// hybrid layout where the controllers stay on version 1) version 1.

// limits bound one task's group; zero is no limit.
type limits struct {
	CPUs   float64 // CPU time per wall second
	Memory int64   // bytes
	PIDs   int64   // processes and threads
}

// accounting is what a group measured.
type accounting struct {
	CPU        time.Duration
	PeakMemory int64
	OOMKills   uint64
}

// A groupRef finds a task's group again, from another process (the
// adapter reads the accounting of a placement whose shim died).
type groupRef struct {
	V2 string            `json:"v2,omitempty"` // the group's path below the unified mount
	V1 map[string]string `json:"v1,omitempty"` // each controller's path below its mount
}

// A taskGroup is one task's control group.
type taskGroup interface {
	add(pid int) error
	account() (accounting, error)
	// kill kills every process in the group and returns once it is empty.
	kill() error
	// remove deletes the group; it must be empty.
	remove() error
}

const cgroupRoot = "/sys/fs/cgroup"

// v1Controllers are the version 1 controllers a task's group needs.
var v1Controllers = []cgroup1.Name{cgroup1.Memory, cgroup1.Cpu, cgroup1.Cpuacct, cgroup1.Pids, cgroup1.Freezer}

func v1Hierarchy() ([]cgroup1.Subsystem, error) {
	return []cgroup1.Subsystem{
		cgroup1.NewMemory(cgroupRoot), cgroup1.NewCpu(cgroupRoot), cgroup1.NewCpuacct(cgroupRoot),
		cgroup1.NewPids(cgroupRoot), cgroup1.NewFreezer(cgroupRoot),
	}, nil
}

// newTaskGroup creates the group name (a single path element) below the
// calling process's own groups, under "cinet", with the limits.
func newTaskGroup(name string, l limits) (taskGroup, groupRef, error) {
	if cgroups.Mode() == cgroups.Unified {
		_, own, err := cgroups.ParseCgroupFileUnified("/proc/self/cgroup")
		if err != nil {
			return nil, groupRef{}, fmt.Errorf("local: reading this process's cgroup: %w", err)
		}
		group := path.Join("/", own, "cinet", name)
		res := &cgroup2.Resources{Pids: &cgroup2.Pids{Max: l.PIDs}}
		if l.Memory > 0 {
			res.Memory = &cgroup2.Memory{Max: &l.Memory}
		}
		if l.CPUs > 0 {
			quota, period := int64(l.CPUs*100000), uint64(100000)
			res.CPU = &cgroup2.CPU{Max: cgroup2.NewCPUMax(&quota, &period)}
		}
		m, err := cgroup2.NewManager(cgroupRoot, group, res)
		if err != nil {
			return nil, groupRef{}, fmt.Errorf("local: creating cgroup %s (the broker's cgroup must be delegated to it, with the cpu, memory and pids controllers): %w", group, err)
		}
		return v2Group{m}, groupRef{V2: group}, nil
	}
	nested := cgroup1.NestedPath(path.Join("cinet", name))
	ref := groupRef{V1: map[string]string{}}
	for _, c := range v1Controllers {
		p, err := nested(c)
		if err != nil {
			return nil, groupRef{}, fmt.Errorf("local: the %s cgroup controller: %w", c, err)
		}
		ref.V1[string(c)] = p
	}
	res := &specs.LinuxResources{}
	if l.Memory > 0 {
		res.Memory = &specs.LinuxMemory{Limit: &l.Memory}
	}
	if l.CPUs > 0 {
		quota, period := int64(l.CPUs*100000), uint64(100000)
		res.CPU = &specs.LinuxCPU{Quota: &quota, Period: &period}
	}
	if l.PIDs > 0 {
		res.Pids = &specs.LinuxPids{Limit: &l.PIDs}
	}
	cg, err := cgroup1.New(ref.v1Path, res, cgroup1.WithHierarchy(v1Hierarchy))
	if err != nil {
		return nil, groupRef{}, fmt.Errorf("local: creating cgroup %s: %w", name, err)
	}
	g := v1Group{cg}
	if err := g.complete(); err != nil {
		cg.Delete()
		return nil, groupRef{}, err
	}
	return g, ref, nil
}

// loadTaskGroup opens a group newTaskGroup made.
func loadTaskGroup(ref groupRef) (taskGroup, error) {
	if ref.V2 != "" {
		m, err := cgroup2.Load(ref.V2, cgroup2.WithMountpoint(cgroupRoot))
		if err != nil {
			return nil, err
		}
		return v2Group{m}, nil
	}
	if len(ref.V1) == 0 {
		return nil, errors.New("local: no cgroup recorded")
	}
	cg, err := cgroup1.Load(ref.v1Path, cgroup1.WithHierarchy(v1Hierarchy))
	if err != nil {
		return nil, err
	}
	return v1Group{cg}, nil
}

func (r groupRef) v1Path(c cgroup1.Name) (string, error) {
	p, ok := r.V1[string(c)]
	if !ok {
		return "", cgroup1.ErrControllerNotActive
	}
	return p, nil
}

type v1Group struct{ cg cgroup1.Cgroup }

// complete checks that every controller a task needs took the group: the
// library leaves out the controllers a host lacks.
func (g v1Group) complete() error {
	var have []cgroup1.Name
	for _, s := range g.cg.Subsystems() {
		have = append(have, s.Name())
	}
	for _, c := range v1Controllers {
		if !slices.Contains(have, c) {
			return fmt.Errorf("local: the %s cgroup controller is not mounted under %s", c, cgroupRoot)
		}
	}
	return nil
}

func (g v1Group) add(pid int) error { return g.cg.AddProc(uint64(pid)) }

func (g v1Group) account() (accounting, error) {
	m, err := g.cg.Stat(cgroup1.IgnoreNotExist)
	if err != nil {
		return accounting{}, err
	}
	var a accounting
	if m.CPU != nil && m.CPU.Usage != nil {
		a.CPU = time.Duration(m.CPU.Usage.Total)
	}
	if m.Memory != nil && m.Memory.Usage != nil {
		a.PeakMemory = int64(m.Memory.Usage.Max)
	}
	if m.MemoryOomControl != nil {
		a.OOMKills = m.MemoryOomControl.OomKill
	}
	return a, nil
}

// kill freezes the group so that nothing in it can fork, kills every
// process, and thaws it so that the kills are delivered.
func (g v1Group) kill() error {
	for range 100 {
		procs, err := g.cg.Processes(cgroup1.Freezer, true)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil
			}
			return err
		}
		if len(procs) == 0 {
			return nil
		}
		if err := g.cg.Freeze(); err != nil {
			return err
		}
		for _, p := range procs {
			syscall.Kill(p.Pid, syscall.SIGKILL)
		}
		if err := g.cg.Thaw(); err != nil {
			return err
		}
		time.Sleep(time.Millisecond)
	}
	return errors.New("local: processes remain in the task's cgroup after SIGKILL")
}

func (g v1Group) remove() error { return g.cg.Delete() }

type v2Group struct{ m *cgroup2.Manager }

func (g v2Group) add(pid int) error { return g.m.AddProc(uint64(pid)) }

func (g v2Group) account() (accounting, error) {
	m, err := g.m.Stat()
	if err != nil {
		return accounting{}, err
	}
	var a accounting
	if m.CPU != nil {
		a.CPU = time.Duration(m.CPU.UsageUsec) * time.Microsecond
	}
	if m.Memory != nil {
		a.PeakMemory = int64(m.Memory.MaxUsage)
	}
	if m.MemoryEvents != nil {
		a.OOMKills = m.MemoryEvents.OomKill
	}
	return a, nil
}

func (g v2Group) kill() error {
	if err := g.m.Kill(); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

func (g v2Group) remove() error { return g.m.Delete() }

// lostAccounting kills what is left in the group of a task whose shim
// died, reads what the group measured, and removes it.
func lostAccounting(ref groupRef) (accounting, error) {
	g, err := loadTaskGroup(ref)
	if err != nil {
		return accounting{}, err
	}
	if err := g.kill(); err != nil {
		return accounting{}, err
	}
	a, err := g.account()
	if err != nil {
		return a, err
	}
	return a, g.remove()
}
