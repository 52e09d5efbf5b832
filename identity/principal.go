package identity

import (
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/mr-tron/base58"
	tnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
)

// A PrincipalID names a principal — broker, provider, tenant or regulator —
// by its Ed25519 public key. Its text form is a W3C did:key:
//
//	did:key:z6Mk…  =  "did:key:" "z" base58btc(0xed 0x01 || public key)
//
// The zero PrincipalID is not a valid ID; IsZero reports it.
type PrincipalID struct {
	key [ed25519.PublicKeySize]byte
}

const (
	didKeyPrefix = "did:key:z"
	// multicodec ed25519-pub (0xed) as an unsigned varint.
	multicodecEd25519Pub0 = 0xed
	multicodecEd25519Pub1 = 0x01
	// principalIDLen is the length of every did:key text form for an
	// Ed25519 key.
	principalIDLen = 56
)

// PrincipalIDFromPublicKey returns the ID of an Ed25519 public key.
func PrincipalIDFromPublicKey(pub ed25519.PublicKey) (PrincipalID, error) {
	var id PrincipalID
	if len(pub) != ed25519.PublicKeySize {
		return id, fmt.Errorf("identity: public key is %d bytes, want %d", len(pub), ed25519.PublicKeySize)
	}
	copy(id.key[:], pub)
	return id, nil
}

// ParsePrincipalID parses the did:key text form. Only the canonical form is
// accepted, so String(ParsePrincipalID(s)) == s for every accepted s.
func ParsePrincipalID(s string) (PrincipalID, error) {
	var id PrincipalID
	if !strings.HasPrefix(s, didKeyPrefix) {
		return id, fmt.Errorf("identity: principal ID %q: want did:key:z6Mk…", truncate(s))
	}
	if len(s) != principalIDLen {
		return id, fmt.Errorf("identity: principal ID %q: is %d characters, want %d", truncate(s), len(s), principalIDLen)
	}
	raw, err := base58.Decode(s[len(didKeyPrefix):])
	if err != nil {
		return id, fmt.Errorf("identity: principal ID %q: not base58btc", truncate(s))
	}
	if len(raw) != 2+ed25519.PublicKeySize || raw[0] != multicodecEd25519Pub0 || raw[1] != multicodecEd25519Pub1 {
		return id, fmt.Errorf("identity: principal ID %q: not an Ed25519 did:key", truncate(s))
	}
	copy(id.key[:], raw[2:])
	if id.String() != s {
		return PrincipalID{}, fmt.Errorf("identity: principal ID %q: not in canonical form", truncate(s))
	}
	return id, nil
}

// MustParsePrincipalID is ParsePrincipalID for IDs known to be valid, such as
// constants in tests. It panics on error.
func MustParsePrincipalID(s string) PrincipalID {
	id, err := ParsePrincipalID(s)
	if err != nil {
		panic(err)
	}
	return id
}

// String returns the did:key text form, or "" for the zero ID.
func (id PrincipalID) String() string {
	if id.IsZero() {
		return ""
	}
	var raw [2 + ed25519.PublicKeySize]byte
	raw[0], raw[1] = multicodecEd25519Pub0, multicodecEd25519Pub1
	copy(raw[2:], id.key[:])
	return didKeyPrefix + base58.Encode(raw[:])
}

// IsZero reports whether id is the zero, invalid ID.
func (id PrincipalID) IsZero() bool { return id.key == [ed25519.PublicKeySize]byte{} }

// PublicKey returns the Ed25519 public key the ID names.
func (id PrincipalID) PublicKey() ed25519.PublicKey {
	pub := make(ed25519.PublicKey, ed25519.PublicKeySize)
	copy(pub, id.key[:])
	return pub
}

// Verify reports whether sig is id's Ed25519 signature of msg.
func (id PrincipalID) Verify(msg, sig []byte) bool {
	return !id.IsZero() && len(sig) == ed25519.SignatureSize && ed25519.Verify(id.key[:], msg, sig)
}

// MarshalText implements encoding.TextMarshaler.
func (id PrincipalID) MarshalText() ([]byte, error) {
	if id.IsZero() {
		return nil, fmt.Errorf("identity: cannot encode the zero principal ID")
	}
	return []byte(id.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (id *PrincipalID) UnmarshalText(b []byte) error {
	parsed, err := ParsePrincipalID(string(b))
	if err != nil {
		return err
	}
	*id = parsed
	return nil
}

// VerifierKey returns the C2SP signed-note verifier key (vkey) of the same
// key under the given key name, as used to verify audit log checkpoints.
func (id PrincipalID) VerifierKey(name string) (string, error) {
	vkey, err := note.NewEd25519VerifierKey(name, id.key[:])
	if err != nil {
		return "", fmt.Errorf("identity: %w", err)
	}
	if _, err := note.NewVerifier(vkey); err != nil {
		return "", fmt.Errorf("identity: invalid verifier key name %q: names must be non-empty, without spaces or '+'", name)
	}
	return vkey, nil
}

// NoteSigner returns a C2SP signed-note signer for the key under the given
// key name; its verifier key is k.ID().VerifierKey(name).
func (k *Key) NoteSigner(name string) (note.Signer, error) {
	vkey, err := k.id.VerifierKey(name)
	if err != nil {
		return nil, err
	}
	// A vkey is "name+hash+base64(alg||pub)"; the skey shares name and hash
	// and carries the seed instead of the public key. (The base64 may hold
	// '+' too; the name may not, and the hash is hex.)
	hash, _, _ := strings.Cut(strings.TrimPrefix(vkey, name+"+"), "+")
	seed := append([]byte{0x01}, k.priv.Seed()...)
	skey := "PRIVATE+KEY+" + name + "+" + hash + "+" + base64.StdEncoding.EncodeToString(seed)
	return note.NewSigner(skey)
}

// CosignatureSigner returns a C2SP tlog-cosignature (cosignature/v1)
// signer for the key under the given name: a witness's, which signs the
// checkpoints of other logs it has checked.
func (k *Key) CosignatureSigner(name string) (note.Signer, error) {
	s, err := k.NoteSigner(name)
	if err != nil {
		return nil, err
	}
	vkey, _ := k.id.VerifierKey(name)
	hash, _, _ := strings.Cut(strings.TrimPrefix(vkey, name+"+"), "+")
	seed := append([]byte{0x01}, k.priv.Seed()...)
	cs, err := tnote.NewSignerForCosignatureV1("PRIVATE+KEY+" + s.Name() + "+" + hash + "+" + base64.StdEncoding.EncodeToString(seed))
	if err != nil {
		return nil, fmt.Errorf("identity: cosignature signer: %w", err)
	}
	return cs, nil
}

// CosignatureVerifier returns the verifier of the cosignatures
// CosignatureSigner(name) makes with this principal's key.
func (id PrincipalID) CosignatureVerifier(name string) (note.Verifier, error) {
	vkey, err := id.VerifierKey(name)
	if err != nil {
		return nil, err
	}
	v, err := tnote.NewVerifierForCosignatureV1(vkey)
	if err != nil {
		return nil, fmt.Errorf("identity: cosignature verifier: %w", err)
	}
	return v, nil
}

// truncate bounds untrusted input echoed in error messages.
func truncate(s string) string {
	const max = 80
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}
