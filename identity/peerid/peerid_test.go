package peerid

import (
	"crypto/ed25519"
	"crypto/sha256"
	"strings"
	"testing"

	"github.com/cinet/cinet/identity"
)

func TestRoundTrip(t *testing.T) {
	seed := sha256.Sum256([]byte("cinet peerid test"))
	id := identity.NewKey(ed25519.NewKeyFromSeed(seed[:])).ID()
	pid := Of(id)
	if !strings.HasPrefix(pid.String(), "12D3KooW") {
		t.Errorf("peer ID %s does not have the Ed25519 identity-multihash prefix 12D3KooW", pid)
	}
	back, err := Principal(pid)
	if err != nil {
		t.Fatal(err)
	}
	if back != id {
		t.Fatalf("Principal = %s, want %s", back, id)
	}
}
