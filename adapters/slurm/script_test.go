//go:build unix

package slurm

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cinet/cinet/adapters"
	"github.com/cinet/cinet/descriptor"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// TestScript: the batch script of a three-node, two-task placement with a
// timeout, and the sbatch request, are the golden file's.
func TestScript(t *testing.T) {
	p := adapters.Placement{ID: "j-1", Job: "j", Nodes: 3, Timeout: 90 * time.Second,
		Tasks:     []descriptor.Task{{Name: "setup", Command: []string{"true"}}, {Name: "train", Command: []string{"python3", "train.py"}}},
		Resources: descriptor.Resources{CPUs: 1.5, Memory: 3 << 29}, Limits: adapters.Limits{Accelerators: 2}}
	s := &Slurm{cfg: Config{Partition: "gpu", Account: "lab"}}
	got := Script(p, "/shared/cinet/j-1", "'/usr/bin/cinet' 'slurm-node'") + "\n# sbatch"
	for _, a := range s.sbatchArgs(p, "/shared/cinet/j-1", "cinet-j-1") {
		got += " " + a
	}
	got += "\n"
	golden := filepath.Join("testdata", "job.sh.golden")
	if *update {
		os.MkdirAll("testdata", 0o755)
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("the batch script differs from %s (-update rewrites it):\n%s", golden, got)
	}
}

func TestParseDuration(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{"00:00.300", 300 * time.Millisecond},
		{"01:02", 62 * time.Second},
		{"01:02:03", time.Hour + 2*time.Minute + 3*time.Second},
		{"2-01:00:00", 49 * time.Hour},
		{"", 0},
		{"junk", 0},
	} {
		if got := ParseDuration(tc.in); got != tc.want {
			t.Errorf("%q: %s, want %s", tc.in, got, tc.want)
		}
	}
	for in, want := range map[string]int64{"cpu=00:00:01,mem=1024K": 1 << 20, "mem=2M,vmem=3M": 2 << 20, "cpu=1": 0, "": 0} {
		if got := tresMem(in); got != want {
			t.Errorf("tresMem(%q) = %d, want %d", in, got, want)
		}
	}
}

// FuzzAccounting: whatever sacct prints, reading it neither panics nor
// makes a negative figure.
func FuzzAccounting(f *testing.F) {
	f.Add("00:00.300", "cpu=00:00:01,mem=1024K")
	f.Add("2-01:00:00", "mem=5G")
	f.Fuzz(func(t *testing.T, d, tres string) {
		if ParseDuration(d) < 0 {
			t.Fatalf("%q is negative", d)
		}
		if tresMem(tres) < 0 {
			t.Fatalf("%q is negative", tres)
		}
	})
}
