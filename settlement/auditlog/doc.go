// Package auditlog is a broker's tamper-evident log: RFC 6962 Merkle
// hashing over stored hashes (golang.org/x/mod/sumdb/tlog), checkpoints as
// C2SP tlog-checkpoint signed notes, inclusion proofs as C2SP tlog-proof
// receipts, consistency proofs between any two sizes, and the C2SP
// tlog-tiles layout over HTTP. Verification uses the transparency-dev
// libraries, an implementation independent of the one that builds the
// tree. The normative text is spec/audit-log.md.
//
// The package does not store anything itself: the settlement store keeps
// entries and hashes in the same database transaction as the ledger rows
// they describe.
package auditlog
