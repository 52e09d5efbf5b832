package auditlog

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/transparency-dev/formats/log"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// A Checkpoint is a signed tree head in C2SP tlog-checkpoint form: the
// origin line, the size, the base64 root hash, signed as a C2SP signed
// note by the broker's Ed25519 key under the origin as key name.
type Checkpoint struct {
	Origin string
	Size   int64
	Hash   tlog.Hash
	Note   []byte // the signed note, verbatim
}

// Sign issues a checkpoint.
func Sign(s note.Signer, origin string, size int64, root tlog.Hash) (*Checkpoint, error) {
	if s.Name() != origin {
		return nil, fmt.Errorf("auditlog: the signing key is named %q, the log's origin is %q", s.Name(), origin)
	}
	body := log.Checkpoint{Origin: origin, Size: uint64(size), Hash: root[:]}.Marshal()
	signed, err := note.Sign(&note.Note{Text: string(body)}, s)
	if err != nil {
		return nil, fmt.Errorf("auditlog: signing checkpoint: %w", err)
	}
	return &Checkpoint{Origin: origin, Size: size, Hash: root, Note: signed}, nil
}

// ErrBadCheckpoint wraps every reason a checkpoint does not verify.
var ErrBadCheckpoint = errors.New("auditlog: checkpoint does not verify")

// OpenCheckpoint verifies a checkpoint note against a verifier key (a C2SP
// vkey) and returns it. The origin is the key's name.
func OpenCheckpoint(signed []byte, vkey string) (*Checkpoint, error) {
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, fmt.Errorf("auditlog: verifier key: %w", err)
	}
	c, _, _, err := log.ParseCheckpoint(signed, v.Name(), v)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadCheckpoint, err)
	}
	if len(c.Hash) != tlog.HashSize {
		return nil, fmt.Errorf("%w: root hash is %d bytes", ErrBadCheckpoint, len(c.Hash))
	}
	// The note must be exactly the canonical form: any other spelling of
	// the same checkpoint — its body or a signature's base64 — is refused.
	again := log.Checkpoint{Origin: c.Origin, Size: c.Size, Hash: c.Hash}.Marshal()
	n, err := note.Open(signed, note.VerifierList(v))
	if err != nil || n.Text != string(again) || !canonicalSignatures(signed) {
		return nil, fmt.Errorf("%w: not in canonical form", ErrBadCheckpoint)
	}
	out := &Checkpoint{Origin: c.Origin, Size: int64(c.Size), Note: bytes.Clone(signed)}
	copy(out.Hash[:], c.Hash)
	return out, nil
}

// canonicalSignatures reports whether every signature line of a note is
// "— <name> <base64>" with the base64 in strict, canonical form, so that
// no two spellings of one signature both verify.
func canonicalSignatures(signed []byte) bool {
	i := bytes.LastIndex(signed, []byte("\n\n"))
	if i < 0 {
		return false
	}
	for _, line := range strings.Split(strings.TrimSuffix(string(signed[i+2:]), "\n"), "\n") {
		rest, ok := strings.CutPrefix(line, "— ")
		if !ok {
			return false
		}
		_, b64, ok := strings.Cut(rest, " ")
		raw, err := base64.StdEncoding.Strict().DecodeString(b64)
		if !ok || err != nil || base64.StdEncoding.EncodeToString(raw) != b64 {
			return false
		}
	}
	return true
}
