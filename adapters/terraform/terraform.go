//go:build unix

// Package terraform is the adapter that turns placements into
// infrastructure through OpenTofu or Terraform (spec/adapters.md §3): a
// provider supplies a module; each placement gets a working directory
// whose configuration calls the module with the placement as its
// variables; the executor runs init, plan (kept with the placement),
// apply and, when the placement ends or is released, destroy. The
// infrastructure the module creates starts the node agent (Agent) on each
// node; the agents run the tasks and report into the placement's
// directory, from which Status, Logs and Usage are read.
package terraform

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-version"

	"github.com/cinet/cinet/adapters"
	"github.com/cinet/cinet/descriptor"
)

func init() {
	adapters.Register("terraform", func(raw json.RawMessage, _ adapters.Host) (adapters.Adapter, error) {
		var c Config
		if err := adapters.DecodeConfig(raw, &c); err != nil {
			return nil, err
		}
		return New(c)
	})
}

// Config configures the adapter.
type Config struct {
	// Binary is the OpenTofu or Terraform executable: a path, or a name
	// looked up in PATH (default "tofu", else "terraform").
	Binary string `json:"binary,omitempty"`
	// Module is the directory of the provider's module (spec/adapters.md
	// §3.2). Default: the built-in module "local", whose nodes are
	// processes on this machine started by local-exec.
	Module string `json:"module,omitempty"`
	// Variables are further inputs of the module, passed as they are.
	Variables map[string]json.RawMessage `json:"variables,omitempty"`
	// DataDir holds a directory per placement, with its state. Required.
	DataDir string `json:"dataDir"`
	// CPUs and Memory are what the provider's infrastructure runs at
	// once ("64Gi"). Required.
	CPUs   int                 `json:"cpus"`
	Memory descriptor.Quantity `json:"memory"`
	// Agent is the command that runs the node agent (its arguments
	// follow). Default: this program with the argument "terraform-agent".
	Agent []string `json:"agent,omitempty"`
	// PluginDir, when set, is where init finds providers, instead of a
	// registry.
	PluginDir string `json:"pluginDir,omitempty"`
	// Parallel bounds the tool's runs at once (default 4).
	Parallel int `json:"parallel,omitempty"`
	// AgentStart is how long a node's agent may take to report after
	// apply has finished (default 10m: a cloud instance boots first).
	AgentStart descriptor.Duration `json:"agentStart,omitempty"`
	// ReportListen, when set, is the address the agent server listens
	// on: nodes report to it over HTTP (spec/adapters.md §3.4) instead
	// of writing the placement's directory, as nodes off the broker's
	// machine must. ReportURL is how the nodes reach it (default
	// http://LISTENADDRESS).
	ReportListen string `json:"reportListen,omitempty"`
	ReportURL    string `json:"reportURL,omitempty"`
	// AgentSilence is how long an agent reporting over HTTP may make no
	// request before its node is lost (default 1m).
	AgentSilence descriptor.Duration `json:"agentSilence,omitempty"`
}

// reserved are the module's inputs the executor sets.
var reserved = map[string]bool{"source": true, "placement": true, "tasks": true, "tags": true, "agent": true}

// maxNodes bounds a placement's nodes.
const maxNodes = 64

// minVersions are the oldest releases with terraform_data and the
// configuration language the executor writes.
var minVersions = map[string]*version.Version{
	"OpenTofu":  version.Must(version.NewVersion("1.6.0")),
	"Terraform": version.Must(version.NewVersion("1.4.0")),
}

//go:embed module/local
var builtin embed.FS

// Terraform is the adapter.
type Terraform struct {
	cfg       Config
	bin       string
	report    string // the agent server's URL, when nodes report over HTTP
	gen       ModuleFunc
	server    *http.Server
	silence   time.Duration
	tool      string // "OpenTofu" or "Terraform", and its version
	module    string // absolute
	agent     string // the agent command, quoted for a shell
	cliConfig string
	sem       chan struct{}
	start     time.Duration

	// nodeWatch asks the infrastructure whether the nodes are still
	// there, every watchEvery (WatchNodes).
	nodeWatch  NodeWatch
	watchEvery time.Duration

	mu   sync.Mutex
	runs map[string]*run // placements whose executor runs in this process
}

// A NodeWatch asks the infrastructure whether a placement's nodes are
// still there, and returns, for each node that is gone, why ("instance
// i-0abc is terminated: Spot interruption"). A node gone before it has
// finished makes the placement lost at once, without waiting for its
// agent to fall silent.
type NodeWatch func(ctx context.Context, p adapters.Placement) (map[int]string, error)

// WatchNodes has the executor ask w, every so often, while the nodes run.
// Call it before provisioning.
func (t *Terraform) WatchNodes(w NodeWatch, every time.Duration) {
	t.nodeWatch, t.watchEvery = w, every
}

// run is one placement's executor in this process.
type run struct {
	stop     chan struct{} // closed by Release: an apply under way is interrupted
	stopOnce sync.Once
	done     chan struct{}
}

func (r *run) release() { r.stopOnce.Do(func() { close(r.stop) }) }

// New checks the configuration and the tool, and returns the adapter.
func New(c Config) (*Terraform, error) { return NewWithModule(c, nil) }

// A ModuleFunc writes a placement's own module: its files by name
// ("main.tf.json"), each following the module contract (spec/adapters.md
// §3.2). Cloud adapters make theirs from the placement's offer.
type ModuleFunc func(adapters.Placement) (map[string][]byte, error)

// NewWithModule returns an executor whose placements each get the module
// gen writes for them, instead of one module for all; Config.Module is
// then not used.
func NewWithModule(c Config, gen ModuleFunc) (*Terraform, error) {
	if c.DataDir == "" {
		return nil, errors.New("terraform: a dataDir is required")
	}
	if c.CPUs <= 0 || c.Memory <= 0 {
		return nil, errors.New("terraform: cpus and memory are required: what the provider's infrastructure runs at once")
	}
	if c.Parallel <= 0 {
		c.Parallel = 4
	}
	for k := range c.Variables {
		if reserved[k] {
			return nil, fmt.Errorf("terraform: variable %q is the executor's own: it passes the placement in placement, tasks, tags and agent", k)
		}
	}
	dataDir, err := filepath.Abs(c.DataDir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("terraform: %w", err)
	}
	c.DataDir = dataDir
	t := &Terraform{cfg: c, gen: gen, sem: make(chan struct{}, c.Parallel), runs: map[string]*run{}, start: c.AgentStart.Std()}
	if t.start <= 0 {
		t.start = 10 * time.Minute
	}
	if t.bin, t.tool, err = findTool(c.Binary, dataDir); err != nil {
		return nil, err
	}
	if gen == nil {
		if t.module, err = t.installModule(); err != nil {
			return nil, err
		}
	}
	agent := c.Agent
	if len(agent) == 0 {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("terraform: finding this program for the node agent: %w", err)
		}
		agent = []string{exe, "terraform-agent"}
	}
	var q []string
	for _, a := range agent {
		q = append(q, shellQuote(a))
	}
	t.agent = strings.Join(q, " ")
	// The tool reads its CLI configuration from here, not from the
	// broker's user's: providers from PluginDir when it is set.
	t.cliConfig = filepath.Join(dataDir, "tofurc")
	rc := ""
	if c.PluginDir != "" {
		rc = fmt.Sprintf("provider_installation {\n  filesystem_mirror {\n    path = %q\n  }\n}\n", c.PluginDir)
	}
	if err := adapters.WriteFileAtomic(t.cliConfig, []byte(rc)); err != nil {
		return nil, fmt.Errorf("terraform: %w", err)
	}
	if t.silence = c.AgentSilence.Std(); t.silence <= 0 {
		t.silence = time.Minute
	}
	if c.ReportListen != "" {
		l, err := net.Listen("tcp", c.ReportListen)
		if err != nil {
			return nil, fmt.Errorf("terraform: the agent server: %w", err)
		}
		t.report = strings.TrimSuffix(c.ReportURL, "/")
		if t.report == "" {
			t.report = "http://" + l.Addr().String()
		}
		t.server = &http.Server{Handler: &agentServer{t: t}, ReadHeaderTimeout: 10 * time.Second}
		go t.server.Serve(l)
	}
	return t, nil
}

// Close stops the agent server, if there is one; placements go on, and
// their nodes retry until a broker serves them again.
func (t *Terraform) Close() error {
	if t.server == nil {
		return nil
	}
	return t.server.Close()
}

// ReportURL is where nodes report over HTTP, or "" when they write the
// placement's directory.
func (t *Terraform) ReportURL() string { return t.report }

// findTool finds the binary and checks it is a release recent enough.
func findTool(bin, dir string) (path, tool string, err error) {
	names := []string{bin}
	if bin == "" {
		names = []string{"tofu", "terraform"}
	}
	for _, n := range names {
		if path, err = exec.LookPath(n); err == nil {
			break
		}
	}
	if err != nil {
		return "", "", fmt.Errorf("terraform: no OpenTofu or Terraform binary: %v; install one (.ci/build-tofu builds OpenTofu) and name it in the adapter's \"binary\"", err)
	}
	out, err := exec.Command(path, "version").Output()
	if err != nil {
		return "", "", fmt.Errorf("terraform: %s version: %v", path, err)
	}
	first, _, _ := strings.Cut(string(out), "\n")
	f := strings.Fields(first) // "OpenTofu v1.10.6", "Terraform v1.9.0"
	if len(f) != 2 || minVersions[f[0]] == nil {
		return "", "", fmt.Errorf("terraform: %s says %q: not OpenTofu or Terraform", path, first)
	}
	v, err := version.NewVersion(f[1])
	if err != nil || v.LessThan(minVersions[f[0]]) {
		return "", "", fmt.Errorf("terraform: %s is %s; the adapter needs %s %s or later", path, first, f[0], minVersions[f[0]])
	}
	return path, first, nil
}

// installModule returns the module's directory: the configured one, or
// the built-in one written under the data directory.
func (t *Terraform) installModule() (string, error) {
	if t.cfg.Module != "" {
		m, err := filepath.Abs(t.cfg.Module)
		if err != nil {
			return "", err
		}
		if _, err := os.Stat(m); err != nil {
			return "", fmt.Errorf("terraform: module: %w", err)
		}
		return m, nil
	}
	dst := filepath.Join(t.cfg.DataDir, "modules", "local")
	if err := os.MkdirAll(dst, 0o700); err != nil {
		return "", err
	}
	sub, _ := fs.Sub(builtin, "module/local")
	err := fs.WalkDir(sub, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(sub, path)
		if err != nil {
			return err
		}
		return adapters.WriteFileAtomic(filepath.Join(dst, path), data)
	})
	return dst, err
}

// Tool is the binary's name and version ("OpenTofu v1.10.6").
func (t *Terraform) Tool() string { return t.tool }

// PlacementDir is where a placement's configuration, state, plan and
// records are.
func (t *Terraform) PlacementDir(id string) string {
	return filepath.Join(t.cfg.DataDir, "placements", id)
}

func (t *Terraform) dir(id string) (string, error) {
	if !adapters.ValidID(id) {
		return "", fmt.Errorf("terraform: %q is not a placement ID", id)
	}
	return t.PlacementDir(id), nil
}

// Capacity implements adapters.Adapter.
func (t *Terraform) Capacity(context.Context) (adapters.Capacity, error) {
	return adapters.Capacity{CPUs: t.cfg.CPUs, Memory: int64(t.cfg.Memory)}, nil
}

// Provision implements adapters.Adapter: it writes the placement's
// directory and starts its executor, which applies the configuration in
// the background. A placement already provisioned has its executor
// started again if it is not running (after a restart).
func (t *Terraform) Provision(ctx context.Context, p adapters.Placement) error {
	dir, err := t.dir(p.ID)
	if err != nil {
		return err
	}
	if len(p.Tasks) == 0 {
		return errors.New("terraform: a placement has at least one task")
	}
	if p.Service != nil {
		return errors.New("terraform: the terraform adapter does not run services yet; place the job on another provider")
	}
	if n := p.Instances(); n > maxNodes {
		return fmt.Errorf("terraform: the job asks for %d nodes; the adapter creates at most %d", n, maxNodes)
	}
	for _, task := range p.Tasks {
		if !adapters.ValidID(task.Name) || len(task.Command) == 0 {
			return fmt.Errorf("terraform: task %q: a task has a plain name and a command", task.Name)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, placementFile)); err == nil {
		t.ensure(p.ID, dir)
		return nil
	}
	if err := os.MkdirAll(filepath.Join(dir, controlDir), 0o700); err != nil {
		return fmt.Errorf("terraform: %w", err)
	}
	data, err := json.Marshal(p)
	if err == nil {
		err = t.writeConfig(dir, p)
	}
	if err == nil {
		// Last: a directory with the placement's record is provisioned.
		err = adapters.WriteFileAtomic(filepath.Join(dir, placementFile), data)
	}
	if err != nil {
		os.RemoveAll(dir)
		return fmt.Errorf("terraform: provisioning %s: %w", p.ID, err)
	}
	t.ensure(p.ID, dir)
	return nil
}

// writeConfig writes the root configuration: the module, called with the
// placement as its variables (spec/adapters.md §3.2), and its outputs.
func (t *Terraform) writeConfig(dir string, p adapters.Placement) error {
	// Nodes report into dir, or to the agent server with the placement's
	// token.
	where := dir
	if t.report != "" {
		token, err := newToken()
		if err != nil {
			return err
		}
		if err := adapters.WriteFileAtomic(filepath.Join(dir, tokenFile), []byte(token)); err != nil {
			return err
		}
		where = t.report + "/placements/" + p.ID + "/" + token
	}
	module := t.module
	if t.gen != nil {
		files, err := t.gen(p)
		if err != nil {
			return err
		}
		module = filepath.Join(dir, "module")
		if err := os.MkdirAll(module, 0o700); err != nil {
			return err
		}
		for name, data := range files {
			if name != filepath.Base(name) || strings.HasPrefix(name, ".") {
				return fmt.Errorf("the module's file %q is not a plain name", name)
			}
			if err := adapters.WriteFileAtomic(filepath.Join(module, name), data); err != nil {
				return err
			}
		}
	}
	source, err := filepath.Rel(dir, module)
	if err != nil {
		return err
	}
	if !strings.HasPrefix(source, ".") {
		source = "./" + source
	}
	type task struct {
		Name    string            `json:"name"`
		Command []string          `json:"command"`
		Env     map[string]string `json:"env"`
	}
	var tasks []task
	for _, tk := range p.Tasks {
		env := tk.Env
		if env == nil {
			env = map[string]string{}
		}
		tasks = append(tasks, task{tk.Name, append(append([]string{}, tk.Command...), tk.Args...), env})
	}
	class, region, zone := "", "", ""
	if p.Offer != nil {
		class, region, zone = p.Offer.ComputeID.String(), p.Offer.Region, p.Offer.Zone
	}
	mod := map[string]any{
		"source": source,
		"placement": map[string]any{
			"id": p.ID, "job": p.Job, "nodes": p.Instances(), "class": class, "region": region, "zone": zone,
			"cpus": p.Limits.CPUs, "memory": p.Limits.Memory, "accelerators": p.Limits.Accelerators,
			"timeout": int64(p.Timeout / time.Second),
		},
		"tasks": tasks,
		"tags":  map[string]string{"cinet-job": p.Job, "cinet-placement": p.ID, "cinet-class": class},
		"agent": map[string]string{
			"run":    t.agent + " run " + shellQuote(where),
			"stop":   t.agent + " stop " + shellQuote(dir),
			"report": dir,
		},
	}
	// Terraform JSON reads every string as a template: what the broker
	// passes is escaped, so that a task's "${file(…)}" reaches the module
	// as it was written, never evaluated.
	for k, v := range mod {
		if k != "source" {
			mod[k] = literal(v)
		}
	}
	for k, v := range t.cfg.Variables {
		mod[k] = v
	}
	root := map[string]any{
		"module": map[string]any{"placement": mod},
		"output": map[string]any{
			"addresses":       map[string]any{"value": "${module.placement.addresses}"},
			"rendezvous_port": map[string]any{"value": "${module.placement.rendezvous_port}"},
		},
	}
	data, err := json.MarshalIndent(root, "", "  ")
	if err != nil {
		return err
	}
	return adapters.WriteFileAtomic(filepath.Join(dir, configFile), data)
}

// ensure starts the placement's executor unless it runs already or has
// finished.
func (t *Terraform) ensure(id, dir string) *run {
	t.mu.Lock()
	defer t.mu.Unlock()
	if r := t.runs[id]; r != nil {
		return r
	}
	var lc lifecycle
	if err := readJSON(filepath.Join(dir, lifecycleFile), &lc); err == nil && lc.Phase == phaseDestroyed {
		return nil
	}
	r := &run{stop: make(chan struct{}), done: make(chan struct{})}
	t.runs[id] = r
	go func() {
		defer close(r.done)
		t.execute(r, id, dir)
		t.mu.Lock()
		delete(t.runs, id)
		t.mu.Unlock()
	}()
	return r
}

func (t *Terraform) load(id string) (string, *lifecycle, error) {
	dir, err := t.dir(id)
	if err != nil {
		return "", nil, err
	}
	if _, err := os.Stat(filepath.Join(dir, placementFile)); errors.Is(err, os.ErrNotExist) {
		return "", nil, fmt.Errorf("%w: %s", adapters.ErrNotFound, id)
	}
	var lc lifecycle
	if err := readJSON(filepath.Join(dir, lifecycleFile), &lc); err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", nil, err
	}
	return dir, &lc, nil
}

func (t *Terraform) placement(dir string) (*adapters.Placement, error) {
	var p adapters.Placement
	if err := readJSON(filepath.Join(dir, placementFile), &p); err != nil {
		return nil, err
	}
	return &p, nil
}

func (t *Terraform) nodes(dir string, p *adapters.Placement) ([]nodeRecord, error) {
	recs := make([]nodeRecord, p.Instances())
	for k := range recs {
		var err error
		if recs[k], err = readNode(dir, k, len(p.Tasks)); err != nil {
			return nil, err
		}
	}
	return recs, nil
}

// Status implements adapters.Adapter.
func (t *Terraform) Status(ctx context.Context, id string) (adapters.Status, error) {
	dir, lc, err := t.load(id)
	if err != nil {
		return adapters.Status{}, err
	}
	if lc.Result == "" {
		t.ensure(id, dir) // a broker restarted asks again
	}
	p, err := t.placement(dir)
	if err != nil {
		return adapters.Status{}, err
	}
	recs, err := t.nodes(dir, p)
	if err != nil {
		return adapters.Status{}, err
	}
	st := adapters.Status{State: adapters.Running, Detail: lc.Detail, Tasks: statusOf(taskNames(p), recs, lc.Result != "")}
	if lc.Result != "" {
		st.State = lc.Result
	}
	return st, nil
}

func taskNames(p *adapters.Placement) []string {
	var names []string
	for _, t := range p.Tasks {
		names = append(names, t.Name)
	}
	return names
}

// Logs implements adapters.Adapter.
func (t *Terraform) Logs(ctx context.Context, id, task string, node int, stream string) (io.ReadCloser, error) {
	dir, _, err := t.load(id)
	if err != nil {
		return nil, err
	}
	if stream != "stdout" && stream != "stderr" {
		return nil, fmt.Errorf("terraform: stream %q: want stdout or stderr", stream)
	}
	p, err := t.placement(dir)
	if err != nil {
		return nil, err
	}
	known := false
	for _, tk := range p.Tasks {
		known = known || tk.Name == task
	}
	if !known {
		return nil, fmt.Errorf("terraform: placement %s has no task %q", id, task)
	}
	if n := p.Instances(); node < 0 || node >= n {
		return nil, fmt.Errorf("terraform: placement %s has no node %d: its nodes are 0 to %d", id, node, n-1)
	}
	f, err := os.Open(logPath(dir, node, task, stream))
	if errors.Is(err, os.ErrNotExist) {
		return io.NopCloser(strings.NewReader("")), nil // not started yet
	}
	return f, err
}

// Usage implements adapters.Adapter: what the agents measured. A task
// still running on a node counts its wall time up to now; its CPU time
// and memory count once it has ended there.
func (t *Terraform) Usage(ctx context.Context, id string) (adapters.Usage, error) {
	dir, lc, err := t.load(id)
	if err != nil {
		return adapters.Usage{}, err
	}
	p, err := t.placement(dir)
	if err != nil {
		return adapters.Usage{}, err
	}
	recs, err := t.nodes(dir, p)
	if err != nil {
		return adapters.Usage{}, err
	}
	var u adapters.Usage
	now := time.Now().UTC()
	for i, ts := range statusOf(taskNames(p), recs, lc.Result != "") {
		end := ts.End
		if end.IsZero() {
			end = now
			for k := range recs {
				// A node that stopped reporting counts to its last word.
				if i < len(recs[k].tasks) && recs[k].tasks[i].done() && recs[k].tasks[i].ended.After(end) {
					end = recs[k].tasks[i].ended
				}
			}
		}
		tu := adapters.TaskUsage{Name: ts.Name, Wall: end.Sub(ts.Started)}
		for k := range recs {
			if i < len(recs[k].tasks) {
				tu.CPU += recs[k].tasks[i].cpu
				tu.PeakMemory += recs[k].tasks[i].peakMemory
			}
		}
		if u.Start.IsZero() {
			u.Start = ts.Started
		}
		u.End = end
		u.CPU += tu.CPU
		u.PeakMemory = max(u.PeakMemory, tu.PeakMemory)
		u.Tasks = append(u.Tasks, tu)
	}
	return u, nil
}

// Release implements adapters.Adapter: it stops the nodes, stops the
// tool if it is applying, and waits until the configuration is
// destroyed.
func (t *Terraform) Release(ctx context.Context, id string) error {
	dir, lc, err := t.load(id)
	if err != nil {
		return err
	}
	if lc.Phase == phaseDestroyed {
		return nil
	}
	if err := writeStop(dir, stopCancel); err != nil {
		return fmt.Errorf("terraform: stopping %s: %w", id, err)
	}
	r := t.ensure(id, dir)
	if r == nil {
		return nil
	}
	r.release() // an apply under way stops cleanly (SIGINT), and what it made is destroyed
	select {
	case <-r.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	if _, lc, err = t.load(id); err != nil {
		return err
	}
	if lc.Phase != phaseDestroyed {
		return fmt.Errorf("terraform: placement %s is not destroyed: %s; its state is in %s, and releasing it again retries", id, lc.DestroyError, dir)
	}
	return nil
}

// literal returns v, which marshals to JSON, with the template sequences
// of every string in it escaped.
func literal(v any) any {
	data, err := json.Marshal(v)
	if err != nil {
		panic(err) // the configuration's values are plain data
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var x any
	if err := dec.Decode(&x); err != nil {
		panic(err)
	}
	return escapeTemplates(x)
}

// escape escapes a string's template sequences ("${", "%{"), so that
// Terraform JSON, which reads every string as a template, reads it as
// the string it is.
func escape(s string) string {
	return strings.NewReplacer("${", "$${", "%{", "%%{").Replace(s)
}

// encodeJSON writes a configuration as indented Terraform JSON, its
// strings as they are (no HTML escapes).
func encodeJSON(v any) ([]byte, error) {
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

func escapeTemplates(v any) any {
	switch v := v.(type) {
	case string:
		return escape(v)
	case []any:
		for i := range v {
			v[i] = escapeTemplates(v[i])
		}
		return v
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, x := range v {
			out[escapeTemplates(k).(string)] = escapeTemplates(x)
		}
		return out
	default:
		return v
	}
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// NewCloud returns the executor of a cloud adapter (name): each
// placement's module written by gen, its instances reporting to the agent
// server over the network, which c must therefore have listen.
func NewCloud(name string, c Config, gen ModuleFunc) (*Terraform, error) {
	if c.ReportListen == "" {
		return nil, fmt.Errorf("%s: terraform.reportListen is required: the instances report to the broker's agent server over the network (and terraform.reportURL is how they reach it)", name)
	}
	return NewWithModule(c, gen)
}

// RegisterCloud registers a cloud adapter: its configuration is
// {terraform: Config, module: M}, module writes each placement's
// main.tf.json from its offer (spec/adapters.md §4.4), and watch, if not
// nil, makes the NodeWatch that asks the cloud whether the instances are
// still there, every 15 seconds.
func RegisterCloud[M interface{ Validate() error }](name string, module func(adapters.Placement, M) ([]byte, error), watch func(M) NodeWatch) {
	adapters.Register(name, func(raw json.RawMessage, _ adapters.Host) (adapters.Adapter, error) {
		var c struct {
			Terraform Config `json:"terraform"`
			Module    M      `json:"module"`
		}
		if err := adapters.DecodeConfig(raw, &c); err != nil {
			return nil, err
		}
		if err := c.Module.Validate(); err != nil {
			return nil, err
		}
		t, err := NewCloud(name, c.Terraform, func(p adapters.Placement) (map[string][]byte, error) {
			data, err := module(p, c.Module)
			return map[string][]byte{"main.tf.json": data}, err
		})
		if err == nil && watch != nil {
			t.WatchNodes(watch(c.Module), 15*time.Second)
		}
		return t, err
	})
}
