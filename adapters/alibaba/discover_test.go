package alibaba_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"flag"
	"fmt"
	"github.com/cinet/cinet/adapters"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cinet/cinet/adapters/alibaba"
	"github.com/cinet/cinet/adapters/alibaba/alibabatest"
	"github.com/cinet/cinet/descriptor"
	"github.com/cinet/cinet/identity"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func keyID(seed byte) identity.PrincipalID {
	return identity.NewKey(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))).ID()
}

func discover(t *testing.T, f *alibabatest.Fake, c *alibaba.Config) (*alibaba.Discovered, error) {
	t.Helper()
	c.Endpoint, c.Scheme = f.Serve(), "http"
	if c.Region == "" {
		c.Region = "cn-hangzhou"
	}
	cl, err := alibaba.NewClient(c, alibabatest.AccessKeyID, alibabatest.AccessKeySecret)
	if err != nil {
		t.Fatal(err)
	}
	return alibaba.Discover(cl, c, keyID(1), keyID(2), alibabatest.Now)
}

// TestDiscover: an account's instance types become offers in the standard
// classes — CPU-only x86 and ARM, one A10, four A100s of 40 GB —
// pay-as-you-go and spot, per zone, at the prices ECS states, exactly; a
// vGPU slice the SKU table lacks is named and skipped. The offers are the
// golden file's.
func TestDiscover(t *testing.T) {
	f := &alibabatest.Fake{T: t}
	d, err := discover(t, f, &alibaba.Config{CloudOffers: adapters.CloudOffers{Quantity: 2, InstanceTypes: []string{"ecs.g7.xlarge", "ecs.g8y.large", "ecs.gn7i-c8g1.2xlarge", "ecs.gn7-c13g1.13xlarge", "ecs.vgn7i-vws-m4.xlarge", "ecs.nosuch.large"}, Frameworks: map[string][]descriptor.Framework{"nvidia": {{Name: "cuda", Version: descriptor.MustVersion("12.4")}}}}})
	if err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	for _, o := range d.Offers {
		data, err := json.MarshalIndent(o.Offer, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		got.Write(append(data, '\n'))
	}
	for _, s := range d.Skipped {
		fmt.Fprintf(&got, "skipped: %s\n", s)
	}
	golden := filepath.Join("testdata", "discover.golden")
	if *update {
		os.MkdirAll("testdata", 0o755)
		if err := os.WriteFile(golden, got.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Errorf("discovered offers differ from %s (-update rewrites it):\n%s", golden, got.String())
	}
	for _, call := range []string{"DescribeInstanceTypes", "DescribeAvailableResource", "DescribePrice", "DescribeSpotPriceHistory"} {
		if !slices.Contains(f.Calls(), call) {
			t.Errorf("discovery never called %s: %v", call, f.Calls())
		}
	}
}

// TestThrottling: Throttling.User is retried with backoff, and reported
// once the attempts are spent.
func TestThrottling(t *testing.T) {
	f := &alibabatest.Fake{T: t, Throttle: 2}
	d, err := discover(t, f, &alibaba.Config{CloudOffers: adapters.CloudOffers{InstanceTypes: []string{"ecs.g7.xlarge"}, Markets: []string{"on-demand"}, MaxAttempts: 3, MaxBackoff: descriptor.Duration(time.Millisecond)}})
	if err != nil || len(d.Offers) != 2 {
		t.Fatalf("after two refusals: %v, %+v", err, d)
	}
	if n := strings.Count(strings.Join(f.Calls(), " "), "DescribeInstanceTypes"); n != 3 {
		t.Errorf("DescribeInstanceTypes was called %d times, want 3", n)
	}
	f = &alibabatest.Fake{T: t, Throttle: 100}
	_, err = discover(t, f, &alibaba.Config{CloudOffers: adapters.CloudOffers{InstanceTypes: []string{"ecs.g7.xlarge"}, MaxAttempts: 3, MaxBackoff: descriptor.Duration(time.Millisecond)}})
	if err == nil || !strings.Contains(err.Error(), "Throttling.User") || !strings.Contains(err.Error(), "3 attempts") {
		t.Fatalf("error %v", err)
	}
}

// TestBadInput: wrong or missing credentials, an instance type ECS does
// not sell, and a configuration short of what discovery needs each say
// what to fix.
func TestBadInput(t *testing.T) {
	_, err := discover(t, &alibabatest.Fake{T: t, Deny: true}, &alibaba.Config{CloudOffers: adapters.CloudOffers{InstanceTypes: []string{"ecs.g7.xlarge"}}})
	if err == nil || !strings.Contains(err.Error(), "InvalidAccessKeyId.NotFound") || !strings.Contains(err.Error(), "check the credentials") {
		t.Errorf("wrong credentials: %v", err)
	}
	if _, err := alibaba.NewClient(&alibaba.Config{CloudOffers: adapters.CloudOffers{Region: "cn-hangzhou"}}, "", ""); err == nil || !strings.Contains(err.Error(), "ALIBABA_CLOUD_ACCESS_KEY_ID") {
		t.Errorf("no credentials: %v", err)
	}
	for _, tc := range []struct{ config, want string }{
		{`{"instanceTypes": ["ecs.g7.xlarge"]}`, "region is required"},
		{`{"region": "cn-hangzhou"}`, "instanceTypes is required"},
		{`{"region": "cn-hangzhou", "instanceTypes": ["ecs.g7.xlarge"], "markets": ["prepaid"]}`, `market "prepaid"`},
		{`{"region": "eu-central-1", "instanceTypes": ["ecs.g7.xlarge"]}`, "give jurisdiction"},
		{`{"region": "cn-hangzhou", "instanceTypes": ["ecs.g7.xlarge"], "accessKeySecret": "x"}`, "unknown field"},
	} {
		if _, err := alibaba.ParseConfig([]byte(tc.config)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.config, err, tc.want)
		}
	}
}

// TestRealAccount discovers from a real account when credentials are
// given (CINET_TEST_ALIBABA=1 with ALIBABA_CLOUD_ACCESS_KEY_ID and
// ALIBABA_CLOUD_ACCESS_KEY_SECRET); it is skipped otherwise.
func TestRealAccount(t *testing.T) {
	id, secret := os.Getenv("ALIBABA_CLOUD_ACCESS_KEY_ID"), os.Getenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET")
	if os.Getenv("CINET_TEST_ALIBABA") == "" || id == "" {
		t.Skip("no Alibaba Cloud account: set CINET_TEST_ALIBABA=1, ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET to run against it")
	}
	c := &alibaba.Config{CloudOffers: adapters.CloudOffers{Region: "cn-hangzhou", InstanceTypes: []string{"ecs.g7.xlarge"}}}
	cl, err := alibaba.NewClient(c, id, secret)
	if err != nil {
		t.Fatal(err)
	}
	d, err := alibaba.Discover(cl, c, keyID(1), keyID(2), time.Now())
	if err != nil || len(d.Offers) == 0 {
		t.Fatalf("%v: %+v", err, d)
	}
}
