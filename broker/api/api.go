// Package api is the broker's HTTP API (spec/api/openapi.json): jobs,
// offers, the ledger and the audit log, for the roles tenant, provider,
// regulator and operator. Requests are authenticated by the caller's
// signature (broker/httpsig) or by a token the operator issued; errors are
// RFC 9457 problem details.
package api

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/cinet/cinet/adapters"
	v1 "github.com/cinet/cinet/broker/api/v1"
	"github.com/cinet/cinet/broker/book"
	"github.com/cinet/cinet/broker/federation"
	"github.com/cinet/cinet/broker/httpsig"
	"github.com/cinet/cinet/broker/jobs"
	"github.com/cinet/cinet/broker/match"
	"github.com/cinet/cinet/broker/offers"
	"github.com/cinet/cinet/broker/store"
	"github.com/cinet/cinet/identity"
	"github.com/cinet/cinet/settlement"
)

// Role is what a caller may do (v1.Role).
type Role = v1.Role

// Roles.
const (
	Tenant    = v1.Tenant
	Provider  = v1.Provider
	Regulator = v1.Regulator
	Operator  = v1.Operator
)

// ParseRole reads a role name.
func ParseRole(s string) (Role, error) {
	switch r := Role(s); r {
	case Tenant, Provider, Regulator, Operator:
		return r, nil
	}
	return "", fmt.Errorf("api: role %q: want tenant, provider, regulator or operator", s)
}

// Config wires a Server.
type Config struct {
	Key     *identity.Key // the broker's: an operator, and the signer of tokens
	Region  string
	Runner  *jobs.Runner
	Jobs    jobs.Store
	Store   *store.Store
	Book    *book.Book
	Matcher *match.Matcher
	Offers  *offers.Registry
	// Federation is this broker's node; nil when it runs alone.
	Federation *federation.Node
	Settler    *settlement.Settler
	Adapters   map[identity.PrincipalID]adapters.Adapter
	// Principals are the callers the operator named, with their roles.
	Principals map[identity.PrincipalID]Role
	// OpenTenancy lets any caller with a valid signature act as a tenant.
	OpenTenancy bool
	// Authorities are the host[:port] names callers reach this broker by;
	// a request signed for any other is refused, so that a signed request
	// cannot be replayed to another broker. Compared without case.
	Authorities []string
	OpenAPI     []byte       // served at /openapi.json
	Console     http.Handler // the console's pages, served at /ui/; nil for none
	Metrics     http.Handler // served at /metrics
	// Limits bound how often one caller is served.
	Limits Limits
	// Refused, when not nil, counts each request refused, by reason (the
	// Refused… constants).
	Refused func(reason string)
	// TokenMaxTTL bounds the tokens the broker issues (default and at
	// most MaxTokenTTL).
	TokenMaxTTL time.Duration
	// StreamWriteTimeout is how long a stream of logs or events may wait
	// on its reader for each write; the server's read and write timeouts
	// do not end a stream that keeps being read. Default 60s.
	StreamWriteTimeout time.Duration
	// Ready reports whether the broker can serve (its stores answer).
	Ready func(ctx context.Context) error
	Now   func() time.Time
	Log   *slog.Logger
}

// hsts is the Strict-Transport-Security of answers over TLS: a year.
const hsts = "max-age=31536000"

// MaxBody bounds a request body.
const MaxBody = 1 << 20

// Server serves the API.
type Server struct {
	cfg      Config
	mux      *http.ServeMux
	sessions *sessions
	limits   *limiter
	tokens   sync.Map // token ID → *store.TokenRow, of good tokens
}

// New returns the API server.
func New(cfg Config) *Server {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.TokenMaxTTL <= 0 || cfg.TokenMaxTTL > MaxTokenTTL {
		cfg.TokenMaxTTL = MaxTokenTTL
	}
	if cfg.StreamWriteTimeout <= 0 {
		cfg.StreamWriteTimeout = 60 * time.Second
	}
	s := &Server{cfg: cfg, mux: http.NewServeMux(), sessions: newSessions(), limits: newLimiter(cfg.Limits)}
	s.routes()
	return s
}

// A Route is one endpoint: who may call it, and its handler.
type Route struct {
	pattern string
	public  bool
	roles   []Role
	handle  func(w http.ResponseWriter, r *http.Request, c *Caller)
}

// Routes lists the API's endpoints, as ServeMux patterns with the roles
// allowed; the OpenAPI document describes the same set (a test holds them
// to each other).
func (s *Server) Routes() []Route {
	all := []Role{Tenant, Provider, Regulator, Operator}
	return []Route{
		{pattern: "GET /openapi.json", public: true, handle: s.openAPI},
		{pattern: "GET /healthz", public: true, handle: s.healthz},
		{pattern: "GET /readyz", public: true, handle: s.readyz},
		// Metrics tell job counts and log sizes: the operator's, here or on
		// the metrics address of the broker's configuration.
		{pattern: "GET /metrics", roles: []Role{Operator}, handle: s.metrics},
		{pattern: "GET /v1/info", public: true, handle: s.info},
		{pattern: "GET /v1/federation", roles: []Role{Regulator, Operator}, handle: s.federation},

		{pattern: "POST /v1/jobs", roles: []Role{Tenant}, handle: s.submitJob},
		{pattern: "GET /v1/jobs", roles: []Role{Tenant, Operator}, handle: s.listJobs},
		{pattern: "GET /v1/jobs/{id}", roles: []Role{Tenant, Operator}, handle: s.getJob},
		{pattern: "POST /v1/jobs/{id}/cancel", roles: []Role{Tenant, Operator}, handle: s.cancelJob},
		{pattern: "GET /v1/jobs/{id}/logs", roles: []Role{Tenant, Operator}, handle: s.jobLogs},
		{pattern: "GET /v1/jobs/{id}/events", roles: []Role{Tenant, Operator}, handle: s.jobEvents},
		{pattern: "POST /v1/explain", roles: []Role{Tenant, Operator}, handle: s.explain},

		{pattern: "POST /v1/offers", roles: []Role{Provider}, handle: s.registerOffer},
		{pattern: "GET /v1/placements", roles: []Role{Provider, Operator}, handle: s.placements},
		{pattern: "GET /v1/offers", roles: all, handle: s.listOffers},
		{pattern: "DELETE /v1/offers/{name...}", roles: []Role{Provider, Operator}, handle: s.withdrawOffer},

		{pattern: "GET /v1/ledger/balances", roles: all, handle: s.balances},
		{pattern: "GET /v1/ledger/statement", roles: all, handle: s.statement},
		{pattern: "GET /v1/ledger/clearing", roles: []Role{Regulator, Operator}, handle: s.clearing},
		{pattern: "GET /v1/ledger/export", roles: all, handle: s.export},

		// The audit log in the C2SP tlog-tiles layout: its checkpoint and
		// hash tiles are anyone's, so that any verifier holding the log's
		// key can check it; the entries name tenants and what they spent,
		// and are for regulators.
		{pattern: "GET /checkpoint", public: true, handle: s.tiles},
		{pattern: "GET /tile/", public: true, handle: s.tiles},
		{pattern: "GET /tile/entries/", roles: []Role{Regulator, Operator}, handle: s.tiles},
		// A checkpoint of the log as it stands now, signed on request.
		{pattern: "GET /v1/audit/checkpoint", roles: all, handle: s.checkpoint},
		{pattern: "GET /v1/audit/witnessed", roles: all, handle: s.witnessed},
		{pattern: "GET /v1/audit/consistency", roles: all, handle: s.consistency},
		{pattern: "GET /v1/audit/checkpoints", roles: all, handle: s.checkpoints},
		{pattern: "GET /v1/audit/proof", roles: all, handle: s.proof},

		{pattern: "POST /v1/tokens", roles: []Role{Operator}, handle: s.issueToken},
		{pattern: "GET /v1/tokens", roles: []Role{Operator}, handle: s.listTokens},
		{pattern: "DELETE /v1/tokens/{id}", roles: []Role{Operator}, handle: s.revokeToken},
		{pattern: "GET /v1/principals", roles: []Role{Operator}, handle: s.principals},

		// The console: its pages, and its sign-in by one-time code.
		{pattern: "GET /ui/", public: true, handle: s.console},
		{pattern: "POST /v1/console/codes", roles: all, handle: s.consoleCode},
		{pattern: "POST /v1/console/session", public: true, handle: s.openSession},
		{pattern: "GET /v1/console/session", roles: all, handle: s.getSession},
		{pattern: "DELETE /v1/console/session", roles: all, handle: s.closeSession},
	}
}

// Pattern is the route's ServeMux pattern, "METHOD /path".
func (rt Route) Pattern() string { return rt.pattern }

// Public reports whether the route needs no authentication.
func (rt Route) Public() bool { return rt.public }

// Roles are the roles allowed, besides the operator, who may call every
// route (but for a regulator's, which read-only rule applies to all).
func (rt Route) Roles() []Role { return rt.roles }

func (s *Server) routes() {
	for _, rt := range s.Routes() {
		s.mux.HandleFunc(rt.pattern, func(w http.ResponseWriter, r *http.Request) {
			if rt.public {
				if ok, wait := s.limits.anonymous.take(clientOf(r), s.cfg.Now()); !ok {
					s.tooMany(w, r, RefusedAnonymousRate, wait, "this address has sent more requests than the broker serves without credentials")
					return
				}
				rt.handle(w, r, nil)
				return
			}
			// Who the caller is, and whether its role may call the route,
			// are settled from the headers; only then is the body read.
			c, signed, ok := s.identifyCaller(w, r)
			if !ok {
				return
			}
			// Signing in and out of the console is not writing.
			if c.Role == Regulator && r.Method != http.MethodGet && !strings.HasPrefix(r.URL.Path, "/v1/console/") {
				s.refuse(w, r, RefusedForbidden)
				problem(w, http.StatusForbidden, "read-only", "Forbidden", "a regulator reads settlement and audit data and writes nothing")
				return
			}
			allowed := false
			for _, role := range rt.roles {
				allowed = allowed || c.Role == role || c.Role == Operator
			}
			if !allowed {
				s.refuse(w, r, RefusedForbidden)
				problem(w, http.StatusForbidden, "forbidden", "Forbidden", fmt.Sprintf("%s %s is not for the %s role", r.Method, r.URL.Path, c.Role))
				return
			}
			if !s.readBody(w, r, c, signed) {
				return
			}
			rt.handle(w, r, c)
		})
	}
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if ok, wait := s.limits.anonymous.take(clientOf(r), s.cfg.Now()); !ok {
			s.tooMany(w, r, RefusedAnonymousRate, wait, "this address has sent more requests than the broker serves without credentials")
			return
		}
		problem(w, http.StatusNotFound, "not-found", "Not Found", "no such endpoint: "+r.Method+" "+r.URL.Path+"; see /openapi.json")
	})
}

// ServeHTTP implements http.Handler: bodies are bounded, panics become
// 500 problems, and every request is logged.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &statusRecorder{ResponseWriter: w, status: 200}
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			s.cfg.Log.Error("handler panic", "method", r.Method, "path", r.URL.Path, "panic", p)
			problem(rec, http.StatusInternalServerError, "internal", "Internal Server Error", "the broker failed to serve this request")
		}
		s.cfg.Log.Debug("request", "method", r.Method, "path", r.URL.Path, "status", rec.status, "took", time.Since(start))
	}()
	if r.TLS != nil {
		// A browser that reached the broker over HTTPS keeps to it.
		rec.Header().Set("Strict-Transport-Security", hsts)
	}
	r.Body = http.MaxBytesReader(rec, r.Body, MaxBody)
	s.mux.ServeHTTP(rec, r)
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) { r.status = code; r.ResponseWriter.WriteHeader(code) }
func (r *statusRecorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// streaming readies w for a response that stays open as long as its
// reader reads: the server's read deadline, which would end the request's
// context, is lifted, and each write is given StreamWriteTimeout from its
// start, so that a reader that stops reading ends the stream and frees
// its connection.
func (s *Server) streaming(w http.ResponseWriter) http.ResponseWriter {
	rc := http.NewResponseController(w)
	rc.SetReadDeadline(time.Time{})
	return &streamWriter{ResponseWriter: w, rc: rc, window: s.cfg.StreamWriteTimeout}
}

type streamWriter struct {
	http.ResponseWriter
	rc     *http.ResponseController
	window time.Duration
}

func (w *streamWriter) Write(p []byte) (int, error) {
	w.rc.SetWriteDeadline(time.Now().Add(w.window))
	return w.ResponseWriter.Write(p)
}

func (w *streamWriter) Flush() {
	w.rc.SetWriteDeadline(time.Now().Add(w.window))
	w.rc.Flush()
}

func (w *streamWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// A Caller is an authenticated principal and its role.
type Caller struct {
	Principal identity.PrincipalID
	Role      Role
	body      []byte
	session   string         // the console session it came by, if any
	proof     *httpsig.Proof // its request's signature, when it signed it
}

// identifyCaller finds the caller from the request's headers — its
// session cookie, token or signature — and spends a request of its rate
// budget, so that no caller the broker does not know can make it read or
// hold a body. For a signed request it also returns the signature, whose
// body and nonce readBody checks. It writes the problem and returns false
// when the caller is not let in.
func (s *Server) identifyCaller(w http.ResponseWriter, r *http.Request) (*Caller, *httpsig.Signed, bool) {
	now := s.cfg.Now()
	addr := clientOf(r)
	// An address that spent its budget on failures (or anonymous calls)
	// is refused before its credentials cost a signature check.
	if ok, wait := s.limits.anonymous.left(addr, now); !ok {
		s.tooMany(w, r, RefusedAnonymousRate, wait, "this address has sent more unauthenticated requests than the broker serves")
		return nil, nil, false
	}
	c, signed, p := s.identify(r, now)
	if p != nil {
		s.limits.anonymous.take(addr, now)
		s.refuse(w, r, RefusedUnauthorized)
		writeProblem(w, p)
		return nil, nil, false
	}
	if ok, wait := s.limits.principals.take(c.Principal, now); !ok {
		s.tooMany(w, r, RefusedPrincipalRate, wait, fmt.Sprintf("%s has sent more requests than the broker serves one principal", c.Principal))
		return nil, nil, false
	}
	return c, signed, true
}

// readBody reads the body of an identified caller's request, bounded, and
// holds a signed one to its signature and its nonce. It writes the problem
// and returns false when the request is refused.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request, c *Caller, signed *httpsig.Signed) bool {
	body, err := io.ReadAll(r.Body)
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		s.refuse(w, r, RefusedTooLarge)
		problem(w, http.StatusRequestEntityTooLarge, "too-large", "Content Too Large", fmt.Sprintf("the request body is over %d bytes", MaxBody))
		return false
	}
	if err != nil {
		problem(w, http.StatusBadRequest, "bad-request", "Bad Request", "reading the body: "+err.Error())
		return false
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	if signed != nil {
		if err := signed.CheckBody(body); err != nil {
			s.refuse(w, r, RefusedUnauthorized)
			problem(w, http.StatusUnauthorized, "unauthenticated", "Unauthorized", err.Error())
			return false
		}
		fresh, err := s.cfg.Store.UseNonce(r.Context(), signed.Signer.String()+"/"+signed.Nonce, signed.Expires)
		if err != nil {
			s.cfg.Log.Error("recording a request nonce", "err", err)
			problem(w, http.StatusServiceUnavailable, "unavailable", "Service Unavailable", "the broker cannot check the request's nonce now; try again")
			return false
		}
		if !fresh {
			s.refuse(w, r, RefusedUnauthorized)
			problem(w, http.StatusUnauthorized, "replayed", "Unauthorized", "this signed request was already received: a replay")
			return false
		}
	}
	c.body = body
	return true
}

// identify finds the caller from the request's headers alone. For a signed
// request it also returns the signature, whose body and nonce are still to
// be checked. It returns the problem to answer when the caller is not let
// in.
func (s *Server) identify(r *http.Request, now time.Time) (*Caller, *httpsig.Signed, *Problem) {
	unauthorized := func(code, detail string) (*Caller, *httpsig.Signed, *Problem) {
		return nil, nil, &Problem{Type: ProblemType(code), Title: "Unauthorized", Status: http.StatusUnauthorized, Detail: detail}
	}
	if r.Header.Get("Authorization") == "" && r.Header.Get("Signature") == "" {
		if c, p, found := s.sessionCaller(r); found {
			return c, nil, p
		}
	}
	if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		c, err := s.verifyToken(r.Context(), tok, now)
		if err != nil {
			return unauthorized("unauthenticated", err.Error())
		}
		return c, nil, nil
	}
	signed, err := httpsig.VerifyHeaders(r, now)
	if err != nil {
		detail := err.Error()
		if errors.Is(err, httpsig.ErrMissing) {
			detail = "sign the request with your key (see spec/api/README.md) or send an operator-issued token as 'Authorization: Bearer …'"
		}
		return unauthorized("unauthenticated", detail)
	}
	if !s.ownAuthority(r.Host) {
		return unauthorized("wrong-authority",
			fmt.Sprintf("the request is signed for %q, which is not this broker (it answers to %s)", r.Host, strings.Join(s.cfg.Authorities, ", ")))
	}
	role, ok := s.roleOf(signed.Signer)
	if !ok {
		return nil, nil, &Problem{Type: ProblemType("unknown-principal"), Title: "Forbidden", Status: http.StatusForbidden,
			Detail: fmt.Sprintf("%s is not a principal of this broker; ask its operator", signed.Signer)}
	}
	return &Caller{Principal: signed.Signer, Role: role, proof: httpsig.ProofOf(r)}, signed, nil
}

// ownAuthority reports whether host names this broker.
func (s *Server) ownAuthority(host string) bool {
	for _, a := range s.cfg.Authorities {
		if strings.EqualFold(a, host) {
			return true
		}
	}
	return false
}

func (s *Server) roleOf(id identity.PrincipalID) (Role, bool) {
	if id == s.cfg.Key.ID() {
		return Operator, true
	}
	if r, ok := s.cfg.Principals[id]; ok {
		return r, true
	}
	if s.cfg.OpenTenancy {
		return Tenant, true
	}
	return "", false
}

// Problem is an RFC 9457 problem detail.
type Problem = v1.Problem

// A DocumentError is one located error in a submitted document.
type DocumentError = v1.DocumentError

// ProblemType is the type URI of a problem code.
func ProblemType(code string) string { return "urn:cinet:problem:" + code }

func problem(w http.ResponseWriter, status int, code, title, detail string) {
	writeProblem(w, &Problem{Type: ProblemType(code), Title: title, Status: status, Detail: detail})
}

func writeProblem(w http.ResponseWriter, p *Problem) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(p.Status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(p)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// internal reports a failure of the broker itself.
// internal answers a failure of the broker's own: the cause — which may
// name tables, files or hosts — goes to the operator's log under an
// incident ID, and the caller gets the ID alone.
func (s *Server) internal(w http.ResponseWriter, r *http.Request, err error) {
	var b [6]byte
	rand.Read(b[:])
	incident := hex.EncodeToString(b[:])
	s.cfg.Log.Error("serving request", "method", r.Method, "path", r.URL.Path, "incident", incident, "err", err)
	problem(w, http.StatusInternalServerError, "internal", "Internal Server Error",
		"the broker failed to serve this request; its operator's log has the cause under incident "+incident)
}
