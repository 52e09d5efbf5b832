package service_test

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	mrand "math/rand/v2"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// memLog is a transparency log in memory, built with sumdb/tlog (RFC 6962
// hashing): the reference the console's verifier is held to.
type memLog struct {
	hashes  []tlog.Hash
	entries []string
}

func (l *memLog) ReadHashes(idx []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(idx))
	for i, x := range idx {
		out[i] = l.hashes[x]
	}
	return out, nil
}

func (l *memLog) add(t *testing.T, entry string) {
	hs, err := tlog.StoredHashes(int64(len(l.entries)), []byte(entry), l)
	if err != nil {
		t.Fatal(err)
	}
	l.hashes = append(l.hashes, hs...)
	l.entries = append(l.entries, entry)
}

func (l *memLog) checkpoint(t *testing.T, n int, signer note.Signer) string {
	root, err := tlog.TreeHash(int64(n), l)
	if err != nil {
		t.Fatal(err)
	}
	signed, err := note.Sign(&note.Note{Text: fmt.Sprintf("example.com/log\n%d\n%s\n", n, base64.StdEncoding.EncodeToString(root[:]))}, signer)
	if err != nil {
		t.Fatal(err)
	}
	return string(signed)
}

func b64s(hs []tlog.Hash) []string {
	out := []string{}
	for _, h := range hs {
		out = append(out, base64.StdEncoding.EncodeToString(h[:]))
	}
	return out
}

// verifierCase is one check the page's verify.js makes, and whether the
// reference says it holds.
type verifierCase struct {
	Kind    string   `json:"kind"` // "receipt" or "consistency"
	Receipt string   `json:"receipt,omitempty"`
	Entry   string   `json:"entry,omitempty"`
	Old     string   `json:"old,omitempty"`
	New     string   `json:"new,omitempty"`
	Proof   []string `json:"proof"`
	Want    bool     `json:"want"`
	What    string   `json:"what"`
}

// TestConsoleVerifierAgreesWithGo holds the console's in-browser verifier
// to sumdb/tlog: for logs of 1 to 70 entries, every inclusion proof and
// consistency proof the reference makes is accepted, and each one with a
// hash flipped, an index moved, an entry changed or the sizes swapped is
// refused.
func TestConsoleVerifierAgreesWithGo(t *testing.T) {
	ctx := newBrowser(t)
	e := start(t)
	skey, vkey, err := note.GenerateKey(rand.Reader, "example.com/log")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	rng := mrand.New(mrand.NewPCG(1, 2))
	log := &memLog{}
	var cases []verifierCase
	flip := func(hs []string, i int) []string {
		out := append([]string{}, hs...)
		raw, _ := base64.StdEncoding.DecodeString(out[i])
		raw[rng.IntN(len(raw))] ^= 1 << rng.IntN(8)
		out[i] = base64.StdEncoding.EncodeToString(raw)
		return out
	}
	receipt := func(idx int, hs []string, cp string) string {
		return "c2sp.org/tlog-proof@v1\nindex " + fmt.Sprint(idx) + "\n" + strings.Join(append(hs, ""), "\n") + "\n" + cp
	}
	for n := 1; n <= 70; n++ {
		log.add(t, fmt.Sprintf(`{"entry": %d, "pad": %q}`, n-1, strings.Repeat("x", rng.IntN(40))))
		cp := log.checkpoint(t, n, signer)
		for range 2 {
			i := rng.IntN(n)
			p, err := tlog.ProveRecord(int64(n), int64(i), log)
			if err != nil {
				t.Fatal(err)
			}
			hs := b64s(p)
			cases = append(cases, verifierCase{Kind: "receipt", Receipt: receipt(i, hs, cp), Entry: log.entries[i], Want: true, What: fmt.Sprintf("entry %d of %d", i, n)})
			if len(hs) > 0 {
				cases = append(cases, verifierCase{Kind: "receipt", Receipt: receipt(i, flip(hs, rng.IntN(len(hs))), cp), Entry: log.entries[i], What: fmt.Sprintf("entry %d of %d, a hash flipped", i, n)})
			}
			if n > 1 {
				j := (i + 1 + rng.IntN(n-1)) % n
				cases = append(cases, verifierCase{Kind: "receipt", Receipt: receipt(j, hs, cp), Entry: log.entries[i], What: fmt.Sprintf("entry %d of %d, given as index %d", i, n, j)},
					verifierCase{Kind: "receipt", Receipt: receipt(i, hs, cp), Entry: log.entries[j], What: fmt.Sprintf("entry %d of %d, with entry %d", i, n, j)})
			}
			m := 1 + rng.IntN(n)
			tp, err := tlog.ProveTree(int64(n), int64(m), log)
			if err != nil {
				t.Fatal(err)
			}
			old := log.checkpoint(t, m, signer)
			ps := b64s(tp)
			cases = append(cases, verifierCase{Kind: "consistency", Old: old, New: cp, Proof: ps, Want: true, What: fmt.Sprintf("%d to %d", m, n)})
			if len(ps) > 0 {
				cases = append(cases, verifierCase{Kind: "consistency", Old: old, New: cp, Proof: flip(ps, rng.IntN(len(ps))), What: fmt.Sprintf("%d to %d, a hash flipped", m, n)})
			}
			if m < n {
				cases = append(cases, verifierCase{Kind: "consistency", Old: cp, New: old, Proof: ps, What: fmt.Sprintf("%d to %d, swapped", m, n)})
			}
		}
	}
	data, err := json.Marshal(cases)
	if err != nil {
		t.Fatal(err)
	}
	script := fmt.Sprintf(`import("/ui/verify.js").then(async (m) => {
  const out = [];
  for (const c of %s) {
    try {
      if (c.kind === "receipt") await m.verifyReceipt(c.receipt, c.entry, %q);
      else await m.checkConsistency(c.old, c.new, c.proof, %q);
      out.push("ok");
    } catch (e) { out.push("refused: " + e.message); }
  }
  return out;
})`, data, vkey, vkey)
	var got []string
	if err := chromedp.Run(ctx, chromedp.Navigate(e.url+"/ui/"),
		chromedp.Evaluate(script, &got, func(p *runtime.EvaluateParams) *runtime.EvaluateParams { return p.WithAwaitPromise(true) })); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(cases) {
		t.Fatalf("%d answers to %d cases", len(got), len(cases))
	}
	accepted := 0
	for i, c := range cases {
		if (got[i] == "ok") != c.Want {
			t.Errorf("%s %s: the page says %q, the reference %v", c.Kind, c.What, got[i], c.Want)
		}
		if got[i] == "ok" {
			accepted++
		}
	}
	t.Logf("%d cases, %d accepted", len(cases), accepted)
}
