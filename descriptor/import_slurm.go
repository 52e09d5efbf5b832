package descriptor

import (
	"bufio"
	"bytes"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"unicode/utf8"
)

// ImportSlurm converts a Slurm batch script into a v1 Job: the #SBATCH
// directives (up to the first command, as sbatch reads them) become
// resources, placement and limits; the script itself becomes the task.
// Every directive without a v1 meaning is dropped with a warning naming it.
func ImportSlurm(file string, data []byte) (*Import, error) {
	if len(data) > MaxDocumentSize {
		return nil, ErrorList{{File: file, Line: 1, Col: 1, Msg: fmt.Sprintf("script is %d bytes, larger than the %d allowed", len(data), MaxDocumentSize)}}
	}
	if !utf8.Valid(data) {
		return nil, ErrorList{{File: file, Line: 1, Col: 1, Msg: "script is not valid UTF-8"}}
	}
	im := newImporter(file)
	s := &slurm{im: im, env: map[string]any{}}
	interpreter := "/bin/sh"
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), MaxDocumentSize)
	var body []string
	line := 0
	inDirectives := true
	for sc.Scan() {
		line++
		text := sc.Text()
		trimmed := strings.TrimSpace(text)
		if line == 1 && strings.HasPrefix(trimmed, "#!") {
			interpreter = strings.TrimSpace(trimmed[2:])
			continue
		}
		body = append(body, text)
		if !inDirectives {
			continue
		}
		switch {
		case strings.HasPrefix(trimmed, "#SBATCH"):
			s.directive(line, strings.TrimSpace(strings.TrimPrefix(trimmed, "#SBATCH")))
		case trimmed == "" || strings.HasPrefix(trimmed, "#"):
		default:
			inDirectives = false // sbatch stops reading directives here
		}
	}
	if err := sc.Err(); err != nil {
		return nil, ErrorList{{File: file, Line: line + 1, Col: 1, Msg: fmt.Sprintf("reading script: %v", err)}}
	}
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

func toAnySlice(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

type slurm struct {
	im *importer

	name, workdir                    string
	nameLine                         int
	nodes, ntasks, tasksPerNode, cpt int
	memPerNode, memPerCPU, memPerGPU int64
	gpuModel                         string
	gpusPerNode, gpusTotal           int
	gpuLine                          int
	env                              map[string]any
}

// slurmShort maps single-letter options to their long names.
var slurmShort = map[string]string{
	"J": "job-name", "N": "nodes", "n": "ntasks", "c": "cpus-per-task", "t": "time", "D": "chdir",
	"G": "gpus", "o": "output", "e": "error", "p": "partition", "A": "account", "q": "qos",
	"a": "array", "C": "constraint", "d": "dependency", "w": "nodelist", "x": "exclude",
	"L": "licenses", "b": "begin", "i": "input", "k": "no-kill", "s": "oversubscribe",
}

// slurmIgnored are options with no v1 meaning, and why.
var slurmIgnored = map[string]string{
	"partition": "cinet routes to offers, not partitions", "account": "cinet bills the submitting tenant",
	"qos": "no v1 counterpart", "output": "cinet captures standard output as the job's logs",
	"error": "cinet captures standard error as the job's logs", "mail-type": "no v1 counterpart",
	"mail-user": "no v1 counterpart", "array": "job arrays have no v1 counterpart; submit one job each",
	"exclusive": "a v1 node always takes a whole instance", "constraint": "use requirements (CEL) instead",
	"dependency": "no v1 counterpart", "begin": "no v1 counterpart", "nodelist": "no v1 counterpart",
	"exclude": "no v1 counterpart", "reservation": "no v1 counterpart", "requeue": "use recovery.maxRestarts instead",
	"no-requeue": "no v1 counterpart", "signal": "no v1 counterpart", "licenses": "no v1 counterpart",
	"open-mode": "no v1 counterpart", "hint": "no v1 counterpart", "threads-per-core": "no v1 counterpart",
	"nice": "no v1 counterpart", "wckey": "no v1 counterpart", "comment": "no v1 counterpart",
	"input": "no v1 counterpart", "no-kill": "no v1 counterpart", "oversubscribe": "no v1 counterpart",
	"parsable": "no v1 counterpart", "priority": "no v1 counterpart", "distribution": "no v1 counterpart",
}

func (s *slurm) directive(line int, args string) {
	fields := strings.Fields(args)
	for i := 0; i < len(fields); i++ {
		f := fields[i]
		var name, value string
		hasValue := false
		switch {
		case strings.HasPrefix(f, "--"):
			name, value, hasValue = strings.Cut(f[2:], "=")
		case strings.HasPrefix(f, "-") && len(f) >= 2:
			long, ok := slurmShort[f[1:2]]
			if !ok {
				s.im.warn(line, f, "dropped: unknown #SBATCH option")
				continue
			}
			name, value, hasValue = long, f[2:], len(f) > 2
		default:
			s.im.warn(line, f, "dropped: not an option")
			continue
		}
		if !hasValue && slurmTakesValue(name) && i+1 < len(fields) {
			i++
			value = fields[i]
		}
		s.option(line, name, value)
	}
}

func slurmTakesValue(name string) bool {
	switch name {
	case "exclusive", "requeue", "no-requeue", "parsable", "no-kill", "oversubscribe":
		return false
	}
	return true
}

func (s *slurm) option(line int, name, value string) {
	field := "--" + name
	bad := func(want string) { s.im.fail(line, 1, field, "want %s, got %q", want, value) }
	atoi := func() (int, bool) {
		n, err := strconv.Atoi(value)
		if err != nil || n < 1 {
			bad("a whole number ≥ 1")
			return 0, false
		}
		return n, true
	}
	switch name {
	case "job-name":
		s.name, s.nameLine = value, line
	case "nodes":
		lo, _, isRange := strings.Cut(value, "-")
		n, err := strconv.Atoi(lo)
		if err != nil || n < 1 {
			bad("a node count such as 2 or 2-4")
			return
		}
		s.nodes = n
		if isRange {
			s.im.warn(line, field, "the range %s became its minimum, %d nodes", value, n)
		}
	case "ntasks":
		s.ntasks, _ = atoi()
	case "ntasks-per-node":
		s.tasksPerNode, _ = atoi()
	case "cpus-per-task":
		s.cpt, _ = atoi()
	case "mem":
		s.memPerNode = s.memory(line, field, value)
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
		for _, g := range strings.Split(value, ",") {
			parts := strings.Split(g, ":")
			if parts[0] != "gpu" {
				s.im.warn(line, field, "generic resource %q dropped: only gpu has a v1 counterpart", g)
				continue
			}
			model, count := s.gpuSpec(line, field, strings.Join(parts[1:], ":"))
			s.gpuModel, s.gpusPerNode, s.gpuLine = model, count, line
		}
	case "gpus", "gpus-per-node":
		model, count := s.gpuSpec(line, field, value)
		s.gpuModel, s.gpuLine = model, line
		if name == "gpus" {
			s.gpusTotal = count
		} else {
			s.gpusPerNode = count
		}
	case "export":
		for _, kv := range strings.Split(value, ",") {
			k, v, ok := strings.Cut(kv, "=")
			if ok {
				s.env[k] = v
			} else if kv != "ALL" && kv != "NONE" {
				s.im.warn(line, field, "%s dropped: v1 tasks carry explicit values only", kv)
			}
		}
	default:
		if why, ok := slurmIgnored[name]; ok {
			s.im.warn(line, field, "dropped: %s", why)
		} else {
			s.im.warn(line, field, "dropped: unknown #SBATCH option")
		}
	}
}

// gpuSpec reads "[type:]count" from --gres gpu:..., --gpus or --gpus-per-node.
func (s *slurm) gpuSpec(line int, field, spec string) (string, int) {
	parts := strings.Split(spec, ":")
	count := 1
	if last := parts[len(parts)-1]; last != "" {
		if n, err := strconv.Atoi(last); err == nil {
			count = n
			parts = parts[:len(parts)-1]
		}
	}
	model := ""
	if len(parts) > 0 && parts[0] != "" {
		m, ok := FindAccelerator(parts[0])
		if !ok {
			s.im.fail(line, 1, field, "%s", unknownModelError(parts[0]))
			return "", 0
		}
		model = m.Name
	}
	if count < 1 {
		s.im.fail(line, 1, field, "GPU count must be ≥ 1")
	}
	return model, count
}

// memory reads Slurm sizes: a number with an optional K, M, G or T suffix
// (powers of 1024), megabytes when bare.
func (s *slurm) memory(line int, field, value string) int64 {
	num, unit := value, "M"
	if n := len(value); n > 0 && strings.ContainsRune("KMGTkmgt", rune(value[n-1])) {
		num, unit = value[:n-1], strings.ToUpper(value[n-1:])
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 {
		s.im.fail(line, 1, field, "want a size such as 4G or 4096 (megabytes), got %q", value)
		return 0
	}
	shift := map[string]uint{"K": 10, "M": 20, "G": 30, "T": 40}[unit]
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
		if err != nil || n < 0 || len(parts) > 3 {
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
	if total <= 0 {
		return "", fmt.Errorf("%q is not a positive time", v)
	}
	return Duration(int64(total) * 1e9).String(), nil
}

// finish works out per-node amounts from the directives.
func (s *slurm) finish() {
	s.im.setName(s.nameLine, "--job-name", s.name, "slurm-job")
	nodes := max(s.nodes, 1)
	if s.nodes > 0 {
		s.im.set("nodes", s.nodes)
	}
	tasksPerNode := s.tasksPerNode
	if tasksPerNode == 0 {
		tasksPerNode = max(1, (s.ntasks+nodes-1)/nodes)
	}
	cpus := tasksPerNode * max(s.cpt, 1)
	s.im.set("resources.cpus", cpus)
	gpus := s.gpusPerNode
	if gpus == 0 && s.gpusTotal > 0 {
		gpus = (s.gpusTotal + nodes - 1) / nodes
	}
	mem := s.memPerNode
	switch {
	case mem == 0 && s.memPerCPU > 0:
		mem = s.memPerCPU * int64(cpus)
	case mem == 0 && s.memPerGPU > 0 && gpus > 0:
		mem = s.memPerGPU * int64(gpus)
	}
	if mem > 0 {
		s.im.set("resources.memory", Quantity(mem).String())
	}
	if gpus > 0 {
		req := map[string]any{"count": gpus}
		if s.gpuModel != "" {
			req["model"] = s.gpuModel
		} else {
			req["kind"] = "gpu"
		}
		s.im.set("resources.accelerators", []any{req})
	}
}
