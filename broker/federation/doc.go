// Package federation joins brokers into one compute internet over libp2p,
// as spec/protocol.md describes: each broker is a libp2p host keyed by its
// own Ed25519 key (its peer ID and did:key name one key), admits only the
// members of its federation, gossips offers and broker announcements over
// GossipSub, pulls what it lacks from its peers (anti-entropy), and asks an
// offer's owner for reservations over a stream protocol.
//
// Every stream has a deadline and a size bound; every message is signed by
// its author, or arrives on an authenticated stream from the member it
// claims to be.
package federation
