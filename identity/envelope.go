package identity

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/cinet/cinet/identity/canonjson"
)

// An Envelope carries one signed payload. The signature covers the payload
// type (for domain separation), the signer, the optional expiry and sequence
// number, and the payload bytes, encoded as in spec/envelope.md:
//
//	"CINETv1" SP LEN(type) SP type SP LEN(signer) SP signer SP
//	LEN(expires) SP expires SP LEN(seq) SP seq SP LEN(payload) SP payload
//
// Payloads of a "+json" type are RFC 8785 canonical JSON, so that one value
// has one signed form.
type Envelope struct {
	PayloadType string
	Payload     []byte
	Signer      PrincipalID
	Expires     time.Time // zero when the envelope does not expire
	Seq         uint64    // 0 when the envelope has no sequence number
	Signature   []byte
}

// MaxEnvelopeSize bounds the encoded envelope DecodeEnvelope accepts. It
// fits a 1 MiB payload after base64.
const MaxEnvelopeSize = 2 << 20

const (
	paeTag         = "CINETv1"
	expiresLayout  = "2006-01-02T15:04:05Z"
	maxPayloadType = 128
	maxSeq         = 1<<53 - 1 // seq travels as a JSON number; keep it exact
)

// Errors that Verify and DecodeEnvelope wrap, so callers can branch with
// errors.Is and users read exactly what failed.
var (
	ErrMalformed     = errors.New("malformed envelope")
	ErrWrongType     = errors.New("wrong payload type")
	ErrUnknownSigner = errors.New("unknown signer")
	ErrBadSignature  = errors.New("bad signature")
	ErrExpired       = errors.New("expired")
)

// SealOptions are the optional signed fields of an envelope.
type SealOptions struct {
	Expires time.Time // truncated to the second; zero for no expiry
	Seq     uint64    // 0 for none; at most 2^53-1
}

// Seal signs payload as payloadType. A payload of a "+json" type must be
// canonical JSON; SealJSON produces it from a value.
func Seal(k *Key, payloadType string, payload []byte, opts SealOptions) (*Envelope, error) {
	e := &Envelope{
		PayloadType: payloadType,
		Payload:     payload,
		Signer:      k.ID(),
		Seq:         opts.Seq,
	}
	if !opts.Expires.IsZero() {
		e.Expires = opts.Expires.UTC().Truncate(time.Second)
	}
	if err := e.checkFields(); err != nil {
		return nil, fmt.Errorf("identity: couldn't seal envelope: %w", err)
	}
	if err := e.checkPayload(); err != nil {
		return nil, fmt.Errorf("identity: couldn't seal envelope: %w", err)
	}
	e.Signature = k.Sign(e.signedBytes())
	return e, nil
}

// SealJSON marshals v, canonicalizes it per RFC 8785 and seals it.
// payloadType must end in "+json".
func SealJSON(k *Key, payloadType string, v any, opts SealOptions) (*Envelope, error) {
	if !isJSONType(payloadType) {
		return nil, fmt.Errorf("identity: payload type %q is not a +json type", payloadType)
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("identity: couldn't encode payload: %w", err)
	}
	canon, err := canonjson.Transform(raw)
	if err != nil {
		return nil, fmt.Errorf("identity: couldn't canonicalize payload: %w", err)
	}
	return Seal(k, payloadType, canon, opts)
}

// A SignerSet says which principals a verifier trusts to sign.
type SignerSet interface {
	// Known reports whether id may sign. It must be safe for concurrent use.
	Known(id PrincipalID) bool
}

// SignerFunc adapts a function to SignerSet.
type SignerFunc func(PrincipalID) bool

// Known implements SignerSet.
func (f SignerFunc) Known(id PrincipalID) bool { return f(id) }

// AnySigner accepts every signer. A did:key is self-certifying, so the
// signature still proves who signed; use it where the caller checks the
// signer against the payload itself (for example an offer's provider).
var AnySigner SignerSet = SignerFunc(func(PrincipalID) bool { return true })

// Signers returns the set of exactly the given principals.
func Signers(ids ...PrincipalID) SignerSet {
	m := make(map[PrincipalID]struct{}, len(ids))
	for _, id := range ids {
		m[id] = struct{}{}
	}
	return SignerFunc(func(id PrincipalID) bool { _, ok := m[id]; return ok })
}

// Verification says what Verify checks an envelope against.
type Verification struct {
	PayloadType string    // required: the type the caller expects
	Signers     SignerSet // required: who may sign
	Now         time.Time // required when the envelope has an expiry
}

// Verify checks, in order, the payload type, that the signer is known, the
// signature, and the expiry. The error wraps exactly one of ErrMalformed,
// ErrWrongType, ErrUnknownSigner, ErrBadSignature or ErrExpired.
func (e *Envelope) Verify(v Verification) error {
	if v.Signers == nil {
		panic("identity: Verification.Signers is nil")
	}
	if err := e.checkFields(); err != nil {
		return fmt.Errorf("identity: %w: %v", ErrMalformed, err)
	}
	if e.PayloadType != v.PayloadType {
		return fmt.Errorf("identity: %w: got %q, want %q", ErrWrongType, e.PayloadType, v.PayloadType)
	}
	if !v.Signers.Known(e.Signer) {
		return fmt.Errorf("identity: %w: %s", ErrUnknownSigner, e.Signer)
	}
	if len(e.Signature) != ed25519.SignatureSize || !ed25519.Verify(e.Signer.key[:], e.signedBytes(), e.Signature) {
		return fmt.Errorf("identity: %w from %s", ErrBadSignature, e.Signer)
	}
	if !e.Expires.IsZero() {
		if v.Now.IsZero() {
			return fmt.Errorf("identity: %w: envelope expires at %s but the verifier has no clock", ErrExpired, e.Expires.Format(expiresLayout))
		}
		if !v.Now.Before(e.Expires) {
			return fmt.Errorf("identity: %w at %s (now %s)", ErrExpired, e.Expires.Format(expiresLayout), v.Now.UTC().Format(time.RFC3339))
		}
	}
	return nil
}

// Open decodes and verifies an encoded envelope.
func Open(data []byte, v Verification) (*Envelope, error) {
	e, err := DecodeEnvelope(data)
	if err != nil {
		return nil, err
	}
	if err := e.Verify(v); err != nil {
		return nil, err
	}
	return e, nil
}

// wireEnvelope is the JSON form; field names are normative
// (spec/envelope.md). The fields are in RFC 8785 order and every value is
// ASCII that JSON and RFC 8785 escape alike (base64, a did:key, a
// timestamp, a printable payload type), so encoding it without HTML
// escaping gives the canonical form directly.
type wireEnvelope struct {
	Expires     string  `json:"expires,omitempty"`
	Payload     string  `json:"payload"`
	PayloadType string  `json:"payloadType"`
	Seq         *uint64 `json:"seq,omitempty"`
	Signature   string  `json:"signature"`
	Signer      string  `json:"signer"`
}

// Encode returns the envelope as RFC 8785 canonical JSON.
func (e *Envelope) Encode() []byte {
	w := wireEnvelope{
		PayloadType: e.PayloadType,
		Payload:     base64.StdEncoding.EncodeToString(e.Payload),
		Signer:      e.Signer.String(),
		Signature:   base64.StdEncoding.EncodeToString(e.Signature),
	}
	if !e.Expires.IsZero() {
		w.Expires = e.Expires.UTC().Format(expiresLayout)
	}
	if e.Seq != 0 {
		seq := e.Seq
		w.Seq = &seq
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(w); err != nil {
		panic(fmt.Sprintf("identity: marshaling an envelope failed: %v", err))
	}
	return bytes.TrimSuffix(b.Bytes(), []byte{'\n'})
}

// MarshalJSON implements json.Marshaler.
func (e *Envelope) MarshalJSON() ([]byte, error) { return e.Encode(), nil }

// UnmarshalJSON implements json.Unmarshaler with the checks of DecodeEnvelope.
func (e *Envelope) UnmarshalJSON(data []byte) error {
	d, err := DecodeEnvelope(data)
	if err != nil {
		return err
	}
	*e = *d
	return nil
}

// DecodeEnvelope parses an encoded envelope and checks its syntax: size,
// JSON without duplicate or unknown fields, base64, a canonical signer ID,
// expiry and sequence forms, and a canonical payload for "+json" types.
// It does not verify the signature; Verify does.
func DecodeEnvelope(data []byte) (*Envelope, error) {
	if len(data) > MaxEnvelopeSize {
		return nil, fmt.Errorf("identity: %w: %d bytes, more than the %d allowed", ErrMalformed, len(data), MaxEnvelopeSize)
	}
	// Envelopes usually arrive in canonical form: decode them directly and
	// confirm by re-encoding. Anything else is canonicalized first, which
	// rejects duplicate keys, invalid UTF-8 and whatever else RFC 8785 does
	// not accept, so every decoder sees the same fields.
	var w wireEnvelope
	if json.Unmarshal(data, &w) == nil {
		if e, err := fromWire(w); err == nil && bytes.Equal(e.Encode(), data) {
			return e, nil
		}
	}
	canon, err := canonjson.Transform(data)
	if err != nil {
		return nil, fmt.Errorf("identity: %w: %v", ErrMalformed, err)
	}
	if w, err = decodeWire(canon); err != nil {
		return nil, fmt.Errorf("identity: %w: %v", ErrMalformed, err)
	}
	return fromWire(w)
}

// fromWire checks and converts the decoded fields.
func fromWire(w wireEnvelope) (*Envelope, error) {
	var err error
	e := &Envelope{PayloadType: w.PayloadType}
	if e.Payload, err = decodeBase64("payload", w.Payload); err != nil {
		return nil, err
	}
	if e.Signature, err = decodeBase64("signature", w.Signature); err != nil {
		return nil, err
	}
	if e.Signer, err = ParsePrincipalID(w.Signer); err != nil {
		return nil, fmt.Errorf("identity: %w: signer: %v", ErrMalformed, err)
	}
	if w.Expires != "" {
		t, err := time.Parse(expiresLayout, w.Expires)
		if err != nil || t.Format(expiresLayout) != w.Expires {
			return nil, fmt.Errorf("identity: %w: expires %q is not YYYY-MM-DDTHH:MM:SSZ", ErrMalformed, truncate(w.Expires))
		}
		e.Expires = t
	}
	if w.Seq != nil {
		if *w.Seq == 0 {
			return nil, fmt.Errorf("identity: %w: seq must be omitted rather than 0", ErrMalformed)
		}
		e.Seq = *w.Seq
	}
	if err := e.checkFields(); err != nil {
		return nil, fmt.Errorf("identity: %w: %v", ErrMalformed, err)
	}
	if err := e.checkPayload(); err != nil {
		return nil, fmt.Errorf("identity: %w: %v", ErrMalformed, err)
	}
	return e, nil
}

// decodeWire decodes the envelope's fields, matching names exactly:
// encoding/json alone would take "Expires" for "expires".
func decodeWire(canon []byte) (wireEnvelope, error) {
	var w wireEnvelope
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(canon, &fields); err != nil {
		return w, errors.New("not a JSON object")
	}
	for name, raw := range fields {
		var err error
		switch name {
		case "payloadType":
			err = json.Unmarshal(raw, &w.PayloadType)
		case "payload":
			err = json.Unmarshal(raw, &w.Payload)
		case "signer":
			err = json.Unmarshal(raw, &w.Signer)
		case "expires":
			err = json.Unmarshal(raw, &w.Expires)
		case "seq":
			w.Seq = new(uint64)
			err = json.Unmarshal(raw, w.Seq)
		case "signature":
			err = json.Unmarshal(raw, &w.Signature)
		default:
			return w, fmt.Errorf("unknown field %q", truncate(name))
		}
		if err != nil {
			return w, fmt.Errorf("field %q: %v", name, err)
		}
	}
	return w, nil
}

func decodeBase64(field, s string) ([]byte, error) {
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("identity: %w: %s is not standard padded base64", ErrMalformed, field)
	}
	return b, nil
}

// checkFields enforces the field rules shared by Seal and DecodeEnvelope.
func (e *Envelope) checkFields() error {
	if e.PayloadType == "" || len(e.PayloadType) > maxPayloadType {
		return fmt.Errorf("payload type must be 1 to %d characters", maxPayloadType)
	}
	for i := 0; i < len(e.PayloadType); i++ {
		if c := e.PayloadType[i]; c <= ' ' || c >= 0x7f {
			return fmt.Errorf("payload type %q has a character outside printable ASCII", truncate(e.PayloadType))
		}
	}
	if e.Signer.IsZero() {
		return errors.New("no signer")
	}
	if e.Seq > maxSeq {
		return fmt.Errorf("seq %d is above 2^53-1", e.Seq)
	}
	if !e.Expires.IsZero() && (e.Expires.Location() != time.UTC || e.Expires.Nanosecond() != 0) {
		return errors.New("expires must be a whole second in UTC")
	}
	return nil
}

// checkPayload enforces that a "+json" payload is canonical JSON. Verify
// does not repeat it: the signature covers the payload bytes either way.
func (e *Envelope) checkPayload() error {
	if !isJSONType(e.PayloadType) {
		return nil
	}
	canon, err := canonjson.Transform(e.Payload)
	if err != nil {
		return fmt.Errorf("payload is not JSON: %v", err)
	}
	if !bytes.Equal(canon, e.Payload) {
		return errors.New("payload is not RFC 8785 canonical JSON")
	}
	return nil
}

func isJSONType(t string) bool { return strings.HasSuffix(t, "+json") }

// signedBytes is the pre-authentication encoding the signature covers.
func (e *Envelope) signedBytes() []byte {
	signer := e.Signer.String()
	var expires, seq string
	if !e.Expires.IsZero() {
		expires = e.Expires.UTC().Format(expiresLayout)
	}
	if e.Seq != 0 {
		seq = strconv.FormatUint(e.Seq, 10)
	}
	b := make([]byte, 0, len(paeTag)+len(e.PayloadType)+len(signer)+len(expires)+len(seq)+len(e.Payload)+64)
	b = append(b, paeTag...)
	for _, f := range [...][]byte{[]byte(e.PayloadType), []byte(signer), []byte(expires), []byte(seq), e.Payload} {
		b = append(b, ' ')
		b = strconv.AppendInt(b, int64(len(f)), 10)
		b = append(b, ' ')
		b = append(b, f...)
	}
	return b
}
