package auditlog

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"testing"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/cinet/cinet/identity"
)

// memLog is a log held in memory, for tests.
type memLog struct {
	hashes  map[int64]tlog.Hash
	entries [][]byte
	cp      *Checkpoint
}

func newMemLog() *memLog { return &memLog{hashes: map[int64]tlog.Hash{}} }

func (m *memLog) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, ix := range indexes {
		h, ok := m.hashes[ix]
		if !ok {
			return nil, fmt.Errorf("no hash %d", ix)
		}
		out[i] = h
	}
	return out, nil
}

func (m *memLog) append(t testing.TB, entries ...[]byte) {
	t.Helper()
	hs, err := Append(int64(len(m.entries)), entries, m)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hs {
		m.hashes[h.Index] = h.Hash
	}
	m.entries = append(m.entries, entries...)
}

func (m *memLog) Checkpoint(context.Context) (*Checkpoint, error) {
	if m.cp == nil {
		return nil, errors.New("none")
	}
	return m.cp, nil
}
func (m *memLog) ReadHashesCtx(_ context.Context, ix []int64) ([]tlog.Hash, error) {
	return m.ReadHashes(ix)
}
func (m *memLog) ReadEntries(_ context.Context, start, n int64) ([][]byte, error) {
	return m.entries[start : start+n], nil
}

type source struct{ *memLog }

func (s source) ReadHashes(ctx context.Context, ix []int64) ([]tlog.Hash, error) {
	return s.memLog.ReadHashes(ix)
}

const origin = "cinet.test/broker-a"

func signer(t testing.TB) (*identity.Key, string) {
	t.Helper()
	k := identity.NewKey(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32)))
	vkey, err := k.ID().VerifierKey(origin)
	if err != nil {
		t.Fatal(err)
	}
	return k, vkey
}

func sign(t testing.TB, k *identity.Key, m *memLog) *Checkpoint {
	t.Helper()
	s, err := k.NoteSigner(origin)
	if err != nil {
		t.Fatal(err)
	}
	root, err := TreeHash(int64(len(m.entries)), m)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Sign(s, origin, int64(len(m.entries)), root)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func entry(i int) []byte { return []byte(fmt.Sprintf(`{"n":%d}`, i)) }

func TestReceiptsAndConsistency(t *testing.T) {
	k, vkey := signer(t)
	m := newMemLog()
	var checkpoints []*Checkpoint
	for batch := range 30 {
		var es [][]byte
		for j := range batch + 1 {
			es = append(es, entry(len(m.entries)+j))
		}
		m.append(t, es...)
		checkpoints = append(checkpoints, sign(t, k, m))
	}
	last := checkpoints[len(checkpoints)-1]
	if _, err := OpenCheckpoint(last.Note, vkey); err != nil {
		t.Fatal(err)
	}
	for i := int64(0); i < last.Size; i += 7 {
		receipt, err := Receipt(last, i, m)
		if err != nil {
			t.Fatal(err)
		}
		c, idx, err := VerifyReceipt(receipt, m.entries[i], vkey, last.Note)
		if err != nil || idx != i || c.Size != last.Size {
			t.Fatalf("entry %d: %v", i, err)
		}
		if _, _, err := VerifyReceipt(receipt, m.entries[(i+1)%last.Size], vkey, nil); err == nil {
			t.Fatalf("receipt for entry %d verified another entry", i)
		}
	}
	for _, old := range checkpoints {
		p, err := ProveConsistency(old.Size, last.Size, m)
		if err != nil {
			t.Fatal(err)
		}
		if err := VerifyConsistency(old, last, p); err != nil {
			t.Fatalf("%d -> %d: %v", old.Size, last.Size, err)
		}
	}
	// A rewritten history is not consistent with an old checkpoint.
	forged := newMemLog()
	for i := range m.entries {
		e := m.entries[i]
		if i == 3 {
			e = []byte(`{"n":"forged"}`)
		}
		forged.append(t, e)
	}
	forgedCP := sign(t, k, forged)
	p, err := ProveConsistency(checkpoints[5].Size, forgedCP.Size, forged)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyConsistency(checkpoints[5], forgedCP, p); err == nil {
		t.Fatal("a rewritten log passed the consistency check")
	}
	// Every log extends the empty one and itself, with empty proofs; a
	// log of the same size with another root does not.
	empty := sign(t, k, newMemLog())
	for _, c := range []struct {
		old, n *Checkpoint
		ok     bool
	}{{empty, last, true}, {last, last, true}, {forgedCP, last, false}} {
		p, err := ProveConsistency(c.old.Size, c.n.Size, m)
		if err != nil || len(p) != 0 {
			t.Fatalf("%d -> %d: %d hashes, %v", c.old.Size, c.n.Size, len(p), err)
		}
		if err := VerifyConsistency(c.old, c.n, p); (err == nil) != c.ok {
			t.Fatalf("%d -> %d: %v, want ok=%v", c.old.Size, c.n.Size, err, c.ok)
		}
	}
}

// TestReceiptTamperEveryByte: changing any byte of the receipt, the entry
// or the checkpoint fails verification.
func TestReceiptTamperEveryByte(t *testing.T) {
	k, vkey := signer(t)
	m := newMemLog()
	for i := range 37 {
		m.append(t, entry(i))
	}
	c := sign(t, k, m)
	receipt, err := Receipt(c, 21, m)
	if err != nil {
		t.Fatal(err)
	}
	ent := m.entries[21]
	if _, _, err := VerifyReceipt(receipt, ent, vkey, c.Note); err != nil {
		t.Fatal(err)
	}
	flip := func(b []byte, i int) []byte { b = bytes.Clone(b); b[i] ^= 0x01; return b }
	for i := range receipt {
		if _, _, err := VerifyReceipt(flip(receipt, i), ent, vkey, nil); err == nil {
			t.Fatalf("receipt byte %d (%q) changed still verifies", i, receipt[i])
		}
	}
	for i := range ent {
		if _, _, err := VerifyReceipt(receipt, flip(ent, i), vkey, nil); err == nil {
			t.Fatalf("entry byte %d changed still verifies", i)
		}
	}
	for i := range c.Note {
		if _, _, err := VerifyReceipt(receipt, ent, vkey, flip(c.Note, i)); err == nil {
			t.Fatalf("checkpoint byte %d changed still verifies", i)
		}
		if _, err := OpenCheckpoint(flip(c.Note, i), vkey); err == nil {
			t.Fatalf("checkpoint byte %d changed still opens", i)
		}
	}
}

func TestTilesHandler(t *testing.T) {
	k, _ := signer(t)
	m := newMemLog()
	for i := range 600 {
		m.append(t, entry(i))
	}
	m.cp = sign(t, k, m)
	srv := httptest.NewServer(Handler(source{m}, true, nil))
	defer srv.Close()
	get := func(path string) (int, []byte) {
		resp, err := http.Get(srv.URL + "/" + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	if code, b := get("checkpoint"); code != 200 || !bytes.Equal(b, m.cp.Note) {
		t.Fatalf("checkpoint: %d", code)
	}
	// Tiles read back through tlog's tile reader reproduce the tree.
	tiles := tlog.TileHashReader(tlog.Tree{N: m.cp.Size, Hash: m.cp.Hash}, tileReader{get})
	if _, err := tlog.TreeHash(m.cp.Size, tiles); err != nil {
		t.Fatalf("tree from tiles: %v", err)
	}
	p, err := tlog.ProveRecord(m.cp.Size, 555, tiles)
	if err != nil {
		t.Fatal(err)
	}
	if err := tlog.CheckRecord(p, m.cp.Size, m.cp.Hash, 555, LeafHash(m.entries[555])); err != nil {
		t.Fatalf("proof from served tiles: %v", err)
	}
	code, bundle := get("tile/entries/000")
	if code != 200 || !bytes.Equal(bundle, EntryBundle(m.entries[:256])) {
		t.Fatalf("entry bundle: %d", code)
	}
	if code, _ := get("tile/entries/002.p/88"); code != 200 {
		t.Fatalf("partial bundle: %d", code)
	}
	for _, bad := range []string{"tile/entries/002.p/89", "tile/0/003", "tile/1/001", "tile/x", "nope", "tile/0/00a",
		"tile/99/000", "tile/7/000", "tile/8/000", "tile/0/x999/999/999/999/999/999", "tile/entries%2F000", "tile%2Fentries/000", "tile/0%2F000"} {
		if code, _ := get(bad); code != 404 {
			t.Errorf("%s: %d, want 404", bad, code)
		}
	}

	// A handler of hash tiles alone serves no entry bundle, by any path.
	hashes := httptest.NewServer(Handler(source{m}, false, nil))
	defer hashes.Close()
	for path, want := range map[string]int{"tile/0/000": 200, "tile/entries/000": 404, "tile/entries/002.p/88": 404, "tile/entries%2F000": 404} {
		resp, err := http.Get(hashes.URL + "/" + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("hash tiles only: %s: %d, want %d", path, resp.StatusCode, want)
		}
	}
}

// TestWithinTree holds the overflow-free bound of withinTree to the same
// bound in unbounded integers, on tiles of every level at the edges of
// trees of every size class.
func TestWithinTree(t *testing.T) {
	obvious := func(tile tlog.Tile, size int64) bool {
		if tile.N < 0 || tile.W <= 0 || tile.W > 1<<TileHeight || tile.L < -1 {
			return false
		}
		need := new(big.Int).SetInt64(tile.N)
		need.Lsh(need, TileHeight).Add(need, big.NewInt(int64(tile.W)))
		need.Lsh(need, uint(max(tile.L, 0))*TileHeight)
		return need.Cmp(big.NewInt(size)) <= 0
	}
	rng := rand.New(rand.NewPCG(1, 2))
	sizes := []int64{0, 1, 255, 256, 257, 65535, 65536, 1 << 40, math.MaxInt64}
	for range 2000 {
		sizes = append(sizes, rng.Int64N(1<<uint(rng.IntN(62)+1)))
	}
	for _, size := range sizes {
		for l := -1; l <= 9; l++ {
			edge := (size >> (uint(max(l, 0)) * TileHeight)) >> TileHeight
			for _, n := range []int64{0, 1, edge - 1, edge, edge + 1, math.MaxInt64 >> 8, math.MaxInt64, rng.Int64()} {
				for _, w := range []int{1, 88, 255, 256, 257, 0} {
					tile := tlog.Tile{H: TileHeight, L: l, N: n, W: w}
					if got, want := withinTree(tile, size), obvious(tile, size); got != want {
						t.Fatalf("withinTree(%+v, %d) = %v, want %v", tile, size, got, want)
					}
				}
			}
		}
	}
}

type tileReader struct {
	get func(string) (int, []byte)
}

func (r tileReader) Height() int                     { return TileHeight }
func (r tileReader) SaveTiles([]tlog.Tile, [][]byte) {}
func (r tileReader) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, t := range tiles {
		code, b := r.get(TilePath(t))
		if code != 200 {
			return nil, fmt.Errorf("%s: %d", TilePath(t), code)
		}
		out[i] = b
	}
	return out, nil
}

func FuzzParseTilePath(f *testing.F) {
	for _, s := range []string{"tile/0/000", "tile/entries/x001/234.p/7", "tile/2/001.p/256", "tile/-1/0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tile, err := ParseTilePath(s)
		if err == nil && TilePath(tile) != s {
			t.Fatalf("%q parses to %v, which prints as %q", s, tile, TilePath(tile))
		}
	})
}

func BenchmarkProve(b *testing.B) {
	m := newMemLog()
	var batch [][]byte
	for i := range 1 << 16 {
		batch = append(batch, entry(i))
	}
	m.append(b, batch...)
	b.ResetTimer()
	i := int64(0)
	for b.Loop() {
		if _, err := ProveInclusion(i%int64(len(m.entries)), int64(len(m.entries)), m); err != nil {
			b.Fatal(err)
		}
		i += 7919
	}
}

// FuzzOpenCheckpoint: no one without the key can make bytes that verify,
// and the canonical-form rule leaves exactly one spelling of a signed
// checkpoint: whatever OpenCheckpoint accepts is the note as signed.
func FuzzOpenCheckpoint(f *testing.F) {
	k, vkey := signer(f)
	m := newMemLog()
	for i := range 5 {
		m.append(f, entry(i))
	}
	signed := sign(f, k, m).Note
	f.Add(signed)
	f.Add(bytes.Replace(signed, []byte("\n5\n"), []byte("\n05\n"), 1))
	f.Add(append(bytes.Clone(signed), signed...))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := OpenCheckpoint(data, vkey)
		if err != nil {
			return
		}
		if !bytes.Equal(data, signed) || c.Size != 5 {
			t.Fatalf("accepted a checkpoint other than the one signed:\n%q", data)
		}
	})
}

// FuzzVerifyReceipt: for a given entry and key, the one receipt that
// verifies is the one issued.
func FuzzVerifyReceipt(f *testing.F) {
	k, vkey := signer(f)
	m := newMemLog()
	for i := range 13 {
		m.append(f, entry(i))
	}
	c := sign(f, k, m)
	receipt, err := Receipt(c, 6, m)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(receipt)
	f.Add(bytes.Replace(receipt, []byte("index 6"), []byte("index 06"), 1))
	f.Fuzz(func(t *testing.T, data []byte) {
		if _, idx, err := VerifyReceipt(data, entry(6), vkey, nil); err == nil && (!bytes.Equal(data, receipt) || idx != 6) {
			t.Fatalf("accepted a receipt other than the one issued:\n%q", data)
		}
	})
}
