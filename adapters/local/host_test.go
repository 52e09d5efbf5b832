package local

import (
	"slices"
	"strings"
	"testing"

	"github.com/cinet/cinet/adapters"
)

// TestForHost: the broker's private paths are hidden from tasks, tenants'
// services are kept off the broker's hosts, and tasks run unisolated only
// where the broker allows it; the zero Host changes nothing.
func TestForHost(t *testing.T) {
	host := adapters.Host{Private: []string{"/data/broker", "/data/broker/broker.key"}, Reserved: []string{"127.0.0.1", "127.0.0.2", "localhost"}, RequireIsolation: true}
	for _, tc := range []struct {
		name   string
		conf   Config
		host   adapters.Host
		listen string
		err    string
	}{
		{name: "defaults", host: host, listen: "127.0.0.3"},
		{name: "the zero host", host: adapters.Host{}, listen: ""},
		{name: "an address of its own", conf: Config{ServiceListen: "127.0.0.9"}, host: host, listen: "127.0.0.9"},
		{name: "the console's address", conf: Config{ServiceListen: "127.0.0.2"}, host: host, err: "console is reached by"},
		{name: "unisolated", conf: Config{Isolation: IsolationNone}, host: host, err: "only cinet dev"},
		{name: "unisolated where allowed", conf: Config{Isolation: IsolationNone}, host: adapters.Host{}, listen: ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.conf
			err := c.ForHost(tc.host)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.ServiceListen != tc.listen {
				t.Errorf("serviceListen %q, want %q", c.ServiceListen, tc.listen)
			}
			for _, p := range tc.host.Private {
				if !slices.Contains(c.Hide, p) {
					t.Errorf("%s is not hidden: %v", p, c.Hide)
				}
			}
		})
	}
}
