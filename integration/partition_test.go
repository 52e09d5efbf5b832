package integration

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	. "github.com/cinet/cinet/settlement/settlementtest"

	"github.com/cinet/cinet/broker/jobs"
	"github.com/cinet/cinet/identity"
	"github.com/cinet/cinet/settlement"
)

// netns is a network namespace joined to this one by a veth pair: the
// host side at 10.231.N.1, the namespace's side at 10.231.N.2.
type netns struct {
	name, hostIf, hostIP, nsIP string
}

func run(t testing.TB, argv ...string) {
	t.Helper()
	if out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(argv, " "), err, out)
	}
}

// newNetns makes a network namespace for a broker to run in, removed when
// the test ends.
func newNetns(t testing.TB) *netns {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("network namespaces need root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("no ip(8) here")
	}
	n := rand.IntN(250) + 1
	ns := &netns{name: fmt.Sprintf("cinet-part-%d-%d", os.Getpid(), n), hostIf: fmt.Sprintf("cph%d", n),
		hostIP: fmt.Sprintf("10.231.%d.1", n), nsIP: fmt.Sprintf("10.231.%d.2", n)}
	run(t, "ip", "netns", "add", ns.name)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns.name).Run() }) // the veth pair goes with it
	run(t, "ip", "link", "add", ns.hostIf, "type", "veth", "peer", "name", "cpn"+ns.hostIf[3:])
	run(t, "ip", "link", "set", "cpn"+ns.hostIf[3:], "netns", ns.name)
	run(t, "ip", "addr", "add", ns.hostIP+"/30", "dev", ns.hostIf)
	run(t, "ip", "link", "set", ns.hostIf, "up")
	run(t, "ip", "netns", "exec", ns.name, "ip", "addr", "add", ns.nsIP+"/30", "dev", "cpn"+ns.hostIf[3:])
	run(t, "ip", "netns", "exec", ns.name, "ip", "link", "set", "cpn"+ns.hostIf[3:], "up")
	run(t, "ip", "netns", "exec", ns.name, "ip", "link", "set", "lo", "up")
	return ns
}

// cut and heal take the link between the namespaces down and up.
func (ns *netns) cut(t testing.TB)  { run(t, "ip", "link", "set", ns.hostIf, "down") }
func (ns *netns) heal(t testing.TB) { run(t, "ip", "link", "set", ns.hostIf, "up") }

// TestPartition: B runs in a network namespace of its own. A job from A
// runs on B's offer, the cheapest; then the link to B goes down. The job
// keeps running on B and ends there; a new job at A routes to C; an offer
// registered at B meanwhile stays at B. When the link comes back, the
// offer books converge, and the job B ran through the partition settles
// exactly once at each end.
func TestPartition(t *testing.T) {
	ns := newNetns(t)
	kA, kB, kC := Key(41), Key(42), Key(43)
	members := []identity.PrincipalID{kA.ID(), kB.ID(), kC.ID()}
	fed := func(k, prov *identity.Key, region, host string, in []string, boot ...string) *brokerProc {
		b := fedBroker(t, k, prov, region, members, boot...)
		b.host, b.in = host, in
		b.writeFedConfig(region, members, boot)
		b.start()
		return b
	}
	a := fed(kA, Key(44), "cn-north-1", ns.hostIP, nil)
	// nsenter, not "ip netns exec", which mounts a sysfs without the cgroups
	// the local provider runs its tasks in.
	b := fed(kB, Key(45), "cn-east-1", ns.nsIP, []string{"nsenter", "--net=/run/netns/" + ns.name}, a.fedAddrs()...)
	c := fed(kC, Key(46), "eu-west-1", ns.hostIP, nil, a.fedAddrs()...)
	offerB := b.registerPricedOffer(kB.ID(), "cpu-b", "cn-east-1", "CN", "0.01")
	offerC := c.registerPricedOffer(kC.ID(), "cpu-c", "eu-west-1", "DE", "0.04")
	waitUntil(t, "a's book holds both offers", func() bool {
		got := a.fedOffers()
		return got[offerB] == kB.ID().String() && got[offerC] == kC.ID().String()
	})
	submit := func(name, script string) string {
		t.Helper()
		code, out, errOut := a.cli("tenant", "job", "submit", a.jobFile(name, job(name, script, "")), "-o", "template={{.id}}")
		if code != 0 {
			t.Fatalf("job submit: %d\n%s\n%s", code, out, errOut)
		}
		return strings.TrimSpace(out)
	}
	long := submit("through", "echo started; sleep 5; echo done")
	j := a.waitState(long, jobs.Running)
	if j.Attempts[0].Offer != offerB {
		t.Fatalf("the job runs on %s, not b's offer", j.Attempts[0].Offer)
	}
	placement := j.Attempts[0].ID

	ns.cut(t)
	during := submit("during", "echo routed around")
	if j := a.waitState(during, jobs.Settled); j.Outcome != jobs.Succeeded || j.Attempts[len(j.Attempts)-1].Offer != offerC {
		t.Fatalf("the job submitted during the partition: %+v\n%+v", j.Attempts, j.History)
	}
	offerB2 := b.registerPricedOffer(kB.ID(), "cpu-b2", "cn-east-1", "CN", "0.02")
	// The placement ends on B, which keeps its record for A.
	waitUntil(t, "the placement ends on b", func() bool {
		code, out, _ := b.cli("tenant", "job", "status", placement, "-o", "template={{.state}}")
		return code == 0 && strings.TrimSpace(out) == string(jobs.Succeeded)
	})
	if got := a.fedOffers(); got[offerB2] != "" {
		t.Fatalf("a learned of b's new offer across the partition")
	}

	ns.heal(t)
	j = a.waitState(long, jobs.Settled)
	if j.Outcome != jobs.Succeeded || len(j.Attempts) != 1 || j.Attempts[0].Record == "" {
		t.Fatalf("the job that ran through the partition: %+v\n%+v", j.Attempts, j.History)
	}
	for _, x := range []*brokerProc{a, c} {
		waitUntil(t, "the books converge on b's new offer", func() bool { return x.fedOffers()[offerB2] == kB.ID().String() })
	}
	rc, err := a.client("tenant").Logs(context.Background(), long, "", 0, "", false)
	if err != nil {
		t.Fatal(err)
	}
	out := new(strings.Builder)
	buf := make([]byte, 1024)
	for {
		n, err := rc.Read(buf)
		out.Write(buf[:n])
		if err != nil {
			break
		}
	}
	rc.Close()
	if out.String() != "started\ndone\n" {
		t.Fatalf("its output at a: %q", out)
	}

	// Once at each end: the record in the tenant's statement at A once,
	// and the clearing accounts of A and B mirror each other.
	ctx := context.Background()
	seen, n := a.tenantRecords()
	if seen[settlement.RecordID(j.Attempts[0].Record)] != 1 || n != 2 {
		t.Fatalf("the record is in the tenant's statement %d times, among %d: %v", seen[settlement.RecordID(j.Attempts[0].Record)], n, seen)
	}
	atA, err := a.client("regulator").Balances(ctx, "clearing/"+kB.ID().String())
	if err != nil {
		t.Fatal(err)
	}
	atB, err := b.client("regulator").Balances(ctx, "clearing/"+kA.ID().String())
	if err != nil {
		t.Fatal(err)
	}
	if len(atA.Balances) != 1 || len(atB.Balances) != 1 || atA.Balances[0].Amount <= 0 || atA.Balances[0].Amount != -atB.Balances[0].Amount {
		t.Fatalf("clearing between a and b: at a %+v, at b %+v", atA, atB)
	}
	b.stop(syscall.SIGTERM)
}
