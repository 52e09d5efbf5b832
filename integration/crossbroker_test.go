package integration

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	. "github.com/cinet/cinet/settlement/settlementtest"

	"github.com/cinet/cinet/broker/jobs"
	"github.com/cinet/cinet/descriptor"
	"github.com/cinet/cinet/identity"
	"github.com/cinet/cinet/settlement"
)

// registerPricedOffer registers the provider's CPU offer, owned by broker,
// in a region and jurisdiction at a vCPU-hour rate, through the CLI.
func (b *brokerProc) registerPricedOffer(broker identity.PrincipalID, pool, region, jurisdiction, rate string) string {
	b.t.Helper()
	prov, _ := identity.LoadKeyFile(b.keys["provider"])
	cid, _ := identity.NewComputeID(prov.ID(), region, "a", pool)
	doc := fmt.Sprintf(localOffer, cid, prov.ID(), broker, 2)
	doc = strings.NewReplacer("local-cpu", pool, "region: cn-east-1", "region: "+region,
		"jurisdiction: CN", "jurisdiction: "+jurisdiction, `vcpuHour: "0.04"`, `vcpuHour: "`+rate+`"`).Replace(doc)
	path := filepath.Join(b.dir, pool+".yaml")
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		b.t.Fatal(err)
	}
	if code, out, errOut := b.cli("provider", "provider", "register", path); code != 0 {
		b.t.Fatalf("provider register: %d\n%s\n%s", code, out, errOut)
	}
	return cid.Name()
}

// TestCrossBrokerProcesses: three brokers as separate processes. The
// tenant's home broker, A, has no capacity of its own: a job runs on the
// cheapest offer, C's in the EU; a job that must stay in China runs on
// B's. Their output reaches A. A job running on B survives a SIGKILL of B
// (the executing broker) and then of A (the home broker). Every attempt is
// billed once at each end: the tenant's statement at A lists each record
// once, and each pair of clearing accounts mirrors the other.
func TestCrossBrokerProcesses(t *testing.T) {
	kA, kB, kC := Key(24), Key(25), Key(26)
	members := []identity.PrincipalID{kA.ID(), kB.ID(), kC.ID()}
	a := fedBroker(t, kA, Key(34), "cn-north-1", members)
	a.start()
	b := fedBroker(t, kB, Key(35), "cn-east-1", members, a.fedAddrs()...)
	b.start()
	c := fedBroker(t, kC, Key(36), "eu-west-1", members, a.fedAddrs()...)
	c.start()
	offerB := b.registerPricedOffer(kB.ID(), "cpu-b", "cn-east-1", "CN", "0.04")
	offerC := c.registerPricedOffer(kC.ID(), "cpu-c", "eu-west-1", "DE", "0.01")
	waitUntil(t, "a's book holds both offers", func() bool {
		got := a.fedOffers()
		return got[offerB] == kB.ID().String() && got[offerC] == kC.ID().String()
	})
	ctx := context.Background()
	submit := func(name, script, extra string) string {
		t.Helper()
		code, out, errOut := a.cli("tenant", "job", "submit", a.jobFile(name, job(name, script, extra)), "-o", "json")
		if code != 0 {
			t.Fatalf("job submit: %d\n%s\n%s", code, out, errOut)
		}
		var j jobs.Job
		if err := jsonUnmarshal([]byte(out), &j); err != nil {
			t.Fatal(err)
		}
		return j.ID
	}
	cheapest := submit("cheapest", "echo hello from $CINET_PLACEMENT", "")
	resident := submit("resident", "echo staying home", "placement: {jurisdictions: {allow: [CN]}}\n")
	long := submit("long", "echo started; sleep 4; echo done", "placement: {regions: {allow: [cn-east-1]}}\n")

	for id, want := range map[string]string{cheapest: offerC, resident: offerB} {
		j := a.waitState(id, jobs.Settled)
		if j.Outcome != jobs.Succeeded || len(j.Attempts) != 1 || j.Attempts[0].Offer != want || j.Attempts[0].Record == "" {
			t.Fatalf("job %s ran on %+v, want %s: %s", j.Name, j.Attempts, want, j.Detail)
		}
	}
	if code, out, errOut := a.cli("tenant", "job", "logs", cheapest); code != 0 || !strings.HasPrefix(out, "hello from "+cheapest+"-1") {
		t.Fatalf("logs at a: %d %q %s", code, out, errOut)
	}

	// The long job: kill the executing broker, then the home broker.
	a.waitState(long, jobs.Running)
	b.stop(syscall.SIGKILL)
	b.start()
	a.stop(syscall.SIGKILL)
	a.start()
	j := a.waitState(long, jobs.Settled)
	if j.Outcome != jobs.Succeeded || len(j.Attempts) != 1 || j.Attempts[0].Offer != offerB {
		t.Fatalf("the long job: %+v\n%+v", j, j.History)
	}
	rc, err := a.client("tenant").Logs(ctx, long, "", 0, "", false)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || string(got) != "started\ndone\n" {
		t.Fatalf("the long job's output at a: %q %v", got, err)
	}

	// Once at each end.
	var cost descriptor.Nanos
	records := map[string]string{} // record → executing broker
	for _, id := range []string{cheapest, resident, long} {
		j := a.waitState(id, jobs.Settled)
		cost += j.Cost.Amount
		records[j.Attempts[0].Record] = j.Attempts[0].Broker
	}
	regulatorA := a.client("regulator")
	bal, err := regulatorA.Balances(ctx, "tenant/"+tenantKey.ID().String())
	if err != nil || len(bal.Balances) != 1 || bal.Balances[0].Amount != -cost {
		t.Fatalf("tenant balance at a %+v %v; the jobs cost %s", bal, err, cost.Decimal())
	}
	seen, n := a.tenantRecords()
	if len(seen) != 3 || n != 3 {
		t.Fatalf("the tenant's statement at a: %v; the records: %v", seen, records)
	}
	for rec := range records {
		if seen[settlement.RecordID(rec)] != 1 {
			t.Fatalf("record %s is in the tenant's statement %d times", rec, seen[settlement.RecordID(rec)])
		}
	}
	for _, pair := range []struct {
		x  *brokerProc
		kx *identity.Key
	}{{b, kB}, {c, kC}} {
		atA, err := regulatorA.Balances(ctx, "clearing/"+pair.kx.ID().String())
		if err != nil {
			t.Fatal(err)
		}
		atX, err := pair.x.client("regulator").Balances(ctx, "clearing/"+kA.ID().String())
		if err != nil {
			t.Fatal(err)
		}
		if len(atA.Balances) != 1 || len(atX.Balances) != 1 || atA.Balances[0].Amount <= 0 || atA.Balances[0].Amount != -atX.Balances[0].Amount {
			t.Fatalf("clearing between a and %s: at a %+v, there %+v", pair.kx.ID(), atA, atX)
		}
	}
	// A regulator reconciles the three: every statement countersigned on
	// both sides, every log witnessed.
	code, out, errOut := a.cli("regulator", "audit", "reconcile", "--key", a.keys["regulator"], "--wait", "60s", "-o", "json", a.url, b.url, c.url)
	if code != 0 {
		for _, x := range []*brokerProc{a, b, c} {
			t.Logf("broker %s's log:\n%s", x.dir, x.logs)
		}
		t.Fatalf("reconcile: %d\n%s\n%s", code, out, errOut)
	}
	var rec struct {
		Pairs []struct {
			A, B       string
			Statements int
			Records    int64
		}
	}
	if err := jsonUnmarshal([]byte(out), &rec); err != nil {
		t.Fatal(err)
	}
	for _, p := range rec.Pairs {
		if traded := p.A == kA.ID().String() || p.B == kA.ID().String(); traded && (p.Statements < 2 || p.Records < 2) {
			t.Fatalf("a pair that traded: %+v", p)
		}
	}
}

// BenchmarkIdleBroker starts three federated broker processes, each with
// an offer, lets them settle into idleness, and reports the memory each
// holds: its resident set (VmRSS) and its Go heap in use, averaged.
//
//	go test ./integration -run XXX -bench IdleBroker -benchtime 1x
func BenchmarkIdleBroker(b *testing.B) {
	for range b.N {
		idleBroker(b)
	}
}

func idleBroker(b *testing.B) {
	kA, kB, kC := Key(27), Key(28), Key(29)
	members := []identity.PrincipalID{kA.ID(), kB.ID(), kC.ID()}
	var procs []*brokerProc
	for i, k := range []*identity.Key{kA, kB, kC} {
		var boot []string
		if i > 0 {
			boot = procs[0].fedAddrs()
		}
		p := fedBroker(b, k, Key(byte(37+i)), devRegionsForBench[i], members, boot...)
		p.start()
		p.registerPricedOffer(k.ID(), fmt.Sprintf("cpu-%d", i), devRegionsForBench[i], "CN", "0.04")
		procs = append(procs, p)
	}
	for _, p := range procs {
		waitUntil(b, "every book holds the three offers", func() bool { return len(p.fedOffers()) == 3 })
	}
	time.Sleep(10 * time.Second) // idle: what a broker holds between jobs
	var rss, heap float64
	for _, p := range procs {
		status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
		if err != nil {
			b.Fatal(err)
		}
		for _, line := range strings.Split(string(status), "\n") {
			if f := strings.Fields(line); len(f) == 3 && f[0] == "VmRSS:" {
				kb, _ := strconv.ParseFloat(f[1], 64)
				rss += kb / 1024
			}
		}
		metrics, err := p.client("broker").Bytes(context.Background(), "GET", "/metrics")
		if err != nil {
			b.Fatal(err)
		}
		for _, line := range strings.Split(string(metrics), "\n") {
			if v, ok := strings.CutPrefix(line, "go_memstats_heap_inuse_bytes "); ok {
				x, _ := strconv.ParseFloat(v, 64)
				heap += x / (1 << 20)
			}
		}
	}
	b.ReportMetric(rss/3, "rss-MiB/broker")
	b.ReportMetric(heap/3, "heap-inuse-MiB/broker")
}

var devRegionsForBench = []string{"cn-north-1", "cn-east-1", "eu-west-1"}
