// Package book holds a broker's offer book: every verified offer it knows,
// local or from peers, keyed by the name of the pool's compute identifier.
//
// A newer sequence replaces an older offer for the same pool; offers lapse
// when their validity ends on the book's clock; free quantity is tracked as
// time-limited reservations are granted and released. Buckets by
// currency, accelerator model (or CPU size class), region and jurisdiction,
// each in order of lowest rate with the offers' hot data inline (index.go),
// let the matching core visit only offers that can serve a job, best
// first. Each entry carries the numbers matching needs,
// computed once when the offer enters: class sizes, and the instance price
// across the week in integer nano-units of the offer's currency, so that
// estimates and budget checks are exact and never use floating point.
//
// A book of a million offers fits in under 2 GB because an entry does not
// keep the parsed offer: it keeps the signed document deflated against a
// dictionary of what offer documents share (packed.go), the fields matching
// and callers read, and values many offers hold alike (zones, labels,
// accelerator groups) shared through reference-counted tables, so that a
// peer publishing ever different values cannot grow them beyond the offers
// held. Entry.Offer parses the document again for the rare reader that
// needs the rest.
package book
