// Package httpsig signs and verifies API requests with a principal's
// Ed25519 key, after RFC 9421 (HTTP Message Signatures) with RFC 9530's
// Content-Digest: the signature covers the method, the authority, the
// path, the query and the digest of the body, and carries its creation
// and expiry times, a nonce and the signer's did:key as key ID. cinet
// uses one fixed profile of the RFC (spec/api/README.md); a verifier
// refuses any other.
package httpsig

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/cinet/cinet/identity"
)

// Label is the signature's label in Signature-Input and Signature.
const Label = "cinet"

// components are the covered components, in order.
var components = []string{"@method", "@authority", "@path", "@query", "content-digest"}

// MaxAge bounds expires − created, and so how long a captured request
// could be replayed were its nonce forgotten.
const MaxAge = 5 * time.Minute

// Skew is how far in the future a signature's creation time may be.
const Skew = 30 * time.Second

// ContentDigest returns the RFC 9530 Content-Digest of a body.
func ContentDigest(body []byte) string {
	sum := sha256.Sum256(body)
	return "sha-256=:" + base64.StdEncoding.EncodeToString(sum[:]) + ":"
}

// Sign adds Content-Digest, Signature-Input and Signature headers to r for
// body (which must be r's body), valid from now for ttl (at most MaxAge).
func Sign(r *http.Request, body []byte, k *identity.Key, now time.Time, ttl time.Duration) {
	var nonce [16]byte
	rand.Read(nonce[:])
	sign(r, body, k, now, ttl, hex.EncodeToString(nonce[:]))
}

func sign(r *http.Request, body []byte, k *identity.Key, now time.Time, ttl time.Duration, nonce string) {
	if ttl <= 0 || ttl > MaxAge {
		ttl = MaxAge
	}
	r.Header.Set("Content-Digest", ContentDigest(body))
	params := fmt.Sprintf(`(%s);created=%d;expires=%d;nonce="%s";keyid="%s";alg="ed25519"`,
		quoteList(components), now.Unix(), now.Add(ttl).Unix(), nonce, k.ID())
	sig := k.Sign(base(r, params))
	r.Header.Set("Signature-Input", Label+"="+params)
	r.Header.Set("Signature", Label+"=:"+base64.StdEncoding.EncodeToString(sig)+":")
}

func quoteList(items []string) string {
	q := make([]string, len(items))
	for i, s := range items {
		q[i] = strconv.Quote(s)
	}
	return strings.Join(q, " ")
}

// base is the RFC 9421 signature base of r for the signature parameters.
func base(r *http.Request, params string) []byte {
	query := "?" + r.URL.RawQuery
	host := r.Host
	if host == "" {
		host = r.URL.Host
	}
	path := r.URL.EscapedPath()
	if path == "" {
		path = "/"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\"@method\": %s\n", r.Method)
	fmt.Fprintf(&b, "\"@authority\": %s\n", strings.ToLower(host))
	fmt.Fprintf(&b, "\"@path\": %s\n", path)
	fmt.Fprintf(&b, "\"@query\": %s\n", query)
	fmt.Fprintf(&b, "\"content-digest\": %s\n", r.Header.Get("Content-Digest"))
	fmt.Fprintf(&b, "\"@signature-params\": %s", params)
	return []byte(b.String())
}

// A Signed is what a verified signature says.
type Signed struct {
	Signer  identity.PrincipalID
	Nonce   string
	Expires time.Time
	digest  string // the Content-Digest signed
}

// Errors a verifier returns; every one wraps ErrInvalid.
var (
	ErrInvalid  = errors.New("httpsig: invalid request signature")
	ErrExpired  = fmt.Errorf("%w: expired", ErrInvalid)
	ErrMissing  = fmt.Errorf("%w: the request is not signed", ErrInvalid)
	ErrBadProof = fmt.Errorf("%w: the signature does not verify", ErrInvalid)
)

// Verify checks r's signature over body at now. The caller checks that
// the signed authority (r.Host) is its own, and that the nonce has not
// been seen before (until Expires).
func Verify(r *http.Request, body []byte, now time.Time) (*Signed, error) {
	signed, err := VerifyHeaders(r, now)
	if err != nil {
		return nil, err
	}
	if err := signed.CheckBody(body); err != nil {
		return nil, err
	}
	return signed, nil
}

// CheckBody checks that body is the one the verified signature covers,
// by the Content-Digest header it signed.
func (s *Signed) CheckBody(body []byte) error {
	if s.digest != ContentDigest(body) {
		return fmt.Errorf("%w: Content-Digest does not match the body", ErrInvalid)
	}
	return nil
}

// VerifyHeaders checks r's signature at now from its headers alone: the
// signature covers the Content-Digest header, not the body, so a server
// can refuse a request that is not signed by a principal it knows before
// it reads a byte of the body. The body must then be checked with
// CheckBody before the request is acted on.
func VerifyHeaders(r *http.Request, now time.Time) (*Signed, error) {
	inputs, sigs := r.Header.Values("Signature-Input"), r.Header.Values("Signature")
	if len(inputs) == 0 && len(sigs) == 0 {
		return nil, ErrMissing
	}
	if len(inputs) != 1 || len(sigs) != 1 {
		return nil, fmt.Errorf("%w: want exactly one Signature-Input and one Signature header, got %d and %d", ErrInvalid, len(inputs), len(sigs))
	}
	input, sigHeader := inputs[0], sigs[0]
	params, ok := strings.CutPrefix(input, Label+"=")
	if !ok || strings.Contains(input, ",") {
		return nil, fmt.Errorf("%w: want one signature labelled %q in Signature-Input", ErrInvalid, Label)
	}
	p, err := parseParams(params)
	if err != nil {
		return nil, err
	}
	rawSig, ok := strings.CutPrefix(sigHeader, Label+"=:")
	if !ok || !strings.HasSuffix(rawSig, ":") {
		return nil, fmt.Errorf("%w: the Signature header must read %s=:BASE64: (the signature in base64 between colons)", ErrInvalid, Label)
	}
	sig, err := base64.StdEncoding.Strict().DecodeString(strings.TrimSuffix(rawSig, ":"))
	if err != nil || len(sig) != ed25519.SignatureSize {
		return nil, fmt.Errorf("%w: the signature is not 64 bytes of base64", ErrInvalid)
	}
	created, expires := time.Unix(p.created, 0), time.Unix(p.expires, 0)
	switch {
	case created.After(now.Add(Skew)):
		return nil, fmt.Errorf("%w: created %s, in the future", ErrInvalid, created.UTC().Format(time.RFC3339))
	case !expires.After(now):
		return nil, fmt.Errorf("%w at %s", ErrExpired, expires.UTC().Format(time.RFC3339))
	case expires.Sub(created) > MaxAge || !expires.After(created):
		return nil, fmt.Errorf("%w: a signature is valid for at most %s", ErrInvalid, MaxAge)
	}
	digest := r.Header.Get("Content-Digest")
	if !strings.HasPrefix(digest, "sha-256=:") {
		return nil, fmt.Errorf("%w: want a Content-Digest header of the body's sha-256", ErrInvalid)
	}
	signer, err := identity.ParsePrincipalID(p.keyid)
	if err != nil {
		return nil, fmt.Errorf("%w: keyid: %v", ErrInvalid, err)
	}
	if !signer.Verify(base(r, params), sig) {
		return nil, ErrBadProof
	}
	return &Signed{Signer: signer, Nonce: p.nonce, Expires: expires, digest: digest}, nil
}

type sigParams struct {
	created, expires int64
	nonce, keyid     string
}

// parseParams reads the one profile cinet signs: the component list, then
// created, expires, nonce, keyid and alg, in that order.
func parseParams(s string) (*sigParams, error) {
	bad := func(why string) (*sigParams, error) {
		return nil, fmt.Errorf("%w: Signature-Input: %s", ErrInvalid, why)
	}
	list := "(" + quoteList(components) + ")"
	rest, ok := strings.CutPrefix(s, list)
	if !ok {
		return bad("the covered components must be " + list)
	}
	p := &sigParams{}
	for i, name := range []string{"created", "expires", "nonce", "keyid", "alg"} {
		rest, ok = strings.CutPrefix(rest, ";"+name+"=")
		if !ok {
			return bad("want the parameters created, expires, nonce, keyid and alg, in that order")
		}
		end := strings.IndexByte(rest, ';')
		if end < 0 {
			end = len(rest)
		}
		v := rest[:end]
		rest = rest[end:]
		switch i {
		case 0, 1:
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 || strconv.FormatInt(n, 10) != v {
				return bad(name + " is not a whole number of seconds")
			}
			if i == 0 {
				p.created = n
			} else {
				p.expires = n
			}
		default:
			if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' || strings.ContainsAny(v[1:len(v)-1], `"\`) {
				return bad(name + " is not a quoted string")
			}
			v = v[1 : len(v)-1]
			switch name {
			case "nonce":
				if len(v) < 16 || len(v) > 64 {
					return bad("the nonce is 16 to 64 characters")
				}
				p.nonce = v
			case "keyid":
				p.keyid = v
			case "alg":
				if v != "ed25519" {
					return bad(`alg must be "ed25519"`)
				}
			}
		}
	}
	if rest != "" {
		return bad("unexpected text after the parameters")
	}
	return p, nil
}

// A Proof is a signed request as a third party can check it later: the
// covered components and the two signature headers. With the body, it
// shows that the signer asked for exactly this, of the authority named.
type Proof struct {
	Method         string `json:"method"`
	Authority      string `json:"authority"`
	Path           string `json:"path"`
	Query          string `json:"query,omitempty"`
	ContentDigest  string `json:"contentDigest"`
	SignatureInput string `json:"signatureInput"`
	Signature      string `json:"signature"`
}

// ProofOf captures a signed request's proof; nil when it is not signed.
func ProofOf(r *http.Request) *Proof {
	if r.Header.Get("Signature") == "" {
		return nil
	}
	host := r.Host
	if host == "" {
		host = r.URL.Host
	}
	return &Proof{Method: r.Method, Authority: strings.ToLower(host), Path: r.URL.EscapedPath(), Query: r.URL.RawQuery,
		ContentDigest: r.Header.Get("Content-Digest"), SignatureInput: r.Header.Get("Signature-Input"), Signature: r.Header.Get("Signature")}
}

// Verify checks the proof over body as of when it was signed: the
// signature, its validity period and the body's digest. The nonce is not
// checked: the request was received once, by the authority it names.
func (p *Proof) Verify(body []byte) (*Signed, time.Time, error) {
	params, ok := strings.CutPrefix(p.SignatureInput, Label+"=")
	if !ok {
		return nil, time.Time{}, fmt.Errorf("%w: want one signature labelled %q", ErrInvalid, Label)
	}
	sp, err := parseParams(params)
	if err != nil {
		return nil, time.Time{}, err
	}
	r := &http.Request{Method: p.Method, Host: p.Authority, URL: &url.URL{RawPath: p.Path, Path: p.Path, RawQuery: p.Query}, Header: http.Header{}}
	if unescaped, err := url.PathUnescape(p.Path); err == nil {
		r.URL.Path = unescaped
	}
	r.Header.Set("Content-Digest", p.ContentDigest)
	r.Header.Set("Signature-Input", p.SignatureInput)
	r.Header.Set("Signature", p.Signature)
	created := time.Unix(sp.created, 0).UTC()
	signed, err := Verify(r, body, created)
	return signed, created, err
}
