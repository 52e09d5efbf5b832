package descriptor

import (
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/cockroachdb/apd/v3"
)

// A Quantity is a number of bytes, written "64Gi", "1.5Ti" or "500M".
type Quantity int64

var quantitySuffixes = []struct {
	suffix string
	factor int64
}{
	// Two-letter suffixes first, so "Mi" is not read as "M".
	{"Ki", 1 << 10}, {"Mi", 1 << 20}, {"Gi", 1 << 30}, {"Ti", 1 << 40}, {"Pi", 1 << 50},
	{"k", 1e3}, {"M", 1e6}, {"G", 1e9}, {"T", 1e12}, {"P", 1e15},
}

// ParseQuantity parses the text form of a quantity.
func ParseQuantity(s string) (Quantity, error) {
	num, factor := s, int64(1)
	for _, sf := range quantitySuffixes {
		if strings.HasSuffix(s, sf.suffix) {
			num, factor = strings.TrimSuffix(s, sf.suffix), sf.factor
			break
		}
	}
	if !isPlainDecimal(num) {
		return 0, fmt.Errorf("%q is not a quantity such as \"64Gi\" or \"500M\"", s)
	}
	if whole, err := strconv.ParseInt(num, 10, 64); err == nil {
		if whole > math.MaxInt64/factor {
			return 0, fmt.Errorf("%q is too large", s)
		}
		return Quantity(whole * factor), nil
	}
	r, ok := new(big.Rat).SetString(num)
	if !ok {
		return 0, fmt.Errorf("%q is not a quantity such as \"64Gi\" or \"500M\"", s)
	}
	r.Mul(r, new(big.Rat).SetInt64(factor))
	if !r.IsInt() {
		return 0, fmt.Errorf("%q is not a whole number of bytes", s)
	}
	if !r.Num().IsInt64() {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return Quantity(r.Num().Int64()), nil
}

// isPlainDecimal reports whether s is digits with an optional fraction,
// without sign, exponent or leading zeros.
func isPlainDecimal(s string) bool {
	intPart, frac, hasFrac := strings.Cut(s, ".")
	if intPart == "" || (len(intPart) > 1 && intPart[0] == '0') || (hasFrac && frac == "") {
		return false
	}
	for _, part := range []string{intPart, frac} {
		for i := 0; i < len(part); i++ {
			if part[i] < '0' || part[i] > '9' {
				return false
			}
		}
	}
	return true
}

// String returns the shortest exact text form, preferring binary suffixes:
// "64Gi", "500M" or "1234".
func (q Quantity) String() string {
	if q != 0 {
		for _, group := range [][]int{{4, 3, 2, 1, 0}, {9, 8, 7, 6, 5}} {
			for _, i := range group {
				if sf := quantitySuffixes[i]; int64(q)%sf.factor == 0 {
					return strconv.FormatInt(int64(q)/sf.factor, 10) + sf.suffix
				}
			}
		}
	}
	return strconv.FormatInt(int64(q), 10)
}

// GiB returns the quantity in GiB.
func (q Quantity) GiB() float64 { return float64(q) / (1 << 30) }

// MarshalText implements encoding.TextMarshaler.
func (q Quantity) MarshalText() ([]byte, error) { return []byte(q.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (q *Quantity) UnmarshalText(b []byte) error {
	v, err := ParseQuantity(string(b))
	if err != nil {
		return err
	}
	*q = v
	return nil
}

// A Duration is a length of time, written "90s", "30m" or "1h30m".
type Duration time.Duration

// ParseDuration parses a duration; it must be positive.
func ParseDuration(s string) (Duration, error) {
	if strings.ContainsAny(s, "+-µ") || strings.HasPrefix(s, ".") {
		return 0, fmt.Errorf("%q is not a duration such as \"90s\" or \"1h30m\"", s)
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration such as \"90s\" or \"1h30m\"", s)
	}
	if d <= 0 {
		return 0, fmt.Errorf("%q is not a positive duration", s)
	}
	return Duration(d), nil
}

// Std returns the duration as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// String returns the duration without zero trailing units: "2h", "1h30m".
func (d Duration) String() string {
	s := time.Duration(d).String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// A Decimal is an exact non-negative amount written as a string, such as
// "2.50". Money is never a float; Decimal carries it to settlement intact.
// The zero Decimal is "not given". Decimals are immutable.
type Decimal struct {
	v *apd.Decimal
}

// maxDecimalText bounds a Decimal's text, as the schema does.
const maxDecimalText = 40

// ParseDecimal parses a non-negative decimal without exponent.
func ParseDecimal(s string) (Decimal, error) {
	if !isPlainDecimal(s) || len(s) > maxDecimalText {
		return Decimal{}, fmt.Errorf("%q is not a non-negative decimal such as \"2.50\"", s)
	}
	v, _, err := apd.NewFromString(s)
	if err != nil {
		return Decimal{}, fmt.Errorf("%q is not a decimal: %v", s, err)
	}
	return Decimal{v}, nil
}

// MustDecimal is ParseDecimal for constants; it panics on error.
func MustDecimal(s string) Decimal {
	d, err := ParseDecimal(s)
	if err != nil {
		panic(err)
	}
	return d
}

// IsSet reports whether the decimal was given.
func (d Decimal) IsSet() bool { return d.v != nil }

// Apd returns a copy of the value for arithmetic; zero when not given.
func (d Decimal) Apd() *apd.Decimal {
	if d.v == nil {
		return new(apd.Decimal)
	}
	return new(apd.Decimal).Set(d.v)
}

// String returns the decimal as written, without exponent.
func (d Decimal) String() string {
	if d.v == nil {
		return ""
	}
	return d.v.Text('f')
}

// MarshalText implements encoding.TextMarshaler.
func (d Decimal) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Decimal) UnmarshalText(b []byte) error {
	v, err := ParseDecimal(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// A Version is a dotted version number such as "12.4".
type Version struct {
	text  string
	parts []int
}

// ParseVersion parses one to four dot-separated numbers.
func ParseVersion(s string) (Version, error) {
	fields := strings.Split(s, ".")
	if len(fields) > 4 {
		return Version{}, fmt.Errorf("version %q has more than four parts", s)
	}
	v := Version{text: s, parts: make([]int, len(fields))}
	for i, f := range fields {
		n, err := strconv.Atoi(f)
		if err != nil || n < 0 || f == "" || f[0] == '+' {
			return Version{}, fmt.Errorf("%q is not a version number such as \"12.4\"", s)
		}
		v.parts[i] = n
	}
	return v, nil
}

// MustVersion is ParseVersion for constants; it panics on error.
func MustVersion(s string) Version {
	v, err := ParseVersion(s)
	if err != nil {
		panic(err)
	}
	return v
}

func (v Version) String() string { return v.text }

// IsZero reports whether no version was given.
func (v Version) IsZero() bool { return v.parts == nil }

// Compare returns -1, 0 or +1; missing parts count as zero, so 12.2 == 12.2.0.
func (v Version) Compare(w Version) int {
	for i := 0; i < max(len(v.parts), len(w.parts)); i++ {
		a, b := 0, 0
		if i < len(v.parts) {
			a = v.parts[i]
		}
		if i < len(w.parts) {
			b = w.parts[i]
		}
		if a != b {
			if a < b {
				return -1
			}
			return 1
		}
	}
	return 0
}

// Float returns major.minor as a number, for CEL comparisons of compute
// capability: "9.0" is 9.0 and "8.9" is 8.9.
func (v Version) Float() float64 {
	if len(v.parts) == 0 {
		return 0
	}
	f := float64(v.parts[0])
	if len(v.parts) > 1 {
		minor := v.parts[1]
		f += float64(minor) / math.Pow10(len(strconv.Itoa(minor)))
	}
	return f
}

// MarshalText implements encoding.TextMarshaler.
func (v Version) MarshalText() ([]byte, error) { return []byte(v.text), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (v *Version) UnmarshalText(b []byte) error {
	p, err := ParseVersion(string(b))
	if err != nil {
		return err
	}
	*v = p
	return nil
}

// A VersionConstraint is a comma-separated conjunction such as
// ">=11.8,<13".
type VersionConstraint struct {
	text    string
	clauses []versionClause
}

type versionClause struct {
	op string
	v  Version
}

// ParseVersionConstraint parses a constraint; every clause needs an
// operator, so ">=12.2" is valid and "12.2" is not.
func ParseVersionConstraint(s string) (VersionConstraint, error) {
	c := VersionConstraint{text: s}
	for _, clause := range strings.Split(s, ",") {
		var op string
		for _, o := range []string{">=", "<=", "==", "!=", ">", "<"} {
			if strings.HasPrefix(clause, o) {
				op = o
				break
			}
		}
		if op == "" {
			return VersionConstraint{}, fmt.Errorf("%q: each clause needs an operator (>= > <= < == !=), as in \">=12.2\"", s)
		}
		v, err := ParseVersion(clause[len(op):])
		if err != nil {
			return VersionConstraint{}, fmt.Errorf("%q: %v", s, err)
		}
		c.clauses = append(c.clauses, versionClause{op, v})
	}
	return c, nil
}

// MustVersionConstraint is ParseVersionConstraint for constants.
func MustVersionConstraint(s string) VersionConstraint {
	c, err := ParseVersionConstraint(s)
	if err != nil {
		panic(err)
	}
	return c
}

func (c VersionConstraint) String() string { return c.text }

// IsZero reports whether no constraint was given.
func (c VersionConstraint) IsZero() bool { return c.clauses == nil }

// Allows reports whether v satisfies every clause.
func (c VersionConstraint) Allows(v Version) bool {
	for _, cl := range c.clauses {
		r := v.Compare(cl.v)
		var ok bool
		switch cl.op {
		case ">=":
			ok = r >= 0
		case ">":
			ok = r > 0
		case "<=":
			ok = r <= 0
		case "<":
			ok = r < 0
		case "==":
			ok = r == 0
		case "!=":
			ok = r != 0
		}
		if !ok {
			return false
		}
	}
	return true
}

// MarshalText implements encoding.TextMarshaler.
func (c VersionConstraint) MarshalText() ([]byte, error) { return []byte(c.text), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (c *VersionConstraint) UnmarshalText(b []byte) error {
	p, err := ParseVersionConstraint(string(b))
	if err != nil {
		return err
	}
	*c = p
	return nil
}

// IsZero reports whether the decimal was not given.
func (d Decimal) IsZero() bool { return d.v == nil }
