// Package identity owns who is who in a cinet federation: Ed25519 keys and
// their files, principal IDs (W3C did:key), the libp2p peer ID and C2SP
// signed-note verifier key derived from the same key, compute identifiers
// for pools of compute, and the signed envelope that carries every signed
// record between principals.
//
// The normative texts are spec/identifiers.md and spec/envelope.md.
package identity
