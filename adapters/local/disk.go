//go:build linux

package local

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Every sandboxed node's work directory is a file system of its own, of
// the size of the class's disk (or the adapter's defaultDisk): an
// ext4 image in the placement's directory (disk/work-K.img), made sparse,
// formatted with the job's user as the owner of its root, and mounted on
// the node's work directory through a loop device while the placement
// runs. A task then cannot write more than its class's disk — the kernel
// answers ENOSPC — and /proc/self/mountinfo shows /work as the root of
// that file system, not as a directory of the host's. The image stays
// with the placement's directory when the placement ends; only the mount
// goes.

const diskDir = "disk"

// minDisk is the smallest image mkfs.ext4 makes reliably; a class of less
// gets this much.
const minDisk = 16 << 20

// mountWorkDisk makes the image for the work directory work and mounts it
// there, owned by uid. What the work directory already holds (staged
// before the placement started) is copied onto the disk first.
func mountWorkDisk(dir, work string, size int64, uid uint32) error {
	if err := os.MkdirAll(filepath.Join(dir, diskDir), 0o700); err != nil {
		return err
	}
	img := filepath.Join(dir, diskDir, filepath.Base(work)+".img")
	f, err := os.OpenFile(img, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("the work disk's image: %w", err)
	}
	err = f.Truncate(max(size, minDisk))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("the work disk's image: %w", err)
	}
	// No reserved blocks (the class's disk is the job's), and the inode
	// tables and journal initialized lazily, so that making it costs
	// little whatever its size.
	mkfs := exec.Command("mkfs.ext4", "-q", "-F", "-m", "0",
		"-E", fmt.Sprintf("root_owner=%d:%d,lazy_itable_init=1,lazy_journal_init=1", uid, uid), img)
	if out, err := mkfs.CombinedOutput(); err != nil {
		return fmt.Errorf("formatting the work disk: %v: %s", err, strings.TrimSpace(string(out)))
	}
	// mount(8) attaches the loop device, and detaches it at unmount.
	mount := func(at string) error {
		if out, err := exec.Command("mount", "-o", "loop,nosuid,nodev,noatime", img, at).CombinedOutput(); err != nil {
			return fmt.Errorf("mounting the work disk: %v: %s", err, strings.TrimSpace(string(out)))
		}
		return nil
	}
	if entries, err := os.ReadDir(work); err != nil {
		return err
	} else if len(entries) > 0 {
		staging := filepath.Join(dir, diskDir, filepath.Base(work)+".staging")
		if err := os.Mkdir(staging, 0o700); err != nil {
			return err
		}
		err := mount(staging)
		if err == nil {
			// -a keeps modes and times; the owner is made the job's by
			// the caller for the root, and kept for what was staged.
			if out, cerr := exec.Command("cp", "-a", work+"/.", staging+"/").CombinedOutput(); cerr != nil {
				err = fmt.Errorf("copying what was staged in the work directory: %v: %s", cerr, strings.TrimSpace(string(out)))
			}
			if uerr := unix.Unmount(staging, 0); err == nil && uerr != nil {
				err = fmt.Errorf("unmounting the staged work disk: %w", uerr)
			}
		}
		os.Remove(staging)
		if err != nil {
			return err
		}
	}
	return mount(work)
}

// unmountWorkDisks unmounts whatever work disks of the placement at dir
// are mounted: it looks at the work directories themselves (work,
// work-1, …), so that a disk whose image or record was removed from under
// a running placement is unmounted all the same. The images stay.
func unmountWorkDisks(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	var errs []error
	for _, e := range entries {
		if name := e.Name(); name != workDir && !strings.HasPrefix(name, workDir+"-") {
			continue
		}
		work := filepath.Join(dir, e.Name())
		if err := unix.Unmount(work, 0); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			// Something still holds it (a process the kernel is taking
			// down): detach it now, to go when they do.
			if err := unix.Unmount(work, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
				errs = append(errs, fmt.Errorf("unmounting %s: %w", work, err))
			}
		}
	}
	return errors.Join(errs...)
}
