package identity

import (
	"bytes"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
)

// A Key is a principal's Ed25519 private key. The same key is the
// principal's did:key identity, its libp2p peer identity and, for brokers,
// the signer of its audit log checkpoints.
type Key struct {
	priv ed25519.PrivateKey
	id   PrincipalID
}

// GenerateKey returns a new key drawn from rand.
func GenerateKey(rand io.Reader) (*Key, error) {
	_, priv, err := ed25519.GenerateKey(rand)
	if err != nil {
		return nil, fmt.Errorf("identity: couldn't generate key: %w", err)
	}
	return NewKey(priv), nil
}

// NewKey wraps an existing Ed25519 private key.
func NewKey(priv ed25519.PrivateKey) *Key {
	if len(priv) != ed25519.PrivateKeySize {
		panic("identity: ed25519 private key of wrong length")
	}
	var id PrincipalID
	copy(id.key[:], priv[32:])
	return &Key{priv: priv, id: id}
}

// ID returns the principal ID of the key.
func (k *Key) ID() PrincipalID { return k.id }

// Sign signs msg with the key.
func (k *Key) Sign(msg []byte) []byte { return ed25519.Sign(k.priv, msg) }

// Ed25519 returns the underlying private key, for libraries that take one
// (libp2p host identity, C2SP note signing).
func (k *Key) Ed25519() ed25519.PrivateKey { return k.priv }

const pemType = "PRIVATE KEY"

// keyFileMaxSize bounds what LoadKeyFile reads; a PKCS#8 Ed25519 PEM file is
// about 120 bytes.
const keyFileMaxSize = 16 << 10

// WriteKeyFile writes k to path as a PKCS#8 PEM block, creating the file
// with mode 0600. It refuses to overwrite an existing file.
func WriteKeyFile(path string, k *Key) error {
	der, err := x509.MarshalPKCS8PrivateKey(k.priv)
	if err != nil {
		return fmt.Errorf("identity: couldn't encode key: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("identity: couldn't create key file: %w", err)
	}
	if err := pem.Encode(f, &pem.Block{Type: pemType, Bytes: der}); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("identity: couldn't write key file: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("identity: couldn't write key file: %w", err)
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return fmt.Errorf("identity: couldn't write key file: %w", err)
	}
	return nil
}

// ErrKeyFilePermissions is returned by LoadKeyFile for a key file that
// users other than its owner may read or write.
var ErrKeyFilePermissions = errors.New("identity: key file is accessible by group or others")

// LoadKeyFile reads a key written by WriteKeyFile. It refuses a file whose
// mode grants any access to group or others.
func LoadKeyFile(path string) (*Key, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("identity: couldn't open key file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("identity: couldn't open key file: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("identity: key file %s is not a regular file", path)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s has mode %#o, want 0600 (chmod 600 %s)", ErrKeyFilePermissions, path, perm, path)
	}
	data, err := io.ReadAll(io.LimitReader(f, keyFileMaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("identity: couldn't read key file: %w", err)
	}
	if len(data) > keyFileMaxSize {
		return nil, fmt.Errorf("identity: key file %s is larger than %d bytes", path, keyFileMaxSize)
	}
	k, err := ParseKey(data)
	if err != nil {
		return nil, fmt.Errorf("%w (in %s)", err, path)
	}
	return k, nil
}

// ParseKey decodes a PKCS#8 PEM Ed25519 private key.
func ParseKey(data []byte) (*Key, error) {
	block, rest := pem.Decode(data)
	if block == nil {
		return nil, errors.New("identity: key file holds no PEM block")
	}
	if block.Type != pemType {
		return nil, fmt.Errorf("identity: key file holds a %q PEM block, want %q", block.Type, pemType)
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, errors.New("identity: key file has data after the PEM block")
	}
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("identity: malformed private key: %w", err)
	}
	priv, ok := parsed.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("identity: key is %T, want Ed25519", parsed)
	}
	return NewKey(priv), nil
}
