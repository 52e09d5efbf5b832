//go:build unix

package local

import (
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// A uidRange is the user IDs the adapter gives jobs: one per running
// placement, so that no job can signal, trace or read another's files.
type uidRange struct{ First, Count uint32 }

const defaultUIDs = "1000000-1065535"

func parseUIDRange(s string) (uidRange, error) {
	a, b, ok := strings.Cut(s, "-")
	first, err1 := strconv.ParseUint(a, 10, 32)
	last, err2 := strconv.ParseUint(b, 10, 32)
	if !ok || err1 != nil || err2 != nil || first == 0 || last < first || last >= 1<<32-1 {
		return uidRange{}, fmt.Errorf("uids %q: want FIRST-LAST, two user IDs above 0 with FIRST <= LAST", s)
	}
	return uidRange{uint32(first), uint32(last - first + 1)}, nil
}

// takeUID takes a free user ID of the range for a placement: it holds an
// exclusive lock on a file named after the uid, in dir, for as long as the
// returned file is open (the shim's life). The search starts at a place
// drawn from the placement ID, so that placements rarely contend.
func takeUID(dir string, r uidRange, placement string) (uint32, *os.File, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return 0, nil, err
	}
	h := fnv.New32a()
	h.Write([]byte(placement))
	start := h.Sum32() % r.Count
	for i := range r.Count {
		uid := r.First + (start+i)%r.Count
		f, err := os.OpenFile(filepath.Join(dir, strconv.FormatUint(uint64(uid), 10)), os.O_CREATE|os.O_RDWR, 0o600)
		if err != nil {
			return 0, nil, err
		}
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return uid, f, nil
		}
		f.Close()
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return 0, nil, err
		}
	}
	return 0, nil, fmt.Errorf("local: all %d user IDs from %d are taken by running placements", r.Count, r.First)
}
