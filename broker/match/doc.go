// Package match is the matching core: for a job, it finds the offers that
// can serve it and ranks them by the job's objective, and it explains the
// fate of every offer. It follows spec/matching.md.
//
// A decision runs in stages, wired in one place (Matcher.evaluate):
//
//	candidates  accelerator-model and region indexes choose which offers to visit
//	feasibility cheap yes/no checks, each failure recorded as a Reason
//	price       the run's estimated cost and peak hourly price; the budget check
//	requirements the job's CEL condition
//	score       cost, time, latency, balanced, or the job's CEL rank
//	select      the top K by score; ties broken by a hash seeded with the job digest
//
// Requirements are evaluated lazily when the objective lets scores be
// computed without them: candidates are taken best-first and only those
// that could enter the top K are tested. The result is the same as testing
// every offer; Explain does test every offer.
package match
