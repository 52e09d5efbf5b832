package main

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs; got:\n%s", path, got)
	}
}

// TestJobExplainExamples runs cinet job explain on every example job
// against the example offers, at a fixed time.
func TestJobExplainExamples(t *testing.T) {
	jobs, _ := filepath.Glob(filepath.Join(repo, "examples/jobs/*"))
	if len(jobs) < 4 {
		t.Fatalf("found %d example jobs", len(jobs))
	}
	offers := filepath.Join(repo, "examples/offers")
	for _, job := range jobs {
		name := filepath.Base(job)
		t.Run(name, func(t *testing.T) {
			code, out, errOut := cli(t, "", "job", "explain", job, "--offers", offers, "--home-region", "cn-east-1", "--at", "2026-12-01T02:00:00Z")
			if code != 0 || errOut != "" {
				t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
			}
			if !strings.Contains(out, " placed ") {
				t.Errorf("no offer placed for %s:\n%s", name, out)
			}
			golden(t, filepath.Join("testdata/explain", name+".golden"), out)

			code, out, _ = cli(t, "", "job", "explain", job, "--offers", offers, "--at", "2026-12-01T02:00:00Z", "-o", "json")
			var x struct {
				Total, Feasible int
				Fates           []struct{ Status, Reason string }
				Summary         map[string]int
			}
			if code != 0 || json.Unmarshal([]byte(out), &x) != nil || x.Total != len(x.Fates) {
				t.Fatalf("-o json: %d %s", code, out)
			}
			rejected := 0
			for _, n := range x.Summary {
				rejected += n
			}
			if rejected+x.Feasible != x.Total {
				t.Errorf("summary counts %d rejected + %d feasible of %d offers", rejected, x.Feasible, x.Total)
			}
		})
	}
}

func TestJobExplainBadInput(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "broken.yaml"), []byte("kind: Offer\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	job := filepath.Join(repo, "examples/jobs/hello.json")
	code, _, errOut := cli(t, "", "job", "explain", job, "--offers", dir)
	if code != 1 || !strings.Contains(errOut, "skipped") || !strings.Contains(errOut, "no valid offers") {
		t.Fatalf("only broken offers: %d %s", code, errOut)
	}
	if code, _, _ := cli(t, "", "job", "explain", job); code != 2 {
		t.Fatalf("without --offers: %d", code)
	}
	if code, _, _ := cli(t, "", "job", "explain", job, "--offers", dir, "--at", "tomorrow"); code != 2 {
		t.Fatalf("bad --at: %d", code)
	}
	if code, _, errOut := cli(t, "", "job", "explain", filepath.Join(repo, "examples/offers/local-cpu.yaml"), "--offers", filepath.Join(repo, "examples/offers")); code != 1 || !strings.Contains(errOut, "not a job") {
		t.Fatalf("an offer as the job: %d %s", code, errOut)
	}
}
