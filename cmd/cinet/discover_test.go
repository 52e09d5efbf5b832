package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cinet/cinet/adapters/alibaba/alibabatest"
	"github.com/cinet/cinet/adapters/aws/awstest"
	"github.com/cinet/cinet/descriptor"
	"github.com/cinet/cinet/identity"
)

// TestProviderDiscover: 'provider discover --adapter aws' prints the
// offers an account's capacity makes, says which types it leaves out
// and why, and writes them as files 'provider register' reads.
func TestProviderDiscover(t *testing.T) {
	f := &awstest.Fake{T: t}
	url := f.Serve()
	t.Setenv("AWS_ACCESS_KEY_ID", awstest.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("CINET_CONFIG", filepath.Join(t.TempDir(), "none.yaml"))
	dir := t.TempDir()
	conf := filepath.Join(dir, "aws.yaml")
	if err := os.WriteFile(conf, []byte("region: us-east-1\ninstanceTypes: [c7i.large, p5.48xlarge, g4ad.xlarge]\nmarkets: [on-demand]\n"+
		"endpoint: "+url+"\npricingEndpoint: "+url+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(dir, "provider.key")
	if code, _, errOut := cli(t, "", "keygen", "--out", key); code != 0 {
		t.Fatal(errOut)
	}
	owner := "did:key:z6MkvhVViYBE4mnmVqqiJiPVFfynt7nAe9TXn4iAnkJEVNBg"
	code, out, errOut := cli(t, "", "provider", "discover", "--adapter", "aws", "--config", conf, "--key", key, "--owner", owner)
	if code != 0 {
		t.Fatalf("%d\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{"COMPUTE ID", "/us-east-1/b/p5-48xlarge", "192 vCPU x86_64, 2Ti, H100:8", "98.32 USD/instance-hour", "/us-east-1/a/c7i-large "} {
		if !strings.Contains(out, want) {
			t.Errorf("the table lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(errOut, "not offered: g4ad.xlarge: its accelerators (AMD Radeon Pro V520) are not in the SKU table") {
		t.Errorf("stderr does not say why g4ad.xlarge is left out: %q", errOut)
	}
	offersDir := filepath.Join(dir, "offers")
	code, out, errOut = cli(t, "", "provider", "discover", "--config", conf, "--key", key, "--owner", owner, "--out", offersDir)
	if code != 0 {
		t.Fatalf("--out: %d\n%s\n%s", code, out, errOut)
	}
	files := strings.Fields(out)
	if len(files) != 3 {
		t.Fatalf("--out wrote %v", files)
	}
	k, err := identity.LoadKeyFile(key)
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		doc, err := descriptor.ParseOffer(file, data)
		if err != nil {
			t.Fatalf("%s is not an offer 'provider register' takes: %v", file, err)
		}
		if doc.Offer.Provider != k.ID() || doc.Offer.Broker.String() != owner || !doc.Offer.ComputeID.OwnedBy(k.ID()) {
			t.Errorf("%s: provider %s, broker %s, compute ID %s", file, doc.Offer.Provider, doc.Offer.Broker, doc.Offer.ComputeID)
		}
	}
	for _, bad := range []struct {
		args []string
		want string
	}{
		{[]string{"--adapter", "gcp", "--config", conf, "--key", key, "--owner", owner}, "want aws, alibaba or slurm"},
		{[]string{"--key", key, "--owner", owner}, "give --config"},
		{[]string{"--config", conf, "--owner", owner}, "give --key"},
		{[]string{"--config", conf, "--key", key}, "give --owner DID or --broker URL"},
	} {
		if code, _, errOut := cli(t, "", append([]string{"provider", "discover"}, bad.args...)...); code == 0 || !strings.Contains(errOut, bad.want) {
			t.Errorf("%v: %d %q, want %q", bad.args, code, errOut, bad.want)
		}
	}
}

// TestProviderDiscoverAlibaba: the same from an Alibaba Cloud account,
// with its AccessKey from the environment.
func TestProviderDiscoverAlibaba(t *testing.T) {
	host := (&alibabatest.Fake{T: t}).Serve()
	t.Setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", alibabatest.AccessKeyID)
	t.Setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", alibabatest.AccessKeySecret)
	t.Setenv("CINET_CONFIG", filepath.Join(t.TempDir(), "none.yaml"))
	dir := t.TempDir()
	conf := filepath.Join(dir, "alibaba.yaml")
	if err := os.WriteFile(conf, []byte("region: cn-hangzhou\ninstanceTypes: [ecs.gn7i-c8g1.2xlarge]\nendpoint: "+host+"\nscheme: http\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(dir, "provider.key")
	if code, _, errOut := cli(t, "", "keygen", "--out", key); code != 0 {
		t.Fatal(errOut)
	}
	code, out, errOut := cli(t, "", "provider", "discover", "--adapter", "alibaba", "--config", conf, "--key", key,
		"--owner", "did:key:z6MkvhVViYBE4mnmVqqiJiPVFfynt7nAe9TXn4iAnkJEVNBg")
	if code != 0 {
		t.Fatalf("%d\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{"/cn-hangzhou/i/gn7i-c8g1-2xlarge ", "A10:1", "12.27 CNY/instance-hour", "/cn-hangzhou/i/gn7i-c8g1-2xlarge-spot", "2.84 CNY/instance-hour"} {
		if !strings.Contains(out, want) {
			t.Errorf("the table lacks %q:\n%s", want, out)
		}
	}
	t.Setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", "")
	if code, _, errOut := cli(t, "", "provider", "discover", "--adapter", "alibaba", "--config", conf, "--key", key,
		"--owner", "did:key:z6MkvhVViYBE4mnmVqqiJiPVFfynt7nAe9TXn4iAnkJEVNBg"); code == 0 || !strings.Contains(errOut, "ALIBABA_CLOUD_ACCESS_KEY_ID") {
		t.Errorf("without credentials: %d %q", code, errOut)
	}
}
