package client

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestDependencies: a program that calls a broker through this package
// pulls in the API's types, identity and the request signer, and nothing
// of the broker itself: no storage, network, matching or settlement
// package.
func TestDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	allowed := []string{
		"github.com/cinet/cinet/broker/client", "github.com/cinet/cinet/broker/api/v1", "github.com/cinet/cinet/broker/httpsig",
		"github.com/cinet/cinet/identity", "github.com/cinet/cinet/descriptor/money",
	}
	for _, d := range deps {
		if strings.HasPrefix(d, "github.com/cinet/cinet/") && !strings.HasPrefix(d, "github.com/cinet/cinet/identity/") && !slices.Contains(allowed, d) {
			t.Errorf("the client imports %s", d)
		}
		for _, banned := range []string{"libp2p", "sqlite", "jackc/pgx", "cel-go", "aws", "aliyun", "prometheus"} {
			if strings.Contains(d, banned) {
				t.Errorf("the client imports %s", d)
			}
		}
	}
	if len(deps) > 30 {
		t.Errorf("the client pulls in %d packages outside the standard library:\n%s", len(deps), out)
	}
	t.Logf("%d packages outside the standard library", len(deps))
}
