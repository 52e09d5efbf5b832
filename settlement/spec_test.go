package settlement

import (
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cinet/cinet/descriptor"
)

// TestRatingSpecExamples rates the worked examples of spec/rating.md and
// checks the schedules there are the ones the tests use.
func TestRatingSpecExamples(t *testing.T) {
	src, err := os.ReadFile("../spec/rating.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(src)
	schedules := map[string]string{"flat": flatPrice, "tiered": tieredPrice}
	for name, want := range schedules {
		if got := specSchedule(t, doc, name); got != want {
			t.Fatalf("spec/rating.md schedule %q differs from the test's:\n%q\n%q", name, got, want)
		}
	}
	sh, _ := time.LoadLocation("Asia/Shanghai")
	n := 0
	for _, line := range strings.Split(doc, "\n") {
		cells := strings.Split(strings.Trim(line, "| "), " | ")
		if len(cells) != 8 || schedules[cells[0]] == "" {
			continue
		}
		n++
		t.Run(strings.Join(cells[:4], " "), func(t *testing.T) {
			o := offerDoc(t, schedules[cells[0]])
			clock, err := time.ParseInLocation("15:04", cells[1], sh)
			if err != nil {
				t.Fatal(err)
			}
			start := time.Date(2026, 11, 30, clock.Hour(), clock.Minute(), 0, 0, sh).UTC()
			d, err := time.ParseDuration(cells[2])
			if err != nil {
				t.Fatal(err)
			}
			var meters []Meter
			for _, mq := range strings.Split(cells[3], ", ") {
				kind, q, _ := strings.Cut(mq, " ")
				if kind == "H100" {
					meters = append(meters, gpu(q))
				} else {
					meters = append(meters, m(MeterKind(kind), q))
				}
			}
			r, err := Rate(usage(o, "p", start, d, meters...), o.Offer)
			if err != nil {
				t.Fatal(err)
			}
			got := []string{strconv.Itoa(len(r.Items)), r.Charge.Decimal(), r.HomeFee.Decimal(), r.ExecutingFee.Decimal()}
			if strings.Join(got, " | ") != strings.Join(cells[4:], " | ") {
				t.Fatalf("got %v, spec says %v (%s)", got, cells[4:], describeItems(r))
			}
		})
	}
	if n != 9 {
		t.Fatalf("found %d worked examples in spec/rating.md, want 9", n)
	}
}

// TestUsageRecordSpecExample: the example record of spec/usage-record.md
// is canonical, decodes, passes the shape checks, and has the ID the spec
// gives.
func TestUsageRecordSpecExample(t *testing.T) {
	src, err := os.ReadFile("../spec/usage-record.md")
	if err != nil {
		t.Fatal(err)
	}
	rec := regexp.MustCompile("(?s)<!-- example: record -->\n```json\n(.*?)\n```").FindSubmatch(src)
	id := regexp.MustCompile("<!-- example: id -->`(sha256:[0-9a-f]{64})`").FindSubmatch(src)
	if rec == nil || id == nil {
		t.Fatal("spec/usage-record.md lacks the example record or its ID")
	}
	r, err := DecodeRecord(rec[1])
	if err != nil {
		t.Fatal(err)
	}
	if reason, detail := r.checkShape(); reason != "" {
		t.Fatalf("%s: %s", reason, detail)
	}
	if got := RecordIDOf(rec[1]); string(got) != string(id[1]) {
		t.Fatalf("the example's ID is %s; the spec says %s", got, id[1])
	}
}

// TestRatingSpecDaylightSaving rates the examples of spec/rating.md §5:
// tier boundaries on days the clock jumps, and fractions of a second.
func TestRatingSpecDaylightSaving(t *testing.T) {
	src, err := os.ReadFile("../spec/rating.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(src)
	schedules := map[string]string{}
	for _, name := range []string{"berlin", "berlin-late"} {
		schedules[name] = specSchedule(t, doc, name)
	}
	n := 0
	for _, line := range strings.Split(doc, "\n") {
		cells := strings.Split(strings.Trim(line, "| "), " | ")
		if len(cells) != 6 || schedules[cells[0]] == "" {
			continue
		}
		n++
		t.Run(strings.Join(cells[:3], " "), func(t *testing.T) {
			o := offerDoc(t, schedules[cells[0]])
			start, err := time.Parse(time.RFC3339Nano, cells[1])
			if err != nil {
				t.Fatal(err)
			}
			d, err := time.ParseDuration(cells[2])
			if err != nil {
				t.Fatal(err)
			}
			rec := usage(o, "p", start, d, m(InstanceSeconds, cells[3]))
			rec.Instances = 1
			rec.Fees = Fees{Home: descriptor.MustDecimal("0"), Executing: descriptor.MustDecimal("0")}
			r, err := Rate(rec, o.Offer)
			if err != nil {
				t.Fatal(err)
			}
			got := []string{strconv.Itoa(len(r.Items)), r.Charge.Decimal()}
			if strings.Join(got, " | ") != strings.Join(cells[4:], " | ") {
				t.Fatalf("got %v, spec says %v (%s)", got, cells[4:], describeItems(r))
			}
		})
	}
	if n != 6 {
		t.Fatalf("found %d daylight-saving examples in spec/rating.md, want 6", n)
	}
}

// specSchedule returns the price block spec/rating.md gives under
// "<!-- schedule: name -->".
func specSchedule(t *testing.T, doc, name string) string {
	t.Helper()
	m := regexp.MustCompile("(?s)<!-- schedule: " + regexp.QuoteMeta(name) + " -->\n```yaml\n(.*?)\n```").FindStringSubmatch(doc)
	if m == nil {
		t.Fatalf("spec/rating.md lacks schedule %q", name)
	}
	return m[1]
}
