// Package integration holds tests and benchmarks that run the cinet
// binary as a user would: separate processes, real stores, signals.
package integration

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// cinetBin is the cinet binary built for these tests.
var cinetBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "cinet-integration-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	cinetBin = filepath.Join(dir, "cinet")
	build := exec.Command("go", "build", "-o", cinetBin, "github.com/cinet/cinet/cmd/cinet")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building cinet:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// runCinet runs the binary to completion and returns its standard output;
// a non-zero exit fails the test.
func runCinet(t *testing.T, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(cinetBin, args...)
	var stderr []byte
	out, err := cmd.Output()
	if ee, ok := err.(*exec.ExitError); ok {
		stderr = ee.Stderr
	}
	if err != nil {
		t.Fatalf("cinet %v: %v\n%s\n%s", args, err, out, stderr)
	}
	return out
}

func digest(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
