package descriptor

import (
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/cinet/cinet/identity"
)

// A checker applies the rules a schema cannot express, reporting each
// problem at the position of the field it concerns.
type checker struct {
	tree *tree
	file string
	errs ErrorList
}

func (c *checker) errorf(loc []string, format string, args ...any) {
	c.errs = append(c.errs, located(c.tree, c.file, loc, fmt.Sprintf(format, args...)))
}

func at(parts ...any) []string {
	loc := make([]string, len(parts))
	for i, p := range parts {
		switch p := p.(type) {
		case string:
			loc[i] = p
		case int:
			loc[i] = strconv.Itoa(p)
		default:
			panic(fmt.Sprintf("descriptor: path element %T", p))
		}
	}
	return loc
}

// noNUL refuses a NUL byte where a program's argument or environment
// goes: the operating system cannot pass one.
func (c *checker) noNUL(loc []string, s string) {
	if i := strings.IndexByte(s, 0); i >= 0 {
		c.errorf(loc, "holds a NUL byte (at byte %d), which no program's arguments or environment can", i)
	}
}

func (c *checker) job(j *Job, exprs *exprCompiler) {
	c.tasks(j.Tasks)
	for i := range j.Resources.Accelerators {
		c.acceleratorRequest(&j.Resources.Accelerators[i], at("resources", "accelerators", i))
	}
	for _, list := range []struct {
		name string
		ad   AllowDeny
	}{{"regions", j.Placement.Regions}, {"jurisdictions", j.Placement.Jurisdictions}, {"providers", j.Placement.Providers}} {
		for i, d := range list.ad.Deny {
			if slices.Contains(list.ad.Allow, d) {
				c.errorf(at("placement", list.name, "deny", i), "%q is both allowed and denied", d)
			}
		}
	}
	c.ranking(j, exprs)
	if b := j.Budget; b != nil && !b.MaxPricePerHour.IsSet() && !b.MaxTotal.IsSet() {
		c.errorf(at("budget"), "a budget needs maxPricePerHour, maxTotal or both")
	}
	if j.EstimatedRuntime != 0 && j.Timeouts.Run != 0 && j.EstimatedRuntime > j.Timeouts.Run {
		c.errorf(at("estimatedRuntime"), "%s is longer than timeouts.run (%s)", j.EstimatedRuntime, j.Timeouts.Run)
	}
	if len(j.Recovery.OnExitCodes) > 0 && j.Recovery.MaxRestarts == 0 {
		c.errorf(at("recovery", "onExitCodes"), "has no effect while recovery.maxRestarts is 0")
	}
	c.uniqueNames("inputs", len(j.Inputs), func(i int) string { return j.Inputs[i].Name })
	c.uniqueNames("outputs", len(j.Outputs), func(i int) string { return j.Outputs[i].Name })
	if sv := j.Service; sv != nil {
		c.service(j, sv)
	}
}

// tasks checks each task: something to run, a name of its own, a workdir
// inside the job's directory, and no NUL in what reaches exec.
func (c *checker) tasks(tasks []Task) {
	names := map[string]int{}
	for i, t := range tasks {
		if t.Image == "" && len(t.Command) == 0 {
			c.errorf(at("tasks", i), "a task needs an image, a command or both")
		}
		if prev, dup := names[t.Name]; dup {
			c.errorf(at("tasks", i, "name"), "duplicate task name %q (also tasks[%d])", t.Name, prev)
		}
		names[t.Name] = i
		if t.Workdir != "" && !filepath.IsLocal(t.Workdir) {
			c.errorf(at("tasks", i, "workdir"), "workdir %q must be a relative path inside the job's directory (not absolute, no ..)", t.Workdir)
		}
		for j, a := range t.Command {
			c.noNUL(at("tasks", i, "command", j), a)
		}
		for j, a := range t.Args {
			c.noNUL(at("tasks", i, "args", j), a)
		}
		for k, v := range t.Env {
			c.noNUL(at("tasks", i, "env", k), v)
		}
	}
}

// ranking compiles the job's CEL requirements and rank, and checks that
// it ranks offers one way, with weights only for the balanced objective.
func (c *checker) ranking(j *Job, exprs *exprCompiler) {
	if j.Requirements != nil {
		prog, err := exprs.compile(j.Requirements.Source, false)
		if err != nil {
			c.errorf(at("requirements"), "%v", err)
		}
		j.Requirements.prog = prog
	}
	if j.Rank != nil && j.Objective.Type != "" {
		c.errorf(at("rank"), "a job ranks offers by its objective or by rank, not both; remove objective or rank")
	}
	if j.Rank != nil {
		prog, err := exprs.compile(j.Rank.Source, true)
		if err != nil {
			c.errorf(at("rank"), "%v", err)
		}
		j.Rank.prog = prog
	}
	if w := j.Objective.Weights; w != nil {
		switch {
		case j.Objective.Type != "balanced":
			c.errorf(at("objective", "weights"), "weights apply only to the balanced objective, not %q", j.Objective.Type)
		case w.Cost == 0 && w.Time == 0 && w.Latency == 0:
			c.errorf(at("objective", "weights"), "weights must not all be zero")
		}
	}
}

func (c *checker) service(j *Job, sv *Service) {
	ports := map[int]int{}
	for i, p := range sv.Ports {
		if prev, dup := ports[p.Port]; dup {
			c.errorf(at("service", "ports", i, "port"), "port %d is also ports[%d]", p.Port, prev)
		}
		ports[p.Port] = i
	}
	names := map[string]int{}
	for i, p := range sv.Ports {
		if prev, dup := names[p.Name]; dup {
			c.errorf(at("service", "ports", i, "name"), "duplicate name %q (also ports[%d])", p.Name, prev)
		}
		names[p.Name] = i
	}
	if r := sv.Readiness; r != nil && r.Port != "" && !slices.ContainsFunc(sv.Ports, func(p ServicePort) bool { return p.Name == r.Port }) {
		c.errorf(at("service", "readiness", "port"), "names no port of service.ports")
	}
	if n := max(j.Nodes, 1) * max(sv.Replicas, 1); n > 10000 {
		c.errorf(at("service", "replicas"), "%d replicas of %d nodes are %d instances; a job takes at most 10000", sv.Replicas, j.Nodes, n)
	}
}

func (c *checker) uniqueNames(field string, n int, name func(int) string) {
	seen := map[string]bool{}
	for i := range n {
		if seen[name(i)] {
			c.errorf(at(field, i, "name"), "duplicate name %q", name(i))
		}
		seen[name(i)] = true
	}
}

func (c *checker) acceleratorRequest(r *AcceleratorRequest, loc []string) {
	sub := func(field string) []string { return append(slices.Clone(loc), field) }
	if len(r.AnyOf) > 0 {
		if r.Count != 0 || r.Model != "" || r.Kind != "" || r.Vendor != "" || len(r.Frameworks) > 0 || r.Memory != 0 || !r.TFLOPS.IsZero() || !r.ComputeCapability.IsZero() {
			c.errorf(loc, "a request with anyOf has nothing else: give each choice its own count, model or need")
			return
		}
		for i := range r.AnyOf {
			c.acceleratorRequest(&r.AnyOf[i], append(sub("anyOf"), strconv.Itoa(i)))
		}
		return
	}
	if r.Count == 0 {
		c.errorf(loc, "missing count (or anyOf, a list of choices)")
		return
	}
	if r.Model == "" && r.Kind == "" && r.Vendor == "" && len(r.Frameworks) == 0 && r.Memory == 0 && r.TFLOPS.IsZero() && r.ComputeCapability.IsZero() {
		c.errorf(loc, "name a model, or describe the need (kind, vendor, memory, frameworks, computeCapability, tflops)")
		return
	}
	seen := map[string]bool{}
	for i, f := range r.Frameworks {
		if seen[f.Name] {
			c.errorf(append(sub("frameworks"), strconv.Itoa(i), "name"), "framework %q is listed twice", f.Name)
		}
		seen[f.Name] = true
	}
	if r.Model != "" {
		m, ok := LookupAccelerator(r.Model)
		if !ok {
			return // the schema's format check has reported it
		}
		if r.Kind != "" && r.Kind != m.Kind {
			c.errorf(sub("kind"), "%s is of kind %s, not %s", m.Name, m.Kind, r.Kind)
			return
		}
		if r.Vendor != "" && r.Vendor != m.Vendor {
			c.errorf(sub("vendor"), "%s is made by %s, not %s", m.Name, m.Vendor, r.Vendor)
			return
		}
	}
	if len(ResolveAccelerators(r)) == 0 {
		c.errorf(loc, "%s (see `cinet descriptor accelerators`)", explainUnsatisfiable(r))
	}
}

func (c *checker) offer(o *Offer) {
	if !o.ComputeID.OwnedBy(o.Provider) {
		c.errorf(at("computeId"), "provider segment %q is not the fingerprint of provider %s (want %q)",
			o.ComputeID.Provider, o.Provider, identity.ProviderFingerprint(o.Provider))
	}
	if o.ComputeID.Region != o.Region {
		c.errorf(at("region"), "%q differs from the region of computeId (%q)", o.Region, o.ComputeID.Region)
	}
	if o.ComputeID.Zone != o.Zone {
		c.errorf(at("zone"), "%q differs from the zone of computeId (%q)", o.Zone, o.ComputeID.Zone)
	}
	for i := range o.Class.Accelerators {
		c.accelerator(&o.Class.Accelerators[i], at("class", "accelerators", i))
	}
	if !o.ValidFrom.IsZero() && !o.ValidFrom.Before(o.ValidUntil) {
		c.errorf(at("validUntil"), "must be after validFrom (%s)", o.ValidFrom.Format("2006-01-02T15:04:05Z07:00"))
	}
	c.tiers(o.Price.Tiers, &o.Price.Rates)
}

func (c *checker) accelerator(a *Accelerator, loc []string) {
	m, ok := LookupAccelerator(a.Model)
	if !ok {
		return // the schema's format check has reported it
	}
	seen := map[string]bool{}
	for i, f := range a.Frameworks {
		floc := append(slices.Clone(loc), "frameworks", strconv.Itoa(i))
		if seen[f.Name] {
			c.errorf(append(floc, "name"), "framework %q is listed twice", f.Name)
		}
		seen[f.Name] = true
		min, ok := m.Supports(f.Name)
		switch {
		case !ok:
			c.errorf(append(floc, "name"), "%s does not run %s", m.Name, f.Name)
		case f.Version.Compare(min) < 0:
			c.errorf(append(floc, "version"), "%s needs %s %s or later, got %s", m.Name, f.Name, min, f.Version)
		}
	}
	for _, prec := range []struct {
		name        string
		got, vendor float64
	}{{"fp64", a.TFLOPS.FP64, m.TFLOPS.FP64}, {"fp32", a.TFLOPS.FP32, m.TFLOPS.FP32}, {"fp16", a.TFLOPS.FP16, m.TFLOPS.FP16}, {"int8", a.TFLOPS.INT8, m.TFLOPS.INT8}} {
		if prec.vendor > 0 && prec.got > prec.vendor {
			c.errorf(append(slices.Clone(loc), "tflops", prec.name), "%g is above the %s's published peak of %g; state measured throughput at or below it", prec.got, m.Name, prec.vendor)
		}
	}
	if !a.ComputeCapability.IsZero() && (m.ComputeCapability.IsZero() || a.ComputeCapability.Compare(m.ComputeCapability) != 0) {
		want := "none"
		if !m.ComputeCapability.IsZero() {
			want = m.ComputeCapability.String()
		}
		c.errorf(append(slices.Clone(loc), "computeCapability"), "%s has compute capability %s, got %s", m.Name, want, a.ComputeCapability)
	}
}

const minutesPerWeek = 7 * 24 * 60

var weekdays = []string{"mon", "tue", "wed", "thu", "fri", "sat", "sun"}

// tiers rejects empty and overlapping windows, so that at every minute at
// most one tier applies and rating never depends on tier order, and tiers
// that price a meter the base rates do not: a tier changes rates, it does
// not add meters, so usage metered by the base rates is what every tier
// prices.
func (c *checker) tiers(tiers []Tier, base *Rates) {
	var owner [minutesPerWeek]int8 // tier index + 1
	for i, t := range tiers {
		for _, r := range base.names() {
			if r.in(&t.Rates).IsSet() && !r.in(base).IsSet() {
				c.errorf(at("price", "tiers", i, "rates", r.name), "the base rates do not price %s; a tier may only change rates the base rates set", r.name)
			}
		}
		start, end := ClockMinutes(t.Start), ClockMinutes(t.End)
		if start == end {
			c.errorf(at("price", "tiers", i, "end"), "window %s–%s is empty (a start equal to its end); a whole day is 00:00–24:00", t.Start, t.End)
			continue
		}
		length := end - start
		if length <= 0 {
			length += 24 * 60
		}
		days := t.Days
		if len(days) == 0 {
			days = weekdays
		}
		clash := -1
		for _, d := range days {
			base := slices.Index(weekdays, d) * 24 * 60
			for m := 0; m < length; m++ {
				slot := (base + start + m) % minutesPerWeek
				if owner[slot] != 0 && clash < 0 {
					clash = int(owner[slot]) - 1
				}
				owner[slot] = int8(i + 1)
			}
		}
		if clash >= 0 {
			c.errorf(at("price", "tiers", i), "tier %q overlaps tier %q; at most one tier may apply at a time", t.Name, tiers[clash].Name)
		}
	}
}

// ClockMinutes converts "HH:MM" (validated by the schema) to minutes after
// midnight; "24:00" is 1440.
func ClockMinutes(hhmm string) int {
	h, m, _ := strings.Cut(hhmm, ":")
	hi, _ := strconv.Atoi(h)
	mi, _ := strconv.Atoi(m)
	return hi*60 + mi
}
