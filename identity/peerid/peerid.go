// Package peerid converts between principal IDs and libp2p peer IDs: a
// broker's network identity and its signing identity are one Ed25519 key
// (spec/protocol.md §1). It is apart from package identity so that what
// signs and verifies documents does not pull in libp2p.
package peerid

import (
	"fmt"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/cinet/cinet/identity"
)

// Of returns the libp2p peer ID of the principal's key.
func Of(id identity.PrincipalID) peer.ID {
	pub, err := crypto.UnmarshalEd25519PublicKey(id.PublicKey())
	if err != nil {
		panic(fmt.Sprintf("peerid: libp2p rejected a 32-byte Ed25519 key: %v", err))
	}
	pid, err := peer.IDFromPublicKey(pub)
	if err != nil {
		panic(fmt.Sprintf("peerid: libp2p could not derive a peer ID: %v", err))
	}
	return pid
}

// Principal recovers the principal ID of a peer whose ID embeds an Ed25519
// key, as every cinet broker's does.
func Principal(p peer.ID) (identity.PrincipalID, error) {
	pub, err := p.ExtractPublicKey()
	if err != nil {
		return identity.PrincipalID{}, fmt.Errorf("peer %s: %w", p, err)
	}
	if pub.Type() != crypto.Ed25519 {
		return identity.PrincipalID{}, fmt.Errorf("peer %s has a %s key, want Ed25519", p, pub.Type())
	}
	raw, err := pub.Raw()
	if err != nil {
		return identity.PrincipalID{}, fmt.Errorf("peer %s: %w", p, err)
	}
	return identity.PrincipalIDFromPublicKey(raw)
}
