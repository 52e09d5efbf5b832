package settlement

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/gowebpki/jcs"
)

// maxExactInt is the largest integer RFC 8785 writes digit for digit
// (2^53-1); larger ones it writes as the nearest double.
const maxExactInt = 1<<53 - 1

// canonicalJSON returns v in RFC 8785 canonical form. The structs it is
// given declare their fields in RFC 8785 key order and hold no floats, so
// encoding/json without HTML escaping writes the canonical form directly
// whenever the output is printable ASCII free of \u escapes — the one place
// the two encoders differ. Anything else goes through the canonicalizer.
// The tests compare every entry type against it.
func canonicalJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("settlement: encoding %T: %w", v, err)
	}
	out := bytes.TrimSuffix(b.Bytes(), []byte{'\n'})
	if plainASCII(out) {
		return out, nil
	}
	return jcs.Transform(out)
}

// plainASCII reports whether b is printable ASCII with no \u escape. (An
// escaped backslash before a "u" also answers false; the canonicalizer then
// does the work, which is only slower.)
func plainASCII(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c > 0x7e {
			return false
		}
	}
	return !bytes.Contains(b, []byte(`\u`))
}
