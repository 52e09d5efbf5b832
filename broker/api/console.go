package api

import (
	"cmp"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	v1 "github.com/cinet/cinet/broker/api/v1"
	"github.com/cinet/cinet/identity"
)

// The console's sign-in (spec/api/README.md, "Console sessions"): a
// principal who holds its key asks, signed, for a sign-in code; the code,
// short-lived and good once, is exchanged by a browser for a session
// cookie, so that no private key is ever pasted into a page. A session
// carries a CSRF token the page sends with every request that changes
// anything.

// Console session limits.
const (
	CodeTTL    = 2 * time.Minute
	SessionTTL = 8 * time.Hour
	// SessionCookie names the cookie that carries a session over plain
	// HTTP, and SecureSessionCookie over TLS: the __Host- prefix makes a
	// browser keep it Secure, for this host alone and every path of it,
	// so that no other site and no plain-HTTP page can set or shadow it.
	SessionCookie       = "cinet_session"
	SecureSessionCookie = "__Host-cinet_session"
	// CSRFHeader carries a session's CSRF token on state-changing requests.
	CSRFHeader = "X-CSRF-Token"
	// PerPrincipal bounds the sign-in codes, and apart from them the
	// sessions, one principal holds at once: a new one ends its oldest,
	// so that no principal can fill the tables for the others.
	PerPrincipal = 16
	// maxGrants bounds each table in all; when it is full the oldest
	// entry of anyone's goes. At the anonymous rate limit one address
	// needs hours to fill it.
	maxGrants = 100_000
)

type grant struct {
	principal identity.PrincipalID
	role      Role
	issued    time.Time
	expires   time.Time
	csrf      string // sessions only
}

// grants is a table of codes or sessions by their secret, each principal's
// kept in the order they were issued.
type grants struct {
	byID        map[string]grant
	byPrincipal map[identity.PrincipalID][]string // oldest first
}

func newGrants() *grants {
	return &grants{byID: map[string]grant{}, byPrincipal: map[identity.PrincipalID][]string{}}
}

// add puts g under id, ending the principal's oldest past PerPrincipal
// and the table's oldest past maxGrants.
func (t *grants) add(id string, g grant) {
	for len(t.byPrincipal[g.principal]) >= PerPrincipal {
		t.remove(t.byPrincipal[g.principal][0])
	}
	if len(t.byID) >= maxGrants {
		oldest := ""
		for k, o := range t.byID {
			if oldest == "" || o.issued.Before(t.byID[oldest].issued) {
				oldest = k
			}
		}
		t.remove(oldest)
	}
	t.byID[id] = g
	t.byPrincipal[g.principal] = append(t.byPrincipal[g.principal], id)
}

func (t *grants) remove(id string) {
	g, ok := t.byID[id]
	if !ok {
		return
	}
	delete(t.byID, id)
	ids := slices.DeleteFunc(t.byPrincipal[g.principal], func(k string) bool { return k == id })
	if len(ids) == 0 {
		delete(t.byPrincipal, g.principal)
	} else {
		t.byPrincipal[g.principal] = ids
	}
}

// sweep drops what has expired.
func (t *grants) sweep(now time.Time) {
	for k, g := range t.byID {
		if !now.Before(g.expires) {
			t.remove(k)
		}
	}
}

// sessions holds sign-in codes and sessions in memory: a broker that
// restarts signs everyone out.
type sessions struct {
	mu       sync.Mutex
	codes    *grants
	sessions *grants
}

func newSessions() *sessions {
	return &sessions{codes: newGrants(), sessions: newGrants()}
}

func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (ss *sessions) issueCode(c *Caller, now time.Time) (string, time.Time) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.codes.sweep(now)
	code, exp := randomToken(), now.Add(CodeTTL)
	ss.codes.add(code, grant{principal: c.Principal, role: c.Role, issued: now, expires: exp})
	return code, exp
}

// redeem exchanges a code, once, for a session.
func (ss *sessions) redeem(code string, now time.Time) (id string, g grant, err error) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	g, ok := ss.codes.byID[code]
	ss.codes.remove(code)
	switch {
	case !ok:
		return "", g, fmt.Errorf("the sign-in code is unknown or was used already; ask for a new one (cinet console login)")
	case !now.Before(g.expires):
		return "", g, fmt.Errorf("the sign-in code expired at %s; ask for a new one (cinet console login)", g.expires.UTC().Format(time.RFC3339))
	}
	ss.sessions.sweep(now)
	id = randomToken()
	g.issued, g.expires, g.csrf = now, now.Add(SessionTTL), randomToken()
	ss.sessions.add(id, g)
	return id, g, nil
}

func (ss *sessions) lookup(id string, now time.Time) (grant, bool) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	g, ok := ss.sessions.byID[id]
	if ok && !now.Before(g.expires) {
		ss.sessions.remove(id)
		return g, false
	}
	return g, ok
}

func (ss *sessions) end(id string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.sessions.remove(id)
}

// endAll ends every session of a principal, as when its tokens are
// revoked.
func (ss *sessions) endAll(p identity.PrincipalID) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for _, id := range slices.Clone(ss.sessions.byPrincipal[p]) {
		ss.sessions.remove(id)
	}
}

// sessionCookie is the name of the session cookie on r's connection.
func (s *Server) sessionCookie(r *http.Request) string {
	if r.TLS != nil {
		return SecureSessionCookie
	}
	return SessionCookie
}

// sessionCaller authenticates a request by its session cookie; found is
// false when it carries none. A request that changes anything must carry
// the session's CSRF token.
func (s *Server) sessionCaller(r *http.Request) (c *Caller, p *Problem, found bool) {
	ck, err := r.Cookie(s.sessionCookie(r))
	if err != nil {
		return nil, nil, false
	}
	g, ok := s.sessions.lookup(ck.Value, s.cfg.Now())
	if !ok {
		return nil, &Problem{Type: ProblemType("session-expired"), Title: "Unauthorized", Status: http.StatusUnauthorized,
			Detail: "the console session has ended or expired; sign in again"}, true
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		sent := r.Header.Get(CSRFHeader)
		if sent == "" || subtle.ConstantTimeCompare([]byte(sent), []byte(g.csrf)) != 1 {
			return nil, &Problem{Type: ProblemType("csrf"), Title: "Forbidden", Status: http.StatusForbidden,
				Detail: "a console request that changes something must carry the session's " + CSRFHeader + " header"}, true
		}
	}
	return &Caller{Principal: g.principal, Role: g.role, session: ck.Value}, nil, true
}

type codeView = v1.ConsoleCode

// consoleCode issues a sign-in code to the caller, who signed the request
// with its key.
func (s *Server) consoleCode(w http.ResponseWriter, r *http.Request, c *Caller) {
	if c.session != "" {
		problem(w, http.StatusForbidden, "forbidden", "Forbidden", "sign-in codes are issued to a signed request, not to a console session")
		return
	}
	code, exp := s.sessions.issueCode(c, s.cfg.Now())
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	writeJSON(w, http.StatusCreated, codeView{Code: code, URL: scheme + "://" + r.Host + "/ui/#code=" + code, Expires: exp.UTC()})
}

type sessionView struct {
	Principal string    `json:"principal"`
	Role      Role      `json:"role"`
	CSRF      string    `json:"csrf"`
	Expires   time.Time `json:"expires"`
}

// openSession exchanges a sign-in code for a session cookie.
func (s *Server) openSession(w http.ResponseWriter, r *http.Request, _ *Caller) {
	var req struct {
		Code string `json:"code"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil || req.Code == "" {
		problem(w, http.StatusBadRequest, "bad-request", "Bad Request", `want {"code": "…"}, the sign-in code`)
		return
	}
	id, g, err := s.sessions.redeem(req.Code, s.cfg.Now())
	if err != nil {
		problem(w, http.StatusUnauthorized, "bad-code", "Unauthorized", err.Error())
		return
	}
	http.SetCookie(w, &http.Cookie{Name: s.sessionCookie(r), Value: id, Path: "/", HttpOnly: true, Secure: r.TLS != nil,
		SameSite: http.SameSiteStrictMode, MaxAge: int(SessionTTL / time.Second)})
	writeJSON(w, http.StatusCreated, sessionView{Principal: g.principal.String(), Role: g.role, CSRF: g.csrf, Expires: g.expires.UTC()})
}

// getSession says who the console session is, with its CSRF token (only
// a page of this origin can read it).
func (s *Server) getSession(w http.ResponseWriter, r *http.Request, c *Caller) {
	if c.session == "" {
		problem(w, http.StatusNotFound, "no-session", "Not Found", "this request carries no console session")
		return
	}
	g, _ := s.sessions.lookup(c.session, s.cfg.Now())
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, sessionView{Principal: g.principal.String(), Role: g.role, CSRF: g.csrf, Expires: g.expires.UTC()})
}

// closeSession signs the console out.
func (s *Server) closeSession(w http.ResponseWriter, r *http.Request, c *Caller) {
	if c.session != "" {
		s.sessions.end(c.session)
	}
	http.SetCookie(w, &http.Cookie{Name: s.sessionCookie(r), Value: "", Path: "/", HttpOnly: true, Secure: r.TLS != nil,
		SameSite: http.SameSiteStrictMode, MaxAge: -1})
	w.WriteHeader(http.StatusNoContent)
}

// consoleCSP is the console's Content-Security-Policy: nothing but its own
// origin, no inline script or style, no framing.
const consoleCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// console serves the console's pages.
func (s *Server) console(w http.ResponseWriter, r *http.Request, _ *Caller) {
	if s.cfg.Console == nil {
		problem(w, http.StatusNotFound, "no-console", "Not Found", "this broker serves no console")
		return
	}
	h := w.Header()
	h.Set("Content-Security-Policy", consoleCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	http.StripPrefix("/ui", s.cfg.Console).ServeHTTP(w, r)
}

// PrincipalView is a principal the operator named, with its role.
type PrincipalView struct {
	Principal identity.PrincipalID `json:"principal"`
	Role      Role                 `json:"role"`
}

// principals lists the callers the operator named, and whether any other
// signer is let in as a tenant.
func (s *Server) principals(w http.ResponseWriter, r *http.Request, c *Caller) {
	out := []PrincipalView{}
	for id, role := range s.cfg.Principals {
		out = append(out, PrincipalView{Principal: id, Role: role})
	}
	slices.SortFunc(out, func(a, b PrincipalView) int {
		return cmp.Or(cmp.Compare(a.Role, b.Role), cmp.Compare(a.Principal.String(), b.Principal.String()))
	})
	writeJSON(w, http.StatusOK, map[string]any{"principals": out, "openTenancy": s.cfg.OpenTenancy})
}
