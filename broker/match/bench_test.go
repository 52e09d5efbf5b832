package match

import (
	"flag"
	"fmt"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/cinet/cinet/broker/book"
	"github.com/cinet/cinet/broker/match/synth"
	"github.com/cinet/cinet/descriptor"
)

type benchSetup struct {
	m             *Matcher
	jobs          []*descriptor.Document
	bytesPerOffer float64
}

var benchBooks = map[int]*benchSetup{}

// setup builds a book of n generated offers once per size and measures the
// heap it holds.
func setup(b testing.TB, n int) *benchSetup {
	if s, ok := benchBooks[n]; ok {
		return s
	}
	g := synth.New(42, max(50, n/100))
	jobs := make([]*descriptor.Document, 2000)
	for i := range jobs {
		jobs[i] = g.Job()
	}
	c := &clock{synth.Epoch}
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	bk := book.New(c.now)
	for range n {
		d, env := g.Offer()
		if err := bk.Put(d, env, d.Offer.Broker); err != nil {
			b.Fatal(err)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	s := &benchSetup{
		m:             New(bk, Config{HomeRegion: "us-east-1"}),
		jobs:          jobs,
		bytesPerOffer: float64(after.HeapAlloc-before.HeapAlloc) / float64(n),
	}
	benchBooks[n] = s
	return s
}

var million = flag.Bool("match.million", false, "BenchmarkMatch: also build a book of 1,000,000 offers (several minutes; the book holds about 1.7 GB, the process peaks near 3.5 GB while building it)")

// BenchmarkMatch measures matching decisions against books of 1,000,
// 10,000 and 100,000 generated offers (and 1,000,000 with
// -match.million) with a realistic job mix, on one core: go test -bench
// Match -cpu 1 ./broker/match. It reports, for the indexed matcher over
// the job stream, decisions/s and the 99th-percentile decision time; then
// it runs the indexed and the full-scan matcher over the same jobs (the
// first ones of the stream, as many as take a few seconds at full scan)
// and reports the full scan's decisions/s and the ratio of the two
// (speedup); and the heap the book holds per offer.
func BenchmarkMatch(b *testing.B) {
	sizes := []int{1_000, 10_000, 100_000}
	if *million {
		sizes = append(sizes, 1_000_000)
	}
	for _, n := range sizes {
		b.Run(fmt.Sprintf("offers=%d", n), func(b *testing.B) {
			s := setup(b, n)
			lat := make([]time.Duration, 0, b.N)
			i := 0
			b.ResetTimer()
			for b.Loop() {
				job := s.jobs[i%len(s.jobs)]
				i++
				t0 := time.Now()
				_, _ = s.m.Match(job, Options{})
				lat = append(lat, time.Since(t0))
			}
			b.StopTimer()
			indexed := float64(len(lat)) / b.Elapsed().Seconds()
			// Both matchers on the same jobs, timed apart.
			same := s.jobs[:min(len(s.jobs), max(20, 2_000_000/n))]
			t0 := time.Now()
			for _, job := range same {
				_, _ = s.m.Match(job, Options{})
			}
			indexedSame := time.Since(t0)
			t0 = time.Now()
			for _, job := range same {
				_, _ = s.m.MatchNaive(job, Options{})
			}
			naiveSame := time.Since(t0)
			slices.Sort(lat)
			b.ReportMetric(indexed, "decisions/s")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
			b.ReportMetric(float64(len(same))/naiveSame.Seconds(), "naive-decisions/s")
			b.ReportMetric(naiveSame.Seconds()/indexedSame.Seconds(), "speedup")
			b.ReportMetric(s.bytesPerOffer, "heap-B/offer")
		})
	}
}
