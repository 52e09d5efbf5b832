//go:build unix

package terraform

import (
	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cinet/cinet/adapters"
)

// The agent server (spec/adapters.md §3.4): nodes that are not on the
// broker's machine reach the executor over HTTP at
// REPORTURL/placements/ID/TOKEN/…, TOKEN being the placement's own
// (agent.token in its directory, given to its nodes in agent.run). What
// they send is written into the placement's directory as a local agent
// would write it, checked first.
const (
	tokenFile     = "agent.token"
	seenFile      = "seen" // in nodes/K: touched at each request of the node's agent
	maxEventBytes = 4 << 10
	maxChunkBytes = 1 << 20
	maxLogBytes   = 64 << 20
)

// newToken makes a placement's agent token.
func newToken() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
}

type agentServer struct {
	t  *Terraform
	mu sync.Mutex // serializes appends to the nodes' records and logs
}

func (s *agentServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	fail := func(status int, format string, args ...any) {
		http.Error(w, fmt.Sprintf(format, args...), status)
	}
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if len(parts) != 4 || parts[0] != "placements" || !adapters.ValidID(parts[1]) {
		fail(http.StatusNotFound, "no such resource: want /placements/ID/TOKEN/(placement|control|events|logs)")
		return
	}
	id, token, op := parts[1], parts[2], parts[3]
	dir := s.t.PlacementDir(id)
	want, err := os.ReadFile(filepath.Join(dir, tokenFile))
	if err != nil || subtle.ConstantTimeCompare(want, []byte(token)) != 1 {
		fail(http.StatusForbidden, "no placement %s with that token", id)
		return
	}
	p, err := s.t.placement(dir)
	if err != nil {
		fail(http.StatusInternalServerError, "reading placement %s: %v", id, err)
		return
	}
	rank, err := strconv.Atoi(r.URL.Query().Get("rank"))
	if err != nil || rank < 0 || rank >= p.Instances() {
		fail(http.StatusBadRequest, "rank %q: placement %s has nodes 0 to %d", r.URL.Query().Get("rank"), id, p.Instances()-1)
		return
	}
	nd := nodeDir(dir, rank)
	if err := os.MkdirAll(filepath.Join(nd, "logs"), 0o700); err != nil {
		fail(http.StatusInternalServerError, "%v", err)
		return
	}
	// Every request the node's agent makes says it is alive.
	now := time.Now()
	if err := os.Chtimes(filepath.Join(nd, seenFile), now, now); err != nil {
		os.WriteFile(filepath.Join(nd, seenFile), nil, 0o600)
	}
	switch {
	case op == "placement" && r.Method == http.MethodGet:
		data, err := json.Marshal(p)
		if err != nil {
			fail(http.StatusInternalServerError, "%v", err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(data)
	case op == "control" && r.Method == http.MethodGet:
		st, allowed, stop, _ := (&fileChannel{dir: dir, rank: rank}).control()
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(controlState{Start: st, Allowed: allowed, Stop: stop})
	case op == "events" && r.Method == http.MethodPost:
		s.event(w, r, dir, rank, len(p.Tasks))
	case op == "logs" && r.Method == http.MethodPost:
		s.logs(w, r, dir, rank, p)
	default:
		fail(http.StatusMethodNotAllowed, "%s %s: want GET placement or control, POST events or logs", r.Method, op)
	}
}

// event appends one event to the node's record, if the record stays one
// an agent could have written: in order, each task once, up once.
func (s *agentServer) event(w http.ResponseWriter, r *http.Request, dir string, rank, ntasks int) {
	line, err := io.ReadAll(io.LimitReader(r.Body, maxEventBytes+1))
	if err != nil || len(line) > maxEventBytes {
		http.Error(w, fmt.Sprintf("an event is at most %d bytes", maxEventBytes), http.StatusRequestEntityTooLarge)
		return
	}
	line = bytes.TrimSpace(line)
	if bytes.ContainsAny(line, "\n\r") || !json.Valid(line) {
		http.Error(w, "an event is one line of JSON", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	path := filepath.Join(nodeDir(dir, rank), eventsFile)
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	if _, err := parseEvents(append(append(old, line...), '\n'), ntasks); err != nil {
		http.Error(w, "refused: "+err.Error(), http.StatusConflict)
		return
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err == nil {
		_, err = f.Write(append(line, '\n'))
		err = errors.Join(err, f.Close())
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// logs appends a chunk of a task's output at the offset the file has; a
// chunk it already has is acknowledged and not written again.
func (s *agentServer) logs(w http.ResponseWriter, r *http.Request, dir string, rank int, p *adapters.Placement) {
	q := r.URL.Query()
	task, stream := q.Get("task"), q.Get("stream")
	known := false
	for _, t := range p.Tasks {
		known = known || t.Name == task
	}
	if !known || (stream != "stdout" && stream != "stderr") {
		http.Error(w, fmt.Sprintf("no task %q stream %q", task, stream), http.StatusBadRequest)
		return
	}
	offset, err := strconv.ParseInt(q.Get("offset"), 10, 64)
	if err != nil || offset < 0 {
		http.Error(w, "offset: want the byte the chunk starts at", http.StatusBadRequest)
		return
	}
	chunk, err := io.ReadAll(io.LimitReader(r.Body, maxChunkBytes+1))
	if err != nil || len(chunk) > maxChunkBytes {
		http.Error(w, fmt.Sprintf("a chunk is at most %d bytes", maxChunkBytes), http.StatusRequestEntityTooLarge)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	path := logPath(dir, rank, task, stream)
	var size int64
	if fi, err := os.Stat(path); err == nil {
		size = fi.Size()
	}
	switch {
	case offset+int64(len(chunk)) <= size:
		w.WriteHeader(http.StatusNoContent) // had it
		return
	case offset != size:
		http.Error(w, fmt.Sprintf("offset %d: the output has %d bytes", offset, size), http.StatusConflict)
		return
	case size+int64(len(chunk)) > maxLogBytes:
		http.Error(w, fmt.Sprintf("a task's output is kept up to %d bytes per stream and node", maxLogBytes), http.StatusRequestEntityTooLarge)
		return
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err == nil {
		_, err = f.Write(chunk)
		err = errors.Join(err, f.Close())
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// seenWithin reports whether node rank's agent made a request to the
// agent server in the last d.
func seenWithin(dir string, rank int, d time.Duration) bool {
	fi, err := os.Stat(filepath.Join(nodeDir(dir, rank), seenFile))
	return err == nil && time.Since(fi.ModTime()) < d
}
