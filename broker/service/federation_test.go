package service_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	. "github.com/cinet/cinet/settlement/settlementtest"

	"github.com/cinet/cinet/broker/book"
	"github.com/cinet/cinet/broker/client"
	"github.com/cinet/cinet/broker/federation"
	"github.com/cinet/cinet/broker/httpsig"
	"github.com/cinet/cinet/broker/jobs"
	"github.com/cinet/cinet/broker/service"
	"github.com/cinet/cinet/descriptor"
	"github.com/cinet/cinet/identity"
	"github.com/cinet/cinet/settlement"
)

// federated runs a broker with its own local provider in a federation of
// the given members, bootstrapped from peers.
func federated(t testing.TB, k, prov *identity.Key, region string, members []identity.PrincipalID, peers ...string) *env {
	t.Helper()
	dir, cfg := federatedConfig(t, k, prov, region, members, peers...)
	svc := runBroker(t, dir, cfg)
	return &env{t: t, svc: svc, url: svc.URL(), dir: dir}
}

// federatedConfig writes the key and returns the data directory and
// configuration of a federated broker.
func federatedConfig(t testing.TB, k, prov *identity.Key, region string, members []identity.PrincipalID, peers ...string) (string, string) {
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
  - {did: %s, role: tenant}
providers:
  - provider: %s
    adapter: local
    config: {workdir: %s, shim: [%q]}
federation:
  listen: [/ip4/127.0.0.1/tcp/0]
  bootstrap: [%s]
  members: [%s]
  sync: 1s
  statementPeriod: 1s
  statementDelay: 1s
`, region, dir, regulatorKey.ID(), tenantKey.ID(), prov.ID(), filepath.Join(dir, "work"), os.Args[0], strings.Join(peers, ", "), strings.Join(ms, ", "))
	return dir, cfg
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

// TestCrossBrokerJob: a tenant submits a job at its home broker, A; the
// only offer that can serve it is owned by B. A leases it from B, forwards
// the job, follows it to its end, reads its output through B, and takes in
// the usage record B signed: the record posts once at each broker, each
// in its part, and B keeps it only until A has acknowledged it.
func TestCrossBrokerJob(t *testing.T) {
	members := []identity.PrincipalID{HomeKey.ID(), ExecKey.ID()}
	a := federated(t, HomeKey, providerKey, "cn-north-1", members)
	b := federated(t, ExecKey, Key(8), "cn-east-1", members, a.svc.Federation.Addrs()[0])
	ctx := context.Background()

	o, err := b.as(Key(8)).RegisterOffer(ctx, signedOfferOwnedBy(t, Key(8), "remote-cpu", 2, ExecKey.ID()))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a's book holds b's offer", func() bool {
		list, err := a.as(tenantKey).Offers(ctx, "")
		return err == nil && len(list) == 1 && list[0].Name == o.Name
	})
	tenant := a.as(tenantKey)
	j, err := tenant.SubmitJob(ctx, []byte(jobYAML("echo hello from b; echo oops >&2")), "job.yaml")
	if err != nil {
		t.Fatal(err)
	}
	done := a.waitSettled(tenant, j.ID)
	if done.Outcome != jobs.Succeeded || len(done.Attempts) != 1 || done.Cost == nil {
		t.Fatalf("job at a: %+v", done)
	}
	at := done.Attempts[0]
	if at.Broker != ExecKey.ID().String() || at.Offer != o.Name || at.Record == "" || at.Charge == nil || !at.Settled {
		t.Fatalf("attempt: %+v", at)
	}
	for stream, want := range map[string]string{"stdout": "hello from b\n", "stderr": "oops\n"} {
		rc, err := tenant.Logs(ctx, j.ID, "", 0, stream, false)
		if err != nil {
			t.Fatal(err)
		}
		out, _ := io.ReadAll(rc)
		rc.Close()
		if string(out) != want {
			t.Fatalf("%s at a: %q, want %q", stream, out, want)
		}
	}

	// B keeps the placement as a job of its own, settled once A had the
	// record.
	var placed *jobs.Job
	waitFor(t, "b's placement is settled", func() bool {
		placed, err = b.svc.Jobs.Get(ctx, at.ID)
		return err == nil && placed.State == jobs.Settled
	})
	pa := placed.Attempts[0]
	if placed.Home != HomeKey.ID().String() || placed.HomeJob != j.ID || pa.Record != at.Record || !pa.Delivered || len(pa.Envelope) == 0 {
		t.Fatalf("b's placement: %+v", placed)
	}
	// The tenant's signed request came with it, and b checked it.
	if placed.Submission == nil || !strings.Contains(placed.History[0].Detail, "the tenant's signed submission checked") {
		t.Fatalf("b's placement lacks the checked submission: %+v", placed.History)
	}
	// Once at each broker: the same record again is a duplicate at both.
	for name, e := range map[string]*env{"a": a, "b": b} {
		out, err := e.svc.Settler.Ingest(ctx, [][]byte{pa.Envelope})
		if err != nil {
			t.Fatal(err)
		}
		if out[0].Status != settlement.Duplicate {
			t.Fatalf("the record again at %s: %+v", name, out[0])
		}
	}
	// Each side posted its part: the tenant paid at A, the provider was
	// paid at B, and the clearing accounts face each other.
	aBooks, err := a.as(regulatorKey).Balances(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	bBooks, err := b.as(regulatorKey).Balances(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	balance := func(bs *client.Balances, account string) descriptor.Nanos {
		for _, x := range bs.Balances {
			if string(x.Account) == account {
				return x.Amount
			}
		}
		return 0
	}
	clearAtA := balance(aBooks, "clearing/"+ExecKey.ID().String())
	clearAtB := balance(bBooks, "clearing/"+HomeKey.ID().String())
	if clearAtA <= 0 || clearAtA != -clearAtB {
		t.Fatalf("clearing: at a %v, at b %v\na: %+v\nb: %+v", clearAtA, clearAtB, aBooks, bBooks)
	}
	if balance(bBooks, "provider/"+Key(8).ID().String()) <= 0 || balance(aBooks, "provider/"+Key(8).ID().String()) != 0 {
		t.Fatalf("the provider is paid at b only: a %+v, b %+v", aBooks, bBooks)
	}
}

// TestCrossBrokerCancelAndStrangers: while a job from A runs on B, a third
// member, C, can neither read, stop, bill nor take over A's placement, nor
// confirm a lease it does not hold; then the tenant cancels at A, B stops
// the placement, and the time it ran settles at both.
func TestCrossBrokerCancelAndStrangers(t *testing.T) {
	members := []identity.PrincipalID{HomeKey.ID(), ExecKey.ID(), Key(10).ID()}
	a := federated(t, HomeKey, providerKey, "cn-north-1", members)
	b := federated(t, ExecKey, Key(8), "cn-east-1", members, a.svc.Federation.Addrs()[0])
	c := federated(t, Key(10), Key(11), "eu-west-1", members, a.svc.Federation.Addrs()[0], b.svc.Federation.Addrs()[0])
	ctx := context.Background()

	o, err := b.as(Key(8)).RegisterOffer(ctx, signedOfferOwnedBy(t, Key(8), "remote-cpu", 2, ExecKey.ID()))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a and c hold b's offer", func() bool {
		return a.svc.Book.Len() == 1 && c.svc.Book.Len() == 1
	})
	tenant := a.as(tenantKey)
	j, err := tenant.SubmitJob(ctx, []byte(jobYAML("echo started; exec sleep 600")), "job.yaml")
	if err != nil {
		t.Fatal(err)
	}
	a.waitRunning(tenant, j.ID)
	j, err = tenant.Job(ctx, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	at := j.Attempts[0]

	stranger := c.svc.Federation.Remote()
	exec := ExecKey.ID()
	if _, err := stranger.Status(ctx, exec, at.ID); !errors.Is(err, jobs.ErrNotFound) {
		t.Errorf("c read a's placement's status: %v", err)
	}
	if _, err := stranger.Logs(ctx, exec, jobs.LogRequest{Placement: at.ID, Task: "main", Stream: "stdout", Limit: 100}); !errors.Is(err, jobs.ErrNotFound) {
		t.Errorf("c read a's placement's output: %v", err)
	}
	if _, err := stranger.Usage(ctx, exec, at.ID); !errors.Is(err, jobs.ErrNotFound) {
		t.Errorf("c asked for a's placement's usage: %v", err)
	}
	if err := stranger.Ack(ctx, exec, at.ID, ""); !errors.Is(err, jobs.ErrNotFound) {
		t.Errorf("c acknowledged a's placement's usage: %v", err)
	}
	if err := stranger.Cancel(ctx, exec, at.ID); !errors.Is(err, jobs.ErrNotFound) {
		t.Errorf("c cancelled a's placement: %v", err)
	}
	forwardSigned := func(placement, reservation, doc string, sub *jobs.Submission) error {
		d, err := descriptor.Parse("job.yaml", []byte(doc))
		if err != nil {
			t.Fatal(err)
		}
		return stranger.Forward(ctx, exec, jobs.Forward{
			Placement: placement, Job: placement[:strings.LastIndex(placement, "-")], Tenant: tenantKey.ID().String(), Document: d.Canonical,
			Offer: o.Name, OfferDigest: o.Digest, Reservation: reservation, HomeRegion: "eu-west-1", HomeFee: "0.01", Submission: sub,
		})
	}
	forward := func(placement, reservation, doc string) error { return forwardSigned(placement, reservation, doc, nil) }
	// signedBy is a submission of body signed by k for a broker at host.
	signedBy := func(k *identity.Key, host, body string) *jobs.Submission {
		r := httptest.NewRequest("POST", "http://"+host+"/v1/jobs", nil)
		httpsig.Sign(r, []byte(body), k, time.Now(), time.Minute)
		return &jobs.Submission{Body: []byte(body), Proof: *httpsig.ProofOf(r)}
	}
	cHost := strings.TrimPrefix(c.url, "http://")
	fresh := jobs.NewID() + "-1"
	if err := forward(fresh, at.Reservation, jobYAML("true")); !errors.Is(err, book.ErrNoReservation) {
		t.Errorf("c confirmed a's lease: %v", err)
	}
	lease, err := stranger.Reserve(ctx, exec, o.Name, 1, fresh[:len(fresh)-2], time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if err := forward(at.ID, lease.ID, jobYAML("true")); !errors.Is(err, jobs.ErrRefused) || !strings.Contains(err.Error(), "taken") {
		t.Errorf("c took over a's placement: %v", err)
	}
	two := strings.Replace(jobYAML("true"), "resources:", "nodes: 2\nresources:", 1)
	if err := forward(fresh, lease.ID, two); !errors.Is(err, jobs.ErrRefused) || !strings.Contains(err.Error(), "the job takes 2") {
		t.Errorf("c ran 2 nodes on a lease of 1: %v", err)
	}
	if err := forward(fresh, lease.ID+"x", jobYAML("true")); !errors.Is(err, book.ErrNoReservation) {
		t.Errorf("an unknown lease: %v", err)
	}
	// The tenant's signed submission is checked: its signer, its body, and
	// that it was sent to the home broker.
	for name, tc := range map[string]struct {
		sub  *jobs.Submission
		want string
	}{
		"signed by another":      {signedBy(otherTenant, cHost, jobYAML("true")), "not by the tenant"},
		"for another job":        {signedBy(tenantKey, cHost, jobYAML("echo other")), "not the one the tenant signed"},
		"sent to another broker": {signedBy(tenantKey, strings.TrimPrefix(a.url, "http://"), jobYAML("true")), "not for the home broker"},
	} {
		if err := forwardSigned(fresh, lease.ID, jobYAML("true"), tc.sub); !errors.Is(err, jobs.ErrRefused) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("a submission %s: %v", name, err)
		}
	}
	if got, err := b.svc.Jobs.Get(ctx, fresh); !errors.Is(err, jobs.ErrNotFound) {
		t.Fatalf("b keeps a refused placement: %+v %v", got, err)
	}
	if st, err := b.svc.Jobs.Get(ctx, at.ID); err != nil || st.State != jobs.Running || st.CancelRequested {
		t.Fatalf("a's placement at b after c's attempts: %+v %v", st, err)
	}

	if _, err := tenant.Cancel(ctx, j.ID); err != nil {
		t.Fatal(err)
	}
	done := a.waitSettled(tenant, j.ID)
	if done.Outcome != jobs.Cancelled || done.Attempts[0].Record == "" || done.Cost == nil || done.Cost.Amount <= 0 {
		t.Fatalf("cancelled at a: %+v", done)
	}
	placed, err := b.svc.Jobs.Get(ctx, at.ID)
	if err != nil || placed.Outcome != jobs.Cancelled || placed.Attempts[0].Record != done.Attempts[0].Record {
		t.Fatalf("at b: %+v %v", placed, err)
	}
}

// TestClearingStatements: after a job crosses from A to B, each broker
// issues its statement of the period toward the other, which countersigns
// it over the protocol; a record A posted that B never did makes B refuse
// A's statement of that period, naming the record.
func TestClearingStatements(t *testing.T) {
	members := []identity.PrincipalID{HomeKey.ID(), ExecKey.ID()}
	a := federated(t, HomeKey, providerKey, "cn-north-1", members)
	b := federated(t, ExecKey, Key(8), "cn-east-1", members, a.svc.Federation.Addrs()[0])
	ctx := context.Background()
	o, err := b.as(Key(8)).RegisterOffer(ctx, signedOfferOwnedBy(t, Key(8), "remote-cpu", 2, ExecKey.ID()))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a's book holds b's offer", func() bool { return a.svc.Book.Len() == 1 })
	tenant := a.as(tenantKey)
	j, err := tenant.SubmitJob(ctx, []byte(jobYAML("true")), "job.yaml")
	if err != nil {
		t.Fatal(err)
	}
	done := a.waitSettled(tenant, j.ID)
	record := done.Attempts[0].Record
	countersigned := func(e *env, other identity.PrincipalID) bool {
		rows, err := e.svc.Settler.Statements(ctx, other)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rows {
			if r.Issuer == e.svc.Key.ID().String() && r.Countersignature != nil {
				return true
			}
		}
		return false
	}
	waitFor(t, "each broker's statement is countersigned by the other", func() bool {
		return countersigned(a, ExecKey.ID()) && countersigned(b, HomeKey.ID())
	})
	// Both signatures hold on their own, and cover the job's record.
	rows, _ := a.svc.Settler.Statements(ctx, ExecKey.ID())
	for _, r := range rows {
		if r.Countersignature == nil {
			continue
		}
		st, err := settlement.VerifyStatement(r.Envelope, r.Countersignature)
		if err != nil || st.RecordCount != 1 || st.RecordsDigest != settlement.RecordsDigest([]settlement.RecordID{settlement.RecordID(record)}) {
			t.Fatalf("statement %+v: %v", st, err)
		}
	}

	// A record only A posted: B will not countersign A's statement.
	offer, err := a.svc.Offers.Get(ctx, o.Digest)
	if err != nil {
		t.Fatal(err)
	}
	// A period still open, so that the record is not late.
	start := time.Now().UTC().Add(-500 * time.Millisecond)
	rec := FullUse(offer.Offer, start, 500*time.Millisecond, 1)
	rec.Job, rec.Placement, rec.Sequence = "j-only-at-a", "j-only-at-a-1", 1
	rec.ComputeID, rec.Offer, rec.Tenant, rec.Provider = offer.Offer.ComputeID, offer.Digest, tenantKey.ID(), Key(8).ID()
	rec.HomeBroker, rec.ExecutingBroker = HomeKey.ID(), ExecKey.ID()
	out, err := a.svc.Settler.Ingest(ctx, [][]byte{Seal(t, ExecKey, rec)})
	if err != nil || out[0].Status != settlement.Accepted {
		t.Fatalf("ingest at a: %+v %v", out, err)
	}
	var seen federation.ClearingResult
	waitFor(t, "b refuses a's statement of that period", func() bool {
		for _, r := range a.svc.Federation.Clearings() {
			if r.Counterparty == ExecKey.ID() && !r.PeriodStart.After(rec.PeriodEnd) && r.PeriodEnd.After(rec.PeriodEnd) {
				seen = r
				return r.Result == "disagreed"
			}
		}
		return false
	})
	if len(seen.OnlyHere) != 1 || seen.OnlyHere[0] != out[0].Record || len(seen.OnlyThere) != 0 || !strings.Contains(seen.Detail, "records") {
		t.Fatalf("the disagreement: %+v", seen)
	}
	st, err := a.as(regulatorKey).Federation(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range st.Clearing {
		found = found || (r.Result == "disagreed" && len(r.OnlyHere) == 1)
	}
	if !found {
		t.Fatalf("the federation status does not report the disagreement: %+v", st.Clearing)
	}
}

// BenchmarkSubmitToRunning measures, in one run, how long a job takes
// from submission to its running state at its home broker when it runs on
// the home broker's own provider, and when it runs on another broker's —
// leased, forwarded and followed over the federation — from the times
// the home broker recorded. The jobs alternate between the two. The
// brokers poll every 20 ms.
//
//	go test ./broker/service -run XXX -bench SubmitToRunning -benchtime 40x
func BenchmarkSubmitToRunning(b *testing.B) {
	members := []identity.PrincipalID{HomeKey.ID(), ExecKey.ID()}
	a := federated(b, HomeKey, providerKey, "cn-north-1", members)
	x := federated(b, ExecKey, Key(8), "cn-east-1", members, a.svc.Federation.Addrs()[0])
	ctx := context.Background()
	if _, err := a.as(providerKey).RegisterOffer(ctx, signedOfferOwnedBy(b, providerKey, "home-cpu", 4, HomeKey.ID())); err != nil {
		b.Fatal(err)
	}
	if _, err := x.as(Key(8)).RegisterOffer(ctx, signedOfferOwnedBy(b, Key(8), "remote-cpu", 4, ExecKey.ID())); err != nil {
		b.Fatal(err)
	}
	for deadline := time.Now().Add(60 * time.Second); a.svc.Book.Len() < 2; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatal("the home broker's book lacks the other broker's offer")
		}
	}
	tenant := a.as(tenantKey)
	job := func(provider *identity.Key) []byte {
		return []byte(strings.Replace(jobYAML("sleep 0.3"), "resources:", fmt.Sprintf("placement: {providers: {allow: [%q]}}\nresources:", provider.ID()), 1))
	}
	var same, cross []time.Duration
	b.ResetTimer()
	for i := range b.N {
		k, into := providerKey, &same
		if i%2 == 1 {
			k, into = Key(8), &cross
		}
		j, err := tenant.SubmitJob(ctx, job(k), "job.yaml")
		if err != nil {
			b.Fatal(err)
		}
		for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			if j, err = tenant.Job(ctx, j.ID); err != nil {
				b.Fatal(err)
			}
			if i := slices.IndexFunc(j.History, func(t jobs.Transition) bool { return t.State == jobs.Running }); i >= 0 {
				*into = append(*into, j.History[i].At.Sub(j.CreatedAt))
				break
			}
			if j.State.Ended() || time.Now().After(deadline) {
				b.Fatalf("job %d never ran: %+v", i, j.History)
			}
		}
		if (i%2 == 1) != (j.Attempts[0].Broker == ExecKey.ID().String()) {
			b.Fatalf("job %d ran at %s", i, j.Attempts[0].Broker)
		}
	}
	b.StopTimer()
	for name, ds := range map[string][]time.Duration{"same": same, "cross": cross} {
		if len(ds) == 0 {
			continue
		}
		slices.Sort(ds)
		b.ReportMetric(float64(ds[len(ds)/2].Microseconds())/1000, name+"-p50-ms")
		b.ReportMetric(float64(ds[(len(ds)*99)/100].Microseconds())/1000, name+"-p99-ms")
	}
	// Let the last jobs end before the brokers stop.
	for _, e := range []*env{a, x} {
		for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if active, err := e.svc.Jobs.Active(ctx); err != nil || len(active) == 0 {
				break
			}
		}
	}
}

// TestPendingDeliveries: the home broker stops while its job runs on
// another broker; the executing broker posts the record and keeps it,
// counted as pending; the home broker, restarted, follows the job to its
// end, takes the record in, and nothing is pending on either side.
func TestPendingDeliveries(t *testing.T) {
	members := []identity.PrincipalID{HomeKey.ID(), ExecKey.ID()}
	aDir, aCfg := federatedConfig(t, HomeKey, providerKey, "cn-north-1", members)
	aSvc, stopA := runStoppable(t, aDir, aCfg)
	a := &env{t: t, svc: aSvc, url: aSvc.URL(), dir: aDir}
	b := federated(t, ExecKey, Key(8), "cn-east-1", members, aSvc.Federation.Addrs()[0])
	ctx := context.Background()
	if _, err := b.as(Key(8)).RegisterOffer(ctx, signedOfferOwnedBy(t, Key(8), "remote-cpu", 2, ExecKey.ID())); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a's book holds b's offer", func() bool { return a.svc.Book.Len() == 1 })
	j, err := a.as(tenantKey).SubmitJob(ctx, []byte(jobYAML("echo hi; sleep 1")), "job.yaml")
	if err != nil {
		t.Fatal(err)
	}
	a.waitRunning(a.as(tenantKey), j.ID)
	stopA()
	pending := func(e *env, k *identity.Key, side string) string {
		_, _, body := e.raw(k, "GET", "/metrics", nil)
		for _, line := range strings.Split(string(body), "\n") {
			if v, ok := strings.CutPrefix(line, `cinet_usage_deliveries_pending{side="`+side+`"} `); ok {
				return v
			}
		}
		return "absent"
	}
	waitFor(t, "b keeps a signed record for a", func() bool { return pending(b, ExecKey, "executing") == "1" })

	aSvc = runBroker(t, aDir, aCfg) // reconnects to b from the peers it kept
	a = &env{t: t, svc: aSvc, url: aSvc.URL(), dir: aDir}
	done := a.waitSettled(a.as(tenantKey), j.ID)
	if done.Outcome != jobs.Succeeded || done.Attempts[0].Record == "" || done.Cost == nil {
		t.Fatalf("after the restart: %+v", done)
	}
	waitFor(t, "nothing pending at b", func() bool { return pending(b, ExecKey, "executing") == "0" })
	if got := pending(a, HomeKey, "home"); got != "0" {
		t.Fatalf("pending at a: %s", got)
	}
}
