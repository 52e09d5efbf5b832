package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cinet/cinet/adapters/adaptertest"
	"github.com/cinet/cinet/adapters/local"
	"github.com/cinet/cinet/adapters/terraform"
	"github.com/cinet/cinet/descriptor"
	"github.com/cinet/cinet/identity"
)

func TestMain(m *testing.M) {
	// The local provider runs each placement under this binary as its shim.
	if local.IsShim() {
		os.Exit(local.Shim(os.Args[len(os.Args)-1]))
	}
	// The terraform provider's nodes run this binary as their agent.
	if len(os.Args) > 1 && os.Args[1] == "terraform-agent" {
		os.Exit(terraform.Agent(os.Args[2:]))
	}
	os.Exit(m.Run())
}

// TestDevDemo: the demo runs a federation of three brokers and the
// examples this machine can, explains the others with numbers, says what
// its columns mean and what to do next, and removes the data directory it
// made; with --data it keeps it. Jobs submitted at home cross regions by
// objective — the cheapest offer is in eu-west-1, the cheapest in China in
// cn-east-1, the nearest at home — and every pair of brokers that traded
// countersigned its clearing statements.
func TestDevDemo(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	code, out, errOut := cli(t, "", "dev", "--demo", "--examples", filepath.Join(repo, "examples"))
	if code != 0 {
		t.Fatalf("demo: %d\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{"settled (succeeded)", "HOME: the region", "RAN IN: the region",
		"insufficient_cpu (", "was removed; run with --data DIR", "next:\n", " job explain "} {
		if !strings.Contains(out, want) {
			t.Errorf("the demo's output lacks %q:\n%s", want, out)
		}
	}
	if left, _ := filepath.Glob(filepath.Join(tmp, "cinet-dev-*")); len(left) > 0 {
		t.Errorf("the demo left %v behind", left)
	}

	for _, want := range []string{"cn-north-1 ↔ eu-west-1:", "both signatures verified", "'cinet audit reconcile' passes", "(home: the jobs are submitted here)"} {
		if !strings.Contains(out, want) {
			t.Errorf("the demo's output lacks %q:\n%s", want, out)
		}
	}

	data := filepath.Join(t.TempDir(), "kept")
	code, out, errOut = cli(t, "", "dev", "--demo", "--examples", filepath.Join(repo, "examples"), "--data", data, "-o", "json")
	if code != 0 {
		t.Fatalf("demo --data: %d\n%s\n%s", code, out, errOut)
	}
	if _, err := os.Stat(filepath.Join(data, "cn-north-1", "audit", "checkpoint")); err != nil {
		t.Errorf("--data: the checkpoint is not kept: %v", err)
	}
	var s demoSummary
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatal(err)
	}
	if len(s.Brokers) != 3 || s.Broker != s.Brokers[0].Broker || !s.Reconciled {
		t.Fatalf("the federation: %+v", s)
	}
	brokerIn := map[string]string{}
	for _, b := range s.Brokers {
		brokerIn[b.Region] = b.Broker
	}
	for name, region := range map[string]string{"batch-cpu": "eu-west-1", "hello": "eu-west-1", "hello (kept in China)": "cn-east-1", "hello (lowest latency)": "cn-north-1"} {
		i := slices.IndexFunc(s.Jobs, func(j demoJob) bool { return j.Name == name })
		if i < 0 {
			t.Fatalf("no job %q in %+v", name, s.Jobs)
		}
		j := s.Jobs[i]
		if j.HomeRegion != "cn-north-1" || j.RanRegion != region || j.Broker != brokerIn[region] || j.Outcome != "succeeded" || len(j.Records) == 0 {
			t.Errorf("%s: %+v, want it run in %s by %s", name, j, region, brokerIn[region])
		}
	}
	traded := 0
	for _, p := range s.Statements {
		if p.Statements > 0 {
			traded++
			if p.A != s.Broker || p.Records < 2 || p.Open != 0 {
				t.Errorf("a pair's statements: %+v", p)
			}
		}
	}
	if traded != 2 {
		t.Errorf("%d pairs cleared, want 2 (home with each other broker): %+v", traded, s.Statements)
	}

	// One broker alone keeps the single broker's layout.
	data = filepath.Join(t.TempDir(), "alone")
	if code, out, errOut := cli(t, "", "dev", "--demo", "--brokers", "1", "--examples", filepath.Join(repo, "examples"), "--data", data); code != 0 || !strings.Contains(out, "settled (succeeded)") {
		t.Fatalf("demo --brokers 1: %d\n%s\n%s", code, out, errOut)
	}
	if _, err := os.Stat(filepath.Join(data, "audit", "checkpoint")); err != nil {
		t.Errorf("--brokers 1: the checkpoint is not kept: %v", err)
	}
	if code, _, errOut := cli(t, "", "dev", "--demo", "--brokers", "4"); code != 2 || !strings.Contains(errOut, "want 1 to 3") {
		t.Errorf("--brokers 4: %d %s", code, errOut)
	}
}

// TestDevDemoWithTerraform: with --with terraform the broker has a
// provider whose jobs run through OpenTofu's apply: the hello example runs
// on it and settles like the others, its placement applied from a kept
// plan and destroyed when it ended.
func TestDevDemoWithTerraform(t *testing.T) {
	tofu := adaptertest.Tofu(t)
	data := filepath.Join(t.TempDir(), "data")
	code, out, errOut := cli(t, "", "dev", "--demo", "--with", "terraform", "--tofu", tofu, "--examples", filepath.Join(repo, "examples"), "--data", data, "-o", "json")
	if code != 0 {
		t.Fatalf("demo: %d\n%s\n%s", code, out, errOut)
	}
	var s demoSummary
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatal(err)
	}
	key, err := identity.LoadKeyFile(filepath.Join(data, "cn-north-1", "terraform-provider.key"))
	if err != nil {
		t.Fatal(err)
	}
	var onTerraform []demoJob
	for _, j := range s.Jobs {
		if j.Provider == key.ID().String() {
			onTerraform = append(onTerraform, j)
			if j.Outcome != "succeeded" || j.Cost == nil || len(j.Records) == 0 {
				t.Errorf("a job on the terraform provider: %+v", j)
			}
		}
		if j.Served != nil && j.Provider == key.ID().String() {
			t.Errorf("the service %s was placed on the terraform provider", j.Name)
		}
	}
	if !slices.ContainsFunc(onTerraform, func(j demoJob) bool { return j.Name == "hello (on the terraform provider)" }) {
		t.Fatalf("the hello example did not run on the terraform provider: %s", out)
	}
	placements, _ := filepath.Glob(filepath.Join(data, "cn-north-1", "terraform", "placements", "*"))
	if len(placements) != len(onTerraform) {
		t.Fatalf("%d placements for %d jobs on the terraform provider", len(placements), len(onTerraform))
	}
	for _, p := range placements {
		lc, err := os.ReadFile(filepath.Join(p, "lifecycle.json"))
		if err != nil || !strings.Contains(string(lc), `"phase":"destroyed"`) || !strings.Contains(string(lc), `"result":"succeeded"`) {
			t.Errorf("placement %s: %s %v", filepath.Base(p), lc, err)
		}
		if _, err := os.Stat(filepath.Join(p, "plan.tfplan")); err != nil {
			t.Errorf("placement %s kept no plan: %v", filepath.Base(p), err)
		}
	}
}

// TestLocalObstacle: the demo submits only what this machine can run:
// commands, whose programs, named by path, exist here.
func TestLocalObstacle(t *testing.T) {
	for _, tc := range []struct {
		name, tasks, want string
	}{
		{"a shell command", `[{name: main, command: ["/bin/sh", "-c", "true"]}]`, ""},
		{"a program on the PATH", `[{name: main, command: ["true"]}]`, ""},
		{"an image", `[{name: main, image: "example/app:1"}]`, "container images"},
		{"a program this machine lacks", `[{name: main, command: ["/bin/sh", "-c", "true"]}, {name: serve, command: ["/nonexistent/cinet-test-server"]}]`,
			"task serve runs /nonexistent/cinet-test-server, which this machine does not have"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc, err := descriptor.ParseJob("job.yaml", []byte("apiVersion: cinet/v1\nkind: Job\nmetadata: {name: j}\ntasks: "+tc.tasks+"\n"))
			if err != nil {
				t.Fatal(err)
			}
			if got := localObstacle(doc); (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}
