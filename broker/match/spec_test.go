package match

import (
	"encoding/json"
	"errors"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"

	"github.com/cinet/cinet/broker/book"
	"github.com/cinet/cinet/descriptor"
)

// TestMatchingSpecExamples runs the worked examples of spec/matching.md
// §9, one per decision the spec makes, against Match and Explain.
func TestMatchingSpecExamples(t *testing.T) {
	src, err := os.ReadFile("../../spec/matching.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(src)
	base := func(name string) map[string]any {
		m := regexp.MustCompile("(?s)<!-- example: " + name + " -->\n```yaml\n(.*?)\n```").FindStringSubmatch(doc)
		if m == nil {
			t.Fatalf("spec/matching.md lacks the example %s", name)
		}
		var v map[string]any
		if err := yaml.Unmarshal([]byte(m[1]), &v); err != nil {
			t.Fatalf("example %s: %v", name, err)
		}
		return v
	}
	n := 0
	for _, line := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(line, "|") {
			continue
		}
		cells := strings.Split(strings.TrimSuffix(strings.TrimPrefix(line, "|"), "|"), "|")
		if len(cells) != 6 {
			continue
		}
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		now, err := time.Parse(time.RFC3339, cells[4])
		if err != nil {
			continue // the header and the rule under it
		}
		n++
		t.Run(cells[0], func(t *testing.T) {
			c := &clock{now}
			b := book.New(c.now)
			var first string
			offers := []string{""}
			if cells[1] != "" {
				offers = strings.Split(cells[1], " // ")
			}
			for _, changes := range offers {
				o := base("offer")
				apply(t, o, changes)
				md := o["metadata"].(map[string]any)
				o["computeId"] = "ci:" + alphaFP + "/" + o["region"].(string) + "/" + o["zone"].(string) + "/" + md["name"].(string)
				d := parseExample(t, o)
				if err := b.Put(d, nil, d.Offer.Broker); err != nil {
					t.Fatal(err)
				}
				if first == "" {
					first = d.Offer.ComputeID.Name()
				}
			}
			job := base("job")
			apply(t, job, cells[2])
			jd := parseExample(t, job)
			cfg := Config{HomeRegion: "eu-central-1", Currency: "EUR"}
			broker := map[string]any{}
			apply(t, broker, cells[3])
			if tab, ok := broker["table"]; ok {
				raw, _ := yaml.Marshal(tab)
				if cfg.Latency, err = ParseLatencyTable("example", raw); err != nil {
					t.Fatal(err)
				}
			}
			if r, ok := broker["reserved"]; ok {
				if _, err := b.Reserve(first, int(r.(uint64)), "example", time.Hour); err != nil {
					t.Fatal(err)
				}
			}
			m := New(b, cfg)
			if n, ok := broker["rankPool"]; ok {
				m.rankPool = int(n.(uint64))
			}
			res, err := m.Match(jd, Options{})
			kind, want, _ := strings.Cut(cells[5], " ")
			if kind == "shows" {
				x, err := m.Explain(jd, Options{})
				if err != nil {
					t.Fatal(err)
				}
				var fates []map[string]any
				raw, _ := json.Marshal(x.Fates)
				json.Unmarshal(raw, &fates)
				for _, path := range strings.Fields(want) {
					v := any(fates[0])
					for _, k := range strings.Split(path, ".") {
						if m, ok := v.(map[string]any); ok {
							v = m[k]
						} else {
							v = nil
						}
					}
					if v == nil {
						t.Fatalf("the placed fate lacks %s: %s", path, raw)
					}
				}
				return
			}
			if kind == "reason" {
				var nm *NoMatchError
				if !errors.As(err, &nm) {
					t.Fatalf("matched (%v), the spec says %s", err, cells[5])
				}
				f := fateOf(nm.Explanation(), strings.TrimPrefix(first[strings.LastIndex(first, "/"):], "/"))
				if string(f.Reason) != want {
					t.Fatalf("reason %s (%s), the spec says %s", f.Reason, f.Detail, want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			top := res.Candidates[0]
			var got string
			switch kind {
			case "placed":
				return
			case "runtime":
				d, err := time.ParseDuration(want)
				if err != nil {
					t.Fatal(err)
				}
				got, want = top.Parts.Runtime.String(), d.String()
			case "cost":
				got = top.Parts.Cost.Decimal()
			case "latency":
				got = jsonOf(top.Parts.LatencyMs)
			case "order":
				var names []string
				for _, c := range res.Candidates {
					names = append(names, offerOf(c.Entry).Metadata.Name)
				}
				got = strings.Join(names, " ")
			default:
				t.Fatalf("unknown result %q", cells[5])
			}
			if got != want {
				t.Fatalf("%s %s, the spec says %s", kind, got, want)
			}
		})
	}
	if n < 16 {
		t.Fatalf("found %d worked examples in spec/matching.md §9, want 16", n)
	}
}

func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// apply sets each `path: value` of a cell (backquoted, separated by "; ")
// in doc.
func apply(t *testing.T, doc map[string]any, cell string) {
	t.Helper()
	cell = strings.Trim(strings.TrimSpace(cell), "`")
	if cell == "" {
		return
	}
	for _, change := range strings.Split(cell, "; ") {
		var v map[string]any
		if err := yaml.Unmarshal([]byte(change), &v); err != nil || len(v) != 1 {
			t.Fatalf("change %q: %v", change, err)
		}
		for k, val := range v {
			doc[k] = val
		}
	}
}

func parseExample(t *testing.T, v map[string]any) *descriptor.Document {
	t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	d, err := descriptor.Parse("example.json", raw)
	if err != nil {
		t.Fatalf("%v\n%s", err, raw)
	}
	return d
}
