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

// importSkyPilotForTest converts as a user whose home is /home/ada would
// from /home/ada/project.
func importSkyPilotForTest(file string, data []byte) (*Import, error) {
	return ImportSkyPilotWith(file, data, ImportOptions{Dir: "/home/ada/project", Home: "/home/ada"})
}

// TestImportGolden converts every script and task under testdata/import
// (SkyPilot for .yaml, Slurm for .sh and .sbatch) and the examples, and
// compares warnings and job with the file's .golden.
func TestImportGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/import/*")
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, "../examples/import/skypilot-task.yaml", "../examples/import/slurm-train.sbatch")
	n := 0
	for _, file := range files {
		var conv func(string, []byte) (*Import, error)
		switch filepath.Ext(file) {
		case ".yaml":
			conv = importSkyPilotForTest
		case ".sh", ".sbatch":
			conv = ImportSlurm
		default:
			continue
		}
		n++
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			imp, err := conv(filepath.Base(file), data)
			if err != nil {
				checkGolden(t, filepath.Join("testdata/import", filepath.Base(file)+".golden"), []byte("error:\n"+err.Error()+"\n"))
				return
			}
			checkGolden(t, filepath.Join("testdata/import", filepath.Base(file)+".golden"), importGolden(t, imp))
		})
	}
	if n < 10 {
		t.Fatalf("only %d import cases found", n)
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
		{"skypilot zero gpus", ImportSkyPilot, "resources:\n  accelerators: T4:0\nrun: echo\n", "above 0"},
		{"skypilot no run", ImportSkyPilot, "name: x\n", "needs a run command"},
		{"skypilot not a mapping", ImportSkyPilot, "- a\n", "must be a mapping"},
		{"skypilot bad yaml", ImportSkyPilot, "run: [\n", "invalid YAML"},
		{"skypilot bad cpus", ImportSkyPilot, "resources:\n  cpus: many\nrun: x\n", "resources.cpus"},
		{"slurm bad time", ImportSlurm, "#!/bin/sh\n#SBATCH --time=soon\necho\n", `"soon" is not a Slurm time`},
		{"slurm unlimited", ImportSlurm, "#SBATCH -t UNLIMITED\necho\n", "unlimited"},
		{"slurm negative gpus", ImportSlurm, "#SBATCH --gpus=-1\necho\n", "GPU count must be ≥ 0"},
		{"slurm not an option", ImportSlurm, "#SBATCH -J my job\necho\n", `"job" is not an option`},
		{"slurm unmatched quote", ImportSlurm, "#SBATCH -J \"my job\necho\n", "unmatched \""},
		{"slurm value missing", ImportSlurm, "#SBATCH --time\necho\n", "needs a value"},
		{"slurm bytes", ImportSlurm, "#SBATCH --mem=500B\necho\n", "want a size"},
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

// TestQuoteFlowColonScalars: SkyPilot's reading of flow mappings, and
// nothing else changes.
func TestQuoteFlowColonScalars(t *testing.T) {
	for in, want := range map[string]string{
		"a: {A100:4, A100-80GB:2}\n":     `a: {"A100:4", "A100-80GB:2"}` + "\n",
		"a: {A100: 4}\n":                 "a: {A100: 4}\n",
		"a: [L4:1, T4:1]\n":              "a: [L4:1, T4:1]\n",
		"a: {x: \"b:c\", y: 'd:e'}\n":    "a: {x: \"b:c\", y: 'd:e'}\n",
		"a: b:c # {x:1}\n":               "a: b:c # {x:1}\n",
		"a: {k: [L4:1], m: {n:1}}\n":     `a: {k: [L4:1], m: {"n:1"}}` + "\n",
		"run: echo '{a:1}'\n":            "run: echo '{a:1}'\n",
		"run: echo {a:1}\n":              "run: echo {a:1}\n",
		"run: |\n  {a:1}\nb: {x:1}\n":    "run: |\n  {a:1}\nb: {\"x:1\"}\n",
		"a: {é:1, A100:8}\n":             "a: {\"é:1\", \"A100:8\"}\n",
		"a: {\n  A100:8,\n  H100:8\n}\n": "a: {\n  \"A100:8\",\n  \"H100:8\"\n}\n",
	} {
		if got := string(quoteFlowColonScalars([]byte(in))); got != want {
			t.Errorf("quoteFlowColonScalars(%q) = %q, want %q", in, got, want)
		}
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
	seeds, _ := filepath.Glob("testdata/import/*.yaml")
	for _, s := range append(seeds, "../examples/import/skypilot-task.yaml") {
		if data, err := os.ReadFile(s); err == nil {
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		imp, err := ImportSkyPilot("fuzz", data)
		if err != nil {
			return
		}
		if imp.Document.Job == nil {
			t.Fatal("a conversion without a job")
		}
		// A GPU job never becomes a CPU job.
		tr, err := decodeTree(quoteFlowColonScalars(data))
		if err != nil {
			t.Fatalf("converted, but the tree does not decode: %v", err)
		}
		if r := tr.root.get("resources"); r != nil && r.kind == kindObject && firstOf(r, "accelerators", "gpus") != nil &&
			len(imp.Document.Job.Resources.Accelerators) == 0 {
			t.Fatalf("accelerators asked for, none in the job:\n%s", data)
		}
	})
}

func FuzzImportSlurm(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/import/*.sh")
	for _, s := range append(seeds, "../examples/import/slurm-train.sbatch") {
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
