package jobs_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cinet/cinet/adapters"
	"github.com/cinet/cinet/adapters/local"
	"github.com/cinet/cinet/broker/book"
	"github.com/cinet/cinet/broker/jobs"
	"github.com/cinet/cinet/broker/match"
	"github.com/cinet/cinet/broker/store"
	"github.com/cinet/cinet/descriptor"
	"github.com/cinet/cinet/identity"
	"github.com/cinet/cinet/settlement"
	. "github.com/cinet/cinet/settlement/settlementtest"
	"github.com/cinet/cinet/settlement/sqlstore"
)

// The test binary is the local adapter's shim.
func TestMain(m *testing.M) {
	if local.IsShim() {
		os.Exit(local.Shim(os.Args[len(os.Args)-1]))
	}
	os.Exit(m.Run())
}

// broker is one broker's parts over a data directory: a local provider
// with one CPU offer, the books, and a runner.
type broker struct {
	t       testing.TB
	dir     string
	jobs    *store.Store
	settler *settlement.Settler
	book    *book.Book
	offer   *descriptor.Document
	runner  *jobs.Runner
	stop    func()
	// skew moves the runner's clock ahead of the machine's.
	skew atomic.Int64
	// failOffers makes reading offers fail, as a stopped database would,
	// so that settling an attempt fails after its end was recorded.
	failOffers atomic.Bool
	// matches counts the matcher's runs; passes the runner's passes over
	// the active jobs.
	matches, passes atomic.Int64
	// replacements holds offers a test put in place of the first, by
	// digest.
	replacements sync.Map
	// hideStarts makes the adapter report no task started until the
	// attempt has ended, as when a task starts and ends between polls.
	hideStarts atomic.Bool
}

// startHider reports what the adapter reports, without started tasks while
// the attempt runs when the broker's hideStarts is set.
type startHider struct {
	adapters.Adapter
	b *broker
}

func (h startHider) Status(ctx context.Context, id string) (adapters.Status, error) {
	st, err := h.Adapter.Status(ctx, id)
	if err == nil && h.b.hideStarts.Load() && !st.State.Ended() {
		st.Tasks = nil
	}
	return st, err
}

// counted counts the runner's passes (each reads the active jobs) and its
// matches.
type counted struct {
	jobs.Store
	b *broker
}

func (c counted) Active(ctx context.Context) ([]*jobs.Job, error) {
	c.b.passes.Add(1)
	return c.Store.Active(ctx)
}

func (c counted) Matched(time.Duration) { c.b.matches.Add(1) }
func (c counted) Settled(time.Duration) {}

const offerYAML = `apiVersion: cinet/v1
kind: Offer
metadata: {name: local-cpu}
computeId: %s
provider: %s
broker: %s
region: cn-east-1
zone: a
jurisdiction: CN
class:
  cpu: {arch: x86_64, count: 2}
  memory: 2Gi
quantity: 4
price:
  currency: USD
  minimumIncrement: 1s
  rates: {vcpuHour: "0.04", gibHour: "0.005"}
validUntil: 2027-12-31T00:00:00Z
sequence: 1
`

func newBroker(t testing.TB, dir string, opts ...func(*jobs.Config)) *broker {
	t.Helper()
	ctx := context.Background()
	b := &broker{t: t, dir: dir}
	var err error
	if b.jobs, err = store.Open(ctx, filepath.Join(dir, "broker.db")); err != nil {
		t.Fatal(err)
	}
	ledger, err := sqlstore.Open(ctx, filepath.Join(dir, "ledger.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.jobs.Close(); ledger.Close() })
	if b.settler, err = settlement.New(settlement.Config{Store: ledger, Key: HomeKey, Origin: "cinet.test/jobs"}); err != nil {
		t.Fatal(err)
	}
	cid, _ := identity.NewComputeID(ProviderKey.ID(), "cn-east-1", "a", "cpu")
	if b.offer, err = descriptor.Parse("offer.yaml", []byte(fmt.Sprintf(offerYAML, cid, ProviderKey.ID(), HomeKey.ID()))); err != nil {
		t.Fatal(err)
	}
	b.book = book.New(time.Now)
	if err := b.book.Put(b.offer, nil, HomeKey.ID()); err != nil {
		t.Fatal(err)
	}
	if err := b.settler.RegisterOffer(ctx, b.offer); err != nil {
		t.Fatal(err)
	}
	ad, err := local.New(local.Config{Workdir: filepath.Join(dir, "work"), Shim: []string{os.Args[0]}, KillGrace: descriptor.Duration(time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	cfg := jobs.Config{
		Store: counted{b.jobs, b}, Observe: counted{b.jobs, b},
		Book: b.book, Matcher: match.New(b.book, match.Config{HomeRegion: "cn-east-1"}), Settler: b.settler,
		Key: HomeKey, Region: "cn-east-1", Fee: descriptor.MustDecimal("0.02"),
		Adapters: map[identity.PrincipalID]adapters.Adapter{ProviderKey.ID(): startHider{ad, b}},
		Offers: func(ctx context.Context, digest string) (*descriptor.Document, error) {
			if b.failOffers.Load() {
				return nil, fmt.Errorf("database unavailable")
			}
			if d, ok := b.replacements.Load(digest); ok {
				return d.(*descriptor.Document), nil
			}
			if digest != b.offer.Digest {
				return nil, fmt.Errorf("no offer %s", digest)
			}
			return b.offer, nil
		},
		Poll: 20 * time.Millisecond,
		Now:  func() time.Time { return time.Now().Add(time.Duration(b.skew.Load())) },
	}
	for _, o := range opts {
		o(&cfg)
	}
	b.runner = jobs.NewRunner(cfg)
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { b.runner.Run(ctx); close(done) }()
	b.stop = func() { cancel(); <-done }
	t.Cleanup(b.stop)
	return b
}

func (b *broker) submit(src string) *jobs.Job {
	b.t.Helper()
	doc, err := descriptor.Parse("job.yaml", []byte(src))
	if err != nil {
		b.t.Fatal(err)
	}
	j, err := b.runner.Submit(context.Background(), TenantKey.ID(), doc)
	if err != nil {
		b.t.Fatal(err)
	}
	return j
}

// waitFor polls the job until it reaches state.
func (b *broker) waitFor(id string, state jobs.State) *jobs.Job {
	b.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		j, err := b.jobs.Get(context.Background(), id)
		if err != nil {
			b.t.Fatal(err)
		}
		if j.State == state {
			return j
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("job %s is %s, not %s, after 30s: %+v", id, j.State, state, j.History)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitNote polls the job until its latest history entry starts with
// prefix, and fails if it ends or 30 s pass first.
func (b *broker) waitNote(id, prefix string) {
	b.t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		j, err := b.jobs.Get(context.Background(), id)
		if err != nil {
			b.t.Fatal(err)
		}
		if strings.HasPrefix(j.History[len(j.History)-1].Detail, prefix) {
			return
		}
		if j.State.Ended() || time.Now().After(deadline) {
			b.t.Fatalf("job %s never noted %q: %+v", id, prefix, j.History)
		}
	}
}

func jobYAML(script string, extra string) string {
	return fmt.Sprintf(`apiVersion: cinet/v1
kind: Job
metadata: {name: test}
tasks:
  - name: main
    command: ["/bin/sh", "-c", %q]
resources: {cpus: 1, memory: 64Mi}
estimatedRuntime: 10s
%s`, script, extra)
}

func states(j *jobs.Job) []jobs.State {
	var out []jobs.State
	for _, t := range j.History {
		if len(out) == 0 || out[len(out)-1] != t.State {
			out = append(out, t.State)
		}
	}
	return out
}

func TestJobRunsAndSettles(t *testing.T) {
	b := newBroker(t, t.TempDir())
	j := b.submit(jobYAML("echo hello; i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done", ""))
	j = b.waitFor(j.ID, jobs.Settled)
	want := []jobs.State{jobs.Submitted, jobs.Matched, jobs.Reserved, jobs.Provisioning, jobs.Running, jobs.Succeeded, jobs.Settled}
	if got := states(j); !slices.Equal(got, want) {
		t.Fatalf("states %v, want %v", got, want)
	}
	if j.Outcome != jobs.Succeeded || len(j.Attempts) != 1 || j.Cost == nil || j.Cost.Amount <= 0 || j.Cost.Currency != "USD" || j.Hold == nil {
		t.Fatalf("job %+v", j)
	}
	a := j.Attempts[0]
	if !a.Settled || a.Record == "" || a.Usage == nil || a.Usage.CPU <= 0 || a.Charge.Amount != j.Cost.Amount {
		t.Fatalf("attempt %+v", a)
	}
	// The ledger charged the tenant exactly the job's cost, and the hold
	// was released.
	bal, err := b.settler.Balances(context.Background(), settlement.AccountOf("tenant", TenantKey.ID()))
	if err != nil || len(bal) != 1 || bal[0].Amount != -j.Cost.Amount {
		t.Fatalf("tenant balance %v %v, cost %s", bal, err, j.Cost.Amount.Decimal())
	}
	holds, _ := b.settler.Holds(context.Background(), j.ID)
	if len(holds) != 1 || holds[0].Open {
		t.Fatalf("hold %+v", holds)
	}
	if _, err := b.settler.Prove(context.Background(), settlement.RecordID(a.Record)); err != nil {
		t.Fatalf("proving the record: %v", err)
	}
	// The capacity is free again.
	if e, _ := b.book.Get(b.offer.Offer.ComputeID.Name()); e.Free != 4 {
		t.Fatalf("free instances %d after the job", e.Free)
	}
}

// TestHistoryHasRunningForFastTasks: a task that starts and ends between
// two polls still has running in its job's history.
func TestHistoryHasRunningForFastTasks(t *testing.T) {
	b := newBroker(t, t.TempDir())
	b.hideStarts.Store(true)
	j := b.waitFor(b.submit(jobYAML("exit 0", "")).ID, jobs.Settled)
	want := []jobs.State{jobs.Submitted, jobs.Matched, jobs.Reserved, jobs.Provisioning, jobs.Running, jobs.Succeeded, jobs.Settled}
	if got := states(j); !slices.Equal(got, want) {
		t.Fatalf("states %v, want %v: %+v", got, want, j.History)
	}
}

func TestRestartOnExitCode(t *testing.T) {
	b := newBroker(t, t.TempDir())
	// The first attempt exits 3; the second, 0. (Attempts are sandboxed
	// apart: they tell themselves apart by their placement's name.)
	script := `case "$CINET_PLACEMENT" in *-1) exit 3;; esac; exit 0`
	j := b.waitFor(b.submit(jobYAML(script, "recovery: {maxRestarts: 2, onExitCodes: [3]}\n")).ID, jobs.Settled)
	if j.Outcome != jobs.Succeeded || j.Restarts != 1 || len(j.Attempts) != 2 || j.Attempts[0].ExitCode != 3 {
		t.Fatalf("job %+v", j)
	}
	for _, a := range j.Attempts {
		if !a.Settled || a.Record == "" {
			t.Fatalf("attempt %+v was not billed", a)
		}
	}
	// Beyond the policy: fails.
	j = b.waitFor(b.submit(jobYAML("exit 3", "recovery: {maxRestarts: 1, onExitCodes: [3]}\n")).ID, jobs.Settled)
	if j.Outcome != jobs.Failed || len(j.Attempts) != 2 || !strings.Contains(j.Detail, "exit code 3") {
		t.Fatalf("job %+v", j)
	}
	// An exit code not listed: no restart.
	j = b.waitFor(b.submit(jobYAML("exit 4", "recovery: {maxRestarts: 1, onExitCodes: [3]}\n")).ID, jobs.Settled)
	if j.Outcome != jobs.Failed || len(j.Attempts) != 1 {
		t.Fatalf("job %+v", j)
	}
}

// TestRestartWaitsForBusyCapacity: when the instances an attempt freed
// are gone by the time it would restart on them, the job waits for
// capacity; the offer is busy, not refused, and is not excluded.
func TestRestartWaitsForBusyCapacity(t *testing.T) {
	b := newBroker(t, t.TempDir())
	// The first attempt marks its directory and waits there for a gate
	// file; the second succeeds at once.
	// (It gives up after a minute, so that a failed test leaves nothing running.)
	script := `case "$CINET_PLACEMENT" in *-1) touch started; n=0; while [ ! -e gate ] && [ $n -lt 6000 ]; do sleep 0.01; n=$((n+1)); done; exit 3;; esac; exit 0`
	id := b.submit(jobYAML(script, "recovery: {maxRestarts: 1, onExitCodes: [3]}\n")).ID
	b.waitFor(id, jobs.Running)
	var gate string
	for deadline := time.Now().Add(30 * time.Second); gate == ""; time.Sleep(5 * time.Millisecond) {
		filepath.WalkDir(filepath.Join(b.dir, "work", id+"-1"), func(path string, d os.DirEntry, err error) error {
			if err == nil && d.Name() == "started" {
				gate = filepath.Join(filepath.Dir(path), "gate")
			}
			return nil
		})
		if time.Now().After(deadline) {
			t.Fatal("the first attempt never started")
		}
	}
	t.Cleanup(func() { os.WriteFile(gate, nil, 0o600) }) // let the attempt end if the test fails
	replace := func(seq, quantity int) *descriptor.Document {
		t.Helper()
		src := strings.Replace(strings.Replace(fmt.Sprintf(offerYAML, b.offer.Offer.ComputeID, ProviderKey.ID(), HomeKey.ID()),
			"quantity: 4", fmt.Sprintf("quantity: %d", quantity), 1), "sequence: 1", fmt.Sprintf("sequence: %d", seq), 1)
		d, err := descriptor.Parse("offer.yaml", []byte(src))
		if err != nil {
			t.Fatal(err)
		}
		if err := b.settler.RegisterOffer(context.Background(), d); err != nil {
			t.Fatal(err)
		}
		b.replacements.Store(d.Digest, d)
		if err := b.book.Put(d, nil, HomeKey.ID()); err != nil {
			t.Fatal(err)
		}
		return d
	}
	replace(2, 0) // the pool is full: the instance the attempt frees goes nowhere
	if err := os.WriteFile(gate, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	b.waitNote(id, "waiting for capacity")
	full := replace(3, 4)
	j := b.waitFor(id, jobs.Settled)
	if j.Outcome != jobs.Succeeded || j.Restarts != 1 || len(j.Attempts) != 2 || j.Attempts[1].OfferDigest != full.Digest || len(j.Excluded) != 0 {
		t.Fatalf("job %+v", j)
	}
}

func TestCancelStopsAndBillsWhatRan(t *testing.T) {
	dir := t.TempDir()
	b := newBroker(t, dir)
	j := b.submit(jobYAML("sleep 30; touch finished", ""))
	b.waitFor(j.ID, jobs.Running)
	time.Sleep(200 * time.Millisecond)
	if _, err := b.runner.Cancel(context.Background(), j.ID); err != nil {
		t.Fatal(err)
	}
	j = b.waitFor(j.ID, jobs.Settled)
	if j.Outcome != jobs.Cancelled || len(j.Attempts) != 1 {
		t.Fatalf("job %+v", j)
	}
	u := j.Attempts[0].Usage
	if u == nil || u.End.Sub(u.Start) > 10*time.Second || u.End.Sub(u.Start) < 100*time.Millisecond {
		t.Fatalf("usage %+v: billed for more or less than ran", u)
	}
	if _, err := os.Stat(filepath.Join(dir, "work", j.Attempts[0].ID, "work", "finished")); err == nil {
		t.Fatal("the task ran to its end after the cancel")
	}
	// Cancelling a settled job changes nothing.
	if again, err := b.runner.Cancel(context.Background(), j.ID); err != nil || again.State != jobs.Settled {
		t.Fatalf("cancelling a settled job: %+v %v", again, err)
	}
}

func TestNoOfferCanServe(t *testing.T) {
	b := newBroker(t, t.TempDir())
	gpu := strings.Replace(jobYAML("true", ""), "resources: {cpus: 1, memory: 64Mi}", "resources: {cpus: 1, memory: 64Mi, accelerators: [{model: H100, count: 1}]}", 1)
	j := b.waitFor(b.submit(gpu).ID, jobs.Settled)
	if j.Outcome != jobs.Failed || !strings.Contains(j.Detail, "accelerator") || len(j.Attempts) != 0 || j.Cost != nil {
		t.Fatalf("job %+v", j)
	}
}

// TestResumesAfterRestart: a runner stopped while a job runs, and a new
// one over the same stores and directory, finish the job and bill it once.
func TestResumesAfterRestart(t *testing.T) {
	dir := t.TempDir()
	b := newBroker(t, dir)
	j := b.submit(jobYAML("sleep 1; echo done", ""))
	b.waitFor(j.ID, jobs.Running)
	b.stop()
	b.jobs.Close()
	b2 := newBroker(t, dir)
	j = b2.waitFor(j.ID, jobs.Settled)
	if j.Outcome != jobs.Succeeded || len(j.Attempts) != 1 || !j.Attempts[0].Settled {
		t.Fatalf("job %+v", j)
	}
	bal, _ := b2.settler.Balances(context.Background(), settlement.AccountOf("tenant", TenantKey.ID()))
	if len(bal) != 1 || bal[0].Amount != -j.Cost.Amount {
		t.Fatalf("tenant balance %v, cost %s", bal, j.Cost.Amount.Decimal())
	}
}

// TestJobsWaitForCapacity: jobs submitted while the offer's instances are
// all busy wait their turn instead of failing, and run once instances are
// free; a job whose queue timeout passes first fails and says why.
func TestJobsWaitForCapacity(t *testing.T) {
	b := newBroker(t, t.TempDir())
	// fill takes all 4 instances with jobs that run until cancelled, and
	// cancel frees them: the test waits on events, never on how fast the
	// machine runs.
	fill := func() []string {
		var busy []string
		for range 4 {
			busy = append(busy, b.submit(jobYAML("sleep 600", "")).ID)
		}
		for _, id := range busy {
			b.waitFor(id, jobs.Running)
		}
		return busy
	}
	cancel := func(busy []string) {
		for _, id := range busy {
			if _, err := b.runner.Cancel(context.Background(), id); err != nil {
				t.Fatal(err)
			}
		}
		for _, id := range busy {
			if j := b.waitFor(id, jobs.Settled); j.Outcome != jobs.Cancelled {
				t.Fatalf("busy job %s: %+v", id, j)
			}
		}
	}
	// Jobs submitted while every instance is busy wait, and run once
	// instances are free.
	busy := fill()
	var ids []string
	for range 3 {
		ids = append(ids, b.submit(jobYAML("true", "")).ID)
	}
	for _, id := range ids {
		b.waitNote(id, "waiting for capacity")
	}
	cancel(busy)
	for _, id := range ids {
		if j := b.waitFor(id, jobs.Settled); j.Outcome != jobs.Succeeded {
			t.Fatalf("job %s: %+v", id, j)
		}
	}
	// A job that cannot wait as long as the capacity is busy fails, and
	// says why.
	busy = fill()
	j := b.waitFor(b.submit(jobYAML("true", "timeouts: {queue: 1s, run: 1m}\n")).ID, jobs.Settled)
	if j.Outcome != jobs.Failed || !strings.Contains(j.Detail, "queue timeout of 1s") || len(j.Attempts) != 0 {
		t.Fatalf("job %+v", j)
	}
	cancel(busy)
}

// TestWaitingJobsMatchOnChange: a job waiting for capacity is not matched
// again on every pass while the book stays as it was, and is matched again
// when capacity frees up.
func TestWaitingJobsMatchOnChange(t *testing.T) {
	b := newBroker(t, t.TempDir())
	var busy []string
	for range 4 {
		busy = append(busy, b.submit(jobYAML("sleep 600", "")).ID)
	}
	for _, id := range busy {
		b.waitFor(id, jobs.Running)
	}
	waiting := b.submit(jobYAML("true", "")).ID
	b.waitNote(waiting, "waiting for capacity")
	matches, passes := b.matches.Load(), b.passes.Load()
	for b.passes.Load() < passes+10 {
		time.Sleep(5 * time.Millisecond)
	}
	if m := b.matches.Load(); m != matches {
		t.Fatalf("10 passes over an unchanged book matched the waiting job %d more times", m-matches)
	}
	if _, err := b.runner.Cancel(context.Background(), busy[0]); err != nil {
		t.Fatal(err)
	}
	if j := b.waitFor(waiting, jobs.Settled); j.Outcome != jobs.Succeeded {
		t.Fatalf("the waiting job, once capacity freed: %+v", j)
	}
	for _, id := range busy[1:] {
		if _, err := b.runner.Cancel(context.Background(), id); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range busy[1:] {
		b.waitFor(id, jobs.Settled)
	}
}

// TestResumesBetweenEndAndSettlement: a broker that stopped after it
// recorded an attempt's end but before it settled it settles that attempt
// when it starts again — it does not run the job again.
func TestResumesBetweenEndAndSettlement(t *testing.T) {
	dir := t.TempDir()
	b := newBroker(t, dir)
	b.failOffers.Store(true)
	j := b.submit(jobYAML("echo once >> ran", ""))
	for deadline := time.Now().Add(30 * time.Second); ; {
		got, err := b.jobs.Get(context.Background(), j.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Attempts) == 1 && got.Attempts[0].Ended() {
			if got.State.Ended() || got.Attempts[0].Settled {
				t.Fatalf("the attempt settled while offers could not be read: %+v", got)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the attempt never ended: %+v", got)
		}
		time.Sleep(10 * time.Millisecond)
	}
	b.stop()
	b.jobs.Close()
	b2 := newBroker(t, dir)
	done := b2.waitFor(j.ID, jobs.Settled)
	if done.Outcome != jobs.Succeeded || len(done.Attempts) != 1 || done.Attempts[0].Record == "" {
		t.Fatalf("job %+v", done)
	}
	placements, _ := filepath.Glob(filepath.Join(dir, "work", j.ID+"-*"))
	if len(placements) != 1 {
		t.Fatalf("the job was placed %d times", len(placements))
	}
}

// TestBudgetHolds: a job that would spend past its budget.maxTotal is
// stopped at it, with the reason in its history, and charged no more than
// the budget — here a CPU burn meant to run 30 s on a budget of about 4 s
// at the class's full price (and of about a second, near the case that was
// once charged 7.2 times its budget).
// TestLongestRecord: an attempt is billed in one usage record, which
// covers at most 31 days, so the broker stops an attempt that has run that
// long — here, on a clock moved 31 days on — says why, and bills it.
func TestLongestRecord(t *testing.T) {
	b := newBroker(t, t.TempDir())
	j := b.submit(jobYAML("sleep 600", ""))
	b.waitFor(j.ID, jobs.Running)
	b.skew.Store(int64(settlement.MaxRecordPeriod))
	j = b.waitFor(j.ID, jobs.Settled)
	if j.Outcome != jobs.Failed || !strings.Contains(j.Detail, "stopped after 31 days") || !j.Attempts[0].LimitStopped {
		t.Fatalf("job %s: %s; %+v", j.Outcome, j.Detail, j.Attempts)
	}
	stopping := false
	for _, tr := range j.History {
		stopping = stopping || strings.HasPrefix(tr.Detail, "stopping: an attempt runs at most 31 days")
	}
	if !stopping || j.Cost == nil || j.Cost.Amount <= 0 || j.Attempts[0].Record == "" {
		t.Fatalf("history %+v; cost %+v; attempt %+v", j.History, j.Cost, j.Attempts[0])
	}
}

func TestBudgetHolds(t *testing.T) {
	b := newBroker(t, t.TempDir())
	for _, budget := range []string{"0.0001", "0.00003"} {
		// Estimated at 1 s, so that the match lets it in.
		doc := strings.Replace(jobYAML("end=$(( $(date +%s) + 30 )); while [ $(date +%s) -lt $end ]; do :; done",
			"budget: {currency: USD, maxTotal: \""+budget+"\"}\n"), "estimatedRuntime: 10s", "estimatedRuntime: 1s", 1)
		j := b.submit(doc)
		start := time.Now()
		j = b.waitFor(j.ID, jobs.Settled)
		if j.Outcome != jobs.Failed || !strings.Contains(j.Detail, "budget") {
			t.Fatalf("budget %s: job %s: %s", budget, j.Outcome, j.Detail)
		}
		if took := time.Since(start); took > 20*time.Second {
			t.Errorf("budget %s: the job ran %s", budget, took)
		}
		limit, _ := descriptor.ParseNanos(budget)
		if j.Cost == nil || j.Cost.Amount > limit || j.Cost.Amount <= 0 {
			t.Fatalf("budget %s: charged %+v; job %s %s; attempts %+v", budget, j.Cost, j.Outcome, j.Detail, j.Attempts)
		}
		stopping := false
		for _, tr := range j.History {
			stopping = stopping || strings.Contains(tr.Detail, "budget is spent")
		}
		if !stopping {
			t.Errorf("budget %s: the history does not say why the job stopped: %+v", budget, j.History)
		}
		t.Logf("budget %s: charged %s, attempt %s", budget, j.Cost.Amount.Decimal(), j.Attempts[0].Usage.End.Sub(j.Attempts[0].Usage.Start))
	}
}

// refusingRemote is another broker that answers every reservation with err.
type refusingRemote struct {
	jobs.Remote
	err   error
	asked atomic.Int32
}

func (f *refusingRemote) Reserve(context.Context, identity.PrincipalID, string, int, string, time.Duration) (book.Reservation, error) {
	f.asked.Add(1)
	return book.Reservation{}, f.err
}

// TestPeerRefusalExcludesTheOffer: when the only offer is another
// broker's and its owner refuses the lease, the offer is excluded and the
// job fails at once, saying so; when the owner is out of reach, the job
// waits for it instead.
func TestPeerRefusalExcludesTheOffer(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"refused", fmt.Errorf("%w (broker x: remote-cpu is owned by y, which alone reserves it)", jobs.ErrRefused), "no offer left to try after 1 refused or lost it"},
		{"out of reach", errors.New("dial backoff"), "waiting for capacity"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			remote := &refusingRemote{err: tc.err}
			b := newBroker(t, t.TempDir(), func(c *jobs.Config) { c.Remote = remote })
			b.book.Remove(b.offer.Offer.ComputeID.Name())
			cid, _ := identity.NewComputeID(ProviderKey.ID(), "cn-east-1", "b", "remote-cpu")
			doc, err := descriptor.Parse("offer.yaml", []byte(strings.Replace(fmt.Sprintf(offerYAML, cid, ProviderKey.ID(), ExecKey.ID()), "zone: a", "zone: b", 1)))
			if err != nil {
				t.Fatal(err)
			}
			if err := b.book.Put(doc, nil, ExecKey.ID()); err != nil {
				t.Fatal(err)
			}
			j := b.submit(jobYAML("true", ""))
			if tc.want == "waiting for capacity" {
				b.waitNote(j.ID, tc.want)
				return
			}
			j = b.waitFor(j.ID, jobs.Settled)
			if j.Outcome != jobs.Failed || !strings.Contains(j.Detail, tc.want) || !slices.Contains(j.Excluded, doc.Offer.ComputeID.Name()) || remote.asked.Load() != 1 {
				t.Fatalf("job %s: %s; excluded %v; asked %d times", j.Outcome, j.Detail, j.Excluded, remote.asked.Load())
			}
		})
	}
}
