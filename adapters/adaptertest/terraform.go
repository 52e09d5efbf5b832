package adaptertest

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	hcljson "github.com/hashicorp/hcl/v2/json"
)

// moduleSchema is the top level of a Terraform configuration.
var moduleSchema = &hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{
	{Type: "terraform"}, {Type: "provider", LabelNames: []string{"name"}}, {Type: "variable", LabelNames: []string{"name"}},
	{Type: "data", LabelNames: []string{"type", "name"}}, {Type: "resource", LabelNames: []string{"type", "name"}},
	{Type: "output", LabelNames: []string{"name"}},
	{Type: "locals"}, {Type: "module", LabelNames: []string{"name"}},
}}

// TerraformModule checks a generated module: it is the golden file's
// (rewritten when update is set), every string in it parses as the
// template the tool will read it as, HCL's JSON parser reads it as a
// configuration, and it has the blocks blocks names ("resource.TYPE.NAME",
// "output.addresses", …) — among them the two outputs and four variables
// the terraform executor's module contract asks for.
func TerraformModule(t *testing.T, golden string, got []byte, update bool, blocks ...string) {
	t.Helper()
	if update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("differs from %s (-update rewrites it):\n%s", golden, got)
	}
	var tree any
	if err := json.Unmarshal(got, &tree); err != nil {
		t.Fatal(err)
	}
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case string:
			if _, diags := hclsyntax.ParseTemplate([]byte(v), golden, hcl.InitialPos); diags.HasErrors() {
				t.Errorf("%q is not a template: %v", v, diags)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		case map[string]any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(tree)
	file, diags := hcljson.Parse(got, golden)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	content, diags := file.Body.Content(moduleSchema)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	have := map[string]bool{}
	for _, b := range content.Blocks {
		have[strings.Join(append([]string{b.Type}, b.Labels...), ".")] = true
	}
	for _, w := range append([]string{"output.addresses", "output.rendezvous_port", "variable.placement", "variable.tasks", "variable.tags", "variable.agent"}, blocks...) {
		if !have[w] {
			t.Errorf("the configuration has no %s", w)
		}
	}
}

// Tofu returns the OpenTofu binary .ci/build-tofu built: $CINET_TEST_TOFU,
// else the cache it writes. Without it the test is skipped, saying why,
// unless CINET_TEST_TOFU_REQUIRED is set (as .ci/run sets it).
func Tofu(t testing.TB) string {
	t.Helper()
	bin := os.Getenv("CINET_TEST_TOFU")
	if bin == "" {
		if cache, err := os.UserCacheDir(); err == nil {
			bin = filepath.Join(cache, "cinet-ci", "tofu-v1.10.6")
		}
	}
	if _, err := os.Stat(bin); err != nil {
		if os.Getenv("CINET_TEST_TOFU_REQUIRED") != "" {
			t.Fatalf("no OpenTofu binary at %q: run .ci/build-tofu", bin)
		}
		t.Skipf("no OpenTofu binary at %q (run .ci/build-tofu, or set CINET_TEST_TOFU)", bin)
	}
	return bin
}
