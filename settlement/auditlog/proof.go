package auditlog

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/transparency-dev/formats/proof"
	mproof "github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/tlog"
)

// Receipt builds a C2SP tlog-proof for entry index in the tree c signs.
func Receipt(c *Checkpoint, index int64, r tlog.HashReader) ([]byte, error) {
	p, err := ProveInclusion(index, c.Size, r)
	if err != nil {
		return nil, err
	}
	tp := proof.TLogProof{Index: uint64(index), Checkpoint: c.Note}
	for _, h := range p {
		tp.Hashes = append(tp.Hashes, [sha256.Size]byte(h))
	}
	return tp.Marshal(), nil
}

// ErrBadProof wraps every reason a receipt does not verify.
var ErrBadProof = errors.New("auditlog: proof does not verify")

// VerifyReceipt checks, offline, that entry is in the log vkey signs:
// the receipt parses and is in canonical form, its checkpoint verifies
// under vkey, and its inclusion proof leads from the entry's leaf hash to
// the checkpoint's root. If trusted is not nil, the receipt's checkpoint
// must be that checkpoint. It returns the verified checkpoint and index.
func VerifyReceipt(receipt, entry []byte, vkey string, trusted []byte) (*Checkpoint, int64, error) {
	var tp proof.TLogProof
	if err := tp.Unmarshal(receipt); err != nil {
		return nil, 0, fmt.Errorf("%w: %v", ErrBadProof, err)
	}
	if !bytes.Equal(tp.Marshal(), receipt) {
		return nil, 0, fmt.Errorf("%w: not in canonical tlog-proof form", ErrBadProof)
	}
	c, err := OpenCheckpoint(tp.Checkpoint, vkey)
	if err != nil {
		return nil, 0, err
	}
	if trusted != nil && !bytes.Equal(trusted, tp.Checkpoint) {
		return nil, 0, fmt.Errorf("%w: the receipt is for another checkpoint than the one given", ErrBadProof)
	}
	hashes := make([][]byte, len(tp.Hashes))
	for i := range tp.Hashes {
		hashes[i] = tp.Hashes[i][:]
	}
	leaf := rfc6962.DefaultHasher.HashLeaf(entry)
	if err := mproof.VerifyInclusion(rfc6962.DefaultHasher, tp.Index, uint64(c.Size), leaf, hashes, c.Hash[:]); err != nil {
		return nil, 0, fmt.Errorf("%w: %v", ErrBadProof, err)
	}
	return c, int64(tp.Index), nil
}

// VerifyConsistency checks that the tree of old is a prefix of the tree of
// n, given the consistency proof.
func VerifyConsistency(old, n *Checkpoint, p []tlog.Hash) error {
	if old.Origin != n.Origin {
		return fmt.Errorf("%w: checkpoints of different logs (%q, %q)", ErrBadProof, old.Origin, n.Origin)
	}
	if old.Size > n.Size {
		return fmt.Errorf("%w: the log went backwards from %d to %d entries", ErrBadProof, old.Size, n.Size)
	}
	hashes := make([][]byte, len(p))
	for i := range p {
		hashes[i] = p[i][:]
	}
	if err := mproof.VerifyConsistency(rfc6962.DefaultHasher, uint64(old.Size), uint64(n.Size), hashes, old.Hash[:], n.Hash[:]); err != nil {
		return fmt.Errorf("%w: %v", ErrBadProof, err)
	}
	return nil
}
