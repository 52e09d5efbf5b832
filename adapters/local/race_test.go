//go:build race

package local_test

// Under the race detector every shim and sandbox init is an instrumented
// binary, several times slower to start: the long tests run shorter.
const raceEnabled = true
