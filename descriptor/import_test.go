package descriptor

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// importGolden renders a conversion the way `cinet descriptor convert`
// shows it: warnings, a separator, then the job.
func importGolden(t *testing.T, imp *Import) []byte {
	t.Helper()
	var b strings.Builder
	for _, w := range imp.Warnings {
		fmt.Fprintf(&b, "warning: %s\n", w)
	}
	b.WriteString("---\n")
	y, err := imp.Document.FormatYAML()
	if err != nil {
		t.Fatal(err)
	}
	b.Write(y)
	return []byte(b.String())
}

func TestImportGolden(t *testing.T) {
	for _, tc := range []struct {
		file string
		conv func(string, []byte) (*Import, error)
	}{
		{"../examples/import/skypilot-task.yaml", ImportSkyPilot},
		{"../examples/import/slurm-train.sbatch", ImportSlurm},
		{"testdata/import/skypilot-minimal.yaml", ImportSkyPilot},
		{"testdata/import/skypilot-alternatives.yaml", ImportSkyPilot},
		{"testdata/import/slurm-minimal.sh", ImportSlurm},
		{"testdata/import/slurm-gpus-total.sh", ImportSlurm},
	} {
		t.Run(filepath.Base(tc.file), func(t *testing.T) {
			data, err := os.ReadFile(tc.file)
			if err != nil {
				t.Fatal(err)
			}
			imp, err := tc.conv(filepath.Base(tc.file), data)
			if err != nil {
				t.Fatalf("convert: %v", err)
			}
			checkGolden(t, filepath.Join("testdata/import", filepath.Base(tc.file)+".golden"), importGolden(t, imp))
		})
	}
}

func TestImportErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		conv func(string, []byte) (*Import, error)
		in   string
		want string
	}{
		{"skypilot unknown accelerator", ImportSkyPilot, "resources:\n  accelerators: TPU-v5:8\nrun: echo\n", `unknown accelerator model "TPU-v5"`},
		{"skypilot fractional gpu", ImportSkyPilot, "resources:\n  accelerators: T4:0.5\nrun: echo\n", "fractional GPUs"},
		{"skypilot no run", ImportSkyPilot, "name: x\n", "needs a run command"},
		{"skypilot not a mapping", ImportSkyPilot, "- a\n", "must be a mapping"},
		{"skypilot bad yaml", ImportSkyPilot, "run: [\n", "invalid YAML"},
		{"skypilot bad cpus", ImportSkyPilot, "resources:\n  cpus: many\nrun: x\n", "resources.cpus"},
		{"slurm bad time", ImportSlurm, "#!/bin/sh\n#SBATCH --time=soon\necho\n", `"soon" is not a Slurm time`},
		{"slurm unlimited", ImportSlurm, "#SBATCH -t UNLIMITED\necho\n", "unlimited"},
		{"slurm bad gpu", ImportSlurm, "#SBATCH --gres=gpu:k80:2\necho\n", `unknown accelerator model "k80"`},
		{"slurm bad mem", ImportSlurm, "#SBATCH --mem=lots\necho\n", "want a size"},
		{"slurm empty", ImportSlurm, "#!/bin/bash\n#SBATCH -N 1\n", "no commands"},
		{"slurm invalid utf8", ImportSlurm, "echo \xff\n", "not valid UTF-8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.conv("in", []byte(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestParseSlurmTime(t *testing.T) {
	for in, want := range map[string]string{
		"30": "30m", "90": "1h30m", "10:30": "10m30s", "01:00:00": "1h", "2-00": "48h",
		"1-12:00:00": "36h", "1-6:30": "30h30m",
	} {
		got, err := parseSlurmTime(in)
		if err != nil || got != want {
			t.Errorf("parseSlurmTime(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func FuzzImportSkyPilot(f *testing.F) {
	for _, s := range []string{"../examples/import/skypilot-task.yaml", "testdata/import/skypilot-minimal.yaml", "testdata/import/skypilot-alternatives.yaml"} {
		if data, err := os.ReadFile(s); err == nil {
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		imp, err := ImportSkyPilot("fuzz", data)
		if err == nil && imp.Document.Job == nil {
			t.Fatal("a conversion without a job")
		}
	})
}

func FuzzImportSlurm(f *testing.F) {
	for _, s := range []string{"../examples/import/slurm-train.sbatch", "testdata/import/slurm-minimal.sh", "testdata/import/slurm-gpus-total.sh"} {
		if data, err := os.ReadFile(s); err == nil {
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		imp, err := ImportSlurm("fuzz", data)
		if err == nil && imp.Document.Job == nil {
			t.Fatal("a conversion without a job")
		}
	})
}
