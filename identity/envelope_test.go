package identity

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gowebpki/jcs"
)

const testType = "application/vnd.cinet.test.v1+json"

var testNow = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

func sealTest(tb testing.TB, k *Key, opts SealOptions) *Envelope {
	tb.Helper()
	e, err := SealJSON(k, testType, map[string]any{"job": "j-1", "gpus": 8, "note": "héllo"}, opts)
	if err != nil {
		tb.Fatal(err)
	}
	return e
}

func TestEnvelopeSealOpen(t *testing.T) {
	k := testKey(t, 20)
	e := sealTest(t, k, SealOptions{Expires: testNow.Add(time.Hour), Seq: 42})
	if string(e.Payload) != `{"gpus":8,"job":"j-1","note":"héllo"}` {
		t.Fatalf("payload not canonical: %s", e.Payload)
	}
	got, err := Open(e.Encode(), Verification{PayloadType: testType, Signers: Signers(k.ID()), Now: testNow})
	if err != nil {
		t.Fatal(err)
	}
	if got.Seq != 42 || !got.Expires.Equal(testNow.Add(time.Hour)) || got.Signer != k.ID() || !bytes.Equal(got.Payload, e.Payload) {
		t.Fatalf("decoded %+v", got)
	}
	if !bytes.Equal(got.Encode(), e.Encode()) {
		t.Fatal("re-encoding differs")
	}
}

func TestEnvelopeVerifyNamesTheFailure(t *testing.T) {
	k, other := testKey(t, 21), testKey(t, 22)
	good := sealTest(t, k, SealOptions{Expires: testNow.Add(time.Minute), Seq: 1})
	forged := *good
	forged.Signer = other.ID()
	wrongSig := *good
	wrongSig.Signature = other.Sign(good.signedBytes())
	bumpedSeq := *good
	bumpedSeq.Seq = 2
	later := *good
	later.Expires = good.Expires.Add(time.Hour)
	noExpiry := sealTest(t, k, SealOptions{})

	for _, tc := range []struct {
		name string
		env  *Envelope
		v    Verification
		want error
	}{
		{"valid", good, Verification{PayloadType: testType, Signers: Signers(k.ID()), Now: testNow}, nil},
		{"valid without expiry or clock", noExpiry, Verification{PayloadType: testType, Signers: AnySigner}, nil},
		{"wrong type", good, Verification{PayloadType: "application/vnd.cinet.other.v1+json", Signers: AnySigner, Now: testNow}, ErrWrongType},
		{"unknown signer", good, Verification{PayloadType: testType, Signers: Signers(other.ID()), Now: testNow}, ErrUnknownSigner},
		{"signer swapped", &forged, Verification{PayloadType: testType, Signers: AnySigner, Now: testNow}, ErrBadSignature},
		{"signature by another key", &wrongSig, Verification{PayloadType: testType, Signers: AnySigner, Now: testNow}, ErrBadSignature},
		{"sequence changed", &bumpedSeq, Verification{PayloadType: testType, Signers: AnySigner, Now: testNow}, ErrBadSignature},
		{"expiry extended", &later, Verification{PayloadType: testType, Signers: AnySigner, Now: testNow}, ErrBadSignature},
		{"expired", good, Verification{PayloadType: testType, Signers: AnySigner, Now: testNow.Add(time.Minute)}, ErrExpired},
		{"expiry without clock", good, Verification{PayloadType: testType, Signers: AnySigner}, ErrExpired},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.env.Verify(tc.v)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("Verify = %v, want %v", err, tc.want)
			}
		})
	}
}

// TestEnvelopeTamperEveryByte changes each byte of an encoded envelope in
// turn, to each of several values, and requires that no variant verifies.
func TestEnvelopeTamperEveryByte(t *testing.T) {
	k := testKey(t, 23)
	enc := sealTest(t, k, SealOptions{Expires: testNow.Add(time.Hour), Seq: 7}).Encode()
	v := Verification{PayloadType: testType, Signers: AnySigner, Now: testNow}
	if _, err := Open(enc, v); err != nil {
		t.Fatal(err)
	}
	for i := range enc {
		for _, delta := range []byte{1, 2, 0x20, 0x80, 0xff} {
			tampered := bytes.Clone(enc)
			tampered[i] ^= delta
			if _, err := Open(tampered, v); err == nil {
				t.Fatalf("byte %d xor %#x (%q -> %q) still verifies", i, delta, enc[i], tampered[i])
			}
		}
	}
}

// TestEnvelopeTamperSignedFields flips every bit of every signed field of a
// decoded envelope, which the wire-level test reaches only through base64.
func TestEnvelopeTamperSignedFields(t *testing.T) {
	k := testKey(t, 24)
	good := sealTest(t, k, SealOptions{Seq: 3})
	v := Verification{PayloadType: testType, Signers: AnySigner, Now: testNow}
	for i := range good.Payload {
		for bit := range 8 {
			e := *good
			e.Payload = bytes.Clone(good.Payload)
			e.Payload[i] ^= 1 << bit
			if e.Verify(v) == nil {
				t.Fatalf("payload byte %d bit %d flipped still verifies", i, bit)
			}
		}
	}
	for i := range good.Signature {
		for bit := range 8 {
			e := *good
			e.Signature = bytes.Clone(good.Signature)
			e.Signature[i] ^= 1 << bit
			if e.Verify(v) == nil {
				t.Fatalf("signature byte %d bit %d flipped still verifies", i, bit)
			}
		}
	}
}

func TestDecodeEnvelopeRejects(t *testing.T) {
	k := testKey(t, 25)
	good := string(sealTest(t, k, SealOptions{Seq: 5}).Encode())
	replace := func(old, new string) string {
		if !strings.Contains(good, old) {
			t.Fatalf("%q not in %s", old, good)
		}
		return strings.Replace(good, old, new, 1)
	}
	for _, tc := range []struct{ name, in, want string }{
		{"not json", "envelope", "malformed envelope"},
		{"duplicate key", replace(`{"payload"`, `{"seq":9,"payload"`), "malformed envelope"},
		{"unknown field", replace(`{"payload"`, `{"extra":1,"payload"`), "unknown field"},
		{"seq zero", replace(`"seq":5`, `"seq":0`), "omitted rather than 0"},
		{"seq negative", replace(`"seq":5`, `"seq":-5`), "malformed envelope"},
		{"seq too large", replace(`"seq":5`, `"seq":9007199254740993`), "malformed envelope"},
		{"bad signer", replace(`"signer":"did:key:z`, `"signer":"did:key:x`), "signer"},
		{"bad base64", replace(`"payload":"`, `"payload":"*`), "base64"},
		{"offset expiry", replace(`"seq":5`, `"expires":"2026-11-28T12:00:00+01:00","seq":5`), "YYYY-MM-DD"},
		{"oversized", `{"payload":"` + strings.Repeat("A", MaxEnvelopeSize) + `"}`, "more than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeEnvelope([]byte(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, ErrMalformed) {
				t.Fatalf("DecodeEnvelope = %v, want ErrMalformed containing %q", err, tc.want)
			}
		})
	}
}

func TestSealRejectsNonCanonicalPayload(t *testing.T) {
	k := testKey(t, 26)
	if _, err := Seal(k, testType, []byte(`{"b":1, "a":2}`), SealOptions{}); err == nil {
		t.Fatal("Seal accepted non-canonical JSON")
	}
	if _, err := Seal(k, "application/octet-stream", []byte{0, 1, 2}, SealOptions{}); err != nil {
		t.Fatalf("Seal refused a binary payload: %v", err)
	}
	if _, err := Seal(k, testType, []byte(`{}`), SealOptions{Seq: 1 << 53}); err == nil {
		t.Fatal("Seal accepted seq above 2^53-1")
	}
}

func FuzzDecodeEnvelope(f *testing.F) {
	k := testKey(f, 27)
	f.Add(sealTest(f, k, SealOptions{Expires: testNow, Seq: 9}).Encode())
	f.Add(sealTest(f, k, SealOptions{}).Encode())
	bin, _ := Seal(k, "application/octet-stream", []byte{0xff, 0}, SealOptions{})
	f.Add(bin.Encode())
	f.Add([]byte(`{"payload":"","payloadType":"x","signature":"","signer":""}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := DecodeEnvelope(data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("decode error %v does not wrap ErrMalformed", err)
			}
			return
		}
		enc := e.Encode()
		back, err := DecodeEnvelope(enc)
		if err != nil {
			t.Fatalf("re-decoding our own encoding: %v", err)
		}
		if !bytes.Equal(back.Encode(), enc) {
			t.Fatal("encoding is not stable")
		}
		// Verification must never panic, whatever was decoded.
		_ = e.Verify(Verification{PayloadType: e.PayloadType, Signers: AnySigner, Now: testNow})
	})
}

func BenchmarkEnvelope(b *testing.B) {
	k := testKey(b, 28)
	e := sealTest(b, k, SealOptions{Expires: testNow.Add(time.Hour), Seq: 1})
	enc := e.Encode()
	v := Verification{PayloadType: testType, Signers: Signers(k.ID()), Now: testNow}
	msg := e.signedBytes()
	pub := k.ID().PublicKey()

	b.Run("op=ed25519-verify", func(b *testing.B) {
		for b.Loop() {
			if !ed25519.Verify(pub, msg, e.Signature) {
				b.Fatal("verify failed")
			}
		}
	})
	b.Run("op=verify", func(b *testing.B) {
		for b.Loop() {
			if err := e.Verify(v); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("op=decode+verify", func(b *testing.B) {
		b.SetBytes(int64(len(enc)))
		for b.Loop() {
			if _, err := Open(enc, v); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestEncodeIsCanonical: Encode's direct encoding equals RFC 8785's.
func TestEncodeIsCanonical(t *testing.T) {
	k := testKey(t, 29)
	for _, typ := range []string{testType, `application/x<&>"\\+json`, "application/octet-stream"} {
		payload := []byte(`{"a":"<b>"}`)
		if !isJSONType(typ) {
			payload = []byte{0, 1, 0xff}
		}
		for _, opts := range []SealOptions{{}, {Seq: 1 << 40, Expires: testNow}} {
			e, err := Seal(k, typ, payload, opts)
			if err != nil {
				t.Fatal(err)
			}
			enc := e.Encode()
			canon, err := jcs.Transform(enc)
			if err != nil || !bytes.Equal(canon, enc) {
				t.Fatalf("Encode is not canonical:\n%s\n%s", enc, canon)
			}
		}
	}
}
