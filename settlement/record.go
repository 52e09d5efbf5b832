package settlement

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cinet/cinet/descriptor"
	"github.com/cinet/cinet/identity"
	"github.com/cinet/cinet/identity/canonjson"
	"github.com/cinet/cinet/settlement/pricing"
)

// RecordPayloadType is the envelope payload type of usage records.
const RecordPayloadType = "application/vnd.cinet.usage-record.v1+json"

// A UsageRecord is the signed, metered consumption of one placement over
// one period, issued by the executing broker (spec/usage-record.md). Its
// fields are declared in canonical (RFC 8785) key order, which lets
// Canonical encode it in one pass.
type UsageRecord struct {
	ComputeID       identity.ComputeID   `json:"computeId"`
	ExecutingBroker identity.PrincipalID `json:"executingBroker"`
	Fees            Fees                 `json:"fees"`
	HomeBroker      identity.PrincipalID `json:"homeBroker"`
	Instances       int64                `json:"instances"`
	Job             string               `json:"job"`
	Meters          []Meter              `json:"meters"`
	Offer           string               `json:"offer"` // digest of the offer document placed on
	PeriodEnd       time.Time            `json:"periodEnd"`
	PeriodStart     time.Time            `json:"periodStart"`
	Placement       string               `json:"placement"`
	Provider        identity.PrincipalID `json:"provider"`
	Sequence        int64                `json:"sequence"`
	Tenant          identity.PrincipalID `json:"tenant"`
}

// A Meter is one measured quantity.
type Meter struct {
	Meter    MeterKind `json:"meter"`
	Model    string    `json:"model,omitempty"` // the accelerator model, for accelerator-seconds
	Quantity string    `json:"quantity"`        // a non-negative decimal in the meter's unit
}

// Fees are the brokers' fee rates the placement was made at, as fractions
// of the provider's charge ("0.02" is 2%).
type Fees struct {
	Executing descriptor.Decimal `json:"executing"`
	Home      descriptor.Decimal `json:"home"`
}

// MeterKind names what a meter counts; spec/usage-record.md gives each its
// unit (pricing.Meter).
type MeterKind = pricing.Meter

// Meters.
const (
	InstanceSeconds    = pricing.InstanceSeconds
	VCPUSeconds        = pricing.VCPUSeconds
	GiBSeconds         = pricing.GiBSeconds
	AcceleratorSeconds = pricing.AcceleratorSeconds
	TokensIn           = pricing.TokensIn
	TokensOut          = pricing.TokensOut
	TokensCached       = pricing.TokensCached
	EgressBytes        = pricing.EgressBytes
)

// ConsumedUnit is the unit a meter counts in, as FOCUS ConsumedUnit
// names it.
func ConsumedUnit(m MeterKind) string { return pricing.Meters[m].ConsumedUnit }

// A RecordID identifies a usage record by content: "sha256:" and the hex
// SHA-256 of its canonical payload. The same record arriving twice has the
// same ID.
type RecordID string

// RecordIDOf returns the ID of a canonical record payload.
func RecordIDOf(payload []byte) RecordID {
	sum := sha256.Sum256(payload)
	return RecordID("sha256:" + hex.EncodeToString(sum[:]))
}

// Canonical returns the record's canonical JSON (RFC 8785).
func (r *UsageRecord) Canonical() ([]byte, error) {
	c, err := canonjson.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("settlement: record: %w", err)
	}
	return c, nil
}

// ID returns the record's ID.
func (r *UsageRecord) ID() (RecordID, error) {
	c, err := r.Canonical()
	if err != nil {
		return "", err
	}
	return RecordIDOf(c), nil
}

// SealRecord signs a record as its executing broker.
func SealRecord(k *identity.Key, r *UsageRecord) (*identity.Envelope, error) {
	if k.ID() != r.ExecutingBroker {
		return nil, fmt.Errorf("settlement: records are signed by their executing broker %s, not %s", r.ExecutingBroker, k.ID())
	}
	c, err := r.Canonical()
	if err != nil {
		return nil, err
	}
	return identity.Seal(k, RecordPayloadType, c, identity.SealOptions{})
}

// DecodeRecord reads a record payload. The payload must be exactly the
// canonical encoding of the record it holds: no unknown fields, no field
// names in another case, no values in another spelling.
func DecodeRecord(payload []byte) (*UsageRecord, error) {
	var r UsageRecord
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("settlement: record payload: %w", err)
	}
	again, err := r.Canonical()
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(again, payload) {
		return nil, errors.New("settlement: record payload is not the canonical encoding of a record (a field is unknown, misspelt or written otherwise)")
	}
	return &r, nil
}

// MaxRecordPeriod bounds one record's period: records are issued at least
// this often.
const MaxRecordPeriod = 31 * 24 * time.Hour

// maxTokens and maxEgress bound the meters no class limits.
var (
	maxTokens = descriptor.MustDecimal("1000000000000")    // 10^12 tokens in one record
	maxEgress = descriptor.MustDecimal("1000000000000000") // 1 PB in one record
)

// checkShape verifies what a record says on its own: identifiers, period,
// meters and fee rates. It returns the refusal reason and a detail.
func (r *UsageRecord) checkShape() (Reason, string) {
	switch {
	case !validName(r.Job):
		return ReasonMalformed, "job must be 1 to 128 of A-Z a-z 0-9 . _ : -"
	case !validName(r.Placement):
		return ReasonMalformed, "placement must be 1 to 128 of A-Z a-z 0-9 . _ : -"
	case r.Sequence < 1 || r.Sequence > maxExactInt:
		return ReasonMalformed, "sequence must be 1 to 2^53-1"
	case r.Instances < 1 || r.Instances > 10000:
		return ReasonMalformed, "instances must be 1 to 10000"
	case r.Tenant.IsZero() || r.Provider.IsZero() || r.HomeBroker.IsZero() || r.ExecutingBroker.IsZero():
		return ReasonMalformed, "tenant, provider, homeBroker and executingBroker are required"
	case r.ComputeID.Validate() != nil:
		return ReasonMalformed, "computeId is not a compute identifier"
	case r.PeriodStart.Location() != time.UTC || r.PeriodEnd.Location() != time.UTC:
		return ReasonInvalidPeriod, "period times must be UTC"
	case !r.PeriodEnd.After(r.PeriodStart):
		return ReasonInvalidPeriod, fmt.Sprintf("periodEnd %s is not after periodStart %s", r.PeriodEnd.Format(time.RFC3339), r.PeriodStart.Format(time.RFC3339))
	case r.PeriodEnd.Sub(r.PeriodStart) > MaxRecordPeriod:
		return ReasonInvalidPeriod, fmt.Sprintf("period is %s, longer than %s", r.PeriodEnd.Sub(r.PeriodStart), MaxRecordPeriod)
	case len(r.Meters) == 0:
		return ReasonInvalidQuantity, "a record has at least one meter"
	case !r.Fees.Home.IsSet() || !r.Fees.Executing.IsSet():
		return ReasonMalformed, "fees.home and fees.executing are required"
	}
	one := descriptor.MustDecimal("1").Apd()
	if r.Fees.Home.Apd().Cmp(one) > 0 || r.Fees.Executing.Apd().Cmp(one) > 0 {
		return ReasonInvalidFee, "a fee rate is a fraction between 0 and 1"
	}
	seen := map[string]bool{}
	for i, m := range r.Meters {
		if _, ok := pricing.Meters[m.Meter]; !ok {
			return ReasonUnknownMeter, fmt.Sprintf("meters[%d]: unknown meter %q", i, m.Meter)
		}
		if (m.Meter == AcceleratorSeconds) != (m.Model != "") {
			return ReasonMalformed, fmt.Sprintf("meters[%d]: a model goes with accelerator-seconds and only there", i)
		}
		if m.Model != "" && !validName(m.Model) {
			return ReasonMalformed, fmt.Sprintf("meters[%d]: model must be 1 to 128 of A-Z a-z 0-9 . _ : -", i)
		}
		key := string(m.Meter) + "/" + m.Model
		if seen[key] {
			return ReasonMalformed, fmt.Sprintf("meters[%d]: %s is listed twice", i, key)
		}
		seen[key] = true
		if _, err := descriptor.ParseDecimal(m.Quantity); err != nil {
			if len(m.Quantity) > 0 && m.Quantity[0] == '-' {
				return ReasonInvalidQuantity, fmt.Sprintf("meters[%d]: quantity %s is negative", i, m.Quantity)
			}
			return ReasonInvalidQuantity, fmt.Sprintf("meters[%d]: quantity %q is not a non-negative decimal", i, m.Quantity)
		}
	}
	return "", ""
}

// quantity returns a meter's quantity; checkShape has validated it.
func (m *Meter) quantity() descriptor.Decimal {
	d, err := descriptor.ParseDecimal(m.Quantity)
	if err != nil {
		panic("settlement: quantity not validated: " + err.Error())
	}
	return d
}

// validName reports whether s is a job, placement or model name: 1 to 128
// of A-Z a-z 0-9 . _ : - (spec/usage-record.md).
func validName(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '_', c == ':', c == '-':
		default:
			return false
		}
	}
	return true
}

// maxExactInt is the largest integer RFC 8785 writes digit for digit
// (2^53-1); larger ones it writes as the nearest double.
const maxExactInt = 1<<53 - 1
