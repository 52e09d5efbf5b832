// Package match is the matching core: for a job, it finds the offers that
// can serve it and ranks them by the job's objective, and it explains the
// fate of every offer. It follows spec/matching.md.
//
// A decision runs in stages, wired in one place (Matcher.evaluate):
//
//	candidates  the book's buckets (currency, model, region, jurisdiction) choose which offers to visit
//	feasibility cheap yes/no checks, each failure recorded as a Reason
//	price       the run's estimated cost and peak hourly price; the budget check
//	requirements the job's CEL condition
//	score       cost, time, latency, balanced, or the job's CEL rank over its pool
//	select      the top K by score; ties broken by a hash seeded with the job digest
//
// Match visits buckets best-first and stops on bounds (scan.go), prices
// an offer and tests its requirements only when it could enter the top K,
// and gives the same result as testing every offer, which MatchNaive and
// Explain do.
package match
