//go:build unix

package local

import (
	"context"
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"

	"github.com/cinet/cinet/descriptor"
)

// goArch names this machine's processors as the description language does.
var goArch = map[string]string{"amd64": "x86_64", "arm64": "arm64", "riscv64": "riscv64"}

// CheckOffer reports why this machine cannot provide the class an offer
// of the provider's sells, or nil if it can: one instance must fit the
// adapter's CPUs and memory (the configured ones, or the machine's) and
// the disk of the file system that holds the work directories; its
// processors must be this machine's; and the local adapter gives tasks no
// accelerators. A task of a class larger than the machine would run with
// no effective limit. How many instances an offer sells at once is the
// provider's to choose, as clouds overcommit: each runs within its own
// class's limits.
func (l *Local) CheckOffer(ctx context.Context, o *descriptor.Offer) error {
	c, err := l.Capacity(ctx)
	if err != nil {
		return err
	}
	var fs unix.Statfs_t
	if err := unix.Statfs(l.cfg.Workdir, &fs); err != nil {
		return fmt.Errorf("local: the work directory's file system: %w", err)
	}
	disk := int64(fs.Blocks) * int64(fs.Bsize)
	class := o.Class
	if arch, ok := goArch[runtime.GOARCH]; ok && class.CPU.Arch != "" && class.CPU.Arch != arch {
		return fmt.Errorf("local: the class's processors are %s; this machine's are %s", class.CPU.Arch, arch)
	}
	if len(class.Accelerators) > 0 {
		return fmt.Errorf("local: the class has %d %s; the local adapter gives tasks no accelerators", class.Accelerators[0].Count, class.Accelerators[0].Model)
	}
	for _, r := range []struct {
		what      string
		each, has int64
		show      func(int64) string
	}{
		{"CPUs", int64(class.CPU.Count), int64(c.CPUs), func(v int64) string { return fmt.Sprint(v) }},
		{"of memory", int64(class.Memory), c.Memory, sizeOf},
		{"of disk", int64(class.Disk), disk, sizeOf},
	} {
		if r.each > r.has {
			return fmt.Errorf("local: one instance of the class needs %s %s; this machine has %s", r.show(r.each), r.what, r.show(r.has))
		}
	}
	return nil
}

// sizeOf shows a size as a quantity, what the machine has rounded down to
// whole GiB where it holds one.
func sizeOf(v int64) string {
	if v >= 1<<30 {
		v &^= 1<<30 - 1
	}
	return descriptor.Quantity(v).String()
}
