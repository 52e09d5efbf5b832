package auditlog

import (
	"fmt"

	"golang.org/x/mod/sumdb/tlog"
)

// A StoredHash is a hash to keep at a stored-hash index (tlog.StoredHashIndex).
type StoredHash struct {
	Index int64
	Hash  tlog.Hash
}

// Append computes the hashes to store for entries appended to a log of
// size n. r reads hashes already stored; Append reads from it only hashes
// of entries before n.
func Append(n int64, entries [][]byte, r tlog.HashReader) ([]StoredHash, error) {
	pending := map[int64]tlog.Hash{}
	overlay := tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(indexes))
		var missing []int64
		for i, idx := range indexes {
			if h, ok := pending[idx]; ok {
				out[i] = h
			} else {
				missing = append(missing, idx)
			}
		}
		if len(missing) > 0 {
			got, err := r.ReadHashes(missing)
			if err != nil {
				return nil, err
			}
			if len(got) != len(missing) {
				return nil, fmt.Errorf("auditlog: hash store returned %d hashes for %d indexes", len(got), len(missing))
			}
			j := 0
			for i, idx := range indexes {
				if _, ok := pending[idx]; !ok {
					out[i] = got[j]
					j++
				}
			}
		}
		return out, nil
	})
	var out []StoredHash
	for i, e := range entries {
		hashes, err := tlog.StoredHashes(n+int64(i), e, overlay)
		if err != nil {
			return nil, fmt.Errorf("auditlog: hashing entry %d: %w", n+int64(i), err)
		}
		first := tlog.StoredHashIndex(0, n+int64(i))
		for j, h := range hashes {
			pending[first+int64(j)] = h
			out = append(out, StoredHash{first + int64(j), h})
		}
	}
	return out, nil
}

// LeafHash is the RFC 6962 hash of an entry: SHA-256(0x00 ‖ entry).
func LeafHash(entry []byte) tlog.Hash { return tlog.RecordHash(entry) }

// TreeHash returns the root hash of the log's first n entries.
func TreeHash(n int64, r tlog.HashReader) (tlog.Hash, error) {
	return tlog.TreeHash(n, r)
}

// ProveInclusion returns the RFC 6962 inclusion proof of entry i in the
// tree of size n.
func ProveInclusion(i, n int64, r tlog.HashReader) ([]tlog.Hash, error) {
	if i < 0 || i >= n {
		return nil, fmt.Errorf("auditlog: entry %d is not in a tree of %d entries", i, n)
	}
	p, err := tlog.ProveRecord(n, i, r)
	if err != nil {
		return nil, fmt.Errorf("auditlog: proving entry %d in %d: %w", i, n, err)
	}
	return p, nil
}

// ProveConsistency returns the RFC 6962 consistency proof that the tree of
// size old is a prefix of the tree of size n. Every tree extends the
// empty one, and a tree itself: those proofs are empty.
func ProveConsistency(old, n int64, r tlog.HashReader) ([]tlog.Hash, error) {
	if old < 0 || old > n {
		return nil, fmt.Errorf("auditlog: no consistency proof from %d to %d entries", old, n)
	}
	if old == 0 || old == n {
		return nil, nil
	}
	p, err := tlog.ProveTree(n, old, r)
	if err != nil {
		return nil, fmt.Errorf("auditlog: proving %d consistent with %d: %w", old, n, err)
	}
	return p, nil
}
