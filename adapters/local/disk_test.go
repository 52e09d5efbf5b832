//go:build linux

package local

import (
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkWorkDisk is what a node's work disk costs a placement of a
// 10 GiB class: the sparse image, mkfs.ext4, the mount, and the unmount
// at its end.
//
//	sudo go test ./adapters/local -run XXX -bench WorkDisk -benchtime 10x
func BenchmarkWorkDisk(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("mounting needs root")
	}
	for b.Loop() {
		dir := b.TempDir()
		work := filepath.Join(dir, workDir)
		if err := os.Mkdir(work, 0o755); err != nil {
			b.Fatal(err)
		}
		if err := mountWorkDisk(dir, work, 10<<30, 1000000); err != nil {
			b.Fatal(err)
		}
		if err := unmountWorkDisks(dir); err != nil {
			b.Fatal(err)
		}
	}
}
