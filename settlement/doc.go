// Package settlement meters, prices and clears the compute a federation
// sells, in books that regulators can verify on their own.
//
// An executing broker signs a UsageRecord for each placement and period;
// the Settler checks it (signature, offer, quantities, period), rates it
// against the offer's price schedule in exact decimals (spec/rating.md),
// posts it to a double-entry ledger as one balanced Transaction, captures
// the job's budget Hold, and appends the record and the transaction to the
// broker's audit log (spec/audit-log.md) — all in one store transaction,
// so nothing is ever half-posted. Brokers net what they owe each other
// into signed Statements (clearing).
package settlement
