// Package settlementtest holds fixtures for tests of settlement and of
// what builds on it: fixed keys, an offer with a tiered price schedule,
// and usage records sealed by their executing broker.
package settlementtest

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"math/big"
	"testing"
	"time"

	"github.com/cinet/cinet/descriptor"
	"github.com/cinet/cinet/identity"
	"github.com/cinet/cinet/settlement"
)

// Key returns the key derived from a seed of 32 b bytes.
func Key(b byte) *identity.Key {
	return identity.NewKey(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{b}, 32)))
}

// The parties of the fixtures.
var (
	HomeKey     = Key(1)
	ExecKey     = Key(2)
	TenantKey   = Key(3)
	ProviderKey = Key(4)
	StrangerKey = Key(5)
)

// Now is Monday 30 November 2026, 20:00 in Shanghai.
var Now = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

// OfferYAML is the offer the fixtures' records are placed on: 4 instances
// of 8 H100 in cn-east-1, priced in CNY in Asia/Shanghai with a night tier
// and a one-minute minimum increment, whose capacity owner owns: the
// executing broker of the records placed on it.
func OfferYAML(owner identity.PrincipalID) string {
	cid, err := identity.NewComputeID(ProviderKey.ID(), "cn-east-1", "a", "h100")
	if err != nil {
		panic(err)
	}
	return fmt.Sprintf(`apiVersion: cinet/v1
kind: Offer
metadata: {name: h100}
computeId: %s
provider: %s
broker: %s
region: cn-east-1
zone: a
jurisdiction: CN
class:
  cpu: {arch: x86_64, count: 96}
  memory: 1Ti
  accelerators:
    - {model: H100, count: 8}
quantity: 4
price:
  currency: CNY
  timezone: Asia/Shanghai
  minimumIncrement: 1m
  rates: {instanceHour: "100", acceleratorHour: "10", tokensOutPerMillion: "2"}
  tiers:
    - {name: night, start: "22:00", end: "08:00", rates: {instanceHour: "60"}}
validUntil: 2027-01-01T00:00:00Z
sequence: 1
`, cid, ProviderKey.ID(), owner)
}

// Offer parses OfferYAML for the owner's key.
func Offer(t testing.TB, owner *identity.Key) *descriptor.Document {
	t.Helper()
	d, err := descriptor.Parse("offer.yaml", []byte(OfferYAML(owner.ID())))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// Record returns a record of one instance over [start, start+d) on doc,
// metering instance-seconds for the whole period, with fees of 2% (home)
// and 3% (executing).
func Record(doc *descriptor.Document, home, exec *identity.Key, placement string, start time.Time, d time.Duration) *settlement.UsageRecord {
	return &settlement.UsageRecord{
		Job: "job-" + placement, Placement: placement, Sequence: 1,
		ComputeID: doc.Offer.ComputeID, Offer: doc.Digest, Instances: 1,
		Tenant: TenantKey.ID(), Provider: ProviderKey.ID(), HomeBroker: home.ID(), ExecutingBroker: exec.ID(),
		PeriodStart: start, PeriodEnd: start.Add(d),
		Meters: []settlement.Meter{{Meter: settlement.InstanceSeconds, Quantity: fmt.Sprint(int(d.Seconds()))}},
		Fees:   settlement.Fees{Home: descriptor.MustDecimal("0.02"), Executing: descriptor.MustDecimal("0.03")},
	}
}

// Seal signs a record as k and returns the encoded envelope.
func Seal(t testing.TB, k *identity.Key, r *settlement.UsageRecord) []byte {
	t.Helper()
	env, err := settlement.SealRecord(k, r)
	if err != nil {
		t.Fatal(err)
	}
	return env.Encode()
}

// FullUse is the usage record of a run that uses everything the
// offer's class has, for the meters the offer prices: the record an
// estimate stands for (spec/matching.md §4).
func FullUse(o *descriptor.Offer, start time.Time, runtime time.Duration, nodes int64) *settlement.UsageRecord {
	secs := new(big.Rat).SetFrac(big.NewInt(int64(runtime)), big.NewInt(1_000_000_000))
	qty := func(perInstance *big.Rat) string {
		q := new(big.Rat).Mul(perInstance, secs)
		q.Mul(q, big.NewRat(nodes, 1))
		return q.FloatString(45) // exact: denominators divide 10^39
	}
	var meters []settlement.Meter
	r := &o.Price.Rates
	if r.InstanceHour.IsSet() {
		meters = append(meters, settlement.Meter{Meter: settlement.InstanceSeconds, Quantity: trim(qty(big.NewRat(1, 1)))})
	}
	if r.VCPUHour.IsSet() {
		meters = append(meters, settlement.Meter{Meter: settlement.VCPUSeconds, Quantity: trim(qty(big.NewRat(int64(o.Class.CPU.Count), 1)))})
	}
	if r.GiBHour.IsSet() && o.Class.Memory > 0 {
		meters = append(meters, settlement.Meter{Meter: settlement.GiBSeconds, Quantity: trim(qty(big.NewRat(int64(o.Class.Memory), 1<<30)))})
	}
	if r.AcceleratorHour.IsSet() {
		devices := map[string]int64{}
		var models []string
		for _, a := range o.Class.Accelerators {
			if devices[a.Model] == 0 {
				models = append(models, a.Model)
			}
			devices[a.Model] += int64(a.Count)
		}
		for _, m := range models {
			meters = append(meters, settlement.Meter{Meter: settlement.AcceleratorSeconds, Model: m, Quantity: trim(qty(big.NewRat(devices[m], 1)))})
		}
	}
	zero := descriptor.MustDecimal("0")
	return &settlement.UsageRecord{Instances: nodes, PeriodStart: start, PeriodEnd: start.Add(runtime), Meters: meters,
		Fees: settlement.Fees{Home: zero, Executing: zero}}
}

// trim drops trailing zeros of a fixed-point decimal.
func trim(s string) string {
	for len(s) > 1 && s[len(s)-1] == '0' {
		s = s[:len(s)-1]
	}
	if s[len(s)-1] == '.' {
		s = s[:len(s)-1]
	}
	return s
}
