package service_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cinet/cinet/broker/api"
	"github.com/cinet/cinet/broker/httpsig"
	"github.com/cinet/cinet/broker/service"
	"github.com/cinet/cinet/identity"
)

// selfSigned writes a self-signed certificate for 127.0.0.1 named cn, and
// its key, to certFile and keyFile (each written whole, then renamed into
// place), and returns the certificate.
func selfSigned(t *testing.T, cn, certFile, keyFile string) *x509.Certificate {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalPKCS8PrivateKey(k)
	for file, b := range map[string]*pem.Block{keyFile: {Type: "PRIVATE KEY", Bytes: keyDER}, certFile: {Type: "CERTIFICATE", Bytes: der}} {
		if err := os.WriteFile(file+".new", pem.EncodeToMemory(b), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(file+".new", file); err != nil {
			t.Fatal(err)
		}
	}
	cert, _ := x509.ParseCertificate(der)
	return cert
}

// TestTLS: a broker serves its API over HTTPS from certificate files,
// with HSTS; a certificate replaced on disk is served from the next
// connection on, and files that do not load leave the last good one in
// use; a client that does not trust the certificate is refused; the
// console's session cookie is __Host- and Secure.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	if err := identity.WriteKeyFile(filepath.Join(dir, "broker.key"), operatorKey); err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	first := selfSigned(t, "first", certFile, keyFile)
	svc := runBroker(t, dir, fmt.Sprintf(`region: cn-east-1
data: %s
listen: 127.0.0.1:0
tls: {cert: %s, key: %s}
principals:
  - {did: %s, role: tenant}
`, dir, certFile, keyFile, tenantKey.ID()))
	if !strings.HasPrefix(svc.URL(), "https://") {
		t.Fatalf("the URL of a broker under TLS: %s", svc.URL())
	}
	pool := x509.NewCertPool()
	pool.AddCert(first)
	// served gets /healthz on a new connection and returns the name of the
	// certificate it was served.
	served := func(pool *x509.CertPool) (string, http.Header, error) {
		hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, DisableKeepAlives: true}}
		resp, err := hc.Get(svc.URL() + "/healthz")
		if err != nil {
			return "", nil, err
		}
		resp.Body.Close()
		return resp.TLS.PeerCertificates[0].Subject.CommonName, resp.Header, nil
	}
	cn, hdr, err := served(pool)
	if err != nil || cn != "first" {
		t.Fatalf("the first certificate: %q %v", cn, err)
	}
	if got := hdr.Get("Strict-Transport-Security"); got != "max-age=31536000" {
		t.Errorf("Strict-Transport-Security: %q", got)
	}
	// A client that does not trust it.
	if _, _, err := served(x509.NewCertPool()); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("a client without the broker's CA: %v", err)
	}

	// The pair replaced: served from the next connection on.
	second := selfSigned(t, "second", certFile, keyFile)
	pool.AddCert(second)
	waitFor(t, "the replaced certificate served", func() bool {
		cn, _, err := served(pool)
		return err == nil && cn == "second"
	})
	// Files that do not load: the last good certificate stays.
	if err := os.WriteFile(certFile, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if cn, _, err := served(pool); err != nil || cn != "second" {
			t.Fatalf("after the certificate file was spoiled: %q %v", cn, err)
		}
	}

	// The console's cookie over TLS.
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	req, _ := http.NewRequest("POST", svc.URL()+"/v1/console/codes", nil)
	httpsig.Sign(req, nil, tenantKey, time.Now(), time.Minute)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var code struct{ Code, URL string }
	json.NewDecoder(resp.Body).Decode(&code)
	resp.Body.Close()
	if !strings.HasPrefix(code.URL, "https://") {
		t.Errorf("the sign-in link under TLS: %q", code.URL)
	}
	resp, err = hc.Post(svc.URL()+"/v1/console/session", "application/json", strings.NewReader(`{"code": "`+code.Code+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cookies := resp.Cookies()
	if len(cookies) != 1 || cookies[0].Name != api.SecureSessionCookie || !cookies[0].Secure || cookies[0].Domain != "" || cookies[0].Path != "/" {
		t.Fatalf("the session cookie under TLS: %+v", cookies)
	}
}

// TestTLSConfig: a tls section that cannot work is refused when the
// broker starts, naming what is wrong; one for ACME is taken without
// reaching the authority (it is asked when a name is first served).
func TestTLSConfig(t *testing.T) {
	dir := t.TempDir()
	if err := identity.WriteKeyFile(filepath.Join(dir, "broker.key"), operatorKey); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ tls, want string }{
		{"{cert: c.pem}", "both cert and key"},
		{"{cert: c.pem, key: k.pem, acme: {domains: [x.example]}}", "not both"},
		{"{cert: missing.pem, key: missing.key}", "missing.pem"},
		{"{acme: {email: ops@example.com}}", "domains"},
		{"{}", "cert and key"},
		{"{acme: {domains: [broker.example.com], directory: 'https://127.0.0.1:1/dir'}}", ""},
	} {
		path := filepath.Join(dir, "broker.yaml")
		cfg := fmt.Sprintf("region: r\ndata: %s\nlisten: 127.0.0.1:0\ntls: %s\n", dir, tc.tls)
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := service.LoadConfig(path)
		if err != nil {
			t.Fatal(err)
		}
		svc, err := service.New(context.Background(), c, slog.New(slog.DiscardHandler))
		if tc.want == "" {
			if err != nil {
				t.Errorf("tls %s: %v", tc.tls, err)
				continue
			}
			// Run and stop it, so that it closes what it opened.
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- svc.Run(ctx) }()
			cancel()
			<-done
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("tls %s: %v, want an error naming %q", tc.tls, err, tc.want)
		}
	}
}

// TestACME: a broker whose tls section names an ACME authority obtains a
// certificate for its name from it the first time the name is asked for,
// and serves it. The authority is Pebble, Let's Encrypt's test server
// ($CINET_TEST_PEBBLE, which .ci/run builds), told to take every
// challenge as met.
func TestACME(t *testing.T) {
	pebble := os.Getenv("CINET_TEST_PEBBLE")
	if pebble == "" {
		if os.Getenv("CINET_TEST_PEBBLE_REQUIRED") != "" {
			t.Fatal("CINET_TEST_PEBBLE is not set, and the ACME test is required")
		}
		t.Skip("set CINET_TEST_PEBBLE to a pebble binary (go install github.com/letsencrypt/pebble/v2/cmd/pebble)")
	}
	dir := t.TempDir()
	// Pebble's own HTTPS, under a certificate of the test's.
	pebbleCert, pebbleKey := filepath.Join(dir, "pebble.crt"), filepath.Join(dir, "pebble.key")
	selfSigned(t, "pebble", pebbleCert, pebbleKey)
	port := func() int {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().(*net.TCPAddr).Port
	}
	api, mgmt := port(), port()
	conf := fmt.Sprintf(`{"pebble": {"listenAddress": "127.0.0.1:%d", "managementListenAddress": "127.0.0.1:%d",
		"certificate": %q, "privateKey": %q, "httpPort": %d, "tlsPort": %d,
		"externalAccountBindingRequired": false, "keyAlgorithm": "ecdsa",
		"profiles": {"default": {"description": "default", "validityPeriod": 7776000}}}}`, api, mgmt, pebbleCert, pebbleKey, port(), port())
	confFile := filepath.Join(dir, "pebble.json")
	if err := os.WriteFile(confFile, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(pebble, "-config", confFile)
	cmd.Env = append(os.Environ(), "PEBBLE_VA_ALWAYS_VALID=1", "PEBBLE_WFE_NONCEREJECT=0", "PEBBLE_VA_NOSLEEP=1")
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	trustPebble := x509.NewCertPool()
	pemBytes, _ := os.ReadFile(pebbleCert)
	trustPebble.AppendCertsFromPEM(pemBytes)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: trustPebble}}}
	waitFor(t, "pebble answering", func() bool {
		resp, err := hc.Get(fmt.Sprintf("https://127.0.0.1:%d/dir", api))
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == 200
	})

	if err := identity.WriteKeyFile(filepath.Join(dir, "broker.key"), operatorKey); err != nil {
		t.Fatal(err)
	}
	svc := runBroker(t, dir, fmt.Sprintf(`region: cn-east-1
data: %s
listen: 127.0.0.1:0
tls:
  acme: {domains: [broker.test], email: ops@broker.test, directory: "https://127.0.0.1:%d/dir", directoryCA: %s}
`, dir, api, pebbleCert))

	// The roots pebble issues under, from its management API.
	resp, err := hc.Get(fmt.Sprintf("https://127.0.0.1:%d/roots/0", mgmt))
	if err != nil {
		t.Fatal(err)
	}
	root, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(root) {
		t.Fatalf("pebble's root: %q", root)
	}
	broker := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: "broker.test"}}}
	resp, err = broker.Get(svc.URL() + "/healthz")
	if err != nil {
		t.Fatalf("the broker's certificate from the ACME authority: %v\npebble: %s", err, logs.String())
	}
	resp.Body.Close()
	if names := resp.TLS.PeerCertificates[0].DNSNames; len(names) != 1 || names[0] != "broker.test" {
		t.Fatalf("the certificate names %v", names)
	}
	// A name the broker was not configured for is refused.
	other := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: "other.test"}}}
	if _, err := other.Get(svc.URL() + "/healthz"); err == nil {
		t.Fatal("a certificate was obtained for a name not configured")
	}
	if _, err := os.Stat(filepath.Join(dir, "acme", "broker.test")); err != nil {
		t.Errorf("the certificate is not kept in DATA/acme: %v", err)
	}
}
