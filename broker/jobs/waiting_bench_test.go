package jobs_test

import (
	"errors"
	"flag"
	"testing"
	"time"

	"github.com/cinet/cinet/broker/book"
	"github.com/cinet/cinet/broker/match/synth"
)

// BenchmarkWaitingJobs holds 10,000 jobs waiting for capacity on a book
// of 10,000 other offers and reports how often the matcher runs while the
// book stays the same (idle-matches/s, which should be 0), how many
// matches follow one offer changing (matches-after-change: each waiting
// job once), and how long a pass over the waiting jobs takes (pass-ms).
var waitingJobs = flag.Int("jobs.waiting", 10_000, "BenchmarkWaitingJobs: how many jobs wait")

func BenchmarkWaitingJobs(b *testing.B) {
	for b.Loop() {
		br := newBroker(b, b.TempDir())
		if _, err := br.book.Reserve(br.offer.Offer.ComputeID.Name(), 4, "busy", time.Hour); err != nil {
			b.Fatal(err)
		}
		g := synth.New(1, 100)
		for br.book.Len() < 10_001 {
			d, env := g.Offer()
			if err := br.book.Put(d, env, d.Offer.Broker); err != nil && !errors.Is(err, book.ErrExpired) {
				b.Fatal(err)
			}
		}
		waiting := int64(*waitingJobs)
		t0 := time.Now()
		for range waiting {
			br.submit(jobYAML("true", "placement: {regions: {allow: [cn-east-1]}}\n")) // only the busy offer fits
		}
		b.Logf("%d jobs submitted in %v", waiting, time.Since(t0))
		// Every job has been matched once and found the capacity busy.
		for br.matches.Load() < waiting {
			time.Sleep(10 * time.Millisecond)
		}
		settle := func() {
			for {
				m, p := br.matches.Load(), br.passes.Load()
				for br.passes.Load() < p+2 {
					time.Sleep(time.Millisecond)
				}
				if br.matches.Load() == m {
					return
				}
			}
		}
		settle()
		b.Logf("all waiting after %v", time.Since(t0))
		m0, p0, t0 := br.matches.Load(), br.passes.Load(), time.Now()
		for br.passes.Load() < p0+10 {
			time.Sleep(time.Millisecond)
		}
		idle := time.Since(t0)
		idleMatches := br.matches.Load() - m0
		passes := br.passes.Load() - p0

		// One offer changes: a new one arrives.
		for n := br.book.Len(); br.book.Len() == n; {
			d, env := g.Offer()
			if err := br.book.Put(d, env, d.Offer.Broker); err != nil && !errors.Is(err, book.ErrExpired) {
				b.Fatal(err)
			}
		}
		m1 := br.matches.Load()
		settle()
		after := br.matches.Load() - m1

		b.ReportMetric(float64(idleMatches)/idle.Seconds(), "idle-matches/s")
		b.ReportMetric(float64(after), "matches-after-change")
		b.ReportMetric(float64(idle.Milliseconds())/float64(passes), "pass-ms")
	}
}
