package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/goccy/go-yaml"
	"github.com/spf13/cobra"

	"github.com/cinet/cinet/broker/client"
	"github.com/cinet/cinet/identity"
)

// remote is how a command reaches a running broker: flags, then the
// environment (CINET_BROKER, CINET_KEY, CINET_TOKEN), then the client
// config file ($CINET_CONFIG, or ~/.config/cinet/client.yaml).
type remote struct {
	broker, key, token, ca string
}

// clientFile is the client config file.
type clientFile struct {
	Broker string `yaml:"broker"`
	Key    string `yaml:"key"`
	Token  string `yaml:"token"`
	// CA is a PEM file of CA certificates trusted for the broker's TLS,
	// besides the system's.
	CA string `yaml:"ca"`
}

func (r *remote) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&r.broker, "broker", "", "the broker's URL (or $CINET_BROKER, or broker: in the client config)")
	if f.Lookup("key") == nil {
		f.StringVar(&r.key, "key", "", "your key file, which signs requests (or $CINET_KEY)")
	}
	f.StringVar(&r.token, "token", "", "an operator-issued token instead of a key (or $CINET_TOKEN)")
	f.StringVar(&r.ca, "ca", "", "a PEM file of CA certificates to trust for the broker's TLS, besides the system's (or $CINET_CA, or ca: in the client config)")
}

func configPath() string {
	if p := os.Getenv("CINET_CONFIG"); p != "" {
		return p
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "cinet", "client.yaml")
}

// resolve fills what flags left empty from the environment and the config
// file.
func (r *remote) resolve() error {
	var file clientFile
	if p := configPath(); p != "" {
		if data, err := os.ReadFile(p); err == nil {
			if err := yaml.UnmarshalWithOptions(data, &file, yaml.Strict()); err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
		}
	}
	pick := func(dst *string, env, fromFile string) {
		if *dst == "" {
			*dst = os.Getenv(env)
		}
		if *dst == "" {
			*dst = fromFile
		}
	}
	pick(&r.broker, "CINET_BROKER", file.Broker)
	pick(&r.key, "CINET_KEY", file.Key)
	pick(&r.token, "CINET_TOKEN", file.Token)
	pick(&r.ca, "CINET_CA", file.CA)
	return nil
}

// on reports whether a broker is named, so that the command goes to it.
func (r *remote) on() (bool, error) {
	if err := r.resolve(); err != nil {
		return false, err
	}
	return r.broker != "", nil
}

// client returns a client for the broker; it needs a key or a token.
func (r *remote) client() (*client.Client, error) {
	if err := r.resolve(); err != nil {
		return nil, err
	}
	if r.broker == "" {
		return nil, usageError{errors.New("no broker: give --broker URL, set CINET_BROKER, or name one in " + configPath())}
	}
	c := &client.Client{Base: r.broker, Token: r.token}
	if r.ca != "" {
		hc, err := client.HTTPWithCA(r.ca)
		if err != nil {
			return nil, err
		}
		c.HTTP = hc
	}
	if r.token == "" {
		if r.key == "" {
			return nil, usageError{errors.New("no key: give --key FILE (or $CINET_KEY, or a token) to sign requests")}
		}
		k, err := identity.LoadKeyFile(r.key)
		if err != nil {
			return nil, err
		}
		c.Key = k
	}
	return c, nil
}

// answer runs a command's one request with its client and writes the
// answer: as -o asks (json, yaml, a template), or by print for a table.
func answer[T any](cmd *cobra.Command, r *remote, o *output, ask func(*client.Client, context.Context) (T, error), print func(io.Writer, T) error) error {
	structured, err := o.json()
	if err != nil {
		return err
	}
	c, err := r.client()
	if err != nil {
		return err
	}
	v, err := ask(c, cmd.Context())
	if err != nil {
		return err
	}
	if structured {
		return o.write(cmd.OutOrStdout(), v)
	}
	return print(cmd.OutOrStdout(), v)
}
