//go:build unix

package local

import (
	"os"
	"path/filepath"
	"strings"
	"time"
)

// A placement's directory — its work directories (and their disks), its
// logs and its run record — is kept for the retention after the broker
// released the placement, which it does once the placement is settled:
// until then its status, logs and usage stay readable, as the adapter
// contract says. Then it is removed, by the sweep that each Provision
// runs (at most once per tenth of the retention, and at least once a
// minute when placements keep coming).

// DefaultRetention is how long a released placement's directory is kept.
const DefaultRetention = 7 * 24 * time.Hour

const releasedFile = "released" // its modification time is when Release was first called

// markReleased records, once, that the broker released the placement.
func markReleased(dir string) error {
	f, err := os.OpenFile(filepath.Join(dir, releasedFile), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if os.IsExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	return f.Close()
}

// retention is the configured retention, or the default.
func (l *Local) retention() time.Duration {
	if r := l.cfg.Retention.Std(); r > 0 {
		return r
	}
	return DefaultRetention
}

// sweep removes the directories of placements released more than the
// retention ago whose shim has ended; it returns how many it removed.
func (l *Local) sweep(now time.Time) int {
	l.sweepMu.Lock()
	defer l.sweepMu.Unlock()
	every := min(l.retention()/10, time.Minute)
	if now.Sub(l.swept) < every {
		return 0
	}
	l.swept = now
	entries, err := os.ReadDir(l.cfg.Workdir)
	if err != nil {
		return 0
	}
	removed := 0
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		dir := filepath.Join(l.cfg.Workdir, e.Name())
		fi, err := os.Stat(filepath.Join(dir, releasedFile))
		if err != nil || now.Sub(fi.ModTime()) < l.retention() || alive(dir) {
			continue
		}
		if unmountWorkDisks(dir) != nil {
			continue // a disk still mounted: next time
		}
		if os.RemoveAll(dir) == nil {
			removed++
		}
	}
	return removed
}
