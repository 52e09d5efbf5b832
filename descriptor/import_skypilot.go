package descriptor

import (
	"bytes"
	"fmt"
	"math"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/goccy/go-yaml/lexer"
	"github.com/goccy/go-yaml/token"
)

// ImportOptions say where the local paths a converted file names start.
type ImportOptions struct {
	// Dir is the directory relative paths are taken from. SkyPilot takes
	// them from the directory `sky launch` runs in; `cinet descriptor
	// convert` passes its own working directory. Empty: relative paths are
	// refused.
	Dir string
	// Home is the directory "~" stands for. Empty: such paths are refused.
	Home string
}

// ImportSkyPilot converts a SkyPilot task YAML into a v1 Job with no base
// directory for relative paths; see ImportSkyPilotWith.
func ImportSkyPilot(file string, data []byte) (*Import, error) {
	return ImportSkyPilotWith(file, data, ImportOptions{})
}

// ImportSkyPilotWith converts a SkyPilot task YAML into a v1 Job. The file
// is read as SkyPilot's loader reads it (in a flow mapping "A100:8" is one
// scalar, so {A100:4, A100-80GB:2} is a set of choices). Each task field
// with a v1 meaning is mapped (spec/descriptor-v1.md §4.8); every other
// field is dropped with a warning naming it. Files that are not SkyPilot
// tasks are refused with what they appear to be.
func ImportSkyPilotWith(file string, data []byte, opts ImportOptions) (*Import, error) {
	t, err := decodeTree(quoteFlowColonScalars(data))
	if err != nil {
		se := err.(*syntaxError)
		msg := se.msg
		if strings.HasPrefix(msg, "a file holds one document") {
			msg = fmt.Sprintf("the file holds several YAML documents (a SkyPilot pipeline or job group; the second starts at line %d); "+
				"a v1 job is one task: split the file at its '---' lines and convert each task on its own", se.pos.Line)
		}
		return nil, ErrorList{{File: file, Line: se.pos.Line, Col: se.pos.Col, Msg: msg}}
	}
	im := newImporter(file)
	if t.root.kind != kindObject {
		p := t.pos(t.root.at)
		return nil, ErrorList{{File: file, Line: p.Line, Col: p.Col, Msg: "a SkyPilot task must be a mapping"}}
	}
	if what := notATask(t.root); what != "" {
		p := t.pos(t.root.at)
		return nil, ErrorList{{File: file, Line: p.Line, Col: p.Col, Msg: "not a SkyPilot task: " + what}}
	}
	sky := &skypilot{im: im, t: t, opts: opts}
	sky.task(t.root)
	return im.finish()
}

// skyTaskFields are the top-level fields of a SkyPilot task.
var skyTaskFields = []string{"name", "workdir", "num_nodes", "resources", "envs", "secrets", "file_mounts", "setup", "run", "service", "config", "volumes", "event_callback", "inputs", "outputs"}

// notATask says what a mapping with no SkyPilot task field appears to be,
// or "" when it has one.
func notATask(root *node) string {
	has := func(names ...string) bool {
		for _, n := range names {
			if root.get(n) == nil {
				return false
			}
		}
		return true
	}
	av, kind := root.get("apiVersion"), root.get("kind")
	switch {
	case av != nil && kind != nil && scalarText(av) == APIVersion:
		return fmt.Sprintf("it is already a cinet %s; use it as it is", scalarText(kind))
	case av != nil && kind != nil:
		return fmt.Sprintf("it looks like a Kubernetes manifest (kind %s)", scalarText(kind))
	case has("services") && root.get("run") == nil:
		return "it looks like a Docker Compose file (it has services:)"
	case has("on", "jobs"):
		return "it looks like a GitHub Actions workflow (it has on: and jobs:)"
	case has("stages") || (root.get("run") == nil && root.get("image") != nil && root.get("script") != nil):
		return "it looks like a GitLab CI file"
	case has("admin_policy") || has("allowed_clouds") || has("kubernetes") || has("jobs", "controller"):
		return "it looks like a SkyPilot configuration file (~/.sky/config.yaml), not a task"
	}
	for _, m := range root.members {
		if slices.Contains(skyTaskFields, m.name) {
			return ""
		}
	}
	names := make([]string, 0, 3)
	for _, m := range root.members {
		if len(names) == 3 {
			names = append(names, "…")
			break
		}
		names = append(names, m.name)
	}
	return fmt.Sprintf("it has none of a task's fields (run, setup, resources, …) but %s; it looks like some other configuration", strings.Join(names, ", "))
}

// quoteFlowColonScalars quotes, inside flow mappings, plain scalars with a
// ':' that no space follows ("A100:8"): YAML and SkyPilot's loader read
// such a scalar as one string, the YAML parser used here as a key and a
// value. It works on the lexer's tokens, so quoted text, comments and
// block scalars are left alone. Lines are kept, so positions in errors
// keep their line.
func quoteFlowColonScalars(data []byte) []byte {
	if !bytes.Contains(data, []byte{'{'}) || !utf8.Valid(data) || len(data) > MaxDocumentSize {
		return data
	}
	toks := lexer.Tokenize(string(data))
	plain := func(tk *token.Token) bool {
		switch tk.Type {
		case token.StringType, token.IntegerType, token.FloatType, token.BoolType, token.NullType:
			return tk.Position != nil && !strings.ContainsAny(tk.Value, "\n\"'")
		}
		return false
	}
	var stack []token.Type
	type span struct{ line, col, endLine, endCol int }
	var spans []span
	for i := 0; i < len(toks); i++ {
		tk := toks[i]
		switch tk.Type {
		case token.MappingStartType, token.SequenceStartType:
			stack = append(stack, tk.Type)
		case token.MappingEndType, token.SequenceEndType:
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
		}
		if len(stack) == 0 || stack[len(stack)-1] != token.MappingStartType || i+2 >= len(toks) {
			continue
		}
		key, colon, val := tk, toks[i+1], toks[i+2]
		if !plain(key) || colon.Type != token.MappingValueType || !plain(val) || colon.Position == nil {
			continue
		}
		keyEnd := key.Position.Column + utf8.RuneCountInString(key.Value)
		if colon.Position.Line != key.Position.Line || colon.Position.Column != keyEnd ||
			val.Position.Line != colon.Position.Line || val.Position.Column != colon.Position.Column+1 {
			continue
		}
		spans = append(spans, span{key.Position.Line, key.Position.Column, val.Position.Line, val.Position.Column + utf8.RuneCountInString(val.Value)})
		i += 2
	}
	if len(spans) == 0 {
		return data
	}
	// Byte offset of a 1-based line and character column.
	lineStart := []int{0, 0}
	for i, c := range data {
		if c == '\n' {
			lineStart = append(lineStart, i+1)
		}
	}
	offset := func(line, col int) int {
		if line >= len(lineStart) {
			return len(data)
		}
		off := lineStart[line]
		for n := 1; n < col && off < len(data); n++ {
			_, size := utf8.DecodeRune(data[off:])
			off += size
		}
		return off
	}
	out := make([]byte, 0, len(data)+2*len(spans))
	last := 0
	for _, sp := range spans {
		from, to := offset(sp.line, sp.col), offset(sp.endLine, sp.endCol)
		if from < last || to < from {
			return data // positions disagree with the text: leave it as written
		}
		out = append(out, data[last:from]...)
		out = append(out, '"')
		out = append(out, data[from:to]...)
		out = append(out, '"')
		last = to
	}
	return append(out, data[last:]...)
}

type skypilot struct {
	im      *importer
	t       *tree
	opts    ImportOptions
	setup   string
	run     string
	service *member // the task's service:, mapped once the ports are known
	ports   []int   // resources.ports, in order
	portsAt int     // the line they were given on
	image   string
	env     map[string]any
	nodes   int
}

func (s *skypilot) line(at srcPos) int { return s.t.pos(at).Line }

func (s *skypilot) failAt(at srcPos, field, format string, args ...any) {
	p := s.t.pos(at)
	s.im.fail(p.Line, p.Col, field, format, args...)
}

// skyNodeVars are SkyPilot's environment variables for multi-node tasks.
var skyNodeVars = regexp.MustCompile(`SKYPILOT_(NODE_RANK|NODE_IPS|NUM_NODES|NUM_GPUS_PER_NODE|SETUP_NODE_RANK|SETUP_NODE_IPS)`)

// skyNodeContract gives each of SkyPilot's node variables from the node
// contract (spec/jobs.md §6).
var skyNodeContract = map[string]string{
	"SKYPILOT_NODE_RANK":         "CINET_NODE_RANK",
	"SKYPILOT_SETUP_NODE_RANK":   "CINET_NODE_RANK",
	"SKYPILOT_NODE_IPS":          "CINET_NODE_ADDRS",
	"SKYPILOT_SETUP_NODE_IPS":    "CINET_NODE_ADDRS",
	"SKYPILOT_NUM_NODES":         "CINET_NUM_NODES",
	"SKYPILOT_NUM_GPUS_PER_NODE": "CINET_ACCELERATORS_PER_NODE",
}

// withNodeVars returns a script that sets the SkyPilot node variables it
// reads from the node contract, in a line put before it, and the
// variables it set.
func withNodeVars(script string) (string, []string) {
	used := slices.Compact(slices.Sorted(slices.Values(skyNodeVars.FindAllString(script, -1))))
	if len(used) == 0 {
		return script, nil
	}
	var b strings.Builder
	b.WriteString("export")
	for _, v := range used {
		fmt.Fprintf(&b, " %s=\"$%s\"", v, skyNodeContract[v])
	}
	b.WriteString(" # SkyPilot's node variables, from cinet's node contract\n")
	return b.String() + script, used
}

func (s *skypilot) task(root *node) {
	name := ""
	runLine := 0
	for _, m := range root.members {
		v, line := m.val, s.line(m.at)
		s.im.cur = line
		switch m.name {
		case "name":
			name = scalarText(v)
		case "num_nodes":
			if n, ok := positiveInt(v); ok {
				s.im.set("nodes", n)
				s.nodes = n
			} else {
				s.failAt(m.at, m.name, "must be a positive integer, got %s", describeValue(v))
			}
		case "resources":
			s.resources(v, "resources")
		case "envs":
			s.im.lines["tasks.env"] = line
			s.env = map[string]any{}
			for _, e := range v.members {
				if e.val.kind == kindNull {
					s.im.warn(s.line(e.at), "envs."+e.name, "dropped: a value to be given at launch has no v1 counterpart; set it in tasks[].env")
					continue
				}
				s.env[e.name] = scalarText(e.val)
			}
		case "setup":
			s.im.lines["tasks"] = line
			s.setup = scalarText(v)
			runLine = max(runLine, line)
		case "run":
			s.im.lines["tasks"] = line
			s.run = scalarText(v)
			runLine = line
		case "workdir":
			src := scalarText(v)
			if uri, ok := s.localURI(m.at, m.name, src); ok {
				s.im.set("inputs", append(s.inputs(), map[string]any{"name": "workdir", "source": uri, "path": "workdir"}))
				s.im.warn(line, m.name, "became input \"workdir\" placed at workdir/, where the tasks run")
			}
		case "file_mounts":
			s.fileMounts(v)
		case "secrets":
			s.im.warn(line, m.name, "dropped: secrets are not carried into job documents; supply them to the provider out of band")
		case "service":
			s.service = &m
		default:
			s.im.warn(line, m.name, "dropped: no v1 counterpart")
		}
	}
	if s.service != nil {
		s.mapService(*s.service)
	} else if len(s.ports) > 0 {
		s.im.warn(s.portsAt, "resources.ports", "dropped: ports are a service's (service:), and this task has none")
	}
	s.im.cur = 0
	s.im.setName(s.line(root.at), "name", name, "skypilot-task")
	var mapped []string
	for _, script := range []*string{&s.setup, &s.run} {
		var used []string
		*script, used = withNodeVars(*script)
		mapped = append(mapped, used...)
	}
	if mapped = slices.Compact(slices.Sorted(slices.Values(mapped))); len(mapped) > 0 {
		var pairs []string
		for _, v := range mapped {
			pairs = append(pairs, v+" from "+skyNodeContract[v])
		}
		s.im.warn(runLine, "run", "SkyPilot's node variables are set from cinet's node contract (spec/jobs.md §6) by a line added at the top of the script: %s", strings.Join(pairs, ", "))
	}

	var tasks []any
	task := func(name, script string) map[string]any {
		t := map[string]any{"name": name, "command": []any{"/bin/bash", "-c", script}}
		if s.image != "" {
			t["image"] = s.image
		}
		if len(s.env) > 0 {
			t["env"] = s.env
		}
		if s.hasWorkdir() {
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
		s.im.cur = s.line(m.at)
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
		uri, ok := s.localURI(m.val.at, field, src)
		if !ok {
			continue
		}
		name := cleanName(strings.TrimPrefix(m.name, "~/"))
		if name == "" {
			name = fmt.Sprintf("mount-%d", i)
		}
		s.im.set("inputs", append(s.inputs(), map[string]any{"name": name, "source": uri, "path": m.name}))
	}
}

// localURI turns a source into a URI: URIs pass through; absolute paths,
// "~" paths and relative paths become file:// URIs, the latter two against
// the options' home and directory.
func (s *skypilot) localURI(at srcPos, field, src string) (string, bool) {
	if i := strings.Index(src, "://"); i > 0 {
		return src, true
	}
	p := src
	switch {
	case p == "~" || strings.HasPrefix(p, "~/"):
		if s.opts.Home == "" {
			s.failAt(at, field, "%q is under the home directory, which this conversion does not know; write an absolute path or a URI", src)
			return "", false
		}
		p = path.Join(s.opts.Home, strings.TrimPrefix(p, "~"))
	case strings.HasPrefix(p, "~"):
		s.failAt(at, field, "%q names another user's home directory; write an absolute path or a URI", src)
		return "", false
	case !path.IsAbs(p):
		if s.opts.Dir == "" {
			s.failAt(at, field, "%q is a relative path and no directory was given to take it from; write an absolute path or a URI", src)
			return "", false
		}
		p = path.Join(s.opts.Dir, p)
	}
	return (&url.URL{Scheme: "file", Path: path.Clean(p)}).String(), true
}

func (s *skypilot) resources(v *node, prefix string) {
	if v.kind != kindObject {
		s.failAt(v.at, prefix, "must be a mapping")
		return
	}
	for _, m := range v.members {
		field, val, line := prefix+"."+m.name, m.val, s.line(m.at)
		s.im.cur = line
		switch m.name {
		case "cpus":
			if n, ok := atLeastNumber(val); ok {
				s.im.set("resources.cpus", n)
			} else {
				s.failAt(m.at, field, "want a number such as 4 or \"4+\", got %s", describeValue(val))
			}
		case "memory", "disk_size":
			gib, ok := skySize(val)
			if !ok {
				s.failAt(m.at, field, "want gigabytes such as 32, \"32+\" or \"1TB\", got %s", describeValue(val))
				continue
			}
			to := "resources.memory"
			if m.name == "disk_size" {
				to = "resources.disk"
			}
			s.im.set(to, gibText(gib))
		case "accelerators", "gpus":
			s.accelerators(m.at, field, val)
		case "ordered", "any_of":
			s.choices(m, field)
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
				s.im.lines["tasks.image"] = line
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
		case "ports":
			s.ports, s.portsAt = s.portList(m.at, field, val), line
		default:
			s.im.warn(line, field, "dropped: no v1 counterpart")
		}
	}
}

// portList reads SkyPilot's ports: a port, a range ("8000-8010", of
// which a v1 service takes the first, with a warning) or a list of them.
func (s *skypilot) portList(at srcPos, field string, v *node) []int {
	items := []*node{v}
	if v.kind == kindArray {
		items = v.items
	}
	var ports []int
	for _, it := range items {
		text := strings.TrimSpace(scalarText(it))
		first, _, isRange := strings.Cut(text, "-")
		p, err := strconv.Atoi(strings.TrimSpace(first))
		if err != nil || p < 1 || p > 65535 {
			s.failAt(at, field, "want a port (1 to 65535), a range such as \"8000-8010\" or a list of them, got %s", describeValue(it))
			return nil
		}
		if isRange {
			s.im.warn(s.line(at), field, "range %s: a v1 service declares single ports; port %d is kept, the rest of the range dropped", text, p)
		}
		if !slices.Contains(ports, p) {
			ports = append(ports, p)
		}
	}
	if len(ports) > 16 {
		s.im.warn(s.line(at), field, "%d ports: a v1 service declares at most 16; the first 16 are kept", len(ports))
		ports = ports[:16]
	}
	return ports
}

// mapService maps a SkyPilot service: (descriptor-v1.md §4.8) to the
// job's service (§4.9).
func (s *skypilot) mapService(m member) {
	v, line := m.val, s.line(m.at)
	s.im.cur = line
	if v.kind != kindObject {
		s.failAt(m.at, "service", "must be a mapping")
		return
	}
	if s.run == "" {
		s.failAt(m.at, "service", "a service needs a run command: the last task is the server")
		return
	}
	svc := map[string]any{}
	readiness := map[string]any{}
	ports := s.ports
	for _, f := range v.members {
		field, val, fline := "service."+f.name, f.val, s.line(f.at)
		s.im.cur = fline
		switch f.name {
		case "readiness_probe":
			if val.kind != kindObject {
				readiness["path"] = scalarText(val)
				continue
			}
			for _, r := range val.members {
				rfield := field + "." + r.name
				switch r.name {
				case "path":
					readiness["path"] = scalarText(r.val)
				case "initial_delay_seconds", "timeout_seconds":
					n, ok := nonNegativeInt(r.val)
					if !ok {
						s.failAt(r.at, rfield, "want a whole number of seconds, got %s", describeValue(r.val))
						continue
					}
					key := "initialDelay"
					if r.name == "timeout_seconds" {
						key = "timeout"
						n = max(n, 1)
					}
					readiness[key] = fmt.Sprintf("%ds", n)
				case "post_data", "headers":
					s.im.warn(s.line(r.at), rfield, "dropped: the v1 probe is a plain GET")
				default:
					s.im.warn(s.line(r.at), rfield, "dropped: no v1 counterpart")
				}
			}
		case "replicas":
			s.replicas(f, field, svc)
		case "replica_policy":
			if val.kind != kindObject {
				s.failAt(f.at, field, "must be a mapping")
				continue
			}
			var dropped []string
			for _, r := range val.members {
				if r.name == "min_replicas" {
					s.replicas(r, field+"."+r.name, svc)
					continue
				}
				dropped = append(dropped, r.name)
			}
			if len(dropped) > 0 {
				s.im.warn(fline, field, "autoscaling (%s) dropped: a v1 service runs a fixed number of replicas, min_replicas", strings.Join(dropped, ", "))
			}
		case "ports":
			ports = s.portList(f.at, field, val)
			s.portsAt = fline
		default:
			s.im.warn(fline, field, "dropped: no v1 counterpart")
		}
	}
	s.im.cur = line
	if len(ports) == 0 {
		ports = []int{8080}
		s.im.warn(line, "service", "no ports given (resources.ports): the service is taken to listen on 8080")
	} else if s.portsAt > 0 {
		s.im.lines["service.ports"] = s.portsAt
	}
	var list []any
	for i, p := range ports {
		name := "http"
		if i > 0 {
			name = fmt.Sprintf("port-%d", p)
		}
		list = append(list, map[string]any{"name": name, "port": p, "protocol": "http"})
	}
	svc["ports"] = list
	if len(readiness) > 0 {
		svc["readiness"] = readiness
	}
	s.im.set("service", svc)
}

func (s *skypilot) replicas(m member, field string, svc map[string]any) {
	n, ok := positiveInt(m.val)
	switch {
	case !ok:
		s.failAt(m.at, field, "want a positive number of replicas, got %s", describeValue(m.val))
	case n > 64:
		s.failAt(m.at, field, "%d replicas: a v1 service runs at most 64", n)
	default:
		svc["replicas"] = n
	}
}

// choices maps resources.ordered (choices in order of preference) and
// resources.any_of (any of them) to the first choice that converts: a v1
// job names one set of resources, so the others are dropped with a warning
// that names them. A choice that asks for accelerators the vocabulary does
// not know is skipped.
func (s *skypilot) choices(m member, field string) {
	if m.val.kind != kindArray || len(m.val.items) == 0 {
		s.failAt(m.at, field, "want a list of resource choices")
		return
	}
	if specs, ok := acceleratorOnlyChoices(m.val); ok {
		known := knownSpecs(specs)
		if len(known) == 0 {
			s.failAt(m.at, field, "none of %s is in the vocabulary; see `cinet descriptor accelerators`", strings.Join(specs, ", "))
			return
		}
		if len(known) < len(specs) {
			var unknown []string
			for _, sp := range specs {
				if !slices.Contains(known, sp) {
					unknown = append(unknown, sp)
				}
			}
			s.im.warn(s.line(m.at), field, "%s skipped: not in the vocabulary", strings.Join(unknown, ", "))
		}
		if m.name == "ordered" && len(known) > 1 {
			s.im.warn(s.line(m.at), field, "the order of preference is not kept: any of the choices serves, and the job's objective picks among offers")
		}
		s.setAccelerators(m.at, field, known)
		return
	}
	kept := -1
	var skipped, dropped []string
	for i, c := range m.val.items {
		desc := describeChoice(c)
		if kept >= 0 {
			dropped = append(dropped, desc)
			continue
		}
		if c.kind != kindObject {
			s.failAt(c.at, fmt.Sprintf("%s[%d]", field, i), "must be a mapping")
			return
		}
		if a := firstOf(c, "accelerators", "gpus"); a != nil && len(knownSpecs(skySpecs(a))) == 0 {
			skipped = append(skipped, desc)
			continue
		}
		kept = i
		s.resources(c, fmt.Sprintf("%s[%d]", field, i))
	}
	line := s.line(m.at)
	if kept < 0 {
		s.failAt(m.at, field, "no choice names an accelerator the vocabulary knows (%s); see `cinet descriptor accelerators`", strings.Join(skipped, "; "))
		return
	}
	if len(skipped) > 0 {
		s.im.warn(line, field, "choices %s skipped: their accelerators are not in the vocabulary", strings.Join(skipped, "; "))
	}
	if len(dropped) > 0 {
		s.im.warn(line, field, "choices %s dropped: a v1 job names one set of resources; kept choice %d (%s)", strings.Join(dropped, "; "), kept+1, describeChoice(m.val.items[kept]))
	}
}

// acceleratorOnlyChoices returns the accelerator specs of resource choices
// that each set accelerators (or gpus) and nothing else.
func acceleratorOnlyChoices(list *node) ([]string, bool) {
	var specs []string
	for _, c := range list.items {
		if c.kind != kindObject || len(c.members) != 1 || (c.members[0].name != "accelerators" && c.members[0].name != "gpus") {
			return nil, false
		}
		specs = append(specs, skySpecs(c.members[0].val)...)
	}
	return specs, len(specs) > 0
}

func firstOf(n *node, names ...string) *node {
	for _, name := range names {
		if v := n.get(name); v != nil {
			return v
		}
	}
	return nil
}

// describeChoice writes a resources choice briefly: "{accelerators: H100:8, cloud: aws}".
func describeChoice(n *node) string {
	if n.kind != kindObject {
		return scalarText(n)
	}
	var parts []string
	for _, m := range n.members {
		v := scalarText(m.val)
		if a := skySpecs(m.val); (m.name == "accelerators" || m.name == "gpus") && len(a) > 0 {
			v = strings.Join(a, "|")
		}
		parts = append(parts, m.name+": "+v)
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// skySpecs lists the accelerator choices a value writes: "H100:8",
// {H100: 8}, {A100:4, A100-80GB:2} (a set) or a list of them.
func skySpecs(v *node) []string {
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
	return specs
}

// knownSpecs keeps the choices whose model the vocabulary knows.
func knownSpecs(specs []string) []string {
	var out []string
	for _, sp := range specs {
		name, _, _ := strings.Cut(strings.TrimSpace(sp), ":")
		if _, _, _, ok := skyAccelerator(name); ok {
			out = append(out, sp)
		}
	}
	return out
}

// accelerators maps a value that lists accelerator choices. A v1 request
// names one choice: the first the vocabulary knows is kept, and the others
// are named in a warning. Unknown choices are skipped when a known one
// follows; a job whose every choice is unknown is refused, never turned
// into a CPU job.
func (s *skypilot) accelerators(at srcPos, field string, v *node) {
	specs := skySpecs(v)
	if len(specs) == 0 {
		s.failAt(at, field, "want a spec such as \"H100:8\"")
		return
	}
	known := knownSpecs(specs)
	if len(known) == 0 {
		name, _, _ := strings.Cut(specs[0], ":")
		if len(specs) == 1 {
			s.failAt(at, field, "%s", unknownModelError(name))
		} else {
			s.failAt(at, field, "none of %s is in the vocabulary; see `cinet descriptor accelerators`", strings.Join(specs, ", "))
		}
		return
	}
	line := s.line(at)
	var unknown []string
	for _, sp := range specs {
		if !slices.Contains(known, sp) {
			unknown = append(unknown, sp)
		}
	}
	if len(unknown) > 0 {
		s.im.warn(line, field, "%s skipped: not in the vocabulary", strings.Join(unknown, ", "))
	}
	s.setAccelerators(at, field, known)
}

// setAccelerators sets the job's request from known choices: the one, or
// anyOf them.
func (s *skypilot) setAccelerators(at srcPos, field string, known []string) {
	line := s.line(at)
	var choices []any
	seen := map[string]bool{}
	for _, sp := range known {
		req, err := ParseAcceleratorShorthand(sp)
		if err != nil {
			s.failAt(at, field, "%v", err)
			return
		}
		if req.fraction != "" {
			s.im.warn(line, field, "%s: v1 counts whole devices; the job asks for %d", req.fraction, req.Count)
		}
		c := map[string]any{"model": req.Model, "count": req.Count}
		if req.Memory > 0 {
			c["memory"] = req.Memory.String()
		}
		key := fmt.Sprint(req.Model, req.Count, req.Memory)
		if seen[key] {
			continue
		}
		seen[key] = true
		choices = append(choices, c)
	}
	switch {
	case len(choices) == 1:
		s.im.set("resources.accelerators", []any{choices[0]})
	case len(choices) > 8:
		s.im.warn(line, field, "choices after the eighth dropped: a request lists at most 8")
		choices = choices[:8]
		fallthrough
	default:
		s.im.set("resources.accelerators", []any{map[string]any{"anyOf": choices}})
	}
}

// A shorthandRequest is an accelerator request read from "H100:8".
type shorthandRequest struct {
	AcceleratorRequest
	fraction string // the fractional count given, rounded up
}

// tpuSlice reads SkyPilot's TPU slice names, "tpu-v4-8" or
// "tpu-v5litepod-4": the generation and the number after it, which counts
// TensorCores (two per chip) up to v5p and chips from v5e on.
var tpuSlice = regexp.MustCompile(`^tpu-(v2|v3|v4|v5p|v5litepod|v5e|v6e)-(\d+)$`)

// skyAccelerator resolves a SkyPilot accelerator name to a vocabulary
// model, the device memory the name implies, and how many devices one of
// it is (a TPU slice is several chips).
func skyAccelerator(name string) (*AcceleratorModel, Quantity, int, bool) {
	lower := strings.ToLower(strings.TrimSpace(name))
	if m := tpuSlice.FindStringSubmatch(lower); m != nil {
		n, err := strconv.Atoi(m[2])
		if err != nil || n < 1 {
			return nil, 0, 0, false
		}
		gen := m[1]
		chips, perHost := n, 8
		switch gen {
		case "v2", "v3", "v4", "v5p":
			chips, perHost = n/2, 4
		}
		a, ok := FindAccelerator("tpu-" + gen)
		if !ok || chips < 1 || chips > perHost {
			return nil, 0, 0, false // a multi-host slice: several nodes, not one
		}
		return a, 0, chips, true
	}
	a, mem, ok := FindAcceleratorVariant(lower)
	return a, mem, 1, ok
}

// ParseAcceleratorShorthand reads "H100:8" or "h100" (count 1), resolving
// the model through the vocabulary's names and spellings; a spelling that
// names a memory size ("A100-80GB") sets the request's memory. A
// fractional count ("T4:0.5") is rounded up to whole devices.
func ParseAcceleratorShorthand(spec string) (shorthandRequest, error) {
	name, count, hasCount := strings.Cut(strings.TrimSpace(spec), ":")
	n := 1
	frac := ""
	if hasCount {
		f, err := strconv.ParseFloat(count, 64)
		if err != nil || f <= 0 || f > 1024 {
			return shorthandRequest{}, fmt.Errorf("accelerator %q: the count must be a number above 0 and at most 1024", spec)
		}
		n = int(math.Ceil(f))
		if f != math.Trunc(f) {
			frac = spec
		}
	}
	m, mem, per, ok := skyAccelerator(name)
	if !ok {
		if tpuSlice.MatchString(strings.ToLower(name)) {
			return shorthandRequest{}, fmt.Errorf("TPU slice %q spans several hosts; only single-host slices (up to 4 chips for v2–v5p, 8 for v5e and v6e) convert", name)
		}
		return shorthandRequest{}, fmt.Errorf("%s", unknownModelError(name))
	}
	return shorthandRequest{AcceleratorRequest: AcceleratorRequest{Model: m.Name, Count: n * per, Memory: mem}, fraction: frac}, nil
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
	return f, err == nil && f > 0 && f < 1e9
}

// skySizeUnits are the units SkyPilot's memory and disk_size take, in
// GiB (SkyPilot's GB is the catalog's gibibyte).
var skySizeUnits = map[string]float64{"": 1, "kb": 1.0 / (1 << 20), "mb": 1.0 / 1024, "gb": 1, "tb": 1024, "pb": 1 << 20,
	"k": 1.0 / (1 << 20), "m": 1.0 / 1024, "g": 1, "t": 1024, "p": 1 << 20}

// skySize reads 32, 32.5, "32+", "32GB", "32GB+" or "1TB" as GiB.
func skySize(n *node) (float64, bool) {
	text := strings.TrimSuffix(strings.TrimSpace(scalarText(n)), "+")
	num := strings.TrimRightFunc(text, func(r rune) bool { return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' })
	unit, ok := skySizeUnits[strings.ToLower(strings.TrimSpace(text[len(num):]))]
	f, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	if !ok || err != nil || f <= 0 {
		return 0, false
	}
	gib := f * unit
	return gib, gib < 1<<24
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
