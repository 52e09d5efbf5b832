package service_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/cinet/cinet/settlement/settlementtest"

	"github.com/cinet/cinet/broker/service"
	"github.com/cinet/cinet/identity"
)

// federated runs a broker with its own local provider in a federation of
// the given members, bootstrapped from peers.
func federated(t *testing.T, k, prov *identity.Key, region string, members []identity.PrincipalID, peers ...string) *env {
	t.Helper()
	dir := t.TempDir()
	if err := identity.WriteKeyFile(filepath.Join(dir, "broker.key"), k); err != nil {
		t.Fatal(err)
	}
	var ms []string
	for _, m := range members {
		ms = append(ms, m.String())
	}
	cfg := fmt.Sprintf(`region: %s
data: %s
listen: 127.0.0.1:0
fee: "0.02"
poll: 20ms
principals:
  - {did: %s, role: regulator}
providers:
  - provider: %s
    adapter: local
    config: {workdir: %s, shim: [%q]}
federation:
  listen: [/ip4/127.0.0.1/tcp/0]
  bootstrap: [%s]
  members: [%s]
  sync: 1s
`, region, dir, regulatorKey.ID(), prov.ID(), filepath.Join(dir, "work"), os.Args[0], strings.Join(peers, ", "), strings.Join(ms, ", "))
	svc := runBroker(t, dir, cfg)
	return &env{t: t, svc: svc, url: svc.URL(), dir: dir}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after 60s: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestFederatedBrokers: two broker services find each other from a
// bootstrap address, a provider's offer registered at one reaches the
// other's book under its owner, a withdrawal follows it, and neither
// broker withdraws an offer it does not own.
func TestFederatedBrokers(t *testing.T) {
	members := []identity.PrincipalID{HomeKey.ID(), ExecKey.ID()}
	a := federated(t, HomeKey, providerKey, "cn-east-1", members)
	b := federated(t, ExecKey, Key(8), "eu-west-1", members, a.svc.Federation.Addrs()[0])
	ctx := context.Background()

	offer := a.registerOffer(providerKey, "cpu", 2)
	waitFor(t, "b's book holds a's offer", func() bool {
		list, err := b.as(ExecKey).Offers(ctx, "")
		return err == nil && len(list) == 1 && list[0].Name == offer.Name && list[0].Broker == HomeKey.ID()
	})
	st, err := b.as(regulatorKey).Federation(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Peers) != 1 || st.Peers[0].Broker != HomeKey.ID() {
		t.Fatalf("b's peers: %+v", st.Peers)
	}
	waitFor(t, "b knows both brokers' announcements", func() bool {
		st, err := b.as(regulatorKey).Federation(ctx)
		return err == nil && len(st.Brokers) == 2
	})
	status, _, body := b.raw(ExecKey, "DELETE", "/v1/offers/"+offer.Name, nil)
	if status != 409 || !strings.Contains(string(body), "withdraw it there") {
		t.Fatalf("b withdrew a's offer: %d %s", status, body)
	}
	if err := a.as(providerKey).Withdraw(ctx, offer.Name); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "b drops the withdrawn offer", func() bool {
		list, err := b.as(ExecKey).Offers(ctx, "")
		return err == nil && len(list) == 0
	})
}

// TestFederationNeedsMembers: a closed federation without members is a
// configuration error that says what to write.
func TestFederationNeedsMembers(t *testing.T) {
	dir := t.TempDir()
	if err := identity.WriteKeyFile(filepath.Join(dir, "broker.key"), HomeKey); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "broker.yaml")
	os.WriteFile(path, []byte(fmt.Sprintf("region: r\ndata: %s\nlisten: 127.0.0.1:0\nfederation: {listen: [/ip4/127.0.0.1/tcp/0]}\n", dir)), 0o600)
	c, err := service.LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = service.New(context.Background(), c, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "list its members") {
		t.Fatalf("got %v", err)
	}
}
