package api

import (
	"fmt"
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/cinet/cinet/broker/connlimit"
	"github.com/cinet/cinet/identity"
)

// Limits bound how often one caller is served (spec/api/README.md,
// "Limits"). A rate of 0 takes the default; a negative rate is no limit.
type Limits struct {
	// Anonymous bounds, per client address (an IPv6 client by its /64),
	// the requests that are not authenticated: the public routes, and
	// every request whose authentication fails. An address that has spent
	// this budget is refused before its credentials are even checked, so
	// that forged signatures cost the broker no more than anonymous calls.
	AnonymousRate  rate.Limit // requests a second
	AnonymousBurst int
	// Principal bounds one principal's authenticated requests, wherever
	// they come from.
	PrincipalRate  rate.Limit
	PrincipalBurst int
}

// Default limits: a console page loads a few dozen files at once, and a
// script may send bursts of a few hundred requests; neither may hold a
// broker's CPU for long.
const (
	DefaultAnonymousRate  = 20
	DefaultAnonymousBurst = 200
	DefaultPrincipalRate  = 50
	DefaultPrincipalBurst = 200
)

func (l Limits) withDefaults() Limits {
	if l.AnonymousRate == 0 {
		l.AnonymousRate = DefaultAnonymousRate
	}
	if l.AnonymousBurst <= 0 {
		l.AnonymousBurst = DefaultAnonymousBurst
	}
	if l.PrincipalRate == 0 {
		l.PrincipalRate = DefaultPrincipalRate
	}
	if l.PrincipalBurst <= 0 {
		l.PrincipalBurst = DefaultPrincipalBurst
	}
	for _, r := range []*rate.Limit{&l.AnonymousRate, &l.PrincipalRate} {
		if *r < 0 {
			*r = rate.Inf
		}
	}
	return l
}

// Refusal reasons, as counted by Config.Refused.
const (
	RefusedAnonymousRate = "rate_anonymous"  // an address over its anonymous budget
	RefusedPrincipalRate = "rate_principal"  // a principal over its budget
	RefusedUnauthorized  = "unauthenticated" // credentials missing, wrong, expired or revoked
	RefusedForbidden     = "forbidden"       // a principal whose role may not call the route
	RefusedTooLarge      = "too_large"       // a body over MaxBody
)

// maxBuckets bounds the callers whose budgets are held one by one; past
// it, callers not yet held share one budget until idle ones are dropped.
const maxBuckets = 100_000

// buckets holds a token bucket per caller.
type buckets[K comparable] struct {
	limit rate.Limit
	burst int

	mu       sync.Mutex
	m        map[K]*rate.Limiter
	overflow *rate.Limiter
	swept    time.Time // when a full table was last swept for idle buckets
}

func newBuckets[K comparable](limit rate.Limit, burst int) *buckets[K] {
	return &buckets[K]{limit: limit, burst: burst, m: map[K]*rate.Limiter{}, overflow: rate.NewLimiter(limit, burst)}
}

// get returns k's bucket, making it if need be.
func (b *buckets[K]) get(k K, now time.Time) *rate.Limiter {
	b.mu.Lock()
	defer b.mu.Unlock()
	if l, ok := b.m[k]; ok {
		return l
	}
	if len(b.m) >= maxBuckets {
		// Drop the buckets that are full again: their callers are idle,
		// and a new bucket for them would be the same. At most once a
		// second: a table full of busy callers would otherwise be scanned
		// whole for every newcomer, which many addresses could turn into
		// CPU. Newcomers share the overflow bucket in between.
		if now.Sub(b.swept) < time.Second {
			return b.overflow
		}
		b.swept = now
		for k, l := range b.m {
			if l.TokensAt(now) >= float64(b.burst) {
				delete(b.m, k)
			}
		}
		if len(b.m) >= maxBuckets {
			return b.overflow
		}
	}
	l := rate.NewLimiter(b.limit, b.burst)
	b.m[k] = l
	return l
}

// take spends one request of k's budget at now; when none is left it
// spends nothing and says how long until one is.
func (b *buckets[K]) take(k K, now time.Time) (ok bool, wait time.Duration) {
	if b.limit == rate.Inf {
		return true, 0
	}
	l := b.get(k, now)
	r := l.ReserveN(now, 1)
	if !r.OK() {
		return false, time.Second
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// left says whether k has budget for a request at now, spending none.
func (b *buckets[K]) left(k K, now time.Time) (ok bool, wait time.Duration) {
	if b.limit == rate.Inf {
		return true, 0
	}
	tokens := b.get(k, now).TokensAt(now)
	if tokens >= 1 {
		return true, 0
	}
	return false, time.Duration((1 - tokens) / float64(b.limit) * float64(time.Second))
}

// limiter is the API's per-caller rate limits.
type limiter struct {
	anonymous  *buckets[netip.Prefix]
	principals *buckets[identity.PrincipalID]
}

func newLimiter(l Limits) *limiter {
	l = l.withDefaults()
	return &limiter{
		anonymous:  newBuckets[netip.Prefix](l.AnonymousRate, l.AnonymousBurst),
		principals: newBuckets[identity.PrincipalID](l.PrincipalRate, l.PrincipalBurst),
	}
}

// clientOf is the key of the request's client address.
func clientOf(r *http.Request) netip.Prefix {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Prefix{}
	}
	return connlimit.ClientIP(ap.Addr())
}

// tooMany refuses a request over a rate limit: 429, with the seconds
// until the caller may ask again in Retry-After.
func (s *Server) tooMany(w http.ResponseWriter, r *http.Request, reason string, wait time.Duration, detail string) {
	s.refuse(w, r, reason)
	secs := max(1, int(math.Ceil(wait.Seconds())))
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	problem(w, http.StatusTooManyRequests, "rate-limited", "Too Many Requests", fmt.Sprintf("%s; try again in %d s", detail, secs))
}

// refuse counts a refusal, and closes the connection after the answer
// when the request's body has not been read: the broker reads no body of
// a request it refuses, and a client that sent one cannot reuse the
// connection.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, reason string) {
	if s.cfg.Refused != nil {
		s.cfg.Refused(reason)
	}
	if r.ContentLength != 0 {
		w.Header().Set("Connection", "close")
	}
}
