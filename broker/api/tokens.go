package api

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	v1 "github.com/cinet/cinet/broker/api/v1"
	"github.com/cinet/cinet/broker/store"
	"github.com/cinet/cinet/identity"
)

// TokenPayloadType is the envelope payload type of API tokens.
const TokenPayloadType = "application/vnd.cinet.api-token.v1+json"

// MaxTokenTTL bounds how long a token is valid; a broker's configuration
// may bound it more (Config.TokenMaxTTL).
const MaxTokenTTL = 90 * 24 * time.Hour

type tokenClaims struct {
	ID        string               `json:"id"`
	Principal identity.PrincipalID `json:"principal"`
	Role      Role                 `json:"role"`
}

// An IssuedToken is a token and what it grants.
type IssuedToken = v1.IssuedToken

// IssueToken signs a token with the broker's key that lets principal call
// the API as role until now+ttl, and until it is revoked. A token is a
// bearer credential: whoever holds it acts as the principal. The broker
// takes a token only while it holds its record (store.TokenRow), which
// Server.issueToken keeps.
func IssueToken(broker *identity.Key, principal identity.PrincipalID, role Role, now time.Time, ttl time.Duration) (*IssuedToken, error) {
	if _, err := ParseRole(string(role)); err != nil {
		return nil, err
	}
	if ttl <= 0 || ttl > MaxTokenTTL {
		return nil, fmt.Errorf("api: a token is valid for up to %s", MaxTokenTTL)
	}
	var id [16]byte
	rand.Read(id[:])
	t := &IssuedToken{ID: "tok-" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(id[:])),
		Principal: principal, Role: role, Expires: now.Add(ttl).UTC().Truncate(time.Second)}
	env, err := identity.SealJSON(broker, TokenPayloadType, tokenClaims{t.ID, principal, role}, identity.SealOptions{Expires: t.Expires})
	if err != nil {
		return nil, err
	}
	t.Token = base64.RawURLEncoding.EncodeToString(env.Encode())
	return t, nil
}

// verifyToken checks a token's signature and expiry, then that the broker
// issued it and has not revoked it: every request, against the store
// (through a cache that revocation clears).
func (s *Server) verifyToken(ctx context.Context, tok string, now time.Time) (*Caller, error) {
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return nil, errors.New("the token is not base64url")
	}
	env, err := identity.Open(raw, identity.Verification{PayloadType: TokenPayloadType, Signers: identity.Signers(s.cfg.Key.ID()), Now: now})
	if err != nil {
		return nil, fmt.Errorf("the token does not verify: %v", err)
	}
	if env.Expires.IsZero() {
		return nil, errors.New("the token has no expiry")
	}
	var c tokenClaims
	if err := json.Unmarshal(env.Payload, &c); err != nil || c.Principal.IsZero() {
		return nil, errors.New("the token's claims do not decode")
	}
	if _, err := ParseRole(string(c.Role)); err != nil {
		return nil, err
	}
	if c.ID == "" {
		return nil, errors.New("the token was issued before tokens could be revoked, and is no longer accepted; ask the operator for a new one (cinet token issue)")
	}
	row, err := s.tokenRecord(ctx, c.ID)
	switch {
	case errors.Is(err, store.ErrNoToken):
		return nil, fmt.Errorf("token %s is unknown to this broker: revoked and forgotten, or never issued here", c.ID)
	case err != nil:
		return nil, fmt.Errorf("the broker cannot check token %s now; try again", c.ID)
	case !row.Revoked.IsZero():
		return nil, fmt.Errorf("token %s was revoked at %s", c.ID, row.Revoked.Format(time.RFC3339))
	case row.Principal != c.Principal.String() || row.Role != string(c.Role):
		return nil, fmt.Errorf("token %s does not match the broker's record of it", c.ID)
	}
	return &Caller{Principal: c.Principal, Role: c.Role}, nil
}

// tokenRecord reads a token's record: from the cache of good ones, or the
// store.
func (s *Server) tokenRecord(ctx context.Context, id string) (*store.TokenRow, error) {
	if row, ok := s.tokens.Load(id); ok {
		return row.(*store.TokenRow), nil
	}
	row, err := s.cfg.Store.Token(ctx, id)
	if err != nil {
		return nil, err
	}
	if row.Revoked.IsZero() {
		s.tokens.Store(id, row)
	}
	return row, nil
}

// issueToken mints a token. Only a signed request may: a token or a
// console session, which a thief could hold, cannot mint the next.
func (s *Server) issueToken(w http.ResponseWriter, r *http.Request, c *Caller) {
	if c.proof == nil {
		problem(w, http.StatusForbidden, "forbidden", "Forbidden", "tokens are issued only to a request signed with the operator's key, not to a token or a console session")
		return
	}
	var req struct {
		Principal string `json:"principal"`
		Role      string `json:"role"`
		TTL       string `json:"ttl"`
	}
	if err := json.Unmarshal(c.body, &req); err != nil {
		problem(w, http.StatusBadRequest, "bad-request", "Bad Request", "want {\"principal\": DID, \"role\": ROLE, \"ttl\": DURATION}: "+err.Error())
		return
	}
	id, err := identity.ParsePrincipalID(req.Principal)
	if err != nil {
		problem(w, http.StatusUnprocessableEntity, "invalid", "Unprocessable Content", "principal: "+err.Error())
		return
	}
	role, err := ParseRole(req.Role)
	if err != nil {
		problem(w, http.StatusUnprocessableEntity, "invalid", "Unprocessable Content", err.Error())
		return
	}
	ttl := min(24*time.Hour, s.cfg.TokenMaxTTL)
	if req.TTL != "" {
		if ttl, err = time.ParseDuration(req.TTL); err != nil {
			problem(w, http.StatusUnprocessableEntity, "invalid", "Unprocessable Content", "ttl: "+err.Error())
			return
		}
	}
	if ttl > s.cfg.TokenMaxTTL {
		problem(w, http.StatusUnprocessableEntity, "invalid", "Unprocessable Content",
			fmt.Sprintf("ttl %s: this broker issues tokens for up to %s", ttl, s.cfg.TokenMaxTTL))
		return
	}
	now := s.cfg.Now()
	tok, err := IssueToken(s.cfg.Key, id, role, now, ttl)
	if err != nil {
		problem(w, http.StatusUnprocessableEntity, "invalid", "Unprocessable Content", err.Error())
		return
	}
	if err := s.cfg.Store.PutToken(r.Context(), &store.TokenRow{ID: tok.ID, Principal: id.String(), Role: string(role), Issued: now.UTC(), Expires: tok.Expires}); err != nil {
		s.internal(w, r, err)
		return
	}
	s.cfg.Log.Info("token issued", "token", tok.ID, "principal", id, "role", role, "expires", tok.Expires, "by", c.Principal)
	writeJSON(w, http.StatusCreated, tok)
}

// listTokens lists the tokens that have not expired, revoked or not.
func (s *Server) listTokens(w http.ResponseWriter, r *http.Request, c *Caller) {
	rows, err := s.cfg.Store.Tokens(r.Context(), s.cfg.Now())
	if err != nil {
		s.internal(w, r, err)
		return
	}
	out := make([]v1.TokenRecord, len(rows))
	for i, row := range rows {
		out[i] = tokenRecord(row)
	}
	writeJSON(w, http.StatusOK, map[string]any{"tokens": out})
}

// revokeToken revokes a token: from this request on, the broker refuses
// it. The principal's console sessions end with it, since a session may
// have been opened with a code the token asked for.
func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request, c *Caller) {
	id := r.PathValue("id")
	row, err := s.cfg.Store.RevokeToken(r.Context(), id, s.cfg.Now().UTC())
	if errors.Is(err, store.ErrNoToken) {
		problem(w, http.StatusNotFound, "token-not-found", "Not Found", fmt.Sprintf("no token %s is recorded (an expired token is forgotten)", id))
		return
	}
	if err != nil {
		s.internal(w, r, err)
		return
	}
	s.tokens.Delete(id)
	if p, err := identity.ParsePrincipalID(row.Principal); err == nil {
		s.sessions.endAll(p)
	}
	s.cfg.Log.Info("token revoked", "token", id, "principal", row.Principal, "by", c.Principal)
	writeJSON(w, http.StatusOK, tokenRecord(row))
}

// tokenRecord is a token's row as the API shows it.
func tokenRecord(r *store.TokenRow) v1.TokenRecord {
	return v1.TokenRecord{ID: r.ID, Principal: r.Principal, Role: r.Role, Issued: r.Issued, Expires: r.Expires, Revoked: r.Revoked}
}
