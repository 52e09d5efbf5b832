package main

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/cinet/cinet/broker/api"
	"github.com/cinet/cinet/broker/service"
	"github.com/cinet/cinet/identity"
	"github.com/cinet/cinet/settlement"
	"github.com/cinet/cinet/settlement/sqlstore"
)

// brokerData is where a broker keeps its state: the flags that locate it
// and what opening it yields.
type brokerData struct {
	dir     string   // --data
	store   string   // --store: a SQLite path or a postgres:// / cockroachdb:// URL
	keyFile string   // --broker-key
	brokers []string // --broker: DIDs of brokers this one settles with
	at      string   // --at: the time to take as now
}

func (d *brokerData) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&d.dir, "data", "", "data directory (default $CINET_DATA, else ~/.local/share/cinet)")
	f.StringVar(&d.store, "store", "", "ledger store: a SQLite file or a postgres:// or cockroachdb:// URL (default DATA/ledger.db)")
	f.StringVar(&d.keyFile, "broker-key", "", "the broker's key file, created if missing (default DATA/broker.key)")
	f.StringSliceVar(&d.brokers, "peer", nil, "DID of another broker this one settles with (repeatable)")
}

// registerAt adds --at, for commands whose outcome depends on the clock.
func (d *brokerData) registerAt(cmd *cobra.Command) {
	cmd.Flags().StringVar(&d.at, "at", "", "take this RFC 3339 time as now (default: the clock)")
}

func (d *brokerData) dataDir() (string, error) {
	if d.dir != "" {
		return d.dir, nil
	}
	if env := os.Getenv("CINET_DATA"); env != "" {
		return env, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("no --data directory given and no home directory: %w", err)
	}
	return filepath.Join(home, ".local", "share", "cinet"), nil
}

func (d *brokerData) now() (func() time.Time, error) {
	if d.at == "" {
		return func() time.Time { return time.Now().UTC() }, nil
	}
	t, err := time.Parse(time.RFC3339, d.at)
	if err != nil {
		return nil, usageError{fmt.Errorf("--at %q: want an RFC 3339 time such as 2026-12-01T09:00:00Z", d.at)}
	}
	return func() time.Time { return t.UTC() }, nil
}

// key loads the broker's key, creating it on first use.
func (d *brokerData) key(cmd *cobra.Command) (*identity.Key, error) {
	path := d.keyFile
	if path == "" {
		dir, err := d.dataDir()
		if err != nil {
			return nil, err
		}
		path = filepath.Join(dir, "broker.key")
	}
	k, err := identity.LoadKeyFile(path)
	if errors.Is(err, fs.ErrNotExist) && d.keyFile == "" {
		if k, err = identity.GenerateKey(rand.Reader); err != nil {
			return nil, err
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, err
		}
		if err := identity.WriteKeyFile(path, k); err != nil {
			return nil, err
		}
		fmt.Fprintf(cmd.ErrOrStderr(), "cinet: created the broker key %s for %s\n", path, k.ID())
		return k, nil
	}
	return k, err
}

// LogOrigin is the audit log's origin for a broker: its checkpoints are
// signed under this key name.
func LogOrigin(id identity.PrincipalID) string { return service.LogOrigin(id) }

// openSettler opens the broker's books. The caller closes the store.
func (d *brokerData) openSettler(cmd *cobra.Command) (*settlement.Settler, *sqlstore.Store, error) {
	now, err := d.now()
	if err != nil {
		return nil, nil, err
	}
	k, err := d.key(cmd)
	if err != nil {
		return nil, nil, err
	}
	var brokers []identity.PrincipalID
	for _, b := range d.brokers {
		id, err := identity.ParsePrincipalID(b)
		if err != nil {
			return nil, nil, usageError{fmt.Errorf("--peer %q: %w", b, err)}
		}
		brokers = append(brokers, id)
	}
	location := d.store
	if location == "" {
		dir, err := d.dataDir()
		if err != nil {
			return nil, nil, err
		}
		location = filepath.Join(dir, "ledger.db")
	}
	store, err := sqlstore.Open(cmd.Context(), location)
	if err != nil {
		return nil, nil, err
	}
	s, err := settlement.New(settlement.Config{Store: store, Key: k, Origin: LogOrigin(k.ID()), Brokers: brokers, Now: now})
	if err != nil {
		store.Close()
		return nil, nil, err
	}
	return s, store, nil
}

// parsePeriod reads a period (api.ParsePeriod); a bad one is a usage error.
func parsePeriod(s string) (from, to time.Time, err error) {
	if from, to, err = api.ParsePeriod(s); err != nil {
		return from, to, usageError{err}
	}
	return from, to, nil
}
