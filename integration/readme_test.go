package integration

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A readmeBlock is one ```sh block of README.md.
type readmeBlock struct {
	line int    // of its first command
	text string // the commands
	note string // the readme-test comment before it, if any
}

// readmeBlocks returns README.md's shell blocks with the comment that
// precedes each: "<!-- readme-test: not run: why -->" or "<!-- readme-test:
// the first line only: why -->".
func readmeBlocks(data []byte) []readmeBlock {
	var out []readmeBlock
	var cur *readmeBlock
	note := ""
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case cur != nil && line == "```":
			out = append(out, *cur)
			cur = nil
		case cur != nil:
			if cur.line == 0 {
				cur.line = n
			}
			cur.text += line + "\n"
		case line == "```sh":
			cur = &readmeBlock{note: note}
			note = ""
		case strings.HasPrefix(line, "<!-- readme-test:"):
			note = strings.TrimSuffix(strings.TrimPrefix(line, "<!-- readme-test:"), "-->")
		case strings.TrimSpace(line) != "":
			note = ""
		}
	}
	return out
}

// TestREADME runs every shell block of README.md as written, in order, in
// one shell, from a copy of the repository: a broker started by one block
// is used by the next. Blocks marked "not run" (the test suite itself,
// benchmarks, fuzzing) are skipped; "the first line only" runs that line.
func TestREADME(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the README's broker")
	}
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := readmeBlocks(readme)
	if len(blocks) < 6 {
		t.Fatalf("README.md has %d shell blocks", len(blocks))
	}
	dir := t.TempDir()
	copyRepo(t, "..", dir)
	var script strings.Builder
	script.WriteString("set -euo pipefail\n")
	// Whatever the README starts in the background stops with the script.
	script.WriteString("trap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n")
	ran := 0
	for _, b := range blocks {
		text := b.text
		switch {
		case strings.HasPrefix(strings.TrimSpace(b.note), "not run"):
			continue
		case strings.HasPrefix(strings.TrimSpace(b.note), "the first line only"):
			text, _, _ = strings.Cut(text, "\n")
			text += "\n"
		case b.note != "":
			t.Fatalf("README.md:%d: unknown readme-test note %q", b.line, b.note)
		}
		fmt.Fprintf(&script, "echo '::README.md:%d' >&2\n%s", b.line, text)
		ran++
	}
	script.WriteString("echo '::done' >&2\n")

	// Bounded well inside the test binary's own deadline, so that on a
	// hang the process group is killed and the failure reported, rather
	// than the binary panicking and leaving the group running.
	limit := 10 * time.Minute
	if d, ok := t.Deadline(); ok {
		limit = min(limit, time.Until(d)-30*time.Second)
	}
	ctx, cancel := context.WithTimeout(t.Context(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", script.String())
	cmd.Dir = dir
	home, tmp := filepath.Join(t.TempDir(), "home"), t.TempDir()
	os.Mkdir(home, 0o700)
	cmd.Env = readmeEnv(home, tmp)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// Its own process group, killed whole when it ends or the test fails.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	err = cmd.Run()
	if cmd.Process != nil {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	log := out.String()
	if err != nil || !strings.Contains(log, "::done") {
		at := "?"
		if i := strings.LastIndex(log, "::README.md:"); i >= 0 {
			at, _, _ = strings.Cut(log[i+2:], "\n")
		}
		t.Fatalf("the block at %s failed: %v\n%s", at, err, log)
	}
	// What the README says the commands do, they did.
	for _, want := range []string{"hello from cinet", "hello from 127.0.0.1", "settled (succeeded)", "verified: entry", "trial balance", "consistent:"} {
		if !strings.Contains(log, want) {
			t.Errorf("the README's commands never printed %q:\n%s", want, log)
		}
	}
	if fi, err := os.Stat(filepath.Join(dir, "usage.csv")); err != nil || fi.Size() == 0 {
		t.Errorf("the FOCUS export: %v", err)
	}
	t.Logf("ran %d of README.md's %d shell blocks", ran, len(blocks))
}

// readmeEnv is a clean environment for the README's commands: no CINET_
// settings of the caller's, a home and temporary directory of its own, and
// the Go caches of the caller's so that builds are quick.
func readmeEnv(home, tmp string) []string {
	env := []string{"HOME=" + home, "TMPDIR=" + tmp, "PATH=" + os.Getenv("PATH")}
	for _, k := range []string{"GOCACHE", "GOMODCACHE", "GOPATH", "GOFLAGS", "GOPROXY", "GOTOOLCHAIN"} {
		v := os.Getenv(k)
		if v == "" {
			if b, err := exec.Command("go", "env", k).Output(); err == nil {
				v = strings.TrimSpace(string(b))
			}
		}
		if v != "" {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// copyRepo copies the repository's tracked files (all files but .git when
// git cannot list them) from src to dst.
func copyRepo(t *testing.T, src, dst string) {
	t.Helper()
	var files []string
	if b, err := exec.Command("git", "-C", src, "ls-files", "-z").Output(); err == nil && len(b) > 0 {
		files = strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
	} else {
		filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && d.Name() == ".git" {
				return filepath.SkipDir
			}
			if d.Type().IsRegular() {
				rel, _ := filepath.Rel(src, p)
				files = append(files, rel)
			}
			return nil
		})
	}
	for _, f := range files {
		from, err := os.Open(filepath.Join(src, f))
		if err != nil {
			if os.IsNotExist(err) {
				continue // deleted in the working copy
			}
			t.Fatal(err)
		}
		fi, _ := from.Stat()
		to := filepath.Join(dst, f)
		if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
			t.Fatal(err)
		}
		w, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, fi.Mode().Perm())
		if err == nil {
			_, err = io.Copy(w, from)
			w.Close()
		}
		from.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
}
