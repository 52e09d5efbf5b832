package settlement

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cinet/cinet/descriptor"
	"github.com/cinet/cinet/identity"
)

func key(b byte) *identity.Key {
	return identity.NewKey(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{b}, 32)))
}

var (
	homeKey     = key(1)
	execKey     = key(2)
	tenantKey   = key(3)
	providerKey = key(4)
)

// Monday 30 November 2026, 09:00 in Shanghai.
var t0 = time.Date(2026, 11, 30, 1, 0, 0, 0, time.UTC)

// offerDoc builds an offer from the provider with the given price block.
func offerDoc(t testing.TB, price string) *descriptor.Document {
	t.Helper()
	cid, err := identity.NewComputeID(providerKey.ID(), "cn-east-1", "a", "h100")
	if err != nil {
		t.Fatal(err)
	}
	src := fmt.Sprintf(`apiVersion: cinet/v1
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
%s
validUntil: 2027-01-01T00:00:00Z
sequence: 1
`, cid, providerKey.ID(), execKey.ID(), price)
	d, err := descriptor.Parse("offer.yaml", []byte(src))
	if err != nil {
		t.Fatalf("%v\n%s", err, src)
	}
	return d
}

const flatPrice = `  currency: CNY
  timezone: Asia/Shanghai
  rates: {instanceHour: "100", acceleratorHour: "10", tokensOutPerMillion: "2", egressGiB: "0.5"}`

const tieredPrice = `  currency: CNY
  timezone: Asia/Shanghai
  minimumIncrement: 1h
  rates: {instanceHour: "100", acceleratorHour: "10"}
  tiers:
    - {name: night, start: "22:00", end: "08:00", rates: {instanceHour: "60"}}`

// usage builds a record over [start, start+d) on offer doc.
func usage(doc *descriptor.Document, placement string, start time.Time, d time.Duration, meters ...Meter) *UsageRecord {
	return &UsageRecord{
		Job: "job-" + placement, Placement: placement, Sequence: 1,
		ComputeID: doc.Offer.ComputeID, Offer: doc.Digest, Instances: 2,
		Tenant: tenantKey.ID(), Provider: providerKey.ID(), HomeBroker: homeKey.ID(), ExecutingBroker: execKey.ID(),
		PeriodStart: start, PeriodEnd: start.Add(d), Meters: meters,
		Fees: Fees{Home: descriptor.MustDecimal("0.02"), Executing: descriptor.MustDecimal("0.03")},
	}
}

func m(kind MeterKind, q string) Meter { return Meter{Meter: kind, Quantity: q} }

func gpu(q string) Meter { return Meter{Meter: AcceleratorSeconds, Model: "H100", Quantity: q} }

func describeItems(r *Rating) string {
	var b strings.Builder
	for _, it := range r.Items {
		fmt.Fprintf(&b, "%s/%s %s×%s=%s; ", it.Meter, it.Tier, it.PricingQuantity, it.UnitPrice, it.Amount.Decimal())
	}
	return b.String()
}
