//go:build linux

package local

import (
	"fmt"

	seccomp "github.com/elastic/go-seccomp-bpf"
	"golang.org/x/sys/unix"
)

// deniedSyscalls are the system calls a task may not make, each group
// with why (spec/jobs.md §8 lists the same). A task's uid owns nothing
// outside its work directory and holds no capability, so most of these
// would fail anyway; denying them outright takes the kernel code behind
// them out of a hostile task's reach, where a bug would be an escape.
var deniedSyscalls = []struct {
	why   string
	names []string
}{
	{"new namespaces: a user namespace gives a task root over the namespaces it then makes, and with it the kernel's whole namespaced surface",
		[]string{"unshare", "setns"}},
	{"kernel keyrings outlive the task and are shared by every process of its uid, which a later job may be given",
		[]string{"keyctl", "add_key", "request_key"}},
	{"io_uring runs I/O outside the system calls this filter sees, and has been a steady source of kernel bugs",
		[]string{"io_uring_setup", "io_uring_enter", "io_uring_register"}},
	{"eBPF programs and performance counters read and run code in the kernel",
		[]string{"bpf", "perf_event_open"}},
	{"another process's memory, even one of the task's own",
		[]string{"ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd"}},
	{"mounts change what the task's file system is made of",
		[]string{"mount", "umount2", "pivot_root", "chroot", "move_mount", "open_tree", "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr"}},
	{"the kernel itself: replacing it, loading modules, rebooting, swapping, accounting",
		[]string{"kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module", "reboot", "swapon", "swapoff", "acct"}},
	{"opening files by handle steps around path checks; userfaultfd stalls the kernel at will",
		[]string{"open_by_handle_at", "name_to_handle_at", "userfaultfd"}},
	{"the machine's clock and its kernel log are the host's",
		[]string{"settimeofday", "clock_settime", "clock_adjtime", "adjtimex", "syslog"}},
}

// cloneNewUser is CLONE_NEWUSER, refused in clone's flags.
const cloneNewUser = unix.CLONE_NEWUSER

// taskFilter is the seccomp filter every task runs under: everything not
// denied above is allowed. clone is allowed without CLONE_NEWUSER (and
// the other namespace flags, which need privileges a task lacks); clone3,
// whose flags sit in memory a filter cannot read, answers ENOSYS, so that
// the C library falls back to clone.
func taskFilter() seccomp.Filter {
	var groups []seccomp.SyscallGroup
	for _, g := range deniedSyscalls {
		groups = append(groups, seccomp.SyscallGroup{Names: g.names, Action: seccomp.ActionErrno})
	}
	groups = append(groups,
		seccomp.SyscallGroup{
			NamesWithCondtions: []seccomp.NameWithConditions{{
				Name:       "clone",
				Conditions: seccomp.ArgumentConditions{{Argument: 0, Operation: seccomp.BitsSet, Value: cloneNewUser}},
			}},
			Action: seccomp.ActionErrno,
		},
		seccomp.SyscallGroup{Names: []string{"clone3"}, Action: seccomp.ActionErrno | seccomp.Action(unix.ENOSYS)},
	)
	return seccomp.Filter{
		NoNewPrivs: true,
		Policy:     seccomp.Policy{DefaultAction: seccomp.ActionAllow, Syscalls: groups},
	}
}

// confineThread puts the calling OS thread, which the caller has locked,
// under the task filter with a fresh, empty session keyring: what it
// forks next inherits both. Only this thread is filtered, not the rest of
// the process.
func confineThread() error {
	// An anonymous session keyring of the task's own, so that it shares
	// none with init or the host's sessions.
	if _, _, errno := unix.Syscall(unix.SYS_KEYCTL, unix.KEYCTL_JOIN_SESSION_KEYRING, 0, 0); errno != 0 && errno != unix.ENOSYS {
		return fmt.Errorf("joining a new session keyring: %w", errno)
	}
	if err := seccomp.LoadFilter(taskFilter()); err != nil {
		return fmt.Errorf("loading the seccomp filter: %w", err)
	}
	return nil
}
