package service_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/cinet/cinet/adapters"
	"github.com/cinet/cinet/broker/service"
	"github.com/cinet/cinet/identity"
)

// TestConfigMistakes: a mistake in a configuration's values is refused
// before anything is opened, with the line or the value named.
func TestConfigMistakes(t *testing.T) {
	for _, tc := range []struct{ name, extra, want string }{
		{"not a duration", "poll: soon\n", `"soon" is not a duration`},
		{"negative", "checkpoint: -1s\n", "checkpoint -1s: want a positive duration"},
		{"token lifetime too long", "tokenMaxTTL: 10000h\n", "tokenMaxTTL 10000h0m0s: want a duration up to"},
		{"timeout", "limits: {readTimeout: 1s, readHeaderTimeout: 2s}\n", "shorter than readHeaderTimeout"},
		{"not whole seconds", "federation: {open: true, statementPeriod: 1500ms}\n", "statementPeriod 1.5s: want a whole number of seconds"},
		{"fee", "fee: \"2\"\n", `fee "2": want a fraction between 0 and 1`},
		{"unknown field", "pol: 1s\n", "unknown field"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := identity.WriteKeyFile(filepath.Join(dir, "broker.key"), operatorKey); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, "broker.yaml")
			os.WriteFile(path, []byte(fmt.Sprintf("region: r\ndata: %s\nlisten: 127.0.0.1:0\n%s", dir, tc.extra)), 0o600)
			c, err := service.LoadConfig(path)
			if err == nil {
				_, err = service.New(context.Background(), c, slog.New(slog.DiscardHandler))
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
			if _, err := os.Stat(filepath.Join(dir, "ledger.db")); err == nil {
				t.Errorf("a database was opened for a configuration that is refused")
			}
		})
	}
}

// closingAdapter is an adapter that counts how often it is closed.
type closingAdapter struct {
	adapters.Adapter
	closed *atomic.Int32
}

func (c closingAdapter) Close() error { c.closed.Add(1); return nil }

var closes atomic.Int32

func init() {
	adapters.Register("service-test-closing", func(raw json.RawMessage, _ adapters.Host) (adapters.Adapter, error) {
		return closingAdapter{closed: &closes}, nil
	})
}

// TestAdaptersClosed: an adapter that holds something open is closed with
// the broker, and when the broker cannot start.
func TestAdaptersClosed(t *testing.T) {
	closes.Store(0)
	dir := t.TempDir()
	if err := identity.WriteKeyFile(filepath.Join(dir, "broker.key"), operatorKey); err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf("region: r\ndata: %s\nlisten: 127.0.0.1:0\nproviders:\n  - {provider: %s, adapter: service-test-closing}\n", dir, providerKey.ID())
	_, stop := runStoppable(t, dir, conf)
	stop()
	if closes.Load() != 1 {
		t.Fatalf("closed %d times with the broker", closes.Load())
	}
	// A latency table that is not there: the broker does not start, and
	// the adapter it had opened is closed.
	path := filepath.Join(dir, "broker.yaml")
	os.WriteFile(path, []byte(conf+"latency: no-such-file.yaml\n"), 0o600)
	c, err := service.LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := service.New(context.Background(), c, slog.New(slog.DiscardHandler)); err == nil {
		t.Fatal("started with a latency table that does not exist")
	}
	if closes.Load() != 2 {
		t.Fatalf("closed %d times after a failed start", closes.Load())
	}
}
