//go:build unix

package slurm_test

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cinet/cinet/adapters"
	"github.com/cinet/cinet/adapters/adaptertest"
	"github.com/cinet/cinet/adapters/slurm"
	"github.com/cinet/cinet/adapters/slurm/slurmtest"
	"github.com/cinet/cinet/descriptor"
	"github.com/cinet/cinet/identity"
)

// cluster is the package's Slurm cluster, started by the first test that
// needs one (fuzz targets do not: their workers start none) and stopped
// by TestMain; nil, with why, where it cannot run.
var (
	clusterOnce sync.Once
	cluster     *slurmtest.Cluster
	why         string
)

// The test binary is the node wrapper the steps run (CINET_SLURM_NODE=1).
func TestMain(m *testing.M) {
	if os.Getenv("CINET_SLURM_NODE") == "1" {
		os.Exit(slurm.Node(os.Args[1:]))
	}
	code := m.Run()
	if cluster != nil {
		cluster.Stop()
	}
	os.Exit(code)
}

// need returns the cluster, starting it the first time; without one the
// test is skipped, saying why, unless CINET_TEST_SLURM_REQUIRED is set (as
// .ci/run sets it).
func need(t testing.TB) *slurmtest.Cluster {
	t.Helper()
	clusterOnce.Do(func() {
		var err error
		if cluster, err = slurmtest.Start("", 3); err != nil {
			why = err.Error()
		}
	})
	if cluster == nil {
		if os.Getenv("CINET_TEST_SLURM_REQUIRED") != "" {
			t.Fatalf("no Slurm cluster: %s", why)
		}
		t.Skipf("no Slurm cluster: %s", why)
	}
	return cluster
}

func newAdapter(t testing.TB) adapters.Adapter {
	c := need(t)
	raw, _ := json.Marshal(map[string]any{
		"dataDir": t.TempDir(), "partition": c.Partition, "slurmConf": c.Conf,
		"node": []string{"env", "CINET_SLURM_NODE=1", os.Args[0]},
	})
	a, err := adapters.New("slurm", raw)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestConformance(t *testing.T) {
	need(t)
	adaptertest.Run(t, adaptertest.Suite{New: newAdapter, Shell: []string{"/bin/sh", "-c"}, Poll: 50 * time.Millisecond, Wait: 2 * time.Minute})
}

var ctx = context.Background()

func wait(t *testing.T, a adapters.Adapter, id string) adapters.Status {
	t.Helper()
	return adaptertest.Wait(t, a, id, 20*time.Millisecond, 2*time.Minute)
}

// TestUsageIsSlurms: a task's CPU time is what Slurm's accounting says
// its step used.
func TestUsageIsSlurms(t *testing.T) {
	c := need(t)
	a := newAdapter(t)
	p := adapters.Placement{ID: "busy", Job: "j", Nodes: 2, Tasks: []descriptor.Task{{Name: "main", Command: []string{"/bin/sh", "-c",
		`end=$(($(date +%s) + 2)); while [ $(date +%s) -lt $end ]; do :; done`}}}}
	if err := a.Provision(ctx, p); err != nil {
		t.Fatal(err)
	}
	if st := wait(t, a, "busy"); st.State != adapters.Succeeded {
		t.Fatalf("status %+v", st)
	}
	dir := a.(*slurm.Slurm).PlacementDir("busy")
	job, err := os.ReadFile(filepath.Join(dir, "jobid"))
	if err != nil {
		t.Fatal(err)
	}
	// The accounting may take a moment to have the step.
	var total string
	for deadline := time.Now().Add(time.Minute); total == ""; time.Sleep(100 * time.Millisecond) {
		out, err := c.Command(ctx, "sacct", "-j", strings.TrimSpace(string(job))+".0", "-n", "-P", "-o", "TotalCPU").Output()
		if err != nil {
			t.Fatal(err)
		}
		if s := strings.TrimSpace(string(out)); s != "" && s != "00:00:00" {
			total = s
		}
		if time.Now().After(deadline) {
			t.Fatal("sacct never recorded the step")
		}
	}
	u, err := a.Usage(ctx, "busy")
	if err != nil {
		t.Fatal(err)
	}
	if got := slurm.ParseDuration(total); u.Tasks[0].CPU != got || got <= 0 {
		t.Fatalf("usage CPU %s; sacct says %s (%s)", u.Tasks[0].CPU, got, total)
	}
}

// TestHostileTask: a task whose command holds shell syntax runs it as
// data: nothing of it is evaluated by the batch script.
func TestHostileTask(t *testing.T) {
	need(t)
	a := newAdapter(t)
	marker := filepath.Join(t.TempDir(), "pwned")
	hostile := `$(touch ` + marker + `) ';touch ` + marker + `;' "` + "`touch " + marker + "`"
	p := adapters.Placement{ID: "hostile", Job: "j", Tasks: []descriptor.Task{{Name: "main", Command: []string{"/bin/echo", hostile}}}}
	if err := a.Provision(ctx, p); err != nil {
		t.Fatal(err)
	}
	if st := wait(t, a, "hostile"); st.State != adapters.Succeeded {
		t.Fatalf("status %+v", st)
	}
	if got := adaptertest.Logs(t, a, "hostile", "main", 0, "stdout"); got != hostile+"\n" {
		t.Errorf("the task printed %q", got)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("the task's command was evaluated by a shell")
	}
	if err := a.Provision(ctx, adapters.Placement{ID: "badname", Job: "j", Tasks: []descriptor.Task{{Name: "a;b", Command: []string{"true"}}}}); err == nil {
		t.Error("a task name with shell syntax was accepted")
	}
}

// TestControllerDown: an adapter for a cluster whose controller does not
// answer is refused, saying so.
func TestControllerDown(t *testing.T) {
	c := need(t)
	conf, err := os.ReadFile(c.Conf)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	down := filepath.Join(t.TempDir(), "slurm.conf")
	lines := strings.Split(string(conf), "\n")
	for i, line := range lines {
		if strings.HasPrefix(line, "SlurmctldPort=") {
			lines[i] = fmt.Sprintf("SlurmctldPort=%d\nMessageTimeout=2", port)
		}
	}
	if err := os.WriteFile(down, []byte(strings.Join(lines, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(map[string]any{"dataDir": t.TempDir(), "slurmConf": down})
	_, err = adapters.New("slurm", raw)
	if err == nil || !strings.Contains(err.Error(), "controller does not answer") {
		t.Fatalf("error %v", err)
	}
}

// TestDiscoverOffers: the partition's nodes become one offer per shape,
// for as many nodes as can run jobs, their GPUs named through models; a
// drained node is left out, saying why.
func TestDiscoverOffers(t *testing.T) {
	c := need(t)
	provider := identity.NewKey(ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))).ID()
	conf, err := slurm.ParseOfferConfig([]byte(`{"slurmConf": "` + c.Conf + `", "partition": "` + c.Partition + `", "region": "cn-north-1", "zone": "hpc1",
		"jurisdiction": "CN", "models": {"gpu": "T4"}, "price": {"currency": "CNY", "rates": {"vcpuHour": "0.04", "acceleratorHour": "2.5"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	d, err := slurm.DiscoverOffers(ctx, conf, provider, provider, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Offers) != 1 {
		t.Fatalf("offers %d, skipped %v", len(d.Offers), d.Skipped)
	}
	o := d.Offers[0].Offer
	if o.Quantity != c.Nodes || o.Class.CPU.Count != 2 || o.Class.Memory != 4000<<20 || len(o.Class.Accelerators) != 1 ||
		o.Class.Accelerators[0].Model != "T4" || o.Class.Accelerators[0].Count != 2 || o.ComputeID.Pool != "cinet-2cpu-4000mib-t4-2" || o.Price.Currency != "CNY" {
		t.Fatalf("offer %+v", o)
	}
	if out, err := c.Command(ctx, "scontrol", "update", "nodename=n2", "state=drain", "reason=cinet-test").CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	defer c.Command(ctx, "scontrol", "update", "nodename=n2", "state=resume").Run()
	d, err = slurm.DiscoverOffers(ctx, conf, provider, provider, time.Now())
	if err != nil || len(d.Offers) != 1 || d.Offers[0].Offer.Quantity != c.Nodes-1 || len(d.Skipped) != 1 || !strings.Contains(d.Skipped[0], "node n2: IDLE+DRAIN") {
		t.Fatalf("with n2 drained: %v, %+v", err, d)
	}
	conf.Models = nil
	if d, err = slurm.DiscoverOffers(ctx, conf, provider, provider, time.Now()); err != nil || len(d.Offers) != 0 || !strings.Contains(strings.Join(d.Skipped, "\n"), `name it in models ("gpu": MODEL)`) {
		t.Fatalf("GPUs no model names: %v, %+v", err, d)
	}
	conf.Partition = "nosuch"
	if _, err := slurm.DiscoverOffers(ctx, conf, provider, provider, time.Now()); err == nil || !strings.Contains(err.Error(), "partition nosuch has no nodes") {
		t.Fatalf("an unknown partition: %v", err)
	}
}
