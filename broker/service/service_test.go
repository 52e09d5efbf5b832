package service_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/cinet/cinet/adapters/local"
	"github.com/cinet/cinet/broker/api"
	v1 "github.com/cinet/cinet/broker/api/v1"
	"github.com/cinet/cinet/broker/client"
	"github.com/cinet/cinet/broker/httpsig"
	"github.com/cinet/cinet/broker/jobs"
	"github.com/cinet/cinet/broker/offers"
	"github.com/cinet/cinet/broker/service"
	"github.com/cinet/cinet/descriptor"
	"github.com/cinet/cinet/identity"
	"github.com/cinet/cinet/settlement/auditlog"
	. "github.com/cinet/cinet/settlement/settlementtest"
	"github.com/cinet/cinet/spec"
)

// The test binary is the local adapter's shim.
func TestMain(m *testing.M) {
	if local.IsShim() {
		os.Exit(local.Shim(os.Args[len(os.Args)-1]))
	}
	if spec := os.Getenv("CINET_TEST_FLOOD"); spec != "" {
		os.Exit(flood(spec))
	}
	os.Exit(m.Run())
}

var (
	operatorKey  = HomeKey
	tenantKey    = TenantKey
	otherTenant  = StrangerKey
	regulatorKey = Key(6)
	providerKey  = ProviderKey
)

type env struct {
	t   testing.TB
	svc *service.Service
	url string
	dir string // the data directory
}

func (e *env) as(k *identity.Key) *client.Client { return &client.Client{Base: e.url, Key: k} }

// start runs a broker with a local provider, a registered CPU offer, two
// tenants and a regulator.
func start(t *testing.T) *env {
	t.Helper()
	return startWith(t, "")
}

// startWith is start with more of the broker's configuration.
func startWith(t testing.TB, extra string) *env {
	t.Helper()
	dir := t.TempDir()
	if err := identity.WriteKeyFile(filepath.Join(dir, "broker.key"), operatorKey); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`region: cn-east-1
data: %s
listen: 127.0.0.1:0
fee: "0.02"
poll: 20ms
principals:
  - {did: %s, role: tenant}
  - {did: %s, role: tenant}
  - {did: %s, role: regulator}
providers:
  - provider: %s
    adapter: local
    config: {workdir: %s, killGrace: 1s, shim: [%q]}
  - provider: %s
    adapter: local
    config: {workdir: %s, shim: [%q]}
`, dir, tenantKey.ID(), otherTenant.ID(), regulatorKey.ID(), providerKey.ID(), filepath.Join(dir, "work"), os.Args[0],
		Key(7).ID(), filepath.Join(dir, "work7"), os.Args[0])
	svc := runBroker(t, dir, cfg+extra)
	e := &env{t: t, svc: svc, url: svc.URL(), dir: dir}
	e.registerOffer(providerKey, "local-cpu", 4)
	return e
}

// runBroker runs a broker from a configuration until the test ends.
func runBroker(t testing.TB, dir, cfg string) *service.Service {
	t.Helper()
	svc, _ := runStoppable(t, dir, cfg)
	return svc
}

// runStoppable runs a broker until stop is called or the test ends.
func runStoppable(t testing.TB, dir, cfg string) (*service.Service, func()) {
	t.Helper()
	path := filepath.Join(dir, "broker.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := service.LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	svc, err := service.New(ctx, c, slog.New(slog.DiscardHandler))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("broker: %v", err)
			}
		})
	}
	t.Cleanup(func() {
		// Jobs a test left running would write into its directory while
		// it is removed: let them end first (they are short).
		deadline := time.Now().Add(60 * time.Second)
		for time.Now().Before(deadline) {
			active, err := svc.Jobs.Active(context.Background())
			if err != nil || len(active) == 0 {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		stop()
	})
	return svc, stop
}

const offerYAML = `apiVersion: cinet/v1
kind: Offer
metadata: {name: %s}
computeId: %s
provider: %s
broker: %s
region: cn-east-1
zone: a
jurisdiction: CN
class:
  cpu: {arch: x86_64, count: 2}
  memory: 2Gi
quantity: %d
price:
  currency: USD
  minimumIncrement: 1s
  rates: {vcpuHour: "0.04", gibHour: "0.005"}
validUntil: 2030-12-31T00:00:00Z
sequence: 1
`

func signedOffer(t testing.TB, k *identity.Key, pool string, quantity int) []byte {
	t.Helper()
	return signedOfferOwnedBy(t, k, pool, quantity, operatorKey.ID())
}

// signedOfferOwnedBy signs, as k, an offer that names owner as its broker.
func signedOfferOwnedBy(t testing.TB, k *identity.Key, pool string, quantity int, owner identity.PrincipalID) []byte {
	t.Helper()
	cid, _ := identity.NewComputeID(k.ID(), "cn-east-1", "a", pool)
	doc, err := descriptor.Parse("offer.yaml", []byte(fmt.Sprintf(offerYAML, pool, cid, k.ID(), owner, quantity)))
	if err != nil {
		t.Fatal(err)
	}
	env, err := offers.Seal(k, doc)
	if err != nil {
		t.Fatal(err)
	}
	return env.Encode()
}

func (e *env) registerOffer(k *identity.Key, pool string, quantity int) *v1.Offer {
	e.t.Helper()
	o, err := e.as(k).RegisterOffer(context.Background(), signedOffer(e.t, k, pool, quantity))
	if err != nil {
		e.t.Fatal(err)
	}
	return o
}

func jobYAML(script string) string {
	return fmt.Sprintf(`apiVersion: cinet/v1
kind: Job
metadata: {name: api-test}
tasks:
  - name: main
    command: ["/bin/sh", "-c", %q]
resources: {cpus: 1, memory: 64Mi}
estimatedRuntime: 10s
`, script)
}

// waitRunning polls the job until it runs, and fails if it ends first.
func (e *env) waitRunning(c *client.Client, id string) {
	e.t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		j, err := c.Job(context.Background(), id)
		if err != nil {
			e.t.Fatal(err)
		}
		if j.State == jobs.Running {
			return
		}
		if j.State.Ended() || time.Now().After(deadline) {
			e.t.Fatalf("job %s never ran: %+v", id, j)
		}
	}
}

func (e *env) waitSettled(c *client.Client, id string) *v1.Job {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		j, err := c.Job(context.Background(), id)
		if err != nil {
			e.t.Fatal(err)
		}
		if j.State == jobs.Settled {
			return j
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("job %s still %s", id, j.State)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// schemas validates answers against spec/api/openapi.json.
type schemas struct {
	c *jsonschema.Compiler
}

func newSchemas(t *testing.T) *schemas {
	var doc any
	if err := json.Unmarshal(spec.OpenAPI, &doc); err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("mem://openapi.json", doc); err != nil {
		t.Fatal(err)
	}
	return &schemas{c}
}

func pointer(s string) string { return strings.NewReplacer("~", "~0", "/", "~1").Replace(s) }

// check validates a JSON body against the schema the document gives for
// the path, method and status.
func (s *schemas) check(t *testing.T, path, method string, status int, contentType string, body []byte) {
	t.Helper()
	loc := fmt.Sprintf("mem://openapi.json#/paths/%s/%s/responses/%d/content/%s/schema", pointer(path), strings.ToLower(method), status, pointer(contentType))
	sch, err := s.c.Compile(loc)
	if err != nil {
		t.Fatalf("no schema for %s %s %d %s: %v", method, path, status, contentType, err)
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("%s %s: the answer is not JSON: %v\n%s", method, path, err, body)
	}
	if err := sch.Validate(v); err != nil {
		t.Fatalf("%s %s %d does not match the OpenAPI schema: %v\n%s", method, path, status, err, body)
	}
}

// raw sends a signed request and returns status and body, without the
// client's handling of problems.
func (e *env) raw(k *identity.Key, method, path string, body []byte) (int, http.Header, []byte) {
	e.t.Helper()
	req, _ := http.NewRequest(method, e.url+path, bytes.NewReader(body))
	if k != nil {
		httpsig.Sign(req, body, k, time.Now(), time.Minute)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

// TestFollowLogsRightAfterSubmit: following a job's logs as soon as it is
// submitted, before it has an attempt or has written anything, waits for
// it and prints all it writes.
func TestFollowLogsRightAfterSubmit(t *testing.T) {
	e := start(t)
	tenant := e.as(tenantKey)
	for i := range 3 {
		status, _, body := e.raw(tenantKey, "POST", "/v1/jobs", []byte(jobYAML(fmt.Sprintf("sleep 0.2; echo line %d; echo done", i))))
		if status != 201 {
			t.Fatalf("submit: %d %s", status, body)
		}
		var j jobs.Job
		json.Unmarshal(body, &j)
		rc, err := tenant.Logs(context.Background(), j.ID, "", 0, "", true)
		if err != nil {
			t.Fatalf("follow right after submit: %v", err)
		}
		out, _ := io.ReadAll(rc)
		rc.Close()
		if want := fmt.Sprintf("line %d\ndone\n", i); string(out) != want {
			t.Fatalf("followed %q, want %q", out, want)
		}
	}
}

func TestJobThroughTheAPI(t *testing.T) {
	e := start(t)
	sc := newSchemas(t)
	ctx := context.Background()
	tenant := e.as(tenantKey)

	status, hdr, body := e.raw(tenantKey, "POST", "/v1/jobs", []byte(jobYAML("echo hello from the job; echo oops >&2")))
	if status != 201 || !strings.HasPrefix(hdr.Get("Location"), "/v1/jobs/j-") {
		t.Fatalf("submit: %d %s", status, body)
	}
	sc.check(t, "/v1/jobs", "POST", 201, "application/json", body)
	var j jobs.Job
	json.Unmarshal(body, &j)

	var seen []jobs.State
	if err := tenant.Events(ctx, j.ID, func(tr jobs.Transition) error { seen = append(seen, tr.State); return nil }); err != nil {
		t.Fatal(err)
	}
	if seen[0] != jobs.Submitted || seen[len(seen)-1] != jobs.Settled {
		t.Fatalf("events %v", seen)
	}
	done := e.waitSettled(tenant, j.ID)
	if done.Outcome != jobs.Succeeded || done.Cost == nil || done.Attempts[0].Record == "" {
		t.Fatalf("job %+v", done)
	}
	_, _, body = e.raw(tenantKey, "GET", "/v1/jobs/"+j.ID, nil)
	sc.check(t, "/v1/jobs/{id}", "GET", 200, "application/json", body)

	rc, err := tenant.Logs(ctx, j.ID, "", 0, "", false)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(rc)
	rc.Close()
	if string(out) != "hello from the job\n" {
		t.Fatalf("stdout %q", out)
	}
	rc, _ = tenant.Logs(ctx, j.ID, "main", 0, "stderr", true)
	out, _ = io.ReadAll(rc)
	if string(out) != "oops\n" {
		t.Fatalf("stderr %q", out)
	}

	for _, p := range []string{"/v1/jobs", "/v1/ledger/balances", "/v1/info", "/v1/offers", "/readyz", "/healthz"} {
		status, _, body := e.raw(tenantKey, "GET", p, nil)
		if status != 200 {
			t.Fatalf("%s: %d %s", p, status, body)
		}
		sc.check(t, p, "GET", 200, "application/json", body)
	}
	month := done.CreatedAt.Format("2006-01")
	status, _, body = e.raw(tenantKey, "GET", "/v1/ledger/statement?period="+month, nil)
	if status != 200 || !strings.Contains(string(body), done.Attempts[0].Record) {
		t.Fatalf("statement: %d %s", status, body)
	}
	sc.check(t, "/v1/ledger/statement", "GET", 200, "application/json", body)
	status, _, body = e.raw(tenantKey, "GET", "/v1/audit/proof?record="+done.Attempts[0].Record, nil)
	if status != 200 {
		t.Fatalf("proof: %d %s", status, body)
	}
	sc.check(t, "/v1/audit/proof", "GET", 200, "application/json", body)
	// Any log entry by its index, for regulators and operators alone.
	if status, _, body := e.raw(regulatorKey, "GET", "/v1/audit/proof?index=0", nil); status != 200 || !strings.Contains(string(body), `"proof"`) {
		t.Fatalf("proof by index: %d %s", status, body)
	}
	for _, tc := range []struct {
		k     *identity.Key
		query string
		want  int
	}{{tenantKey, "index=0", 403}, {regulatorKey, "index=99999999", 400}, {regulatorKey, "index=0&record=x", 400}, {regulatorKey, "", 400}} {
		if status, _, body := e.raw(tc.k, "GET", "/v1/audit/proof?"+tc.query, nil); status != tc.want {
			t.Errorf("proof?%s: %d %s, want %d", tc.query, status, body, tc.want)
		}
	}
	csv, err := tenant.Export(ctx, "", month)
	if err != nil || !bytes.HasPrefix(csv, []byte("BilledCost,")) || bytes.Count(csv, []byte("\n")) < 2 {
		t.Fatalf("export: %v\n%s", err, csv)
	}
	status, _, body = e.raw(regulatorKey, "GET", "/v1/ledger/balances", nil)
	if status != 200 || !strings.Contains(string(body), `"trialBalance"`) {
		t.Fatalf("regulator balances: %d %s", status, body)
	}
	sc.check(t, "/v1/ledger/balances", "GET", 200, "application/json", body)
	status, _, body = e.raw(operatorKey, "GET", "/metrics", nil)
	if status != 200 || !strings.Contains(string(body), `cinet_jobs{state="settled"} 1`) || !strings.Contains(string(body), "cinet_match_duration_seconds_count 1") {
		t.Fatalf("metrics: %d\n%s", status, body)
	}
	// Job counts and log sizes are the operator's: not anyone's, not a
	// tenant's or a regulator's.
	for _, k := range []*identity.Key{nil, tenantKey, regulatorKey} {
		if status, _, body := e.raw(k, "GET", "/metrics", nil); status != 401 && status != 403 {
			t.Errorf("metrics for %v: %d %.100s", k, status, body)
		}
	}
	status, _, body = e.raw(nil, "GET", "/v1/info", nil)
	if status != 200 || strings.Contains(string(body), "adapters") || !strings.Contains(string(body), "verifierKey") {
		t.Errorf("info: %d %s", status, body)
	}
}

// badTask is a job whose one task has an extra line.
func badTask(line string) string {
	return "apiVersion: cinet/v1\nkind: Job\nmetadata: {name: x}\ntasks:\n  - name: main\n    command: [/bin/true]\n    " + line + "\n"
}

func TestBadInput(t *testing.T) {
	e := start(t)
	sc := newSchemas(t)
	for _, tc := range []struct {
		name   string
		key    *identity.Key
		method string
		path   string
		body   []byte
		status int
		want   string
	}{
		{"malformed job", tenantKey, "POST", "/v1/jobs", []byte("apiVersion: cinet/v1\nkind: Job\nmetadata: {name: x}\ntasks: []\nresources: {cpus: -1}\n"), 422, `"line":`},
		{"not YAML", tenantKey, "POST", "/v1/jobs", []byte("{{{"), 422, "invalid-job"},
		{"unknown job", tenantKey, "GET", "/v1/jobs/j-nosuchjob", nil, 404, "job-not-found"},
		{"too large", tenantKey, "POST", "/v1/jobs", bytes.Repeat([]byte("#"), api.MaxBody+1), 413, "too-large"},
		{"offer not signed by its provider", providerKey, "POST", "/v1/offers", signedOffer(t, otherTenant, "x", 1), 422, "invalid-offer"},
		{"offer owned by another broker", providerKey, "POST", "/v1/offers", signedOfferOwnedBy(t, providerKey, "x", 1, otherTenant.ID()), 422, "this broker is " + operatorKey.ID().String()},
		{"offer that is not an envelope", providerKey, "POST", "/v1/offers", []byte(`{"kind":"Offer"}`), 422, "invalid-offer"},
		{"bad period", tenantKey, "GET", "/v1/ledger/statement?period=soon", nil, 400, "period"},
		{"no such endpoint", tenantKey, "GET", "/v2/things", nil, 404, "no such endpoint"},
		{"workdir outside the job", tenantKey, "POST", "/v1/jobs", []byte(badTask("workdir: ../../../../etc")), 422, "tasks[0].workdir"},
		{"absolute workdir", tenantKey, "POST", "/v1/jobs", []byte(badTask("workdir: /etc")), 422, "tasks[0].workdir"},
		{"NUL in argv", tenantKey, "POST", "/v1/jobs", []byte(badTask(`args: ["a\0b"]`)), 422, "NUL byte"},
		{"NUL in env", tenantKey, "POST", "/v1/jobs", []byte(badTask(`env: {X: "\0"}`)), 422, "NUL byte"},
		{"nested YAML", tenantKey, "POST", "/v1/jobs", []byte("apiVersion: cinet/v1\nkind: Job\nmetadata:\n  name: x\n  labels: " + strings.Repeat("[", 200000)), 422, "nested more than"},
		{"nested JSON explained", tenantKey, "POST", "/v1/explain", []byte(`{"apiVersion":"cinet/v1","kind":"Job","metadata":{"name":"x","labels":` + strings.Repeat("[", 200000)), 422, "nested more than"},
		{"wide YAML", tenantKey, "POST", "/v1/jobs", []byte("apiVersion: cinet/v1\nkind: Job\nmetadata:\n  name: x\n  labels: [" + strings.Repeat("1,", 200000) + "1]"), 422, "more than 20000 values"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, hdr, body := e.raw(tc.key, tc.method, tc.path, tc.body)
			if status != tc.status || !strings.Contains(string(body), tc.want) || hdr.Get("Content-Type") != "application/problem+json" {
				t.Fatalf("%d %s %s", status, hdr.Get("Content-Type"), body)
			}
			var p api.Problem
			if json.Unmarshal(body, &p) != nil || p.Status != status || !strings.HasPrefix(p.Type, "urn:cinet:problem:") {
				t.Fatalf("not a problem detail: %s", body)
			}
		})
	}
	// Nothing half-written: the jobs list is empty.
	if js, err := e.as(tenantKey).Jobs(context.Background(), "", 0); err != nil || len(js) != 0 {
		t.Fatalf("jobs after bad input: %v %v", js, err)
	}
	_, _, body := e.raw(tenantKey, "POST", "/v1/jobs", []byte("kind: Job\n"))
	sc.check(t, "/v1/jobs", "POST", 422, "application/problem+json", body)
}

// TestPrivateFiles: what holds secrets — the key, the databases, a
// placement's description with its environment, its logs — is its
// owner's alone, in directories only the owner may enter.
func TestPrivateFiles(t *testing.T) {
	e := start(t)
	j, err := e.as(tenantKey).SubmitJob(context.Background(), []byte(jobYAML("echo hi")), "job.yaml")
	if err != nil {
		t.Fatal(err)
	}
	done := e.waitSettled(e.as(tenantKey), j.ID)
	placement := filepath.Join(e.dir, "work", done.Attempts[0].ID)
	want := map[string]os.FileMode{
		e.dir: 0o700, filepath.Join(e.dir, "broker.key"): 0o600,
		filepath.Join(e.dir, "broker.db"): 0o600, filepath.Join(e.dir, "ledger.db"): 0o600,
		filepath.Join(e.dir, "work"): 0o700, placement: 0o700,
		filepath.Join(placement, "placement.json"): 0o600, filepath.Join(placement, "run.json"): 0o600,
		filepath.Join(placement, "logs"): 0o700, filepath.Join(placement, "logs", "main.stdout"): 0o600,
	}
	for _, wal := range []string{"broker.db-wal", "ledger.db-wal"} {
		if _, err := os.Stat(filepath.Join(e.dir, wal)); err == nil {
			want[filepath.Join(e.dir, wal)] = 0o600
		}
	}
	for path, mode := range want {
		fi, err := os.Stat(path)
		if err != nil {
			t.Error(err)
			continue
		}
		if fi.Mode().Perm() != mode {
			t.Errorf("%s has mode %#o, want %#o", path, fi.Mode().Perm(), mode)
		}
	}
}

// TestPublicAuditLog: anyone holding the log's verifier key checks the
// log from the broker's public endpoints alone — no account — while the
// entries, which name tenants, stay the regulator's.
func TestPublicAuditLog(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	for _, script := range []string{"echo one", "echo two"} {
		j, err := e.as(tenantKey).SubmitJob(ctx, []byte(jobYAML(script)), "job.yaml")
		if err != nil {
			t.Fatal(err)
		}
		e.waitSettled(e.as(tenantKey), j.ID)
	}
	if _, err := e.as(regulatorKey).Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	get := func(path string) (int, http.Header, []byte) {
		resp, err := http.Get(e.url + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, b
	}
	code, hdr, note := get("/checkpoint")
	if code != 200 || hdr.Get("Cache-Control") != "no-cache" {
		t.Fatalf("/checkpoint: %d %v", code, hdr)
	}
	cp, err := auditlog.OpenCheckpoint(note, e.svc.Settler.VerifierKey())
	if err != nil || cp.Size < 2 {
		t.Fatalf("the public checkpoint does not verify: %v (%s)", err, note)
	}
	// The tree, rebuilt from public tiles, is the checkpoint's.
	tiles := tlog.TileHashReader(tlog.Tree{N: cp.Size, Hash: cp.Hash}, publicTiles{t, e.url})
	if _, err := tlog.TreeHash(cp.Size, tiles); err != nil {
		t.Fatalf("the tree from public tiles: %v", err)
	}
	code, hdr, _ = get("/tile/0/000.p/1")
	if code != 200 || !strings.Contains(hdr.Get("Cache-Control"), "public") {
		t.Fatalf("a partial tile: %d %v", code, hdr)
	}
	// The entries by an encoded path, which a router may take for a hash
	// tile's, and tiles of levels no log has: refused, as problems.
	for path, want := range map[string]int{"/tile/entries/000.p/1": 401, "/tile/0/999": 404, "/tile/zzz": 404,
		"/tile/entries%2F000.p/1": 404, "/tile/entries%2f000.p/1": 404, "/tile%2Fentries/000.p/1": 404, "/tile/99/000": 404, "/tile/7/000": 404} {
		code, hdr, b := get(path)
		if code != want || hdr.Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s: %d %s %s, want %d as a problem", path, code, hdr.Get("Content-Type"), b, want)
		}
	}
	if code, _, _ := e.raw(regulatorKey, "GET", "/tile/entries/000.p/1", nil); code != 200 {
		t.Errorf("the regulator reading entries: %d", code)
	}
}

// publicTiles reads tiles from a broker's public endpoints.
type publicTiles struct {
	t   *testing.T
	url string
}

func (p publicTiles) Height() int { return auditlog.TileHeight }

func (p publicTiles) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	var out [][]byte
	for _, tile := range tiles {
		resp, err := http.Get(p.url + "/" + auditlog.TilePath(tile))
		if err != nil {
			return nil, err
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return nil, fmt.Errorf("%s: %d %s", auditlog.TilePath(tile), resp.StatusCode, b)
		}
		out = append(out, b)
	}
	return out, nil
}

func (p publicTiles) SaveTiles([]tlog.Tile, [][]byte) {}

// TestMetricsListen: the metrics address of the configuration serves
// /metrics without authentication, apart from the API.
func TestMetricsListen(t *testing.T) {
	dir := t.TempDir()
	if err := identity.WriteKeyFile(filepath.Join(dir, "broker.key"), operatorKey); err != nil {
		t.Fatal(err)
	}
	svc := runBroker(t, dir, "region: r\ndata: "+dir+"\nlisten: 127.0.0.1:0\nmetricsListen: 127.0.0.1:0\n")
	resp, err := http.Get("http://" + svc.MetricsAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), "cinet_") {
		t.Fatalf("metrics address: %d %.200s", resp.StatusCode, b)
	}
}

// TestEventsAreJSON: a transition whose detail holds a control character
// (here from the name of a command that does not exist) still arrives as
// JSON that decodes, to the end of the job.
func TestEventsAreJSON(t *testing.T) {
	e := start(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	doc := "apiVersion: cinet/v1\nkind: Job\nmetadata: {name: bell}\ntasks:\n  - name: main\n    command: [\"/no/such/program\\a\"]\n"
	j, err := e.as(tenantKey).SubmitJob(ctx, []byte(doc), "job.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var last jobs.Transition
	if err := e.as(tenantKey).Events(ctx, j.ID, func(tr jobs.Transition) error { last = tr; return nil }); err != nil {
		t.Fatalf("following the events: %v", err)
	}
	done := e.waitSettled(e.as(tenantKey), j.ID)
	if last.State != jobs.Settled || !strings.Contains(done.Detail, "\a") {
		t.Fatalf("last event %+v; the job's detail %q should hold the bell", last, done.Detail)
	}
}

// TestMultiNodeJob: a two-node job runs its task on both nodes, each with
// its rank; each node's output is read on its own, and a node the job
// does not have is a bad request.
func TestMultiNodeJob(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	tenant := e.as(tenantKey)
	doc := strings.Replace(jobYAML(`echo "node $CINET_NODE_RANK of $CINET_NUM_NODES"`), "resources:", "nodes: 2\nresources:", 1)
	status, _, body := e.raw(tenantKey, "POST", "/v1/jobs", []byte(doc))
	if status != 201 {
		t.Fatalf("submit: %d %s", status, body)
	}
	var j jobs.Job
	json.Unmarshal(body, &j)
	done := e.waitSettled(tenant, j.ID)
	if done.Outcome != jobs.Succeeded {
		t.Fatalf("job %+v", done)
	}
	for node := range 2 {
		rc, err := tenant.Logs(ctx, j.ID, "", node, "", false)
		if err != nil {
			t.Fatal(err)
		}
		out, _ := io.ReadAll(rc)
		rc.Close()
		if want := fmt.Sprintf("node %d of 2\n", node); string(out) != want {
			t.Errorf("node %d's output %q, want %q", node, out, want)
		}
	}
	for _, q := range []string{"node=2", "node=-1", "node=x"} {
		if status, _, body := e.raw(tenantKey, "GET", "/v1/jobs/"+j.ID+"/logs?"+q, nil); status != 400 || !strings.Contains(string(body), "node: want 0 to 1") {
			t.Errorf("logs?%s: %d %s", q, status, body)
		}
	}
}

// serviceJob is a service job of replicas, each an HTTP server on port
// 8000 in perl whose accept loop body (the connection is $c) is given.
func serviceJob(name string, replicas int, body string) string {
	server := `exec perl -MIO::Socket::INET -e '
$s = IO::Socket::INET->new(LocalAddr => "$ENV{CINET_NODE_ADDR}:8000", Listen => 5, ReuseAddr => 1) or die "listen: $!";
while ($c = $s->accept) ` + body + `'`
	return fmt.Sprintf(`apiVersion: cinet/v1
kind: Job
metadata: {name: %s}
tasks:
  - name: serve
    command: ["/bin/sh", "-c", %q]
resources: {cpus: 1, memory: 64Mi}
estimatedRuntime: 10s
service:
  replicas: %d
  ports: [{name: http, port: 8000, protocol: http}]
  readiness: {path: /health, period: 50ms}
`, name, server, replicas)
}

// TestServiceJob: a service job of two replicas serves through the
// endpoints its attempt lists, each replica its own, once they are ready;
// cancelling it ends the service and bills both instances.
func TestServiceJob(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	tenant := e.as(tenantKey)
	doc := serviceJob("server", 2, `{ while (<$c>) { last if /^\r?$/ } print $c "HTTP/1.0 200 OK\r\n\r\nserved by $ENV{CINET_NODE_ADDR}\n"; close $c }`)
	status, _, body := e.raw(tenantKey, "POST", "/v1/jobs", []byte(doc))
	if status != 201 {
		t.Fatalf("submit: %d %s", status, body)
	}
	var j *v1.Job
	json.Unmarshal(body, &j)
	id := j.ID
	var eps []v1.Endpoint
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		j, err := tenant.Job(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if n := len(j.Attempts); n > 0 {
			eps = j.Attempts[n-1].Endpoints
		}
		if len(eps) == 2 && eps[0].Ready && eps[1].Ready {
			break
		}
		if j.State.Ended() || time.Now().After(deadline) {
			t.Fatalf("job %s: %s, endpoints %+v, history %+v", id, j.State, eps, j.History)
		}
	}
	for r, ep := range eps {
		if ep.Replica != r || ep.Name != "http" || ep.URL == "" {
			t.Fatalf("endpoints %+v", eps)
		}
		resp, err := http.Get(ep.URL + "/")
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if want := fmt.Sprintf("served by 127.0.0.%d\n", r+1); string(got) != want {
			t.Errorf("replica %d: %q, want %q", r, got, want)
		}
	}
	// The job as the API shows it, endpoints and all, is what the OpenAPI
	// description says.
	_, _, body = e.raw(tenantKey, "GET", "/v1/jobs/"+id, nil)
	if !strings.Contains(string(body), `"endpoints"`) {
		t.Fatalf("the job shows no endpoints: %s", body)
	}
	newSchemas(t).check(t, "/v1/jobs/{id}", "GET", 200, "application/json", body)
	j, _ = tenant.Job(ctx, id)
	var notes int
	for _, tr := range j.History {
		if strings.HasPrefix(tr.Detail, "replica ") && strings.Contains(tr.Detail, " ready at http://") {
			notes++
		}
	}
	if notes != 2 {
		t.Errorf("history notes %d replicas ready: %+v", notes, j.History)
	}
	if _, err := tenant.Cancel(ctx, id); err != nil {
		t.Fatal(err)
	}
	done := e.waitSettled(tenant, id)
	if done.Outcome != jobs.Cancelled || len(done.Attempts[0].Endpoints) != 0 || done.Attempts[0].Record == "" {
		t.Fatalf("after cancelling: %+v", done)
	}
	if _, err := http.Get(eps[0].URL + "/"); err == nil {
		t.Error("the endpoint still serves after the job ended")
	}
}

// TestOfferBeyondTheMachine: a provider of the local adapter cannot
// register a class the machine cannot provide — more CPUs, memory or
// disk than it has, other processors, accelerators — and is told which
// limit; a class that fits is registered.
func TestOfferBeyondTheMachine(t *testing.T) {
	e := start(t)
	arch := map[string]string{"amd64": "x86_64", "arm64": "arm64"}[runtime.GOARCH]
	other := "arm64"
	if arch == "arm64" {
		other = "x86_64"
	}
	for _, tc := range []struct{ name, class, want string }{
		{"cpus", "cpu: {arch: " + arch + ", count: 100000}\n  memory: 1Gi", "CPUs"},
		{"memory", "cpu: {arch: " + arch + ", count: 1}\n  memory: 1000Ti", "memory"},
		{"disk", "cpu: {arch: " + arch + ", count: 1}\n  memory: 1Gi\n  disk: 1000Pi", "disk"},
		{"arch", "cpu: {arch: " + other + ", count: 1}\n  memory: 1Gi", "processors"},
		{"accelerators", "cpu: {arch: " + arch + ", count: 1}\n  memory: 1Gi\n  accelerators: [{model: H100, count: 8}]", "accelerators"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cid, _ := identity.NewComputeID(providerKey.ID(), "cn-east-1", "a", "big-"+tc.name)
			doc := strings.Replace(fmt.Sprintf(offerYAML, "big-"+tc.name, cid, providerKey.ID(), operatorKey.ID(), 1),
				"cpu: {arch: x86_64, count: 2}\n  memory: 2Gi", tc.class, 1)
			parsed, err := descriptor.Parse("offer.yaml", []byte(doc))
			if err != nil {
				t.Fatal(err)
			}
			env, err := offers.Seal(providerKey, parsed)
			if err != nil {
				t.Fatal(err)
			}
			status, _, body := e.raw(providerKey, "POST", "/v1/offers", env.Encode())
			if status != 422 || !strings.Contains(string(body), tc.want) || !strings.Contains(string(body), "this machine") && tc.name != "accelerators" {
				t.Fatalf("an offer beyond the machine (%s): %d %s", tc.name, status, body)
			}
		})
	}
	if arch != "" {
		e.registerOffer(providerKey, "fits", 1)
	}
}
