package httpsig

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	. "github.com/cinet/cinet/settlement/settlementtest"

	"github.com/cinet/cinet/identity"
)

var now = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

func signed(t testing.TB, method, url string, body []byte) *http.Request {
	t.Helper()
	r, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	Sign(r, body, TenantKey, now, time.Minute)
	return r
}

func TestSignVerify(t *testing.T) {
	body := []byte(`{"kind":"Job"}`)
	r := signed(t, "POST", "http://127.0.0.1:8420/v1/jobs?wait=1", body)
	s, err := Verify(r, body, now.Add(10*time.Second))
	if err != nil || s.Signer != TenantKey.ID() || len(s.Nonce) != 32 || !s.Expires.Equal(now.Add(time.Minute)) {
		t.Fatalf("%+v %v", s, err)
	}
	for _, tc := range []struct {
		name   string
		change func(r *http.Request) []byte
		at     time.Time
		want   error
	}{
		{"body", func(r *http.Request) []byte { return []byte(`{"kind":"Offer"}`) }, now, ErrInvalid},
		{"method", func(r *http.Request) []byte { r.Method = "PUT"; return body }, now, ErrBadProof},
		{"path", func(r *http.Request) []byte { r.URL.Path = "/v1/offers"; return body }, now, ErrBadProof},
		{"query", func(r *http.Request) []byte { r.URL.RawQuery = "wait=0"; return body }, now, ErrBadProof},
		{"authority", func(r *http.Request) []byte { r.Host = "broker.example"; return body }, now, ErrBadProof},
		{"digest and body", func(r *http.Request) []byte {
			b := []byte(`{}`)
			r.Header.Set("Content-Digest", ContentDigest(b))
			return b
		}, now, ErrBadProof},
		{"signer", func(r *http.Request) []byte {
			r.Header.Set("Signature-Input", strings.Replace(r.Header.Get("Signature-Input"), TenantKey.ID().String(), ProviderKey.ID().String(), 1))
			return body
		}, now, ErrBadProof},
		{"expired", func(r *http.Request) []byte { return body }, now.Add(time.Minute), ErrExpired},
		{"from the future", func(r *http.Request) []byte { return body }, now.Add(-time.Minute), ErrInvalid},
		{"unsigned", func(r *http.Request) []byte {
			r.Header.Del("Signature")
			r.Header.Del("Signature-Input")
			return body
		}, now, ErrMissing},
		{"other components", func(r *http.Request) []byte {
			r.Header.Set("Signature-Input", strings.Replace(r.Header.Get("Signature-Input"), ` "content-digest"`, "", 1))
			return body
		}, now, ErrInvalid},
		{"other algorithm", func(r *http.Request) []byte {
			r.Header.Set("Signature-Input", strings.Replace(r.Header.Get("Signature-Input"), `alg="ed25519"`, `alg="hmac-sha256"`, 1))
			return body
		}, now, ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := signed(t, "POST", "http://127.0.0.1:8420/v1/jobs?wait=1", body)
			b := tc.change(r)
			if _, err := Verify(r, b, tc.at); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	// A signature valid for longer than MaxAge is refused.
	r, _ = http.NewRequest("GET", "http://127.0.0.1/v1/jobs", nil)
	Sign(r, nil, TenantKey, now, time.Hour)
	if s, err := Verify(r, nil, now); err != nil || !s.Expires.Equal(now.Add(MaxAge)) {
		t.Fatalf("a ttl over MaxAge is clamped when signing: %+v %v", s, err)
	}
}

// FuzzVerify: any Signature-Input and Signature either fail to verify or
// are the ones signed.
func FuzzVerify(f *testing.F) {
	r, _ := http.NewRequest("GET", "http://127.0.0.1/v1/jobs", nil)
	sign(r, nil, TenantKey, now, time.Minute, "00112233445566778899aabbccddeeff")
	input, sig := r.Header.Get("Signature-Input"), r.Header.Get("Signature")
	f.Add(input, sig)
	f.Add(strings.Replace(input, "created=", "created=0", 1), sig)
	f.Add(input+";tag=x", sig)
	f.Fuzz(func(t *testing.T, in, s string) {
		q := r.Clone(r.Context())
		q.Header.Set("Signature-Input", in)
		q.Header.Set("Signature", s)
		if _, err := Verify(q, nil, now); err == nil && (in != input || s != sig) {
			t.Fatalf("verified another spelling:\n%q\n%q", in, s)
		}
	})
}

// TestProof: a signed request's proof verifies later, as of when it was
// signed, with its body; any change to the body, the authority, the path
// or the signature makes it fail.
func TestProof(t *testing.T) {
	k := identity.NewKey(ed25519.NewKeyFromSeed(make([]byte, 32)))
	body := []byte("apiVersion: cinet/v1\nkind: Job\n")
	r := httptest.NewRequest("POST", "http://broker.example:8420/v1/jobs", nil)
	signedAt := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)
	Sign(r, body, k, signedAt, time.Minute)
	p := ProofOf(r)
	s, created, err := p.Verify(body)
	if err != nil || s.Signer != k.ID() || !created.Equal(signedAt) {
		t.Fatalf("verify: %+v %s %v", s, created, err)
	}
	for name, change := range map[string]func(p *Proof, b []byte) []byte{
		"body":      func(p *Proof, b []byte) []byte { return append(b, 'x') },
		"authority": func(p *Proof, b []byte) []byte { p.Authority = "other.example:8420"; return b },
		"path":      func(p *Proof, b []byte) []byte { p.Path = "/v1/offers"; return b },
		"method":    func(p *Proof, b []byte) []byte { p.Method = "PUT"; return b },
		"signature": func(p *Proof, b []byte) []byte { p.Signature = strings.Replace(p.Signature, "=:", "=:AA", 1); return b },
	} {
		q := *p
		b := change(&q, append([]byte(nil), body...))
		if _, _, err := q.Verify(b); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s changed: %v", name, err)
		}
	}
	if ProofOf(httptest.NewRequest("GET", "/", nil)) != nil {
		t.Error("an unsigned request has a proof")
	}
}
