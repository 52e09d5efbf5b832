package integration

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/cinet/cinet/broker/jobs"
	"github.com/cinet/cinet/descriptor"
)

// TestBrokerSurvivesSIGKILL kills the broker with SIGKILL, several times,
// while jobs run and their usage settles, starting it again each time;
// then checks that every job was settled, each attempt billed once, and
// the books agree with the jobs. Set CINET_CRASH_SEED to replay a run.
func TestBrokerSurvivesSIGKILL(t *testing.T) {
	for name, store := range stores(t) {
		t.Run("store="+name, func(t *testing.T) { brokerSurvivesSIGKILL(t, store(t)) })
	}
}

func brokerSurvivesSIGKILL(t *testing.T, store string) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("CINET_CRASH_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	t.Logf("CINET_CRASH_SEED=%d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))

	b := newBrokerDir(t, store)
	b.start()
	b.registerOffer(4)
	tenant := b.client("tenant")
	ctx := context.Background()
	var ids []string
	for i := range 10 {
		// Jobs of 0.2s to 2s; one in three fails once and is restarted.
		script := fmt.Sprintf("sleep %.1f", 0.2+float64(i%5)*0.45)
		extra := ""
		if i%3 == 0 {
			script = fmt.Sprintf(`case "$CINET_PLACEMENT" in *-1) exit 7;; esac; %s`, script)
			extra = "recovery: {maxRestarts: 2, onExitCodes: [7]}\n"
		}
		j, err := tenant.SubmitJob(ctx, []byte(job(fmt.Sprintf("crash-%d", i), script, extra)), "job.yaml")
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, j.ID)
	}
	for round := range 4 {
		time.Sleep(time.Duration(200+rng.IntN(900)) * time.Millisecond)
		states := map[jobs.State]int{}
		if list, err := b.client("tenant").Jobs(ctx, "", 0); err == nil {
			for _, j := range list {
				states[j.State]++
			}
		}
		b.stop(syscall.SIGKILL)
		t.Logf("round %d: broker killed with jobs %v", round, states)
		b.start()
	}
	var cost descriptor.Nanos
	attempts := 0
	for _, id := range ids {
		j := b.waitState(id, jobs.Settled)
		if j.Outcome != jobs.Succeeded {
			t.Errorf("job %s: %s: %s", id, j.Outcome, j.Detail)
		}
		for _, a := range j.Attempts {
			if !a.Settled {
				t.Errorf("job %s attempt %s is not settled", id, a.ID)
			}
			if a.Record != "" {
				attempts++
			}
		}
		if j.Cost != nil {
			cost += j.Cost.Amount
		}
	}
	// The books: one transaction per billed attempt, and the tenant owes
	// exactly what the jobs cost.
	regulator := b.client("regulator")
	bal, err := regulator.Balances(ctx, "tenant/"+tenantKey.ID().String())
	if err != nil || len(bal.Balances) != 1 || bal.Balances[0].Amount != -cost {
		t.Fatalf("tenant balance %+v %v; the jobs cost %s", bal, err, cost.Decimal())
	}
	seen, n := b.tenantRecords()
	for rec, count := range seen {
		if count != 1 {
			t.Fatalf("record %s billed %d times", rec, count)
		}
	}
	if n != attempts {
		t.Fatalf("%d transactions for %d billed attempts", n, attempts)
	}
}
