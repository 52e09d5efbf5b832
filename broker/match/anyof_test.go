package match

import (
	"encoding/json"
	"sort"
	"strings"
	"testing"

	"github.com/cinet/cinet/broker/book"
	"github.com/cinet/cinet/broker/match/synth"
	"github.com/cinet/cinet/descriptor"
)

// TestAnyOfIsTheUnionOfItsChoices: a job whose accelerator request lists
// choices can run on exactly the offers where one of its choices could,
// judged by Explain over generated books (budgets left out, as a choice
// changes the reference device and so the estimated cost), and the
// indexed Match agrees with the full scan.
func TestAnyOfIsTheUnionOfItsChoices(t *testing.T) {
	g := synth.New(7, 60)
	b := book.New((&clock{synth.Epoch}).now)
	for range 400 {
		d, env := g.Offer()
		if err := b.Put(d, env, d.Offer.Broker); err != nil {
			t.Fatal(err)
		}
	}
	m := New(b, Config{HomeRegion: "us-east-1"})
	// requests are first accelerator requests of generated jobs.
	var requests []any
	for len(requests) < 60 {
		var job map[string]any
		json.Unmarshal(g.Job().Canonical, &job)
		res, _ := job["resources"].(map[string]any)
		if acc, ok := res["accelerators"].([]any); ok && len(acc) == 1 {
			requests = append(requests, acc[0])
		}
	}
	feasible := func(req any) (map[string]bool, *descriptor.Document) {
		job := map[string]any{
			"apiVersion": descriptor.APIVersion, "kind": descriptor.KindJob,
			"metadata":  map[string]any{"name": "any-of"},
			"tasks":     []any{map[string]any{"name": "main", "command": []any{"/bin/true"}}},
			"resources": map[string]any{"accelerators": []any{req}},
		}
		raw, _ := json.Marshal(job)
		doc, err := descriptor.Parse("job.json", raw)
		if err != nil {
			t.Fatalf("%v\n%s", err, raw)
		}
		x, err := m.Explain(doc, Options{})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]bool{}
		for _, f := range x.Fates {
			if f.Status != Rejected {
				out[f.Offer] = true
			}
		}
		return out, doc
	}
	keys := func(m map[string]bool) string {
		var s []string
		for k := range m {
			s = append(s, k)
		}
		sort.Strings(s)
		return strings.Join(s, " ")
	}
	nonEmpty := 0
	for i := 0; i+2 < len(requests); i += 3 {
		choices := requests[i : i+3]
		union := map[string]bool{}
		for _, c := range choices {
			f, _ := feasible(c)
			for k := range f {
				union[k] = true
			}
		}
		got, doc := feasible(map[string]any{"anyOf": choices})
		if keys(got) != keys(union) {
			t.Fatalf("anyOf %v: feasible on\n%s\nits choices on\n%s", choices, keys(got), keys(union))
		}
		if len(union) > 0 {
			nonEmpty++
			res, err := m.Match(doc, Options{K: 5})
			naive, nerr := m.MatchNaive(doc, Options{K: 5})
			if err != nil || nerr != nil || names(res.Candidates) != names(naive.Candidates) {
				t.Fatalf("anyOf %v: indexed %v %v, full scan %v %v", choices, res, err, naive, nerr)
			}
		}
	}
	if nonEmpty < 5 {
		t.Fatalf("only %d of the anyOf requests could run anywhere", nonEmpty)
	}
}
