package identity

import (
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"strings"
)

// A ComputeID names a pool of compute: whose it is, where it is and which
// pool. Its canonical text form (ABNF in spec/identifiers.md) is
//
//	ci:<provider>/<region>/<zone>/<pool>[;<alias-scheme>=<alias-code>]
//
// for example
//
//	ci:ybndrfg8ejkmcpqxot1uwisza3/cn-east-1/a/h100-spot;cn-nci=0310-9a
//
// where <provider> is the provider key's fingerprint (ProviderFingerprint),
// which makes the identifier self-certifying: only the holder of that key
// can sign an offer for the pool. The optional alias carries a national or
// industry identifier code for the same pool; it is not part of Name.
type ComputeID struct {
	Provider string // fingerprint of the provider's key, 26 base32 characters
	Region   string
	Zone     string
	Pool     string

	AliasScheme string // e.g. "cn-nci"; empty when there is no alias
	AliasCode   string
}

// Limits from the grammar in spec/identifiers.md.
const (
	computeIDScheme      = "ci:"
	fingerprintLen       = 26
	maxRegionLen         = 32
	maxZoneLen           = 32
	maxPoolLen           = 63
	maxAliasSchemeLen    = 32
	maxAliasCodeLen      = 63
	MaxComputeIDLen      = len(computeIDScheme) + fingerprintLen + 1 + maxRegionLen + 1 + maxZoneLen + 1 + maxPoolLen + 1 + maxAliasSchemeLen + 1 + maxAliasCodeLen
	fingerprintByteCount = 16
)

var fingerprintEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// ProviderFingerprint returns the provider segment of compute identifiers
// for pools owned by id: the first 128 bits of SHA-256 over the multicodec
// public key, lowercase base32 without padding.
func ProviderFingerprint(id PrincipalID) string {
	h := sha256.New()
	h.Write([]byte{multicodecEd25519Pub0, multicodecEd25519Pub1})
	h.Write(id.key[:])
	return fingerprintEncoding.EncodeToString(h.Sum(nil)[:fingerprintByteCount])
}

// NewComputeID returns the identifier of a pool owned by provider.
func NewComputeID(provider PrincipalID, region, zone, pool string) (ComputeID, error) {
	c := ComputeID{Provider: ProviderFingerprint(provider), Region: region, Zone: zone, Pool: pool}
	return c, c.Validate()
}

// ParseComputeID parses the canonical text form. Nothing else is accepted:
// for every s it accepts, ParseComputeID(s).String() == s.
func ParseComputeID(s string) (ComputeID, error) {
	var c ComputeID
	if len(s) > MaxComputeIDLen {
		return c, fmt.Errorf("identity: compute identifier is %d characters, longer than the maximum %d", len(s), MaxComputeIDLen)
	}
	rest, ok := strings.CutPrefix(s, computeIDScheme)
	if !ok {
		return c, fmt.Errorf("identity: compute identifier %q: must start with %q", truncate(s), computeIDScheme)
	}
	rest, alias, hasAlias := strings.Cut(rest, ";")
	parts := strings.Split(rest, "/")
	if len(parts) != 4 {
		return c, fmt.Errorf("identity: compute identifier %q: want ci:<provider>/<region>/<zone>/<pool>, got %d segments", truncate(s), len(parts))
	}
	c.Provider, c.Region, c.Zone, c.Pool = parts[0], parts[1], parts[2], parts[3]
	if hasAlias {
		scheme, code, ok := strings.Cut(alias, "=")
		if !ok {
			return ComputeID{}, fmt.Errorf("identity: compute identifier %q: alias must be <scheme>=<code>", truncate(s))
		}
		c.AliasScheme, c.AliasCode = scheme, code
		if c.AliasScheme == "" && c.AliasCode == "" {
			return ComputeID{}, fmt.Errorf("identity: compute identifier %q: empty alias", truncate(s))
		}
	}
	if err := c.Validate(); err != nil {
		return ComputeID{}, fmt.Errorf("identity: compute identifier %q: %w", truncate(s), err)
	}
	return c, nil
}

// Validate reports whether every field satisfies the grammar.
func (c ComputeID) Validate() error {
	if err := checkFingerprint(c.Provider); err != nil {
		return err
	}
	if err := checkLabel("region", c.Region, maxRegionLen); err != nil {
		return err
	}
	if err := checkLabel("zone", c.Zone, maxZoneLen); err != nil {
		return err
	}
	if err := checkLabel("pool", c.Pool, maxPoolLen); err != nil {
		return err
	}
	if c.AliasScheme == "" && c.AliasCode == "" {
		return nil
	}
	if err := checkLabel("alias scheme", c.AliasScheme, maxAliasSchemeLen); err != nil {
		return err
	}
	return checkAliasCode(c.AliasCode)
}

// String returns the canonical text form.
func (c ComputeID) String() string {
	s := c.Name()
	if c.AliasScheme != "" || c.AliasCode != "" {
		s += ";" + c.AliasScheme + "=" + c.AliasCode
	}
	return s
}

// Name returns the text form without the alias: the key under which a pool
// is known, whatever aliases it is also given.
func (c ComputeID) Name() string {
	return computeIDScheme + c.Provider + "/" + c.Region + "/" + c.Zone + "/" + c.Pool
}

// OwnedBy reports whether the identifier names a pool of provider's.
func (c ComputeID) OwnedBy(provider PrincipalID) bool {
	return c.Provider == ProviderFingerprint(provider)
}

// WithAlias returns c with the given alias.
func (c ComputeID) WithAlias(scheme, code string) (ComputeID, error) {
	c.AliasScheme, c.AliasCode = scheme, code
	return c, c.Validate()
}

// MarshalText implements encoding.TextMarshaler.
func (c ComputeID) MarshalText() ([]byte, error) {
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("identity: cannot encode compute identifier: %w", err)
	}
	return []byte(c.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (c *ComputeID) UnmarshalText(b []byte) error {
	parsed, err := ParseComputeID(string(b))
	if err != nil {
		return err
	}
	*c = parsed
	return nil
}

func checkFingerprint(fp string) error {
	if len(fp) != fingerprintLen {
		return fmt.Errorf("provider fingerprint must be %d base32 characters, got %d", fingerprintLen, len(fp))
	}
	raw, err := fingerprintEncoding.DecodeString(fp)
	if err != nil || len(raw) != fingerprintByteCount || fingerprintEncoding.EncodeToString(raw) != fp {
		return fmt.Errorf("provider fingerprint %q is not lowercase base32 of %d bytes", fp, fingerprintByteCount)
	}
	return nil
}

// checkLabel enforces label = lc-alnum [ *( lc-alnum / "-" ) lc-alnum ].
func checkLabel(what, s string, max int) error {
	if s == "" {
		return fmt.Errorf("%s is empty", what)
	}
	if len(s) > max {
		return fmt.Errorf("%s %q is longer than %d characters", what, truncate(s), max)
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		switch {
		case 'a' <= b && b <= 'z', '0' <= b && b <= '9':
		case b == '-' && i != 0 && i != len(s)-1:
		default:
			return fmt.Errorf("%s %q: only lowercase letters, digits and inner hyphens are allowed", what, truncate(s))
		}
	}
	return nil
}

// checkAliasCode enforces alias-code = 1*63( ALPHA / DIGIT / "-" / "." / "_" ).
func checkAliasCode(s string) error {
	if s == "" {
		return fmt.Errorf("alias code is empty")
	}
	if len(s) > maxAliasCodeLen {
		return fmt.Errorf("alias code is longer than %d characters", maxAliasCodeLen)
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		switch {
		case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9', b == '-', b == '.', b == '_':
		default:
			return fmt.Errorf("alias code %q: only letters, digits, '-', '.' and '_' are allowed", truncate(s))
		}
	}
	return nil
}
