package terraform

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestBlockEscapesStrings: in a module built from Blocks, every plain
// string — values, list items and keys — is written as the string it is,
// whatever template sequences it holds; only Exprs and the Exprs of a
// Template are evaluated; a value of another type is refused.
func TestBlockEscapesStrings(t *testing.T) {
	hostile := `${file("/etc/passwd")} %{ if true }x%{ endif }`
	b := Block{
		"plain":    hostile,
		"list":     []string{hostile},
		"mixed":    []any{hostile, Expr("count.index")},
		hostile:    1,
		"expr":     Expr("var.placement.id"),
		"template": Tmpl(hostile, Expr("count.index"), "-"),
		"nested":   Block{"deep": hostile},
	}
	out, err := b.Encode()
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	esc := `$${file("/etc/passwd")} %%{ if true }x%%{ endif }`
	for k, want := range map[string]any{
		"plain":    esc,
		"expr":     "${var.placement.id}",
		"template": esc + "${count.index}-",
	} {
		if got[k] != want {
			t.Errorf("%s: %q, want %q", k, got[k], want)
		}
	}
	if l := got["list"].([]any); l[0] != esc {
		t.Errorf("list: %q", l[0])
	}
	if l := got["mixed"].([]any); l[0] != esc || l[1] != "${count.index}" {
		t.Errorf("mixed: %q", l)
	}
	if got["nested"].(map[string]any)["deep"] != esc {
		t.Errorf("nested: %v", got["nested"])
	}
	if _, ok := got[esc]; !ok {
		t.Errorf("the key was not escaped: %s", out)
	}
	if _, err := (Block{"x": struct{}{}}).Encode(); err == nil || !strings.Contains(err.Error(), "no value of a module") {
		t.Errorf("a struct value: %v", err)
	}
}

// TestAgentUserData: the install commands are literal, the agent's
// command is the module's variable.
func TestAgentUserData(t *testing.T) {
	for install, want := range map[string]string{
		"":                 "#!/bin/sh\n${var.agent.run} ${count.index}\n",
		"curl ${x} | sh\n": "#!/bin/sh\ncurl $${x} | sh\n${var.agent.run} ${count.index}\n",
		"a\nb":             "#!/bin/sh\na\nb\n${var.agent.run} ${count.index}\n",
	} {
		if got := AgentUserData(install).s; got != want {
			t.Errorf("%q: %q, want %q", install, got, want)
		}
	}
}
