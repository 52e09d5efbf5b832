package descriptor

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ImportSkyPilot converts a SkyPilot task YAML into a v1 Job. Each task
// field with a v1 meaning is mapped (spec/descriptor-v1.md lists them);
// every other field is dropped with a warning naming it.
func ImportSkyPilot(file string, data []byte) (*Import, error) {
	t, err := decodeTree(data)
	if err != nil {
		se := err.(*syntaxError)
		return nil, ErrorList{{File: file, Line: se.pos.Line, Col: se.pos.Col, Msg: se.msg}}
	}
	im := newImporter(file)
	if t.root.kind != kindObject {
		p := t.pos(t.root.at)
		return nil, ErrorList{{File: file, Line: p.Line, Col: p.Col, Msg: "a SkyPilot task must be a mapping"}}
	}
	sky := &skypilot{im: im, t: t}
	sky.task(t.root)
	return im.finish()
}

type skypilot struct {
	im    *importer
	t     *tree
	setup string
	run   string
	image string
	env   map[string]any
}

func (s *skypilot) line(at srcPos) int { return s.t.pos(at).Line }

func (s *skypilot) failAt(at srcPos, field, format string, args ...any) {
	p := s.t.pos(at)
	s.im.fail(p.Line, p.Col, field, format, args...)
}

func (s *skypilot) task(root *node) {
	name := ""
	for _, m := range root.members {
		v, line := m.val, s.line(m.at)
		switch m.name {
		case "name":
			name = scalarText(v)
		case "num_nodes":
			if n, ok := positiveInt(v); ok {
				s.im.set("nodes", n)
			} else {
				s.failAt(m.at, m.name, "must be a positive integer, got %s", describeValue(v))
			}
		case "resources":
			s.resources(v)
		case "envs":
			s.env = map[string]any{}
			for _, e := range v.members {
				if e.val.kind == kindNull {
					s.im.warn(s.line(e.at), "envs."+e.name, "dropped: a value to be given at launch has no v1 counterpart; set it in tasks[].env")
					continue
				}
				s.env[e.name] = scalarText(e.val)
			}
		case "setup":
			s.setup = scalarText(v)
		case "run":
			s.run = scalarText(v)
		case "workdir":
			src := scalarText(v)
			s.im.set("inputs", append(s.inputs(), map[string]any{"name": "workdir", "source": fileURI(src), "path": "workdir"}))
			s.im.warn(line, m.name, "became input \"workdir\" placed at workdir/, where the tasks run")
		case "file_mounts":
			s.fileMounts(v)
		case "secrets":
			s.im.warn(line, m.name, "dropped: secrets are not carried into job documents; supply them to the provider out of band")
		default:
			s.im.warn(line, m.name, "dropped: no v1 counterpart")
		}
	}
	s.im.setName(s.line(root.at), "name", name, "skypilot-task")

	var tasks []any
	task := func(name, script string) map[string]any {
		t := map[string]any{"name": name, "command": []any{"/bin/bash", "-c", script}}
		if s.image != "" {
			t["image"] = s.image
		}
		if len(s.env) > 0 {
			t["env"] = s.env
		}
		if _, ok := s.im.job["inputs"]; ok && s.hasWorkdir() {
			t["workdir"] = "workdir"
		}
		return t
	}
	if s.setup != "" {
		tasks = append(tasks, task("setup", s.setup))
	}
	if s.run != "" {
		tasks = append(tasks, task("run", s.run))
	}
	if len(tasks) == 0 {
		s.failAt(root.at, "run", "a task needs a run command (or setup) to become a v1 job")
	}
	s.im.set("tasks", tasks)
}

func (s *skypilot) inputs() []any {
	in, _ := s.im.job["inputs"].([]any)
	return in
}

func (s *skypilot) hasWorkdir() bool {
	for _, in := range s.inputs() {
		if in.(map[string]any)["name"] == "workdir" {
			return true
		}
	}
	return false
}

func (s *skypilot) fileMounts(v *node) {
	for i, m := range v.members {
		field := "file_mounts." + m.name
		src := ""
		switch m.val.kind {
		case kindString:
			src = m.val.str
		case kindObject:
			if sv := m.val.get("source"); sv != nil {
				src = scalarText(sv)
			}
			for _, sub := range m.val.members {
				if sub.name != "source" {
					s.im.warn(s.line(sub.at), field+"."+sub.name, "dropped: no v1 counterpart")
				}
			}
		}
		if src == "" {
			s.im.warn(s.line(m.at), field, "dropped: no source")
			continue
		}
		name := cleanName(strings.TrimPrefix(m.name, "~/"))
		if name == "" {
			name = fmt.Sprintf("mount-%d", i)
		}
		s.im.set("inputs", append(s.inputs(), map[string]any{"name": name, "source": fileURI(src), "path": m.name}))
	}
}

func (s *skypilot) resources(v *node) {
	if v.kind != kindObject {
		s.failAt(v.at, "resources", "must be a mapping")
		return
	}
	for _, m := range v.members {
		field, val, line := "resources."+m.name, m.val, s.line(m.at)
		switch m.name {
		case "cpus":
			if n, ok := atLeastNumber(val); ok {
				s.im.set("resources.cpus", n)
			} else {
				s.failAt(m.at, field, "want a number such as 4 or \"4+\", got %s", describeValue(val))
			}
		case "memory":
			if n, ok := atLeastNumber(val); ok {
				s.im.set("resources.memory", gibText(n))
			} else {
				s.failAt(m.at, field, "want gigabytes such as 32 or \"32+\", got %s", describeValue(val))
			}
		case "disk_size":
			if n, ok := atLeastNumber(val); ok {
				s.im.set("resources.disk", gibText(n))
			} else {
				s.failAt(m.at, field, "want gigabytes, got %s", describeValue(val))
			}
		case "accelerators":
			s.accelerators(m.at, val)
		case "region":
			s.im.set("placement.regions.allow", []any{strings.ToLower(scalarText(val))})
		case "infra":
			cloud, region, _ := strings.Cut(scalarText(val), "/")
			if region != "" {
				region, _, _ = strings.Cut(region, "/")
				s.im.set("placement.regions.allow", []any{strings.ToLower(region)})
			}
			s.im.warn(line, field, "cloud %q dropped: cinet routes across providers; pin them with placement.providers", cloud)
		case "use_spot":
			if val.kind == kindBool && val.boolean {
				s.im.set("requirements", `offer.market == "spot"`)
			}
		case "image_id":
			img := scalarText(val)
			if after, ok := strings.CutPrefix(img, "docker:"); ok {
				s.image = after
			} else {
				s.im.warn(line, field, "dropped: only docker: images have a v1 counterpart")
			}
		case "job_recovery":
			if val.kind == kindObject {
				for _, r := range val.members {
					if r.name == "max_restarts_on_errors" {
						if n, ok := nonNegativeInt(r.val); ok {
							s.im.set("recovery.maxRestarts", n)
							continue
						}
					}
					s.im.warn(s.line(r.at), field+"."+r.name, "dropped: no v1 counterpart")
				}
			} else {
				s.im.warn(line, field, "dropped: a recovery strategy has no v1 counterpart; set recovery.maxRestarts")
			}
		case "labels":
			labels := map[string]any{}
			for _, l := range val.members {
				labels[l.name] = scalarText(l.val)
			}
			s.im.set("metadata.labels", labels)
		case "cloud":
			s.im.warn(line, field, "dropped: cinet routes across providers; pin them with placement.providers")
		default:
			s.im.warn(line, field, "dropped: no v1 counterpart")
		}
	}
}

// accelerators maps "H100:8", {H100: 8}, or a list or set of alternatives
// (the first is kept).
func (s *skypilot) accelerators(at srcPos, v *node) {
	var specs []string
	switch v.kind {
	case kindString:
		specs = []string{v.str}
	case kindObject:
		for _, m := range v.members {
			if m.val.kind == kindNull {
				specs = append(specs, m.name)
			} else {
				specs = append(specs, m.name+":"+scalarText(m.val))
			}
		}
	case kindArray:
		for _, it := range v.items {
			specs = append(specs, scalarText(it))
		}
	}
	if len(specs) == 0 {
		s.failAt(at, "resources.accelerators", "want a spec such as \"H100:8\"")
		return
	}
	if len(specs) > 1 {
		s.im.warn(s.line(at), "resources.accelerators", "alternatives %s dropped: a v1 job names one accelerator request; kept %q", strings.Join(specs[1:], ", "), specs[0])
	}
	req, err := ParseAcceleratorShorthand(specs[0])
	if err != nil {
		s.failAt(at, "resources.accelerators", "%v", err)
		return
	}
	s.im.set("resources.accelerators", []any{map[string]any{"model": req.Model, "count": req.Count}})
}

// ParseAcceleratorShorthand reads "H100:8" or "h100" (count 1), resolving
// the model through the vocabulary's names and aliases.
func ParseAcceleratorShorthand(spec string) (AcceleratorRequest, error) {
	name, count, hasCount := strings.Cut(strings.TrimSpace(spec), ":")
	n := 1
	if hasCount {
		f, err := strconv.ParseFloat(count, 64)
		if err != nil || f < 1 || f != math.Trunc(f) {
			return AcceleratorRequest{}, fmt.Errorf("accelerator %q: the count must be a whole number ≥ 1 (fractional GPUs have no v1 counterpart)", spec)
		}
		n = int(f)
	}
	m, ok := FindAccelerator(name)
	if !ok {
		return AcceleratorRequest{}, fmt.Errorf("%s", unknownModelError(name))
	}
	return AcceleratorRequest{Model: m.Name, Count: n}, nil
}

func scalarText(n *node) string {
	switch n.kind {
	case kindString, kindNumber:
		return n.str
	case kindBool:
		return strconv.FormatBool(n.boolean)
	}
	return ""
}

// atLeastNumber reads 4, 4.5 or "4+" (SkyPilot's "at least"; v1 resource
// amounts are minimums already).
func atLeastNumber(n *node) (float64, bool) {
	text := strings.TrimSuffix(scalarText(n), "+")
	f, err := strconv.ParseFloat(text, 64)
	return f, err == nil && f > 0
}

func positiveInt(n *node) (int, bool) {
	i, ok := nonNegativeInt(n)
	return i, ok && i > 0
}

func nonNegativeInt(n *node) (int, bool) {
	if n.kind != kindNumber {
		return 0, false
	}
	i, err := strconv.Atoi(n.str)
	return i, err == nil && i >= 0
}

// gibText writes a number of GiB as a quantity, exactly.
func gibText(gib float64) string {
	if gib == math.Trunc(gib) {
		return strconv.FormatFloat(gib, 'f', -1, 64) + "Gi"
	}
	return Quantity(math.Ceil(gib * (1 << 30))).String()
}

// fileURI turns a local path into a file URI; URIs pass through.
func fileURI(src string) string {
	if i := strings.Index(src, "://"); i > 0 {
		return src
	}
	return "file://" + src
}
