//go:build unix

package slurm

import (
	"crypto/ed25519"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cinet/cinet/adapters"
	"github.com/cinet/cinet/descriptor"
	"github.com/cinet/cinet/identity"
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

func TestParseNodes(t *testing.T) {
	out := "NodeName=n0 Arch=x86_64 CoresPerSocket=1 CPUTot=64 Gres=gpu:a100:4(S:0-1) OS=Linux 6.1.0-18-amd64 #1 SMP RealMemory=512000 State=MIXED Partitions=gpu,all\n" +
		"NodeName=n1 Arch=aarch64 CPUTot=8 Gres=(null) RealMemory=16000 State=DOWN* Partitions=cpu\n"
	nodes := parseNodes(out)
	if len(nodes) != 2 || nodes[0]["OS"] != "Linux 6.1.0-18-amd64 #1 SMP" || nodes[0]["Gres"] != "gpu:a100:4(S:0-1)" || nodes[1]["State"] != "DOWN*" {
		t.Fatalf("%v", nodes)
	}
	for _, tc := range []struct {
		gres   string
		models map[string]string
		model  string
		n      int
		why    string
	}{
		{"gpu:a100:4(S:0-1)", nil, "A100", 4, ""},
		{"gpu:2", map[string]string{"gpu": "T4"}, "T4", 2, ""},
		{"gpu:2", nil, "", 0, "name it in models"},
		{"gpu:mystery:2", nil, "", 0, "name it in models"},
		{"gpu:x:2", map[string]string{"gpu:x": "Nonesuch"}, "", 0, "vocabulary lacks"},
		{"gpu:a100:2,gpu:h100:2", nil, "", 0, "two models"},
		{"gpu:a100:2,bandwidth:10G", nil, "A100", 2, ""},
		{"(null)", nil, "", 0, ""},
		{"gpu:a100:x", nil, "", 0, "no device count"},
	} {
		model, n, why := gpus(tc.gres, tc.models)
		if model != tc.model || n != tc.n || (tc.why == "") != (why == "") || !strings.Contains(why, tc.why) {
			t.Errorf("%q: %q %d %q", tc.gres, model, n, why)
		}
	}
}

// FuzzParseNodes: whatever scontrol prints, reading it and making offers
// from it does not panic, and every offer made is valid.
func FuzzParseNodes(f *testing.F) {
	f.Add("NodeName=n0 Arch=x86_64 CPUTot=2 Gres=gpu:t4:2 RealMemory=4000 State=IDLE Partitions=p\n")
	f.Add("NodeName=n1 Arch=aarch64 CPUTot=8 Gres=(null) RealMemory=16000 State=DOWN* Partitions=p,q\n")
	key := identity.NewKey(ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))).ID()
	c := &OfferConfig{Partition: "p", Region: "r", Zone: "z", Jurisdiction: "CN", Price: []byte(`{"currency": "CNY", "rates": {"vcpuHour": "1"}}`)}
	f.Fuzz(func(t *testing.T, out string) {
		d, err := offersFrom(parseNodes(out), c, key, key, time.Unix(1e9, 0))
		if err != nil {
			return
		}
		for _, o := range d.Offers {
			if o.Offer.Quantity < 1 || o.Offer.Class.CPU.Count < 1 {
				t.Fatalf("offer %+v", o.Offer)
			}
		}
	})
}
