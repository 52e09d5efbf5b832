package main

import (
	"fmt"
	"io"
	"unicode/utf8"
)

// termSafe writes what the CLI prints with every character that could
// command a terminal made visible: C0 controls but newline and tab (an
// escape starts a sequence that can retitle the window, plant a link or
// rewrite the screen; a carriage return overwrites the line), DEL, C1
// controls, bidirectional overrides (which reorder what is shown) and
// bytes that are not UTF-8. Jobs, brokers and peers put text in what the
// CLI prints — a job's detail, a problem's message, an offer's labels —
// and none of it may act on the reader's terminal. Each such character is
// shown as a Go escape (\x1b, \u009b, \u202e).
type termSafe struct {
	w       io.Writer
	pending []byte // the start of a UTF-8 sequence a later Write completes
}

func (t *termSafe) Write(p []byte) (int, error) {
	buf := append(t.pending, p...)
	out := make([]byte, 0, len(buf))
	i := 0
	for i < len(buf) {
		c := buf[i]
		if c < utf8.RuneSelf {
			if c == '\n' || c == '\t' || (c >= 0x20 && c != 0x7f) {
				out = append(out, c)
			} else {
				out = fmt.Appendf(out, `\x%02x`, c)
			}
			i++
			continue
		}
		if !utf8.FullRune(buf[i:]) {
			break
		}
		r, n := utf8.DecodeRune(buf[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			out = fmt.Appendf(out, `\x%02x`, c)
		case r <= 0x9f, r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
			out = fmt.Appendf(out, `\u%04x`, r)
		default:
			out = append(out, buf[i:i+n]...)
		}
		i += n
	}
	t.pending = append([]byte(nil), buf[i:]...)
	if _, err := t.w.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Flush writes an incomplete sequence left at the end, escaped.
func (t *termSafe) Flush() error {
	var out []byte
	for _, c := range t.pending {
		out = fmt.Appendf(out, `\x%02x`, c)
	}
	t.pending = nil
	if len(out) == 0 {
		return nil
	}
	_, err := t.w.Write(out)
	return err
}

// rawWriter is the writer under w when w is a termSafe, for output that
// is the user's own bytes on request (cinet job logs --raw).
func rawWriter(w io.Writer) io.Writer {
	if t, ok := w.(*termSafe); ok {
		t.Flush()
		return t.w
	}
	return w
}
