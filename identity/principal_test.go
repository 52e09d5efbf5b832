package identity

import (
	"bytes"
	"crypto/ed25519"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mr-tron/base58"
	"golang.org/x/mod/sumdb/note"
)

// testKey returns a deterministic key for seed byte b.
func testKey(tb testing.TB, b byte) *Key {
	tb.Helper()
	return NewKey(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{b}, ed25519.SeedSize)))
}

// Vectors published by other did:key implementations (acapy, the
// decentralized-web-node interop config), so that our encoding is checked
// against code that is not ours.
func TestPrincipalIDKnownVectors(t *testing.T) {
	for _, tc := range []struct{ did, pubBase58 string }{
		{"did:key:z6MkwJSaEMnE4u6LiqrZV1BJHSkc9x8S4mTm3ArNL1m19BZR", "HrBXe7XnjMbscM1roSDTSMCcLNraetDQM9wSVjnzDxn3"},
		{"did:key:z6MkmjY8GnV5i9YTDtPETC2uUAW6ejw3nk5mXF5yci5ab7th", "8HH5gYEeNc3z7PYXmd54d4x6qAfCNrqQqEB3nS7Zfu7K"},
	} {
		pub, err := base58.Decode(tc.pubBase58)
		if err != nil {
			t.Fatal(err)
		}
		id, err := PrincipalIDFromPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		if got := id.String(); got != tc.did {
			t.Errorf("String() = %s, want %s", got, tc.did)
		}
		parsed, err := ParsePrincipalID(tc.did)
		if err != nil {
			t.Fatalf("ParsePrincipalID(%s): %v", tc.did, err)
		}
		if !bytes.Equal(parsed.PublicKey(), pub) {
			t.Errorf("ParsePrincipalID(%s) key = %x, want %x", tc.did, parsed.PublicKey(), pub)
		}
	}
}

func TestParsePrincipalIDRejects(t *testing.T) {
	valid := testKey(t, 1).ID().String()
	// A secp256k1 did:key (multicodec 0xe7) from the did:key test suite.
	secp := "did:key:zQ3shokFTS3brHcDQrn82RUDfCZESWL1ZdCEJwekUDPQiYBme"
	for _, tc := range []struct{ name, in, want string }{
		{"empty", "", "want did:key"},
		{"other method", "did:web:example.com", "want did:key"},
		{"not base58btc multibase", "did:key:" + "u" + valid[9:], "want did:key"},
		{"too short", valid[:40], "characters"},
		{"too long", valid + "1", "characters"},
		{"base58 alphabet", valid[:20] + "0" + valid[21:], "base58"},
		{"other key type", secp, "characters"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParsePrincipalID(tc.in)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ParsePrincipalID(%q) = %v, want error containing %q", tc.in, err, tc.want)
			}
		})
	}
}

func TestPrincipalIDText(t *testing.T) {
	id := testKey(t, 2).ID()
	b, err := id.MarshalText()
	if err != nil {
		t.Fatal(err)
	}
	var back PrincipalID
	if err := back.UnmarshalText(b); err != nil {
		t.Fatal(err)
	}
	if back != id {
		t.Fatalf("round trip: got %s, want %s", back, id)
	}
	if _, err := (PrincipalID{}).MarshalText(); err == nil {
		t.Fatal("zero ID marshaled without error")
	}
}

func TestNoteSignerVerifies(t *testing.T) {
	k := testKey(t, 4)
	const name = "cinet.example/broker-eu"
	vkey, err := k.ID().VerifierKey(name)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := k.NoteSigner(name)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := note.Sign(&note.Note{Text: "hello\n"}, signer)
	if err != nil {
		t.Fatal(err)
	}
	verifier, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	n, err := note.Open(msg, note.VerifierList(verifier))
	if err != nil {
		t.Fatalf("stock note.Open rejected our signature: %v", err)
	}
	if n.Text != "hello\n" {
		t.Fatalf("note text %q", n.Text)
	}
	if _, err := k.ID().VerifierKey("has space"); err == nil {
		t.Fatal("VerifierKey accepted a name with a space")
	}
	// Keys of every shape: about one in three has a '+' in the base64 of
	// its verifier key.
	plus := 0
	for b := range 200 {
		k := testKey(t, byte(b))
		vkey, _ := k.ID().VerifierKey(name)
		if strings.Count(vkey, "+") > 2 {
			plus++
		}
		signer, err := k.NoteSigner(name)
		if err != nil {
			t.Fatalf("key %d (%s): %v", b, vkey, err)
		}
		verifier, _ := note.NewVerifier(vkey)
		msg, _ := note.Sign(&note.Note{Text: "hello\n"}, signer)
		if _, err := note.Open(msg, note.VerifierList(verifier)); err != nil {
			t.Fatalf("key %d (%s): %v", b, vkey, err)
		}
	}
	if plus == 0 {
		t.Fatal("no key had a '+' in its verifier key; the test checks nothing")
	}
}

func TestKeyFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "broker.key")
	k := testKey(t, 5)
	if err := WriteKeyFile(path, k); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := st.Mode().Perm(); perm != 0o600 {
		t.Fatalf("key file mode %#o, want 0600", perm)
	}
	back, err := LoadKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if back.ID() != k.ID() {
		t.Fatalf("loaded key %s, want %s", back.ID(), k.ID())
	}
	if err := WriteKeyFile(path, testKey(t, 6)); err == nil {
		t.Fatal("WriteKeyFile overwrote an existing file")
	}
	if again, _ := LoadKeyFile(path); again.ID() != k.ID() {
		t.Fatal("refused overwrite still changed the key file")
	}

	for _, mode := range []os.FileMode{0o640, 0o604, 0o644, 0o660} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadKeyFile(path); err == nil || !strings.Contains(err.Error(), "chmod 600") {
			t.Errorf("mode %#o: LoadKeyFile = %v, want a permissions error", mode, err)
		}
	}
}

func TestParseKeyRejects(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"empty", "", "no PEM block"},
		{"wrong block", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", "want \"PRIVATE KEY\""},
		{"garbage der", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "malformed private key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseKey([]byte(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ParseKey = %v, want error containing %q", err, tc.want)
			}
		})
	}
}
