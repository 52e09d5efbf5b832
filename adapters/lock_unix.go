//go:build unix

package adapters

import (
	"os"
	"syscall"
)

// LockHeld reports whether a process holds a flock on the file at path
// (a supervisor that lives holds its placement's lock).
func LockHeld(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB); err != nil {
		return true
	}
	syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	return false
}
