package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cinet/cinet/adapters/local"
	"github.com/cinet/cinet/descriptor"
)

func TestMain(m *testing.M) {
	// The local provider runs each placement under this binary as its shim.
	if local.IsShim() {
		os.Exit(local.Shim(os.Args[len(os.Args)-1]))
	}
	os.Exit(m.Run())
}

// TestDevDemo: the demo runs the examples this machine can, explains the
// others with numbers, says what its columns mean and what to do next,
// and removes the data directory it made; with --data it keeps it.
func TestDevDemo(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	code, out, errOut := cli(t, "", "dev", "--demo", "--examples", filepath.Join(repo, "examples"))
	if code != 0 {
		t.Fatalf("demo: %d\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{"settled (succeeded)", "HOME: the region", "RAN IN: the region",
		"insufficient_cpu (", "was removed; run with --data DIR", "next:\n", " job explain "} {
		if !strings.Contains(out, want) {
			t.Errorf("the demo's output lacks %q:\n%s", want, out)
		}
	}
	if left, _ := filepath.Glob(filepath.Join(tmp, "cinet-dev-*")); len(left) > 0 {
		t.Errorf("the demo left %v behind", left)
	}

	data := filepath.Join(t.TempDir(), "kept")
	if code, out, errOut := cli(t, "", "dev", "--demo", "--examples", filepath.Join(repo, "examples"), "--data", data); code != 0 {
		t.Fatalf("demo --data: %d\n%s\n%s", code, out, errOut)
	}
	if _, err := os.Stat(filepath.Join(data, "audit", "checkpoint")); err != nil {
		t.Errorf("--data: the checkpoint is not kept: %v", err)
	}
}

// TestLocalObstacle: the demo submits only what this machine can run:
// commands, whose programs, named by path, exist here.
func TestLocalObstacle(t *testing.T) {
	for _, tc := range []struct {
		name, tasks, want string
	}{
		{"a shell command", `[{name: main, command: ["/bin/sh", "-c", "true"]}]`, ""},
		{"a program on the PATH", `[{name: main, command: ["true"]}]`, ""},
		{"an image", `[{name: main, image: "example/app:1"}]`, "container images"},
		{"a program this machine lacks", `[{name: main, command: ["/bin/sh", "-c", "true"]}, {name: serve, command: ["/nonexistent/cinet-test-server"]}]`,
			"task serve runs /nonexistent/cinet-test-server, which this machine does not have"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc, err := descriptor.ParseJob("job.yaml", []byte("apiVersion: cinet/v1\nkind: Job\nmetadata: {name: j}\ntasks: "+tc.tasks+"\n"))
			if err != nil {
				t.Fatal(err)
			}
			if got := localObstacle(doc); (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}
