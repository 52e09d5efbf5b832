package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// The certificates of 'cinet dev --tls': a CA of the data directory's own
// (DATA/ca.pem, which clients trust with --ca; its key beside it, the
// owner's alone) and a certificate per broker for the loopback names its
// API is reached by. They are made once and kept with the data; a
// certificate within a day of its end is made again.

const devCertLife = 30 * 24 * time.Hour

// devCA loads DATA/ca.pem and DATA/ca.key, making them on first use.
func devCA(dataDir string) (*x509.Certificate, crypto.Signer, string, error) {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, nil, "", err
	}
	certFile, keyFile := filepath.Join(dataDir, "ca.pem"), filepath.Join(dataDir, "ca.key")
	cert, key, err := loadPair(certFile, keyFile)
	if err == nil && time.Until(cert.NotAfter) > 24*time.Hour {
		return cert, key, certFile, nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, nil, "", fmt.Errorf("the dev CA in %s: %w", dataDir, err)
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, "", err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: "cinet dev CA " + filepath.Base(dataDir)},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(devCertLife),
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, BasicConstraintsValid: true, IsCA: true, MaxPathLenZero: true,
	}
	if cert, err = writePair(certFile, keyFile, tmpl, tmpl, k, k); err != nil {
		return nil, nil, "", err
	}
	return cert, k, certFile, nil
}

// devCert writes DIR/tls.crt and DIR/tls.key: a certificate for
// 127.0.0.1, ::1 and localhost signed by the dev CA.
func devCert(dir string, ca *x509.Certificate, caKey crypto.Signer) (certFile, keyFile string, err error) {
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if cert, _, err := loadPair(certFile, keyFile); err == nil && time.Until(cert.NotAfter) > 24*time.Hour && cert.CheckSignatureFrom(ca) == nil {
		return certFile, keyFile, nil
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: "cinet dev broker"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(devCertLife),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	if _, err := writePair(certFile, keyFile, tmpl, ca, k, caKey); err != nil {
		return "", "", err
	}
	return certFile, keyFile, nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n
}

// writePair signs tmpl with signerKey as parent and writes the
// certificate and key as PEM; the key is the owner's alone.
func writePair(certFile, keyFile string, tmpl, parent *x509.Certificate, key *ecdsa.PrivateKey, signerKey crypto.Signer) (*x509.Certificate, error) {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), signerKey)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

// loadPair reads a PEM certificate and its PKCS #8 key.
func loadPair(certFile, keyFile string) (*x509.Certificate, crypto.Signer, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, nil, err
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, nil, err
	}
	cb, _ := pem.Decode(certPEM)
	kb, _ := pem.Decode(keyPEM)
	if cb == nil || kb == nil {
		return nil, nil, fmt.Errorf("%s or %s is not PEM", certFile, keyFile)
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, nil, err
	}
	k, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		return nil, nil, err
	}
	signer, ok := k.(crypto.Signer)
	if !ok {
		return nil, nil, fmt.Errorf("%s holds no signing key", keyFile)
	}
	return cert, signer, nil
}
