package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/cinet/cinet/identity"
)

// cli runs the command line in-process and returns its exit status and
// output.
func cli(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(args, strings.NewReader(stdin), &out, &errOut)
	return code, out.String(), errOut.String()
}

const repo = "../.."

func TestKeygenAndID(t *testing.T) {
	key := filepath.Join(t.TempDir(), "k.key")
	code, out, errOut := cli(t, "", "keygen", "--out", key)
	if code != 0 || !strings.HasPrefix(out, "did:key:z6Mk") {
		t.Fatalf("keygen: %d %q %q", code, out, errOut)
	}
	did := strings.TrimSpace(out)
	code, out, _ = cli(t, "", "id", "--key", key)
	if code != 0 || !strings.Contains(out, "did:          "+did) || !strings.Contains(out, "peer id:      12D3KooW") || !strings.Contains(out, "vkey:         "+LogOrigin(identity.MustParsePrincipalID(did))+"+") {
		t.Fatalf("id: %d\n%s", code, out)
	}
	code, out, _ = cli(t, "", "id", "--key", key, "--name", "cinet.example/eu", "-o", "json")
	var info map[string]string
	if code != 0 || json.Unmarshal([]byte(out), &info) != nil || info["did"] != did || !strings.HasPrefix(info["vkey"], "cinet.example/eu+") || len(info["fingerprint"]) != 26 {
		t.Fatalf("id -o json: %d %s", code, out)
	}
	if code, _, errOut := cli(t, "", "keygen", "--out", key); code != 1 || !strings.Contains(errOut, "exists") {
		t.Fatalf("keygen over an existing file: %d %q", code, errOut)
	}
	if err := os.Chmod(key, 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := cli(t, "", "id", "--key", key); code != 1 || !strings.Contains(errOut, "chmod 600") {
		t.Fatalf("id with a readable key: %d %q", code, errOut)
	}
	if code, _, _ := cli(t, "", "keygen"); code != 2 {
		t.Fatalf("keygen without --out: %d, want 2", code)
	}
}

func TestDescriptorValidate(t *testing.T) {
	examples, _ := filepath.Glob(filepath.Join(repo, "examples", "*", "*.yaml"))
	jsonExamples, _ := filepath.Glob(filepath.Join(repo, "examples", "jobs", "*.json"))
	var valid []string
	for _, f := range append(examples, jsonExamples...) {
		if filepath.Base(filepath.Dir(f)) != "import" {
			valid = append(valid, f)
		}
	}
	code, out, errOut := cli(t, "", append([]string{"descriptor", "validate"}, valid...)...)
	if code != 0 || strings.Count(out, ": valid ") != len(valid) {
		t.Fatalf("validate examples: %d\n%s\n%s", code, out, errOut)
	}
	bad := filepath.Join(repo, "spec/descriptor/v1/vectors/invalid/accelerator-count-zero.yaml")
	code, out, _ = cli(t, "", "descriptor", "validate", valid[0], bad)
	if code != 1 || !strings.Contains(out, "accelerator-count-zero.yaml:11:7: resources.accelerators[0].count: must be ≥ 1, got 0\n") {
		t.Fatalf("validate invalid: %d\n%s", code, out)
	}
	code, out, _ = cli(t, "", "descriptor", "validate", "-o", "json", bad)
	var results []fileResult
	if code != 1 || json.Unmarshal([]byte(out), &results) != nil || results[0].Valid || results[0].Errors[0].Path != "resources.accelerators[0].count" || results[0].Errors[0].Line != 11 {
		t.Fatalf("validate -o json: %d %s", code, out)
	}
	code, out, _ = cli(t, "apiVersion: cinet/v1\nkind: Job\n", "descriptor", "validate", "-")
	if code != 1 || !strings.Contains(out, "-:1:1: metadata: required field is missing") {
		t.Fatalf("validate stdin: %d %s", code, out)
	}
	if code, out, _ := cli(t, "", "descriptor", "validate", "no-such-file.yaml"); code != 1 || !strings.Contains(out, "no such file") {
		t.Fatalf("missing file: %d %s", code, out)
	}
	if code, _, _ := cli(t, "", "descriptor", "validate"); code != 2 {
		t.Fatalf("validate without files: %d, want 2", code)
	}
}

func TestDescriptorFmtHash(t *testing.T) {
	src := filepath.Join(repo, "examples/jobs/train-llama.yaml")
	code, hash, _ := cli(t, "", "descriptor", "hash", src)
	if code != 0 || !strings.HasPrefix(hash, "sha256:") {
		t.Fatalf("hash: %d %s", code, hash)
	}
	code, formatted, _ := cli(t, "", "descriptor", "fmt", src)
	if code != 0 || !strings.HasPrefix(formatted, "apiVersion: cinet/v1\nkind: Job\n") {
		t.Fatalf("fmt: %d %s", code, formatted)
	}
	if code, h, _ := cli(t, formatted, "descriptor", "hash", "-"); code != 0 || h != hash {
		t.Fatalf("formatted hash %s, want %s", h, hash)
	}
	code, canonical, _ := cli(t, "", "descriptor", "fmt", "-o", "json", src)
	if code != 0 || !strings.HasPrefix(canonical, `{"apiVersion":"cinet/v1"`) {
		t.Fatalf("fmt -o json: %d %s", code, canonical)
	}
	if code, h, _ := cli(t, canonical, "descriptor", "hash", "-"); code != 0 || h != hash {
		t.Fatalf("canonical JSON hash %s, want %s", h, hash)
	}
	// -w rewrites in place, keeping the digest.
	dir := t.TempDir()
	file := filepath.Join(dir, "job.yaml")
	data, _ := os.ReadFile(src)
	if err := os.WriteFile(file, data, 0o640); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := cli(t, "", "descriptor", "fmt", "-w", file); code != 0 {
		t.Fatalf("fmt -w: %d %s", code, errOut)
	}
	if got, _ := os.ReadFile(file); string(got) != formatted {
		t.Fatalf("fmt -w wrote\n%s", got)
	}
	if code, _, errOut := cli(t, "kind: Job\n", "descriptor", "hash", "-"); code != 1 || !strings.Contains(errOut, "-:1:1:") {
		t.Fatalf("hash of an invalid document: %d %s", code, errOut)
	}
}

func TestDescriptorConvert(t *testing.T) {
	code, out, errOut := cli(t, "", "descriptor", "convert", "--from", "skypilot", filepath.Join(repo, "examples/import/skypilot-task.yaml"))
	if code != 0 || !strings.Contains(out, "model: H100") || !strings.Contains(errOut, "warning: ") || !strings.Contains(errOut, "resources.ports: dropped") {
		t.Fatalf("convert skypilot: %d\n%s\n%s", code, out, errOut)
	}
	code, out, _ = cli(t, "", "descriptor", "convert", "--from", "slurm", "-o", "json", filepath.Join(repo, "examples/import/slurm-train.sbatch"))
	if code != 0 || !strings.HasPrefix(out, `{"apiVersion":"cinet/v1"`) {
		t.Fatalf("convert slurm -o json: %d %s", code, out)
	}
	if code, _, _ := cli(t, "", "descriptor", "convert", "x"); code != 2 {
		t.Fatalf("convert without --from: %d, want 2", code)
	}
	if code, out, errOut := cli(t, "#SBATCH --gres=gpu:k80:1\necho\n", "descriptor", "convert", "--from", "slurm", "-"); code != 0 || !strings.Contains(errOut, `GPU type "k80"`) || !strings.Contains(out, "kind: gpu") {
		t.Fatalf("convert unknown gpu type: %d %s %s", code, out, errOut)
	}
	if code, _, errOut := cli(t, "#SBATCH -J my job\necho\n", "descriptor", "convert", "--from", "slurm", "-"); code != 1 || !strings.Contains(errOut, "-:1:1") {
		t.Fatalf("convert invalid directive: %d %s", code, errOut)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{{"nope"}, {"descriptor", "validate", "--bogus", "x"}, {"id", "-o", "xml", "--key", "k"}} {
		if code, _, _ := cli(t, "", args...); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
}

func TestEveryCommandHasHelpWithExample(t *testing.T) {
	root := newRoot()
	var check func(path string, cmd *cobra.Command)
	check = func(path string, cmd *cobra.Command) {
		if cmd.Runnable() && !cmd.Hidden && (cmd.Short == "" || cmd.Example == "") {
			t.Errorf("%s lacks a short description or an example", path)
		}
		for _, sub := range cmd.Commands() {
			check(path+" "+sub.Name(), sub)
		}
	}
	check("cinet", root)
}

// TestDescriptorValidateHostile: documents built to exhaust a parser are
// refused by the CLI with the same limits as the API, saying why.
func TestDescriptorValidateHostile(t *testing.T) {
	dir := t.TempDir()
	head := "apiVersion: cinet/v1\nkind: Job\nmetadata:\n  name: x\n  labels: "
	for name, tc := range map[string]struct{ doc, want string }{
		"nested.yaml": {head + strings.Repeat("[", 200000), "nested more than"},
		"nested.json": {`{"apiVersion":"cinet/v1","kind":"Job","metadata":{"labels":` + strings.Repeat("[", 200000), "nested more than"},
		"wide.yaml":   {head + "[" + strings.Repeat("1,", 200000) + "1]\n", "more than 20000 values"},
	} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(tc.doc), 0o600); err != nil {
			t.Fatal(err)
		}
		if code, out, errOut := cli(t, "", "descriptor", "validate", path); code != 1 || !strings.Contains(out+errOut, tc.want) {
			t.Errorf("%s: exit %d, %.200s %.200s", name, code, out, errOut)
		}
	}
}

// TestEveryCommandTakesOutput: every command that prints a result takes
// -o table|json|yaml. The exceptions print something that has one form.
func TestEveryCommandTakesOutput(t *testing.T) {
	exempt := map[string]string{
		"cinet broker run":   "a server; it logs",
		"cinet job logs":     "the task's own output, as it wrote it",
		"cinet audit export": "a FOCUS CSV",
		"cinet local-shim":   "internal",
		"cinet help":         "help text",
		"cinet completion":   "a shell script",
	}
	var walk func(c *cobra.Command)
	n := 0
	walk = func(c *cobra.Command) {
		if _, ok := exempt[c.CommandPath()]; ok {
			return
		}
		if c.HasSubCommands() {
			for _, sub := range c.Commands() {
				walk(sub)
			}
			return
		}
		if c.Hidden || !c.Runnable() {
			return
		}
		n++
		f := c.Flags().Lookup("output")
		if f == nil || f.Shorthand != "o" || !strings.Contains(f.Usage, "table, json, yaml") {
			t.Errorf("%s has no -o table|json|yaml", c.CommandPath())
		}
	}
	walk(newRoot())
	if n < 28 {
		t.Fatalf("only %d commands walked", n)
	}
}
