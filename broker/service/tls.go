package service

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"

	"github.com/cinet/cinet/broker/client"
)

// TLSConf is the tls section of a broker's configuration: the API (and
// the console) is served over HTTPS with a certificate from files, which
// are read again when they change, or obtained through ACME.
type TLSConf struct {
	// Cert and Key are PEM files: the certificate chain and its private
	// key. A changed pair is used from the next connection on; a pair
	// that does not load leaves the last good one in use, and is logged.
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
	// ACME obtains and renews certificates automatically instead.
	ACME *ACMEConf `yaml:"acme"`
}

// ACMEConf obtains certificates from an ACME authority (RFC 8555) for
// the broker's public names.
type ACMEConf struct {
	// Domains are the names certificates are obtained for; required.
	Domains []string `yaml:"domains"`
	// Email is the account's contact, for the authority's notices.
	Email string `yaml:"email"`
	// Directory is the authority's directory URL (default Let's
	// Encrypt's).
	Directory string `yaml:"directory"`
	// DirectoryCA is a PEM file of CA certificates trusted for the
	// authority's own HTTPS, besides the system's: for a private
	// authority.
	DirectoryCA string `yaml:"directoryCA"`
	// Cache keeps the account key and certificates (default
	// DATA/acme).
	Cache string `yaml:"cache"`
	// HTTPListen, when set, answers the authority's HTTP-01 challenges
	// there (it must be port 80 of the names, as the authority sees
	// them); without it, TLS-ALPN-01 challenges are answered on the API's
	// own listener, which must then be port 443 of the names.
	HTTPListen string `yaml:"httpListen"`
}

// serverTLS is the API's TLS: its configuration, and for ACME the
// challenge handler to serve on HTTPListen.
type serverTLS struct {
	config     *tls.Config
	acmeHTTP   *autocert.Manager
	httpListen string
}

// newServerTLS reads a tls section; data is the broker's data directory.
func (c *Config) newServerTLS(data string, log *slog.Logger) (*serverTLS, error) {
	t := c.TLS
	files := t.Cert != "" || t.Key != ""
	switch {
	case files && t.ACME != nil:
		return nil, errors.New("service: tls: give cert and key, or acme, not both")
	case files && (t.Cert == "" || t.Key == ""):
		return nil, errors.New("service: tls: give both cert and key (PEM files)")
	case files:
		fc := &fileCert{cert: c.path(t.Cert), key: c.path(t.Key), log: log}
		if _, err := fc.get(nil); err != nil {
			return nil, fmt.Errorf("service: tls: %w", err)
		}
		return &serverTLS{config: &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: fc.get}}, nil
	case t.ACME != nil:
		a := t.ACME
		if len(a.Domains) == 0 {
			return nil, errors.New("service: tls: acme: list the domains to obtain certificates for")
		}
		cache := c.path(a.Cache)
		if cache == "" {
			cache = filepath.Join(data, "acme")
		}
		ac := &acme.Client{DirectoryURL: a.Directory}
		if a.DirectoryCA != "" {
			hc, err := client.HTTPWithCA(c.path(a.DirectoryCA))
			if err != nil {
				return nil, fmt.Errorf("service: tls: acme: directoryCA: %w", err)
			}
			ac.HTTPClient = hc
		}
		m := &autocert.Manager{
			Prompt: autocert.AcceptTOS, Cache: autocert.DirCache(cache), HostPolicy: autocert.HostWhitelist(a.Domains...),
			Email: a.Email, Client: ac,
		}
		cfg := m.TLSConfig()
		cfg.MinVersion = tls.VersionTLS12
		st := &serverTLS{config: cfg}
		if a.HTTPListen != "" {
			st.acmeHTTP, st.httpListen = m, a.HTTPListen
		}
		return st, nil
	}
	return nil, errors.New("service: tls: give cert and key (PEM files), or acme")
}

// fileCert serves a certificate from files, loading them again when
// either changes.
type fileCert struct {
	cert, key string
	log       *slog.Logger

	mu        sync.Mutex
	loaded    *tls.Certificate
	certStamp stamp
	keyStamp  stamp
}

// stamp is what tells that a file changed.
type stamp struct {
	mod  time.Time
	size int64
}

func stampOf(path string) (stamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return stamp{}, err
	}
	return stamp{fi.ModTime(), fi.Size()}, nil
}

// get implements tls.Config.GetCertificate.
func (f *fileCert) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	cs, cerr := stampOf(f.cert)
	ks, kerr := stampOf(f.key)
	if f.loaded != nil && cerr == nil && kerr == nil && cs == f.certStamp && ks == f.keyStamp {
		return f.loaded, nil
	}
	err := errors.Join(cerr, kerr)
	if err == nil {
		var pair tls.Certificate
		if pair, err = tls.LoadX509KeyPair(f.cert, f.key); err == nil {
			f.loaded, f.certStamp, f.keyStamp = &pair, cs, ks
			if f.log != nil {
				f.log.Info("TLS certificate loaded", "cert", f.cert, "expires", pair.Leaf.NotAfter)
			}
			return f.loaded, nil
		}
	}
	if f.loaded == nil {
		return nil, fmt.Errorf("loading the certificate %s and key %s: %w", f.cert, f.key, err)
	}
	// Half-written files, or a pair replaced out of step: keep the last
	// good one, and say so once per change.
	if f.log != nil && (cs != f.certStamp || ks != f.keyStamp) {
		f.log.Warn("the TLS certificate files changed but do not load; serving the last good certificate", "cert", f.cert, "err", err)
		f.certStamp, f.keyStamp = cs, ks
	}
	return f.loaded, nil
}
