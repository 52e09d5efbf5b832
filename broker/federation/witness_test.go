package federation

import (
	"context"
	"crypto/sha256"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/cinet/cinet/identity"
	"github.com/cinet/cinet/settlement"
	"github.com/cinet/cinet/settlement/auditlog"
	"github.com/cinet/cinet/settlement/settlementtest"
)

// cosignedBy reports whether a witnessed checkpoint carries a valid
// cosignature of each witness, and its size.
func cosignedBy(t *testing.T, signed []byte, log identity.PrincipalID, witnesses ...identity.PrincipalID) (int64, bool) {
	t.Helper()
	if signed == nil {
		return 0, false
	}
	c, err := openCheckpointOf(log, signed)
	if err != nil {
		t.Fatalf("the witnessed checkpoint: %v\n%s", err, signed)
	}
	for _, w := range witnesses {
		v, err := w.CosignatureVerifier(WitnessName(w))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := note.Open(signed, note.VerifierList(v)); err != nil {
			return c.Size, false
		}
	}
	return c.Size, true
}

// TestWitnessing: each member cosigns another's checkpoints once they are
// consistent with what it saw, and the log's broker serves them with every
// cosignature.
func TestWitnessing(t *testing.T) {
	dir := t.TempDir()
	a, b, c := startWith(t, keyA, members, startOptions{dir: dir}), start(t, keyB, members), start(t, keyC, members)
	connect(t, a, b)
	connect(t, b, c)
	ctx := context.Background()
	offer := settlementtest.Offer(t, keyA)
	if err := a.settler.RegisterOffer(ctx, offer); err != nil {
		t.Fatal(err)
	}
	ingest := func(placement string) {
		t.Helper()
		rec := settlementtest.Record(offer, keyA, keyA, placement, time.Now().UTC().Add(-time.Hour).Truncate(time.Second), time.Minute)
		out, err := a.settler.Ingest(ctx, [][]byte{settlementtest.Seal(t, keyA, rec)})
		if err != nil || out[0].Status != settlement.Accepted {
			t.Fatalf("ingest: %+v %v", out, err)
		}
	}
	ingest("p-1")
	if _, err := a.settler.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	first, _ := a.settler.LatestCheckpoint(ctx)
	eventually(t, "b and c cosign a's checkpoint", func() bool {
		size, ok := cosignedBy(t, a.Witnessed(), keyA.ID(), keyB.ID(), keyC.ID())
		return ok && size == first.Size
	})
	ingest("p-2")
	if _, err := a.settler.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	second, _ := a.settler.LatestCheckpoint(ctx)
	if second.Size <= first.Size {
		t.Fatalf("the log did not grow: %d then %d", first.Size, second.Size)
	}
	eventually(t, "b and c cosign the grown log once it proves consistent", func() bool {
		size, ok := cosignedBy(t, a.Witnessed(), keyA.ID(), keyB.ID(), keyC.ID())
		return ok && size == second.Size
	})
	if len(a.Equivocations())+len(b.Equivocations())+len(c.Equivocations()) != 0 {
		t.Fatalf("equivocations reported of honest logs: %+v %+v %+v", a.Equivocations(), b.Equivocations(), c.Equivocations())
	}
	// Restarted, a still serves its witnessed checkpoint.
	a.stop()
	a = startWith(t, keyA, members, startOptions{dir: dir})
	if size, ok := cosignedBy(t, a.Witnessed(), keyA.ID(), keyB.ID(), keyC.ID()); !ok || size != second.Size {
		t.Fatalf("after a restart: size %d, cosigned by both %v", size, ok)
	}
}

// forkedLog is a hostile member's audit log: it signs whatever checkpoints
// the test sets, and proves nothing.
type forkedLog struct {
	mu    sync.Mutex
	proof []tlog.Hash
}

func (f *forkedLog) LatestCheckpoint(context.Context) (*auditlog.Checkpoint, error) { return nil, nil }

func (f *forkedLog) ProveConsistency(context.Context, int64, int64) ([]tlog.Hash, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.proof, nil
}

func signCheckpoint(t *testing.T, k *identity.Key, size int64, seed string) []byte {
	t.Helper()
	signer, err := k.NoteSigner(settlement.LogOrigin(k.ID()))
	if err != nil {
		t.Fatal(err)
	}
	c, err := auditlog.Sign(signer, settlement.LogOrigin(k.ID()), size, tlog.Hash(sha256.Sum256([]byte(seed))))
	if err != nil {
		t.Fatal(err)
	}
	return c.Note
}

// TestEquivocationReported: a member that signs two checkpoints of its log
// with the same size and different roots, or a larger one that no
// consistency proof joins to the smaller, is reported by every witness
// with both notes; a forged checkpoint is rejected at the gossip layer.
func TestEquivocationReported(t *testing.T) {
	forked := &forkedLog{}
	h := hostile[0]
	a, b := start(t, keyA, members), startWith(t, h, members, startOptions{auditLog: forked})
	connect(t, a, b)
	ctx := context.Background()

	one := signCheckpoint(t, h, 5, "one")
	if err := b.PublishCheckpoint(ctx, one); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a cosigns the first checkpoint it sees", func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		return a.w.seen[h.ID()] != nil
	})
	other := signCheckpoint(t, h, 5, "other")
	if err := b.PublishCheckpoint(ctx, other); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a reports two roots for one size", func() bool { return len(a.Equivocations()) == 1 })
	e := a.Equivocations()[0]
	if e.Broker != h.ID() || string(e.First) != string(one) || string(e.Second) != string(other) || !strings.Contains(e.Detail, "different roots") {
		t.Fatalf("the report: %+v", e)
	}
	// The evidence stands on its own: both notes verify under the
	// broker's key.
	for _, signed := range [][]byte{e.First, e.Second} {
		if _, err := openCheckpointOf(h.ID(), signed); err != nil {
			t.Fatalf("evidence: %v", err)
		}
	}

	forked.mu.Lock()
	forked.proof = []tlog.Hash{tlog.Hash(sha256.Sum256([]byte("bogus")))}
	forked.mu.Unlock()
	if err := b.PublishCheckpoint(ctx, signCheckpoint(t, h, 9, "grown")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a reports a checkpoint no proof joins", func() bool { return len(a.Equivocations()) == 2 })
	if d := a.Equivocations()[1].Detail; !strings.Contains(d, "no consistency proof joins size 5 to size 9") {
		t.Fatalf("the second report: %s", d)
	}
	if testutil.ToFloat64(a.m.equivocations) != 2 {
		t.Fatalf("equivocations counted: %v", testutil.ToFloat64(a.m.equivocations))
	}

	// A checkpoint signed by another key than its author's is rejected.
	before := testutil.ToFloat64(a.m.gossip.WithLabelValues(TopicCheckpoints, "rejected", "bad-signature"))
	if err := b.PublishCheckpoint(ctx, signCheckpoint(t, keyC, 12, "not b's")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a rejects a checkpoint of another's log", func() bool {
		return testutil.ToFloat64(a.m.gossip.WithLabelValues(TopicCheckpoints, "rejected", "bad-signature")) > before
	})
	if len(a.Equivocations()) != 2 {
		t.Fatalf("a forged checkpoint was reported as the author's: %+v", a.Equivocations())
	}
}
