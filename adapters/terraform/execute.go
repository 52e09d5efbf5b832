//go:build unix

package terraform

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/terraform-exec/tfexec"

	"github.com/cinet/cinet/adapters"
	"github.com/cinet/cinet/adapters/nodeagent"
)

// Phases of a placement's executor, as lifecycle.json records them.
const (
	phaseApplying   = "applying"   // init, plan and apply; on to running, or to destroying if they fail
	phaseRunning    = "running"    // the nodes run the tasks
	phaseDestroying = "destroying" // the placement has ended; its infrastructure goes
	phaseDestroyed  = "destroyed"
)

// lifecycle is how far a placement's executor got.
type lifecycle struct {
	Phase string `json:"phase"`
	// Result is the placement's end, once it is known; Detail says why it
	// failed.
	Result  adapters.State `json:"result,omitempty"`
	Detail  string         `json:"detail,omitempty"`
	Applied time.Time      `json:"applied,omitzero"` // when the nodes were told to start
	// Applying: apply was started, so the state may hold resources. Init
	// and plan create nothing: a placement that failed before apply has
	// nothing to destroy.
	Applying bool `json:"applying,omitempty"`
	// DestroyError is why the last destroy failed; the state still holds
	// what it names.
	DestroyError string `json:"destroyError,omitempty"`
}

// watchPoll is how often the executor reads the nodes' records.
const watchPoll = 20 * time.Millisecond

// execute takes the placement from wherever its lifecycle stands to
// destroyed, recording each phase before it acts, so that an executor
// started again (after a restart) goes on from there.
func (t *Terraform) execute(r *run, id, dir string) {
	save := func(lc *lifecycle) bool {
		data, _ := json.Marshal(lc)
		return adapters.WriteFileAtomic(filepath.Join(dir, lifecycleFile), data) == nil
	}
	for {
		var lc lifecycle
		if err := readJSON(filepath.Join(dir, lifecycleFile), &lc); err != nil && !errors.Is(err, os.ErrNotExist) {
			return
		}
		p, err := t.placement(dir)
		if err != nil {
			return
		}
		switch lc.Phase {
		case "", phaseApplying:
			lc.Phase = phaseApplying
			if !save(&lc) {
				return
			}
			if readStop(dir) != "" {
				lc.Phase, lc.Result, lc.Detail = phaseDestroying, adapters.Cancelled, "released before its infrastructure was created"
				save(&lc)
				continue
			}
			st, err := t.apply(r, dir, p, func() bool {
				lc.Applying = true
				return save(&lc)
			})
			switch {
			case err != nil && readStop(dir) != "":
				lc.Result, lc.Detail = adapters.Cancelled, "released while its infrastructure was being created"
			case err != nil:
				lc.Result, lc.Detail = adapters.Failed, err.Error()
			default:
				if err = adapters.WriteFileAtomic(filepath.Join(dir, controlDir, startFile), mustJSON(st)); err != nil {
					lc.Result, lc.Detail = adapters.Failed, err.Error()
				}
			}
			if lc.Result != "" {
				lc.Phase = phaseDestroying
			} else {
				lc.Phase, lc.Applied = phaseRunning, time.Now().UTC()
			}
			if !save(&lc) {
				return
			}
		case phaseRunning:
			lc.Result, lc.Detail = t.watch(dir, p, lc.Applied)
			lc.Phase = phaseDestroying
			if !save(&lc) {
				return
			}
		case phaseDestroying:
			writeStop(dir, stopCancel)
			if !lc.Applying {
				lc.Phase = phaseDestroyed
				save(&lc)
				return
			}
			if err := t.destroy(dir); err != nil {
				lc.DestroyError = err.Error()
				save(&lc)
				return
			}
			lc.Phase, lc.DestroyError = phaseDestroyed, ""
			save(&lc)
			return
		default:
			return
		}
	}
}

func mustJSON(v any) []byte {
	data, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return data
}

// tf returns the tool, working in dir, with its output kept in dir's
// tool.log and its CLI configuration the adapter's own.
func (t *Terraform) tf(dir string) (*tfexec.Terraform, func(), error) {
	tf, err := tfexec.NewTerraform(dir, t.bin)
	if err != nil {
		return nil, nil, err
	}
	env := map[string]string{}
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(k, "TF_") && k != "CHECKPOINT_DISABLE" {
			env[k] = v
		}
	}
	env["TF_CLI_CONFIG_FILE"] = t.cliConfig
	if err := tf.SetEnv(env); err != nil {
		return nil, nil, err
	}
	if err := tf.SetWaitDelay(30 * time.Second); err != nil {
		return nil, nil, err
	}
	log, err := os.OpenFile(filepath.Join(dir, "tool.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, nil, err
	}
	tf.SetStdout(log)
	tf.SetStderr(log)
	return tf, func() { log.Close() }, nil
}

// step runs one of the tool's commands, at most Parallel at once.
func (t *Terraform) step(ctx context.Context, what string, fn func(context.Context) error) error {
	select {
	case t.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-t.sem }()
	if err := fn(ctx); err != nil {
		return fmt.Errorf("%s %s: %s", t.toolName(), what, diagnostics(err))
	}
	return nil
}

func (t *Terraform) toolName() string {
	if strings.HasPrefix(t.tool, "OpenTofu") {
		return "tofu"
	}
	return "terraform"
}

// diagnostics makes the tool's error readable: its "Error:" blocks, the
// box drawing gone.
func diagnostics(err error) string {
	var out []string
	for _, line := range strings.Split(err.Error(), "\n") {
		line = strings.TrimSpace(strings.TrimLeft(line, "│╷╵ "))
		if line == "" || line == "exit status 1" {
			continue
		}
		out = append(out, line)
	}
	return strings.Join(out, "; ")
}

// apply runs init, plan and apply, and reads where the nodes are. Release
// interrupts it (SIGINT: the tool stops cleanly and saves its state).
func (t *Terraform) apply(r *run, dir string, p *adapters.Placement, applying func() bool) (*start, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-r.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	tf, closeLog, err := t.tf(dir)
	if err != nil {
		return nil, err
	}
	defer closeLog()
	if err := t.step(ctx, "init", func(ctx context.Context) error {
		opts := []tfexec.InitOption{tfexec.Upgrade(false)}
		if t.cfg.PluginDir != "" {
			opts = append(opts, tfexec.PluginDir(t.cfg.PluginDir))
		}
		return tf.Init(ctx, opts...)
	}); err != nil {
		return nil, err
	}
	if err := t.step(ctx, "plan", func(ctx context.Context) error {
		_, err := tf.Plan(ctx, tfexec.Out(planFile))
		return err
	}); err != nil {
		return nil, err
	}
	if !applying() {
		return nil, errors.New("recording that apply starts failed")
	}
	if err := t.step(ctx, "apply", func(ctx context.Context) error {
		return tf.Apply(ctx, tfexec.DirOrPlan(planFile))
	}); err != nil {
		return nil, err
	}
	var outs map[string]tfexec.OutputMeta
	if err := t.step(ctx, "output", func(ctx context.Context) (err error) {
		outs, err = tf.Output(ctx)
		return err
	}); err != nil {
		return nil, err
	}
	st := &start{}
	if err := json.Unmarshal(outs["addresses"].Value, &st.Addresses); err != nil {
		return nil, fmt.Errorf("the module's output \"addresses\" is not a list of strings: %s", outs["addresses"].Value)
	}
	if len(st.Addresses) != p.Instances() {
		return nil, fmt.Errorf("the module made %d nodes (its output \"addresses\"), not the %d the placement asks for", len(st.Addresses), p.Instances())
	}
	seen := map[string]bool{}
	for _, a := range st.Addresses {
		if a == "" || seen[a] {
			return nil, fmt.Errorf("the module's output \"addresses\" %q: want one address per node, all different", st.Addresses)
		}
		seen[a] = true
	}
	if raw := outs["rendezvous_port"].Value; len(raw) > 0 && string(raw) != "null" {
		if err := json.Unmarshal(raw, &st.Port); err != nil || st.Port <= 0 || st.Port > 65535 {
			return nil, fmt.Errorf("the module's output \"rendezvous_port\" %s is not a port", raw)
		}
	} else {
		st.Port = rendezvousPort(st.Addresses[0])
	}
	return st, nil
}

// rendezvousPort is the port the nodes meet at when the module does not
// say: one free now on a loopback address, else the usual 29500.
func rendezvousPort(addr string) int {
	if ip := net.ParseIP(addr); ip == nil || !ip.IsLoopback() {
		return 29500
	}
	l, err := net.Listen("tcp", net.JoinHostPort(addr, "0"))
	if err != nil {
		return 29500
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// destroy destroys whatever the state holds, after the nodes were told
// to stop.
func (t *Terraform) destroy(dir string) error {
	if _, err := os.Stat(filepath.Join(dir, ".terraform")); errors.Is(err, os.ErrNotExist) {
		return nil // never initialized: nothing was created
	}
	tf, closeLog, err := t.tf(dir)
	if err != nil {
		return err
	}
	defer closeLog()
	return t.step(context.Background(), "destroy", func(ctx context.Context) error {
		return tf.Destroy(ctx)
	})
}

// watch follows the nodes until the placement ends, telling them when to
// start each task and when to stop, and returns how it ended.
func (t *Terraform) watch(dir string, p *adapters.Placement, applied time.Time) (adapters.State, string) {
	tick := time.NewTicker(watchPoll)
	defer tick.Stop()
	w := &watcher{t: t, dir: dir, p: p, applied: applied}
	for ; ; <-tick.C {
		if state, detail, ended := w.turn(); ended {
			return state, detail
		}
	}
}

// A watcher follows one placement's nodes, a turn at a time.
type watcher struct {
	t         *Terraform
	dir       string
	p         *adapters.Placement
	applied   time.Time
	lastAsked time.Time
}

// turn reads the nodes once and acts on what they say: it tells them to
// stop, or to start the next task, or says how the placement ended.
func (w *watcher) turn() (adapters.State, string, bool) {
	t, dir, p, n := w.t, w.dir, w.p, w.p.Instances()
	gone := w.gone()
	// Which agents live is read before what they recorded: an agent
	// found gone wrote its last word before, and it is read.
	live := make([]bool, n)
	for k := range live {
		live[k] = agentAlive(dir, k) || (t.report != "" && seenWithin(dir, k, t.silence))
	}
	recs, err := t.nodes(dir, p)
	if err != nil {
		writeStop(dir, stopFailed)
		return adapters.Lost, "reading the nodes' records: " + err.Error(), true
	}
	stop := readStop(dir)
	if stop == "" && p.Timeout > 0 && time.Since(w.applied) > p.Timeout {
		writeStop(dir, stopTimeout)
		stop = stopTimeout
	}
	grid := gridOf(recs, len(p.Tasks))
	if stop == "" {
		// A node gone, then a task failed, then a node silent.
		detail := w.lost(recs, live, gone, true)
		if detail == "" {
			if _, _, _, failed := grid.Failure(); failed {
				writeStop(dir, stopFailed)
				stop = stopFailed
			}
		}
		if stop == "" && detail == "" {
			detail = w.lost(recs, live, gone, false)
		}
		if detail != "" {
			writeStop(dir, stopFailed)
			return adapters.Lost, detail, true
		}
	}
	if stop != "" {
		// Wait for every node that came up to end.
		for k, rec := range recs {
			if rec.up && !rec.down && live[k] {
				return "", "", false
			}
		}
		state, detail := stoppedBy(stop, p, grid)
		return state, detail, true
	}
	// Every node ended the tasks before it with 0: on to the next, or
	// done.
	switch next := grid.Passed(); {
	case next == len(p.Tasks):
		return adapters.Succeeded, "", true
	case next > 0:
		if _, err := os.Stat(goFile(dir, next)); errors.Is(err, os.ErrNotExist) {
			if err := adapters.WriteFileAtomic(goFile(dir, next), nil); err != nil {
				writeStop(dir, stopFailed)
				return adapters.Lost, err.Error(), true
			}
		}
	}
	return "", "", false
}

// gone asks the infrastructure, at most every watchEvery, which nodes are
// gone; nil between asks or when it cannot say (asked again at the next
// turn: silence still counts).
func (w *watcher) gone() map[int]string {
	if w.t.nodeWatch == nil || time.Since(w.lastAsked) < w.t.watchEvery {
		return nil
	}
	w.lastAsked = time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	gone, _ := w.t.nodeWatch(ctx, *w.p)
	return gone
}

// lost says which node is lost while the placement runs, or "": with
// byInfrastructure, one the infrastructure says is gone; else one that
// never came up in time, or whose agent died or said it ends before its
// tasks did.
func (w *watcher) lost(recs []nodeRecord, live []bool, gone map[int]string, byInfrastructure bool) string {
	n := w.p.Instances()
	for k, rec := range recs {
		last := len(rec.tasks) - 1
		finished := last >= 0 && rec.tasks[last].done() &&
			(len(rec.tasks) == len(w.p.Tasks) || rec.tasks[last].exitCode != 0 || rec.tasks[last].stopped != "")
		if why, ok := gone[k]; byInfrastructure && ok && !finished {
			return fmt.Sprintf("node %d of %d is gone: %s", k, n, why)
		}
		if !byInfrastructure && ((!rec.up && time.Since(w.applied) > w.t.start) || (rec.up && (!live[k] || rec.down) && !finished)) {
			return fmt.Sprintf("node %d of %d stopped reporting (its agent is gone)", k, n)
		}
	}
	return ""
}

// stoppedBy says how a placement stopped for reason ended.
func stoppedBy(reason string, p *adapters.Placement, grid nodeagent.Grid) (adapters.State, string) {
	n := p.Instances()
	switch reason {
	case stopTimeout:
		return adapters.Failed, fmt.Sprintf("timed out after %s", p.Timeout)
	case stopFailed:
		task, node, run, ok := grid.Failure()
		if !ok {
			return adapters.Failed, "stopped after a node failed"
		}
		others := ""
		if n > 1 {
			others = "; the other nodes were stopped"
		}
		return adapters.Failed, fmt.Sprintf("task %s failed on node %d of %d (%s)%s", p.Tasks[task].Name, node, n, run.How(), others)
	}
	return adapters.Cancelled, "released"
}
