package settlement_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"
	"golang.org/x/sync/errgroup"

	"github.com/cinet/cinet/settlement"
	"github.com/cinet/cinet/settlement/auditlog"
	"github.com/cinet/cinet/settlement/storetest"
)

// BenchmarkIngest measures the whole path a usage record takes — decode and
// verify the envelope, check, rate, post the balanced transaction, append
// the record and transaction to the audit log, and commit durably — with
// two clients (peers) sending batches of 500 at once, as a broker serves
// them, and reports records/s. BenchmarkIngestSerial is one client.
func BenchmarkIngest(b *testing.B) { benchIngest(b, 2) }

func BenchmarkIngestSerial(b *testing.B) { benchIngest(b, 1) }

func benchIngest(b *testing.B, clients int) {
	for _, st := range stores {
		b.Run("store="+st.name, func(b *testing.B) {
			store, _ := st.open(b)
			s := newSettler(b, store, homeKey)
			doc := offer(b, homeKey)
			if err := s.RegisterOffer(ctx, doc); err != nil {
				b.Fatal(err)
			}
			const batch, perClient = 500, 4
			made := 0
			next := func() [][]byte {
				envs := make([][]byte, batch)
				for j := range envs {
					i := made
					made++
					r := rec(doc, homeKey, homeKey, fmt.Sprintf("pl-%d", i%5000), now.Add(-720*time.Hour).Add(time.Duration(i/5000)*time.Hour), time.Hour)
					r.Sequence = int64(i/5000 + 1)
					r.Meters = append(r.Meters, settlement.Meter{Meter: settlement.AcceleratorSeconds, Model: "H100", Quantity: "25000.5"})
					envs[j] = seal(b, homeKey, r)
				}
				return envs
			}
			records := 0
			for b.Loop() {
				b.StopTimer()
				work := make([][][][]byte, clients)
				for c := range work {
					for range perClient {
						work[c] = append(work[c], next())
					}
				}
				b.StartTimer()
				var g errgroup.Group
				for _, batches := range work {
					g.Go(func() error {
						for _, envs := range batches {
							out, err := s.Ingest(ctx, envs)
							if err != nil {
								return err
							}
							for _, o := range out {
								if o.Status != settlement.Accepted {
									return fmt.Errorf("%+v", o)
								}
							}
						}
						return nil
					})
				}
				if err := g.Wait(); err != nil {
					b.Fatal(err)
				}
				records += clients * perClient * batch
			}
			b.ReportMetric(float64(records)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

// BenchmarkProve reports the time to build an inclusion proof and receipt
// in a log of 1,000,000 entries in the SQLite store: p50 and p99 over
// random entries.
func BenchmarkProve(b *testing.B) {
	store, _ := storetest.SQLite(b)
	const size = 1_000_000
	entry := func(i int) []byte { return []byte(fmt.Sprintf(`{"type":"bench","n":%d}`, i)) }
	for start := 0; start < size; start += 20000 {
		var entries [][]byte
		for i := start; i < start+20000; i++ {
			entries = append(entries, entry(i))
		}
		err := store.Update(ctx, func(tx settlement.Tx) error {
			hashes, err := auditlog.Append(int64(start), entries, tlog.HashReaderFunc(tx.ReadHashes))
			if err != nil {
				return err
			}
			return tx.AppendLog(int64(start), entries, hashes)
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	s := newSettler(b, store, homeKey)
	cp, err := s.Checkpoint(ctx)
	if err != nil || cp.Size != size {
		b.Fatalf("checkpoint %v %v", cp, err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var lat []time.Duration
	b.ResetTimer()
	for b.Loop() {
		i := int64(rng.IntN(size))
		t0 := time.Now()
		p, err := s.ProveIndex(ctx, "", i)
		lat = append(lat, time.Since(t0))
		if err != nil {
			b.Fatal(err)
		}
		if b.N < 5 {
			if _, _, err := auditlog.VerifyReceipt(p.Receipt, entry(int(i)), s.VerifierKey(), nil); err != nil {
				b.Fatal(err)
			}
		}
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}
