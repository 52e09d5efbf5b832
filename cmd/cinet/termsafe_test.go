package main

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/cinet/cinet/identity"
)

func TestTermSafe(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"plain text, tabs\tand\nlines\n", "plain text, tabs\tand\nlines\n"},
		{"é 中文 🙂", "é 中文 🙂"},
		{"\x1b]8;;http://evil\x07click\x1b]8;;\x07", `\x1b]8;;http://evil\x07click\x1b]8;;\x07`},
		{"\x1b[2J\x1b[H", `\x1b[2J\x1b[H`},
		{"ok\rFAILED", `ok\x0dFAILED`},
		{"del\x7f", `del\x7f`},
		{"c1 \u009b31m", `c1 \u009b31m`},
		{"bidi \u202etxt.exe", `bidi \u202etxt.exe`},
		{"bad \xff\xfe utf8", `bad \xff\xfe utf8`},
	} {
		var b bytes.Buffer
		w := &termSafe{w: &b}
		w.Write([]byte(tc.in))
		w.Flush()
		if b.String() != tc.want {
			t.Errorf("%q: got %q, want %q", tc.in, b.String(), tc.want)
		}
	}
	// A sequence split across writes is kept whole; one cut short at the
	// end is shown escaped.
	var b bytes.Buffer
	w := &termSafe{w: &b}
	s := []byte("中\u009b")
	for i := range s {
		w.Write(s[i : i+1])
	}
	w.Write([]byte{0xe4, 0xb8})
	w.Flush()
	if got := b.String(); got != `中\u009b\xe4\xb8` {
		t.Errorf("split writes: %q", got)
	}
}

// FuzzTermSafe: whatever comes in, what goes out is valid UTF-8 with no
// control character but newline and tab, and it is the input where the
// input had none.
func FuzzTermSafe(f *testing.F) {
	for _, s := range []string{"", "a\x1b[31mb", "中文", "\xff", "\u009b", "x\ny\tz"} {
		f.Add([]byte(s), 3)
	}
	f.Fuzz(func(t *testing.T, in []byte, split int) {
		var b bytes.Buffer
		w := &termSafe{w: &b}
		if split <= 0 || split > len(in) {
			split = len(in)
		}
		w.Write(in[:split])
		w.Write(in[split:])
		w.Flush()
		out := b.String()
		if !utf8.ValidString(out) {
			t.Fatalf("%q -> %q: not UTF-8", in, out)
		}
		for _, r := range out {
			if (r < 0x20 && r != '\n' && r != '\t') || (r >= 0x7f && r <= 0x9f) || (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069) {
				t.Fatalf("%q -> %q: holds %U", in, out, r)
			}
		}
		clean := utf8.Valid(in) && !strings.ContainsFunc(string(in), func(r rune) bool {
			return (r < 0x20 && r != '\n' && r != '\t') || (r >= 0x7f && r <= 0x9f) || (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069)
		})
		if clean && out != string(in) {
			t.Fatalf("%q -> %q: changed text that was safe", in, out)
		}
	})
}

// TestHostileBrokerText: a broker (or a job, through it) whose answers
// carry escape sequences — in a job's detail and history, and in a
// problem's detail — cannot make the CLI send them to the terminal.
func TestHostileBrokerText(t *testing.T) {
	const osc8 = "\x1b]8;;http://evil.example\x07click\x1b]8;;\x07\x1b[2J\rOK"
	q, _ := json.Marshal(osc8)
	job := fmt.Sprintf(`{"id":"j-1","tenant":"did:key:z6Mk","state":"failed","detail":%s,"createdAt":"2026-12-07T00:00:00Z","updatedAt":"2026-12-07T00:00:00Z",
		"history":[{"state":"failed","at":"2026-12-07T00:00:00Z","detail":%s}]}`, q, q)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/jobs/missing":
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(404)
			fmt.Fprintf(w, `{"type":"urn:cinet:problem:job-not-found","title":"Not Found","status":404,"detail":%s}`, q)
		case "/v1/jobs":
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"jobs":[%s]}`, job)
		default:
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, job)
		}
	}))
	defer srv.Close()
	k, err := identity.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(t.TempDir(), "k.key")
	if err := identity.WriteKeyFile(key, k); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"job", "status", "j-1"}, {"job", "status", "missing"}, {"job", "list"}} {
		code, out, errOut := cli(t, "", append(args, "--broker", srv.URL, "--key", key)...)
		if strings.ContainsAny(out+errOut, "\x1b\x07\r") {
			t.Errorf("cinet %s printed control characters: %d %q %q", strings.Join(args, " "), code, out, errOut)
		}
		if args[1] != "list" && !strings.Contains(out+errOut, `\x1b]8;;http://evil.example\x07click`) {
			t.Errorf("cinet %s does not show the text escaped: %q %q", strings.Join(args, " "), out, errOut)
		}
	}
}
