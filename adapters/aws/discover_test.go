package aws_test

import (
	"bytes"
	"context"
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

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/cinet/cinet/adapters/aws"
	"github.com/cinet/cinet/adapters/aws/awstest"
	"github.com/cinet/cinet/descriptor"
	"github.com/cinet/cinet/identity"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func keyID(_ *testing.T, seed byte) identity.PrincipalID {
	return identity.NewKey(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))).ID()
}

var now = awstest.Now

func discover(t *testing.T, f *awstest.Fake, c *aws.Config) (*aws.Discovered, error) {
	t.Helper()
	url := f.Serve()
	c.Endpoint, c.PricingEndpoint = url, url
	cl, err := aws.NewClients(context.Background(), c,
		awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(awstest.AccessKey, "secret", "")))
	if err != nil {
		t.Fatal(err)
	}
	return aws.Discover(context.Background(), cl, c, keyID(t, 1), keyID(t, 2), now)
}

var allTypes = []string{"c7i.large", "g5.xlarge", "p5.48xlarge", "p4d.24xlarge", "inf2.xlarge", "g4ad.xlarge"}

// TestDiscover: an account's instance types become offers in the
// standard classes — CPU-only, one GPU, eight, A100s of 40 GB, a Neuron
// device — on-demand and spot, per zone, at AWS's prices; a type whose
// accelerator the SKU table lacks is named and skipped. The offers are
// the golden file's.
func TestDiscover(t *testing.T) {
	f := &awstest.Fake{T: t}
	d, err := discover(t, f, &aws.Config{CloudOffers: adapters.CloudOffers{Region: "us-east-1", InstanceTypes: allTypes, Quantity: 2, Frameworks: map[string][]descriptor.Framework{"nvidia": {{Name: "cuda", Version: descriptor.MustVersion("12.4")}}}}})
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
		if err := os.WriteFile(golden, got.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Errorf("discovered offers differ from %s (run with -update to rewrite):\n%s", golden, got.String())
	}
	for _, call := range []string{"ec2:DescribeInstanceTypes", "ec2:DescribeInstanceTypeOfferings", "ec2:DescribeSpotPriceHistory", "pricing:GetProducts"} {
		if !slices.Contains(f.Calls(), call) {
			t.Errorf("discovery never called %s: %v", call, f.Calls())
		}
	}
}

// TestThrottling: AWS's RequestLimitExceeded is retried with backoff, and
// reported, naming the call, once the attempts are spent.
func TestThrottling(t *testing.T) {
	f := &awstest.Fake{T: t, Throttle: 2}
	d, err := discover(t, f, &aws.Config{CloudOffers: adapters.CloudOffers{Region: "us-east-1", InstanceTypes: []string{"c7i.large"}, MaxAttempts: 3, MaxBackoff: descriptor.Duration(time.Millisecond)}})
	if err != nil || len(d.Offers) != 4 {
		t.Fatalf("after two refusals: %v, %d offers", err, len(d.Offers))
	}
	if n := strings.Count(strings.Join(f.Calls(), " "), "ec2:DescribeInstanceTypes"); n != 3 {
		t.Errorf("DescribeInstanceTypes was called %d times, want 3 (two throttled)", n)
	}
	f = &awstest.Fake{T: t, Throttle: 100}
	_, err = discover(t, f, &aws.Config{CloudOffers: adapters.CloudOffers{Region: "us-east-1", InstanceTypes: []string{"c7i.large"}, MaxAttempts: 3, MaxBackoff: descriptor.Duration(time.Millisecond)}})
	if err == nil || !strings.Contains(err.Error(), "DescribeInstanceTypes") || !strings.Contains(err.Error(), "3 attempts") || !strings.Contains(err.Error(), "RequestLimitExceeded") {
		t.Fatalf("error %v", err)
	}
}

// TestBadInput: wrong credentials, an unknown instance type and a
// configuration short of what discovery needs each say what to fix.
func TestBadInput(t *testing.T) {
	_, err := discover(t, &awstest.Fake{T: t, Deny: true}, &aws.Config{CloudOffers: adapters.CloudOffers{Region: "us-east-1", InstanceTypes: []string{"c7i.large"}}})
	if err == nil || !strings.Contains(err.Error(), "AuthFailure") || !strings.Contains(err.Error(), "check the credentials") {
		t.Errorf("wrong credentials: %v", err)
	}
	_, err = discover(t, &awstest.Fake{T: t}, &aws.Config{CloudOffers: adapters.CloudOffers{Region: "us-east-1", InstanceTypes: []string{"c7i.large", "x9.huge"}}})
	if err == nil || !strings.Contains(err.Error(), "x9.huge") || !strings.Contains(err.Error(), "check instanceTypes") {
		t.Errorf("an unknown instance type: %v", err)
	}
	for _, tc := range []struct{ config, want string }{
		{`{"instanceTypes": ["c7i.large"]}`, "region is required"},
		{`{"region": "us-east-1"}`, "instanceTypes is required"},
		{`{"region": "us-east-1", "instanceTypes": ["c7i.large"], "markets": ["reserved"]}`, `market "reserved"`},
		{`{"region": "eu-central-1", "instanceTypes": ["c7i.large"]}`, "give jurisdiction"},
		{`{"region": "us-east-1", "instanceTypes": ["c7i.large"], "secretKey": "x"}`, "unknown field"},
	} {
		if _, err := aws.ParseConfig([]byte(tc.config)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.config, err, tc.want)
		}
	}
	if c, err := aws.ParseConfig([]byte(`{"region": "eu-central-1", "jurisdiction": "DE", "instanceTypes": ["c7i.large"]}`)); err != nil || c.Region != "eu-central-1" {
		t.Errorf("a valid configuration: %v", err)
	}
}

// TestNoCredentials: without credentials discovery says how to give them.
func TestNoCredentials(t *testing.T) {
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"} {
		t.Setenv(k, "")
	}
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	url := (&awstest.Fake{T: t}).Serve()
	c := &aws.Config{CloudOffers: adapters.CloudOffers{Region: "us-east-1", InstanceTypes: []string{"c7i.large"}, MaxAttempts: 1}, Endpoint: url, PricingEndpoint: url}
	cl, err := aws.NewClients(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	_, err = aws.Discover(context.Background(), cl, c, keyID(t, 1), keyID(t, 2), now)
	if err == nil || !strings.Contains(err.Error(), "no AWS credentials") {
		t.Fatalf("error %v", err)
	}
}

// TestRealAccount discovers from a real account when credentials are
// given (CINET_TEST_AWS=1 with the SDK's usual variables); it is skipped
// otherwise.
func TestRealAccount(t *testing.T) {
	if os.Getenv("CINET_TEST_AWS") == "" || os.Getenv("AWS_ACCESS_KEY_ID") == "" {
		t.Skip("no AWS account: set CINET_TEST_AWS=1 and AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY to run against AWS")
	}
	c := &aws.Config{CloudOffers: adapters.CloudOffers{Region: "us-east-1", InstanceTypes: []string{"c7i.large", "g5.xlarge"}}}
	cl, err := aws.NewClients(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	d, err := aws.Discover(context.Background(), cl, c, keyID(t, 1), keyID(t, 2), time.Now())
	if err != nil || len(d.Offers) == 0 {
		t.Fatalf("%v: %+v", err, d)
	}
}
