package integration

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cinet/cinet/broker/jobs"
)

// TestLoad submits 1,000 jobs from 50 concurrent clients to a broker
// process on loopback, checks that none is lost — every one answered with
// an ID, listed, and run to settlement — and reports submit latency and
// throughput. It stops by itself; it never fails on the machine's speed.
func TestLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("the load test starts 1,000 jobs")
	}
	b := newBrokerDir(t, "")
	// The test measures the broker's throughput for one tenant, whose
	// rate its operator has lifted.
	b.appendConfig("limits: {principalRate: -1}\n")
	b.start()
	b.registerOffer(16)
	ctx := context.Background()
	const clients, each = 50, 20
	body := []byte(job("load", "true", ""))
	var mu sync.Mutex
	var latencies []time.Duration
	ids := map[string]bool{}
	var wg sync.WaitGroup
	start := time.Now()
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl := b.client("tenant")
			for i := range each {
				t0 := time.Now()
				j, err := cl.SubmitJob(ctx, body, "load.yaml")
				d := time.Since(t0)
				if err != nil {
					t.Errorf("client %d, job %d: %v", c, i, err)
					continue
				}
				mu.Lock()
				latencies = append(latencies, d)
				ids[j.ID] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if len(ids) != clients*each {
		t.Fatalf("%d of %d submissions got a job ID", len(ids), clients*each)
	}
	slices.Sort(latencies)
	t.Logf("%d submissions from %d clients in %s: %.0f submissions/s; latency p50 %s, p99 %s, max %s",
		len(ids), clients, elapsed.Round(time.Millisecond), float64(len(ids))/elapsed.Seconds(),
		latencies[len(latencies)/2].Round(time.Microsecond), latencies[len(latencies)*99/100].Round(time.Microsecond), latencies[len(latencies)-1].Round(time.Microsecond))

	// None lost: the operator lists every one, and every one settles.
	list, err := b.client("broker").Jobs(ctx, "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	listed := 0
	for _, j := range list {
		if ids[j.ID] {
			listed++
		}
	}
	if listed != len(ids) {
		t.Fatalf("the broker lists %d of the %d jobs submitted", listed, len(ids))
	}
	deadline := time.Now().Add(5 * time.Minute)
	for {
		settled, err := b.client("broker").Jobs(ctx, string(jobs.Settled), 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(settled) == len(ids) {
			failed := 0
			for _, j := range settled {
				if j.Outcome != jobs.Succeeded {
					failed++
					if failed <= 3 {
						t.Errorf("job %s: %s: %s; history %+v; attempts %+v", j.ID, j.Outcome, j.Detail, j.History, j.Attempts)
					}
				}
			}
			if failed > 0 {
				t.Fatalf("%d of %d jobs did not succeed", failed, len(ids))
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d jobs settled after 5 minutes", len(settled), len(ids))
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("all %d jobs ran and settled %s after the first submission", len(ids), time.Since(start).Round(time.Millisecond))

}
