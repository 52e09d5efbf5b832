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
	// SessionCookie names the cookie that carries a session.
	SessionCookie = "cinet_session"
	// CSRFHeader carries a session's CSRF token on state-changing requests.
	CSRFHeader = "X-CSRF-Token"
	// maxCodes bounds the codes and sessions held at once.
	maxCodes = 10000
)

type grant struct {
	principal identity.PrincipalID
	role      Role
	expires   time.Time
	csrf      string // sessions only
}

// sessions holds sign-in codes and sessions in memory: a broker that
// restarts signs everyone out.
type sessions struct {
	mu       sync.Mutex
	codes    map[string]grant
	sessions map[string]grant
}

func newSessions() *sessions {
	return &sessions{codes: map[string]grant{}, sessions: map[string]grant{}}
}

func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// sweep drops what has expired; the caller holds mu.
func (ss *sessions) sweep(now time.Time) {
	for k, g := range ss.codes {
		if !now.Before(g.expires) {
			delete(ss.codes, k)
		}
	}
	for k, g := range ss.sessions {
		if !now.Before(g.expires) {
			delete(ss.sessions, k)
		}
	}
}

func (ss *sessions) issueCode(c *Caller, now time.Time) (string, time.Time, error) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.sweep(now)
	if len(ss.codes) >= maxCodes {
		return "", time.Time{}, fmt.Errorf("too many sign-in codes are outstanding; try again in %s", CodeTTL)
	}
	code, exp := randomToken(), now.Add(CodeTTL)
	ss.codes[code] = grant{principal: c.Principal, role: c.Role, expires: exp}
	return code, exp, nil
}

// redeem exchanges a code, once, for a session.
func (ss *sessions) redeem(code string, now time.Time) (id string, g grant, err error) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	g, ok := ss.codes[code]
	delete(ss.codes, code)
	switch {
	case !ok:
		return "", g, fmt.Errorf("the sign-in code is unknown or was used already; ask for a new one (cinet console login)")
	case !now.Before(g.expires):
		return "", g, fmt.Errorf("the sign-in code expired at %s; ask for a new one (cinet console login)", g.expires.UTC().Format(time.RFC3339))
	}
	ss.sweep(now)
	if len(ss.sessions) >= maxCodes {
		return "", g, fmt.Errorf("too many console sessions are open; try again later")
	}
	id = randomToken()
	g.expires, g.csrf = now.Add(SessionTTL), randomToken()
	ss.sessions[id] = g
	return id, g, nil
}

func (ss *sessions) lookup(id string, now time.Time) (grant, bool) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	g, ok := ss.sessions[id]
	if ok && !now.Before(g.expires) {
		delete(ss.sessions, id)
		return g, false
	}
	return g, ok
}

func (ss *sessions) end(id string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	delete(ss.sessions, id)
}

// sessionCaller authenticates a request by its session cookie. A request
// that changes anything must carry the session's CSRF token.
func (s *Server) sessionCaller(w http.ResponseWriter, r *http.Request, body []byte) (*Caller, bool) {
	ck, err := r.Cookie(SessionCookie)
	if err != nil {
		return nil, false
	}
	g, ok := s.sessions.lookup(ck.Value, s.cfg.Now())
	if !ok {
		problem(w, http.StatusUnauthorized, "session-expired", "Unauthorized", "the console session has ended or expired; sign in again")
		return nil, true
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		sent := r.Header.Get(CSRFHeader)
		if sent == "" || subtle.ConstantTimeCompare([]byte(sent), []byte(g.csrf)) != 1 {
			problem(w, http.StatusForbidden, "csrf", "Forbidden", "a console request that changes something must carry the session's "+CSRFHeader+" header")
			return nil, true
		}
	}
	return &Caller{Principal: g.principal, Role: g.role, body: body, session: ck.Value}, true
}

type codeView struct {
	Code    string    `json:"code"`
	URL     string    `json:"url"`
	Expires time.Time `json:"expires"`
}

// consoleCode issues a sign-in code to the caller, who signed the request
// with its key.
func (s *Server) consoleCode(w http.ResponseWriter, r *http.Request, c *Caller) {
	if c.session != "" {
		problem(w, http.StatusForbidden, "forbidden", "Forbidden", "sign-in codes are issued to a signed request, not to a console session")
		return
	}
	code, exp, err := s.sessions.issueCode(c, s.cfg.Now())
	if err != nil {
		problem(w, http.StatusTooManyRequests, "too-many", "Too Many Requests", err.Error())
		return
	}
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
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: id, Path: "/", HttpOnly: true, Secure: r.TLS != nil,
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
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: "", Path: "/", HttpOnly: true, Secure: r.TLS != nil,
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
