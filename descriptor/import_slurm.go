package descriptor

import (
	"bufio"
	"bytes"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// ImportSlurm converts a Slurm batch script into a v1 Job, reading its
// directives as sbatch does: lines that begin with #SBATCH (or the old
// #SLURM) up to the first command; within a line, words split at white
// space, quotes and backslashes as sbatch's argument reader has them, and
// an unescaped '#' ends the line; options by their long names, their
// single letters, or an abbreviation that names one option. Resources,
// placement and limits become the job's; the script becomes its task.
// Every option without a v1 meaning is dropped with one warning naming it.
func ImportSlurm(file string, data []byte) (*Import, error) {
	if len(data) > MaxDocumentSize {
		return nil, ErrorList{{File: file, Line: 1, Col: 1, Msg: fmt.Sprintf("script is %d bytes, larger than the %d allowed", len(data), MaxDocumentSize)}}
	}
	if !utf8.Valid(data) {
		return nil, ErrorList{{File: file, Line: 1, Col: 1, Msg: "script is not valid UTF-8"}}
	}
	im := newImporter(file)
	s := &slurm{im: im, env: map[string]any{}, warned: map[string]bool{}}
	interpreter := "/bin/sh"
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), MaxDocumentSize)
	var body []string
	var args []sbatchArg
	line, late, firstLate := 0, 0, 0
	inDirectives := true
	for sc.Scan() {
		line++
		text := sc.Text()
		if line == 1 && strings.HasPrefix(text, "#!") {
			interpreter = strings.TrimSpace(text[2:])
			continue
		}
		body = append(body, text)
		trimmed := strings.TrimSpace(text)
		magic, rest := sbatchMagic(text)
		switch {
		case !inDirectives:
			if magic != "" {
				late++
				if firstLate == 0 {
					firstLate = line
				}
			}
		case magic == "#SLURM":
			s.warnOnce(line, "#SLURM", "read as #SBATCH; sbatch asks for #SBATCH")
			fallthrough
		case magic != "":
			words, err := sbatchWords(rest)
			if err != nil {
				im.fail(line, 1, "#SBATCH", "%v", err)
			}
			for _, w := range words {
				args = append(args, sbatchArg{w, line})
			}
		case strings.HasPrefix(trimmed, "#SBATCH"):
			s.warnOnce(line, "#SBATCH", "an indented #SBATCH is a comment to sbatch, which reads only lines that begin with it; ignored")
		case trimmed == "" || strings.HasPrefix(trimmed, "#"):
		default:
			inDirectives = false // sbatch stops reading directives here
		}
	}
	if err := sc.Err(); err != nil {
		return nil, ErrorList{{File: file, Line: line + 1, Col: 1, Msg: fmt.Sprintf("reading script: %v", err)}}
	}
	if late > 0 {
		im.warn(firstLate, "#SBATCH", "%d directive line(s) after the first command ignored, as sbatch ignores them; move them above it", late)
	}
	s.options(args)
	s.finish()
	script := strings.TrimSpace(strings.Join(body, "\n"))
	if inDirectives {
		im.fail(1, 1, "script", "the script has no commands, only directives and comments")
	}
	argv := strings.Fields(interpreter)
	if len(argv) == 0 {
		argv = []string{"/bin/sh"}
	}
	task := map[string]any{"name": "batch", "command": append(toAnySlice(argv), "-c", script+"\n")}
	if s.workdir != "" {
		task["workdir"] = s.workdir
	}
	if len(s.env) > 0 {
		task["env"] = s.env
	}
	im.set("tasks", []any{task})
	return im.finish()
}

// sbatchMagic returns the directive word a line begins with, "#SBATCH" or
// "#SLURM", and the rest of the line; "" when it begins with neither.
func sbatchMagic(line string) (string, string) {
	for _, m := range []string{"#SBATCH", "#SLURM"} {
		if rest, ok := strings.CutPrefix(line, m); ok {
			return m, rest
		}
	}
	return "", ""
}

// sbatchWords splits a directive line as sbatch's argument reader does:
// words end at white space outside quotes; a quote character starts or
// ends a quoted run and is removed; a backslash keeps the next character;
// an unescaped '#' outside quotes ends the line.
func sbatchWords(line string) ([]string, error) {
	var words []string
	var w strings.Builder
	inWord, escape := false, false
	var quote rune
	for _, r := range line {
		switch {
		case escape:
			w.WriteRune(r)
			escape, inWord = false, true
		case r == '\\':
			escape, inWord = true, true
		case quote != 0:
			if r == quote {
				quote = 0
			} else {
				w.WriteRune(r)
			}
		case r == '"' || r == '\'':
			quote, inWord = r, true
		case r == '#':
			if inWord {
				words = append(words, w.String())
			}
			return words, nil
		case r == ' ' || r == '\t' || r == '\r' || r == '\v' || r == '\f':
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		default:
			w.WriteRune(r)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unmatched %c; sbatch refuses the script", quote)
	}
	if inWord {
		words = append(words, w.String())
	}
	return words, nil
}

type sbatchArg struct {
	text string
	line int
}

func toAnySlice(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

type slurm struct {
	im     *importer
	warned map[string]bool

	name, workdir                             string
	nameLine                                  int
	nodes, ntasks, tasksPerNode, cpt, minCPUs int
	ntasksLine                                int
	cpusPerGPU                                int
	memPerNode, memPerCPU, memPerGPU          int64
	memSet                                    bool
	gpu                                       slurmGPU
	gpusPerNode, gpusTotal, gpusPerTask       int
	gpusSet                                   bool
	env                                       map[string]any
}

// slurmGPU is the GPU type a script names, resolved against the
// vocabulary.
type slurmGPU struct {
	model  string
	memory Quantity
	line   int
}

// sbatchOptions are sbatch's options (Slurm's src/common/slurm_opt.c, the
// ones sbatch takes): long name, whether it takes an argument ('r'
// required, 'o' optional, 'n' none), and its letter.
var sbatchOptions = func() map[string]sbatchOption {
	const table = "account:r:A acctg-freq:r array:r:a batch:r bbf:r autocomplete:r begin:r:b bb:r " +
		"consolidate-segments:n cluster-constraint:r chdir:r:D clusters:r:M cluster:r comment:r constraint:r:C " +
		"container:r container-id:r runtime:r context:r contiguous:n core-spec:r:S cores-per-socket:r cpu-freq:r " +
		"cpus-per-gpu:r cpus-per-task:r:c deadline:r delay-boot:r dependency:r:d distribution:r:m error:r:e " +
		"exclude:r:x exclusive:o export:r export-file:r external:n extra:r extra-node-info:r:B get-user-env:n " +
		"gid:r gpu-bind:r tres-bind:r gpu-freq:r gpus:r:G gpus-per-node:r gpus-per-socket:r gpus-per-task:r " +
		"tres-per-task:r gres:r gres-flags:r help:n:h hint:r hold:n:H ignore-pbs:n input:r:i job-name:r:J " +
		"kill-on-invalid-dep:r licenses:r:L mail-type:r mail-user:r mcs-label:r oom-kill-step:o mem:r mem-bind:r " +
		"mem-per-cpu:r mem-per-gpu:r mem-update:r mincpus:r network:r nice:o no-kill:o:k no-requeue:n " +
		"nodefile:r:F nodelist:r:w nodes:r:N ntasks:r:n ntasks-per-core:r ntasks-per-node:r ntasks-per-socket:r " +
		"ntasks-per-tres:r ntasks-per-gpu:r open-mode:r output:r:o overcommit:n:O oversubscribe:n:s parsable:n " +
		"partition:r:p prefer:r priority:r profile:r propagate:o qos:r:q quiet:n:Q reboot:n requeue:o " +
		"reservation:r resources:r resv-ports:o segment:r signal:r sockets-per-node:r spread-job:n " +
		"spread-segments:n stepmgr:n switches:r tasks-per-node:r test-only:n thread-spec:r threads-per-core:r " +
		"time:r:t time-min:r tmp:r uid:r use-min-nodes:n usage:n verbose:n:v version:n:V wait:n:W " +
		"wait-all-nodes:r wckey:r wrap:r"
	m := map[string]sbatchOption{}
	for _, f := range strings.Fields(table) {
		parts := strings.Split(f, ":")
		o := sbatchOption{name: parts[0], arg: parts[1][0]}
		if len(parts) == 3 {
			o.short = parts[2][0]
		}
		m[o.name] = o
	}
	return m
}()

type sbatchOption struct {
	name  string
	arg   byte
	short byte
}

// lookupLong finds a long option as getopt_long does: by its name, or by
// an abbreviation that begins exactly one option's name.
func lookupLong(name string) (sbatchOption, []string) {
	if o, ok := sbatchOptions[name]; ok {
		return o, nil
	}
	var found []string
	for n := range sbatchOptions {
		if strings.HasPrefix(n, name) {
			found = append(found, n)
		}
	}
	if len(found) == 1 {
		return sbatchOptions[found[0]], nil
	}
	return sbatchOption{}, found
}

func lookupShort(c byte) (sbatchOption, bool) {
	for _, o := range sbatchOptions {
		if o.short == c {
			return o, true
		}
	}
	return sbatchOption{}, false
}

// slurmIgnored are options with no v1 meaning, and why; any other option
// without a case in option is dropped as having no v1 counterpart.
var slurmIgnored = map[string]string{
	"partition": "cinet routes to offers, not partitions", "account": "cinet bills the submitting tenant",
	"output": "cinet captures standard output as the job's logs", "error": "cinet captures standard error as the job's logs",
	"array":     "job arrays have no v1 counterpart; submit one job each",
	"exclusive": "a v1 node always takes a whole instance", "constraint": "use requirements (CEL) instead",
	"requeue": "use recovery.maxRestarts instead", "wrap": "the script is the job's command",
	"clusters": "cinet routes across providers; pin them with placement.providers",
}

// options applies the arguments in order, as getopt_long hands them to
// sbatch: a later option overrides an earlier one.
func (s *slurm) options(args []sbatchArg) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		var o sbatchOption
		var value string
		hasValue := false
		switch {
		case a.text == "--":
			return
		case strings.HasPrefix(a.text, "--"):
			name, v, eq := strings.Cut(a.text[2:], "=")
			opt, ambiguous := lookupLong(name)
			if opt.name == "" {
				if len(ambiguous) > 1 {
					s.warnOnce(a.line, "--"+name, "dropped: an abbreviation of several sbatch options (%s)", strings.Join(slices.Sorted(slices.Values(ambiguous)), ", "))
				} else {
					s.warnOnce(a.line, "--"+name, "dropped: not an sbatch option")
				}
				continue
			}
			if opt.name != name {
				s.warnOnce(a.line, "--"+name, "read as --%s, the one sbatch option it abbreviates", opt.name)
			}
			o, value, hasValue = opt, v, eq
		case strings.HasPrefix(a.text, "-") && len(a.text) >= 2:
			opt, ok := lookupShort(a.text[1])
			if !ok {
				s.warnOnce(a.line, a.text[:2], "dropped: not an sbatch option")
				continue
			}
			o, value, hasValue = opt, a.text[2:], len(a.text) > 2
			if opt.arg == 'n' && hasValue {
				// Letters without arguments may be bundled: -vH.
				for _, c := range []byte(value) {
					if b, ok := lookupShort(c); ok && b.arg == 'n' {
						s.option(a.line, b.name, "", false)
					} else {
						s.warnOnce(a.line, "-"+string(c), "dropped: not an sbatch option without an argument")
					}
				}
				value, hasValue = "", false
			}
		default:
			s.im.fail(a.line, 1, "#SBATCH", "%q is not an option; sbatch refuses the script (\"Invalid directive\"); quote values that hold spaces", a.text)
			continue
		}
		if o.arg == 'r' && !hasValue {
			if i+1 >= len(args) {
				s.im.fail(a.line, 1, "--"+o.name, "needs a value")
				continue
			}
			i++
			value, hasValue = args[i].text, true
		}
		if o.arg == 'n' && hasValue {
			s.im.fail(a.line, 1, "--"+o.name, "takes no value, got %q", value)
			continue
		}
		s.option(a.line, o.name, value, hasValue)
	}
}

// warnOnce warns about a field the first time only.
func (s *slurm) warnOnce(line int, field, format string, args ...any) {
	if s.warned[field] {
		return
	}
	s.warned[field] = true
	s.im.warn(line, field, format, args...)
}

func (s *slurm) option(line int, name, value string, hasValue bool) {
	field := "--" + name
	if set, ok := s.countOptions()[name]; ok {
		n, err := strconv.Atoi(value)
		if err != nil || n < 1 {
			s.im.fail(line, 1, field, "want a whole number ≥ 1, got %q", value)
			return
		}
		set(n, line)
		return
	}
	switch name {
	case "job-name":
		s.name, s.nameLine = value, line
	case "nodes":
		s.nodesOption(line, field, value)
	case "mem":
		s.memPerNode, s.memSet = s.memory(line, field, value), true
		if s.memPerNode == 0 {
			s.im.warn(line, field, "0 (all of a node's memory) dropped: a v1 node is a whole instance, whatever memory it has; give a size to be sure of one")
		}
	case "mem-per-cpu":
		s.memPerCPU = s.memory(line, field, value)
	case "mem-per-gpu":
		s.memPerGPU = s.memory(line, field, value)
	case "tmp":
		if q := s.memory(line, field, value); q > 0 {
			s.im.set("resources.disk", Quantity(q).String())
		}
	case "time":
		d, err := parseSlurmTime(value)
		if err != nil {
			s.im.fail(line, 1, field, "%v", err)
			return
		}
		s.im.set("timeouts.run", d)
	case "chdir":
		if !filepath.IsLocal(value) {
			// A job runs in its own directory on whatever machine runs it;
			// a path of the submitting cluster means nothing there.
			s.im.warn(line, field, "%q dropped: a job's working directory is a relative path inside its own directory", value)
			return
		}
		s.workdir = value
	case "gres":
		s.gresOption(line, field, value)
	case "gpus", "gpus-per-node", "gpus-per-task":
		s.gpusOption(line, name, value)
	case "export":
		s.exportOption(line, field, value)
	default:
		s.dropped(line, name)
	}
}

// countOptions are the options whose value is a count of at least 1, and
// where each goes.
func (s *slurm) countOptions() map[string]func(n, line int) {
	return map[string]func(n, line int){
		"ntasks":          func(n, line int) { s.ntasks, s.ntasksLine = n, line },
		"ntasks-per-node": func(n, _ int) { s.tasksPerNode = n },
		"tasks-per-node":  func(n, _ int) { s.tasksPerNode = n },
		"cpus-per-task":   func(n, _ int) { s.cpt = n },
		"mincpus":         func(n, _ int) { s.minCPUs = n },
		"cpus-per-gpu":    func(n, _ int) { s.cpusPerGPU = n },
	}
}

// nodesOption reads --nodes: a count, or a range that becomes its
// minimum.
func (s *slurm) nodesOption(line int, field, value string) {
	lo, hi, isRange := strings.Cut(value, "-")
	n, err := strconv.Atoi(lo)
	if err != nil || n < 1 {
		s.im.fail(line, 1, field, "want a node count such as 2 or 2-4, got %q", value)
		return
	}
	s.nodes = n
	if isRange && hi != lo {
		s.im.warn(line, field, "the range %s became its minimum, %d nodes", value, n)
	}
}

// gresOption reads --gres: its GPUs; other generic resources are dropped.
func (s *slurm) gresOption(line int, field, value string) {
	for _, g := range strings.Split(value, ",") {
		g = strings.TrimPrefix(g, "gres/")
		kind, spec, _ := strings.Cut(g, ":")
		if kind != "gpu" {
			if g != "none" {
				s.warnOnce(line, field+" "+kind, "generic resource %q dropped: only gpu has a v1 counterpart", g)
			}
			continue
		}
		if n, ok := s.gpuSpec(line, field, spec); ok {
			s.gpusPerNode, s.gpusSet = n, true
		}
	}
}

// gpusOption reads --gpus, --gpus-per-node and --gpus-per-task.
func (s *slurm) gpusOption(line int, name, value string) {
	n, ok := s.gpuSpec(line, "--"+name, value)
	if !ok {
		return
	}
	s.gpusSet = true
	switch name {
	case "gpus":
		s.gpusTotal = n
	case "gpus-per-node":
		s.gpusPerNode = n
	default:
		s.gpusPerTask = n
	}
}

// exportOption reads --export: the variables given values.
func (s *slurm) exportOption(line int, field, value string) {
	for _, kv := range strings.Split(value, ",") {
		k, v, ok := strings.Cut(kv, "=")
		if ok {
			s.env[k] = v
		} else if kv != "ALL" && kv != "NONE" && kv != "NIL" {
			s.im.warn(line, field, "%s dropped: v1 tasks carry explicit values only", kv)
		}
	}
}

// dropped warns, once, of an option with no v1 counterpart, saying why.
func (s *slurm) dropped(line int, name string) {
	field := "--" + name
	switch why, ok := slurmIgnored[name]; {
	case name == "help" || name == "usage" || name == "version" || name == "test-only":
		s.warnOnce(line, field, "dropped: sbatch would not submit the script with it")
	case ok:
		s.warnOnce(line, field, "dropped: %s", why)
	default:
		s.warnOnce(line, field, "dropped: no v1 counterpart")
	}
}

// gpuSpec reads "[type:]count" as --gres gpu:..., --gpus, --gpus-per-node
// and --gpus-per-task write it, records the type, and returns the count.
// A type the vocabulary does not know is a cluster's own name for its
// GPUs: the job keeps asking for GPUs, of any model, with a warning.
func (s *slurm) gpuSpec(line int, field, spec string) (int, bool) {
	parts := strings.Split(spec, ":")
	count := 1
	if last := parts[len(parts)-1]; last != "" {
		if n, err := strconv.Atoi(last); err == nil {
			count = n
			parts = parts[:len(parts)-1]
		} else if len(parts) == 1 && last[0] >= '0' && last[0] <= '9' {
			s.im.fail(line, 1, field, "want a GPU count such as 2 or a100:2, got %q", spec)
			return 0, false
		}
	}
	if spec == "" {
		parts = nil
	}
	if count < 0 {
		s.im.fail(line, 1, field, "GPU count must be ≥ 0")
		return 0, false
	}
	if len(parts) > 0 && parts[0] != "" {
		typ := strings.Join(parts, ":")
		m, mem, ok := FindAcceleratorVariant(strings.ReplaceAll(typ, "_", "-"))
		if ok {
			s.gpu = slurmGPU{model: m.Name, memory: mem, line: line}
		} else {
			s.gpu = slurmGPU{line: line}
			s.warnOnce(line, field+" "+typ, "GPU type %q is not a model the vocabulary knows (a cluster's own name?); the job asks for GPUs of any model", typ)
		}
	}
	return count, true
}

// memory reads Slurm sizes as sbatch does: a whole number with an optional
// K, M, G or T (powers of 1024), optionally followed by B; megabytes when
// bare. Kilobytes round up to whole megabytes.
func (s *slurm) memory(line int, field, value string) int64 {
	num := strings.TrimRight(value, "KMGTkmgtBb")
	unit := strings.ToUpper(strings.TrimSuffix(strings.TrimSuffix(value[len(num):], "B"), "b"))
	n, err := strconv.ParseInt(num, 10, 64)
	shift, okUnit := map[string]uint{"": 20, "K": 10, "M": 20, "G": 30, "T": 40}[unit]
	if err != nil || n < 0 || !okUnit || (unit == "" && len(value) > len(num)) || n > 1<<62>>shift {
		s.im.fail(line, 1, field, "want a size such as 4G, 500M or 4096 (megabytes), got %q", value)
		return 0
	}
	if unit == "K" {
		return (n + 1023) >> 10 << 20
	}
	return n << shift
}

// parseSlurmTime reads minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM and
// D-HH:MM:SS, and returns a v1 duration.
func parseSlurmTime(v string) (string, error) {
	if v == "UNLIMITED" || v == "INFINITE" || v == "0" {
		return "", fmt.Errorf("an unlimited time has no v1 counterpart; give a limit")
	}
	days := 0
	rest := v
	if d, r, ok := strings.Cut(v, "-"); ok {
		n, err := strconv.Atoi(d)
		if err != nil || n < 0 {
			return "", fmt.Errorf("%q is not a Slurm time", v)
		}
		days, rest = n, r
	}
	parts := strings.Split(rest, ":")
	nums := make([]int, len(parts))
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || len(parts) > 3 || n > 1e6 {
			return "", fmt.Errorf("%q is not a Slurm time", v)
		}
		nums[i] = n
	}
	var h, m, sec int
	switch {
	case strings.Contains(v, "-"): // D-HH, D-HH:MM, D-HH:MM:SS
		h = nums[0]
		if len(nums) > 1 {
			m = nums[1]
		}
		if len(nums) > 2 {
			sec = nums[2]
		}
	case len(nums) == 1:
		m = nums[0]
	case len(nums) == 2:
		m, sec = nums[0], nums[1]
	default:
		h, m, sec = nums[0], nums[1], nums[2]
	}
	total := (((days*24+h)*60)+m)*60 + sec
	if total <= 0 || days > 1e5 {
		return "", fmt.Errorf("%q is not a positive time", v)
	}
	return Duration(int64(total) * 1e9).String(), nil
}

// finish works out per-node amounts from the options, as Slurm does: with
// --ntasks and --ntasks-per-node but no --nodes, the node count is the
// tasks over the tasks per node, rounded up; a node's tasks are the job's
// tasks over its nodes, rounded up; --gpus-per-task and --cpus-per-gpu
// scale with them.
func (s *slurm) finish() {
	s.im.setName(s.nameLine, "--job-name", s.name, "slurm-job")
	nodes := s.nodes
	if nodes == 0 && s.ntasks > 0 && s.tasksPerNode > 0 {
		nodes = (s.ntasks + s.tasksPerNode - 1) / s.tasksPerNode
	}
	if nodes > 0 && s.ntasks > 0 && s.ntasks < nodes {
		s.im.warn(s.ntasksLine, "--ntasks", "%d tasks on %d nodes: Slurm lowers the node count to %d, and so does the conversion", s.ntasks, nodes, s.ntasks)
		nodes = s.ntasks
	}
	if s.nodes > 0 || nodes > 1 {
		s.im.set("nodes", nodes)
	}
	nodes = max(nodes, 1)
	tasksPerNode := max(s.tasksPerNode, 1)
	if s.ntasks > 0 {
		tasksPerNode = (s.ntasks + nodes - 1) / nodes
	}
	cpus := tasksPerNode * max(s.cpt, 1)
	gpus := s.gpusPerNode
	switch {
	case gpus == 0 && s.gpusPerTask > 0:
		gpus = s.gpusPerTask * tasksPerNode
	case gpus == 0 && s.gpusTotal > 0:
		gpus = (s.gpusTotal + nodes - 1) / nodes
	}
	if s.cpusPerGPU > 0 && gpus > 0 {
		cpus = max(cpus, s.cpusPerGPU*gpus)
	}
	cpus = max(cpus, s.minCPUs)
	s.im.set("resources.cpus", cpus)
	mem := s.memPerNode
	switch {
	case !s.memSet && s.memPerCPU > 0:
		mem = s.memPerCPU * int64(cpus)
	case !s.memSet && s.memPerGPU > 0 && gpus > 0:
		mem = s.memPerGPU * int64(gpus)
	}
	if mem > 0 {
		s.im.set("resources.memory", Quantity(mem).String())
	}
	if gpus > 0 {
		req := map[string]any{"count": gpus}
		if s.gpu.model != "" {
			req["model"] = s.gpu.model
		} else {
			req["kind"] = "gpu"
		}
		if s.gpu.memory > 0 {
			req["memory"] = s.gpu.memory.String()
		}
		s.im.set("resources.accelerators", []any{req})
	}
}
