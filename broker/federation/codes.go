package federation

import (
	"errors"
	"fmt"
	"strings"

	"github.com/cinet/cinet/broker/book"
	"github.com/cinet/cinet/broker/jobs"
	"github.com/cinet/cinet/identity"
)

// Wire codes (spec/protocol.md §2.4): what a reply's "code" says about a
// request that was not done.
const (
	codeInsufficient  = "insufficient"   // the offer has too few free instances now
	codeUnknownOffer  = "unknown-offer"  // the owner has no such offer
	codeNoReservation = "no-reservation" // no such lease, or not the asker's
	codeNotFound      = "not-found"      // no such placement, or not the asker's
	codeRefused       = "refused"        // declined for good; asking again will not help
	codeUnavailable   = "unavailable"    // the answering broker failed; ask again
)

// wireErrors is the one table between the wire codes and the errors the
// brokers' packages test for: a reply is built from an error by its first
// row that matches, and an error is built from a reply by its code. A
// code not in the table (unavailable, or one a newer broker sends) is an
// outage, which the asker retries.
var wireErrors = []struct {
	code string
	err  error
}{
	{codeInsufficient, book.ErrInsufficient},
	{codeUnknownOffer, book.ErrUnknownOffer},
	{codeNoReservation, book.ErrNoReservation},
	{codeNotFound, jobs.ErrNotFound},
	{codeRefused, jobs.ErrRefused},
}

// codeOf returns the wire code of err and the message to send with it, or
// "" when err is none of the table's: the caller answers unavailable.
func codeOf(err error) (code, msg string) {
	for _, w := range wireErrors {
		if errors.Is(err, w.err) {
			return w.code, strings.TrimPrefix(err.Error(), w.err.Error()+": ")
		}
	}
	return "", ""
}

// errorOf turns a reply's code and message from peer into an error that
// wraps the table's error for the code.
func errorOf(peer identity.PrincipalID, code, msg string) error {
	for _, w := range wireErrors {
		if w.code == code {
			return &PeerError{Peer: peer, Code: code, Msg: msg, err: w.err}
		}
	}
	return &PeerError{Peer: peer, Code: code, Msg: msg}
}

// A PeerError is a request another broker answered without doing it.
// errors.Is tells its kind: book.ErrInsufficient, book.ErrUnknownOffer,
// book.ErrNoReservation, jobs.ErrNotFound or jobs.ErrRefused; none of
// these when the peer could not answer now.
type PeerError struct {
	Peer identity.PrincipalID
	Code string
	Msg  string
	err  error
}

func (e *PeerError) Error() string {
	kind := "failed"
	if e.err != nil {
		kind = e.err.Error()
	}
	if e.Msg == "" {
		return fmt.Sprintf("%s (broker %s)", kind, e.Peer)
	}
	return fmt.Sprintf("%s (broker %s: %s)", kind, e.Peer, e.Msg)
}

func (e *PeerError) Unwrap() error { return e.err }
