package terraform

import (
	"fmt"
	"strings"
)

// Terraform JSON reads every string as a template: "${…}" and "%{…}" in
// a value are evaluated. A module built from a tenant's or an operator's
// strings must escape every one of them, and interpolate only what the
// adapter means to. The types below make that the default: a Block's
// plain strings are written as the strings they are; only an Expr is
// evaluated, and a Template interpolates only the Exprs it was built from.

// An Expr is a Terraform expression, written "${expr}": code, never data.
type Expr string

// A Template is a string with expressions in it, built by Tmpl.
type Template struct{ s string }

// Tmpl builds a template from parts: each string is literal text, escaped;
// each Expr is interpolated.
func Tmpl(parts ...any) Template {
	var b strings.Builder
	for _, p := range parts {
		switch p := p.(type) {
		case string:
			b.WriteString(escape(p))
		case Expr:
			b.WriteString("${" + string(p) + "}")
		default:
			panic(fmt.Sprintf("terraform: a template part is a string or an Expr, not %T", p))
		}
	}
	return Template{b.String()}
}

// A Block is an object of a module: its values are strings (literal),
// Exprs, Templates, numbers, booleans, Blocks and lists of these.
type Block map[string]any

// Encode writes the block as indented Terraform JSON, every plain string
// escaped.
func (b Block) Encode() ([]byte, error) {
	v, err := plain(b)
	if err != nil {
		return nil, err
	}
	return encodeJSON(v)
}

// plain turns a module's values into what encoding/json writes.
func plain(v any) (any, error) {
	switch v := v.(type) {
	case string:
		return escape(v), nil
	case Expr:
		return "${" + string(v) + "}", nil
	case Template:
		return v.s, nil
	case bool, int, int64, float64:
		return v, nil
	case Block:
		out := make(map[string]any, len(v))
		for k, x := range v {
			p, err := plain(x)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			out[escape(k)] = p
		}
		return out, nil
	case []string:
		out := make([]any, len(v))
		for i, s := range v {
			out[i] = escape(s)
		}
		return out, nil
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			p, err := plain(x)
			if err != nil {
				return nil, err
			}
			out[i] = p
		}
		return out, nil
	}
	return nil, fmt.Errorf("terraform: %T is no value of a module", v)
}

// NodeModule is what every cloud's module has around its instances
// (spec/adapters.md §3.2): the provider, the executor's variables
// (placement, tasks, tags, agent), and the outputs it reads — the nodes'
// addresses, by the expression addresses, and the rendezvous port.
func NodeModule(provider, source, version string, providerConfig Block, data, resources Block, addresses Expr) Block {
	return Block{
		"terraform": Block{"required_providers": Block{provider: Block{"source": source, "version": version}}},
		"provider":  Block{provider: providerConfig},
		"variable": Block{
			"placement": Block{"type": "any"},
			"tasks":     Block{"type": "any"},
			"tags":      Block{"type": "map(string)"},
			"agent":     Block{"type": "object({run = string, stop = string, report = string})"},
		},
		"data":     data,
		"resource": resources,
		"output": Block{
			"addresses":       Block{"value": addresses},
			"rendezvous_port": Block{"value": 29500},
		},
	}
}

// AgentUserData is an instance's boot script: the operator's install
// commands, as written, then the node agent for the instance's rank.
func AgentUserData(install string) Template {
	parts := []any{"#!/bin/sh\n"}
	if install != "" {
		parts = append(parts, strings.TrimSuffix(install, "\n")+"\n")
	}
	return Tmpl(append(parts, Expr("var.agent.run"), " ", Expr("count.index"), "\n")...)
}
