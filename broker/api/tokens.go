package api

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/cinet/cinet/identity"
)

// TokenPayloadType is the envelope payload type of API tokens.
const TokenPayloadType = "application/vnd.cinet.api-token.v1+json"

// MaxTokenTTL bounds how long a token is valid.
const MaxTokenTTL = 90 * 24 * time.Hour

type tokenClaims struct {
	Principal identity.PrincipalID `json:"principal"`
	Role      Role                 `json:"role"`
}

// IssueToken signs a token with the broker's key that lets principal call
// the API as role until now+ttl. A token is a bearer credential: whoever
// holds it acts as the principal. It cannot be revoked before it expires.
func IssueToken(broker *identity.Key, principal identity.PrincipalID, role Role, now time.Time, ttl time.Duration) (string, time.Time, error) {
	if _, err := ParseRole(string(role)); err != nil {
		return "", time.Time{}, err
	}
	if ttl <= 0 || ttl > MaxTokenTTL {
		return "", time.Time{}, fmt.Errorf("api: a token is valid for up to %s", MaxTokenTTL)
	}
	expires := now.Add(ttl).UTC().Truncate(time.Second)
	env, err := identity.SealJSON(broker, TokenPayloadType, tokenClaims{principal, role}, identity.SealOptions{Expires: expires})
	if err != nil {
		return "", time.Time{}, err
	}
	return base64.RawURLEncoding.EncodeToString(env.Encode()), expires, nil
}

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
	return &Caller{Principal: c.Principal, Role: c.Role}, nil
}

func (s *Server) issueToken(w http.ResponseWriter, r *http.Request, c *Caller) {
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
	ttl := 24 * time.Hour
	if req.TTL != "" {
		if ttl, err = time.ParseDuration(req.TTL); err != nil {
			problem(w, http.StatusUnprocessableEntity, "invalid", "Unprocessable Content", "ttl: "+err.Error())
			return
		}
	}
	tok, expires, err := IssueToken(s.cfg.Key, id, role, s.cfg.Now(), ttl)
	if err != nil {
		problem(w, http.StatusUnprocessableEntity, "invalid", "Unprocessable Content", err.Error())
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"token": tok, "principal": id, "role": role, "expires": expires})
}
