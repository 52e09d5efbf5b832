package api

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/cinet/cinet/adapters"
	v1 "github.com/cinet/cinet/broker/api/v1"
	"github.com/cinet/cinet/broker/jobs"
	"github.com/cinet/cinet/broker/match"
	"github.com/cinet/cinet/descriptor"
)

// parseJob reads a submitted job document (YAML, or JSON by content type
// or content), answering with the located errors when it is invalid.
func parseJob(w http.ResponseWriter, r *http.Request, body []byte) (*descriptor.Document, bool) {
	name := r.URL.Query().Get("filename")
	if name == "" {
		name = "job.yaml"
		if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct == "application/json" {
			name = "job.json"
		}
	}
	doc, err := descriptor.ParseJob(name, body)
	if err == nil {
		return doc, true
	}
	p := &Problem{Type: ProblemType("invalid-job"), Title: "Unprocessable Content", Status: http.StatusUnprocessableEntity, Detail: err.Error()}
	var list descriptor.ErrorList
	if errors.As(err, &list) {
		p.Detail = fmt.Sprintf("the job has %d error(s)", len(list))
		for _, e := range list {
			p.Errors = append(p.Errors, DocumentError{Line: e.Line, Column: e.Col, Path: e.Path, Message: e.Msg})
		}
	}
	writeProblem(w, p)
	return nil, false
}

func (s *Server) submitJob(w http.ResponseWriter, r *http.Request, c *Caller) {
	doc, ok := parseJob(w, r, c.body)
	if !ok {
		return
	}
	var sub *jobs.Submission
	if c.proof != nil {
		// The tenant's signed request goes with the job to whichever
		// broker runs it.
		sub = &jobs.Submission{Body: c.body, Proof: *c.proof}
	}
	j, err := s.cfg.Runner.SubmitSigned(r.Context(), c.Principal, doc, sub)
	if err != nil {
		s.internal(w, r, err)
		return
	}
	w.Header().Set("Location", "/v1/jobs/"+j.ID)
	writeJSON(w, http.StatusCreated, j.Wire())
}

// job finds a job the caller may see: a tenant sees only its own; any
// other job is not found, whether or not it exists.
func (s *Server) job(w http.ResponseWriter, r *http.Request, c *Caller) (*jobs.Job, bool) {
	id := r.PathValue("id")
	j, err := s.cfg.Jobs.Get(r.Context(), id)
	if errors.Is(err, jobs.ErrNotFound) || (err == nil && c.Role != Operator && j.Tenant != c.Principal.String()) {
		problem(w, http.StatusNotFound, "job-not-found", "Not Found", "no job "+id)
		return nil, false
	}
	if err != nil {
		s.internal(w, r, err)
		return nil, false
	}
	return j, true
}

func (s *Server) getJob(w http.ResponseWriter, r *http.Request, c *Caller) {
	if j, ok := s.job(w, r, c); ok {
		writeJSON(w, http.StatusOK, j.Wire())
	}
}

func (s *Server) listJobs(w http.ResponseWriter, r *http.Request, c *Caller) {
	q := r.URL.Query()
	f := jobs.Filter{State: jobs.State(q.Get("state"))}
	if c.Role != Operator {
		f.Tenant = c.Principal.String()
	}
	if f.State != "" && !validState(f.State) {
		problem(w, http.StatusBadRequest, "bad-request", "Bad Request", fmt.Sprintf("state %q: want one of %v", f.State, jobs.States))
		return
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			problem(w, http.StatusBadRequest, "bad-request", "Bad Request", "limit: want 1 to 1000")
			return
		}
		f.Limit = n
	}
	if v := q.Get("before"); v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			problem(w, http.StatusBadRequest, "bad-request", "Bad Request", "before: want an RFC 3339 time")
			return
		}
		f.Before = t
	}
	list, err := s.cfg.Jobs.List(r.Context(), f)
	if err != nil {
		s.internal(w, r, err)
		return
	}
	out := make([]*v1.Job, len(list))
	for i, j := range list {
		out[i] = j.Wire()
	}
	writeJSON(w, http.StatusOK, map[string]any{"jobs": out})
}

func validState(s jobs.State) bool {
	for _, x := range jobs.States {
		if x == s {
			return true
		}
	}
	return false
}

func (s *Server) cancelJob(w http.ResponseWriter, r *http.Request, c *Caller) {
	j, ok := s.job(w, r, c)
	if !ok {
		return
	}
	j, err := s.cfg.Runner.Cancel(r.Context(), j.ID)
	if err != nil {
		s.internal(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, j.Wire())
}

// jobLogs streams a task's output. With follow=true it keeps the response
// open and sends what the task writes until the attempt ends.
func (s *Server) jobLogs(w http.ResponseWriter, r *http.Request, c *Caller) {
	j, ok := s.job(w, r, c)
	if !ok {
		return
	}
	q := r.URL.Query()
	follow := q.Get("follow") == "true" || q.Get("follow") == "1"
	w = s.streaming(w) // logs may be long, and followed for as long as the job runs
	if len(j.Attempts) == 0 && follow {
		var err error
		if j, err = s.awaitAttempt(r.Context(), j); err != nil {
			if r.Context().Err() == nil {
				s.internal(w, r, err)
			}
			return
		}
	}
	if len(j.Attempts) == 0 {
		detail := "the job has not run yet"
		if j.State.Ended() {
			detail = "the job ended without running: " + j.Detail
		}
		problem(w, http.StatusNotFound, "no-logs", "Not Found", detail)
		return
	}
	lr, bad, err := logRequestOf(j, q)
	if err != nil {
		s.internal(w, r, err)
		return
	}
	if bad != "" {
		problem(w, http.StatusBadRequest, "bad-request", "Bad Request", bad)
		return
	}
	lr.follow = follow
	ad, err := s.cfg.Runner.Executor(&lr.attempt)
	if err != nil {
		s.internal(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	s.sendLogs(w, r, j, ad, lr)
}

// A logRequest is which output a log request reads.
type logRequest struct {
	attempt      jobs.Attempt
	n            int // the attempt's number, from 1
	task, stream string
	node         int
	follow       bool
}

// logRequestOf reads a log request's parameters: the attempt (default
// the last), the node (0), the task (the first) and the stream (stdout).
// A bad parameter is said in bad; err is the broker's own failure.
func logRequestOf(j *jobs.Job, q url.Values) (lr logRequest, bad string, err error) {
	lr = logRequest{n: len(j.Attempts), task: q.Get("task"), stream: cmp.Or(q.Get("stream"), "stdout")}
	if v := q.Get("attempt"); v != "" {
		if lr.n, err = strconv.Atoi(v); err != nil || lr.n < 1 || lr.n > len(j.Attempts) {
			return lr, fmt.Sprintf("attempt: want 1 to %d", len(j.Attempts)), nil
		}
	}
	lr.attempt = j.Attempts[lr.n-1]
	if v := q.Get("node"); v != "" {
		if lr.node, err = strconv.Atoi(v); err != nil || lr.node < 0 || lr.node >= j.Instances() {
			return lr, fmt.Sprintf("node: want 0 to %d", j.Instances()-1), nil
		}
	}
	if lr.task == "" {
		doc, err := descriptor.Parse(j.ID+".json", j.Document)
		if err != nil {
			return lr, "", err
		}
		lr.task = doc.Job.Tasks[0].Name
	}
	return lr, "", nil
}

// sendLogs writes what the attempt's task wrote to the stream, and with
// follow what it writes after, until the attempt ends.
func (s *Server) sendLogs(w http.ResponseWriter, r *http.Request, j *jobs.Job, ad adapters.Adapter, lr logRequest) {
	a := lr.attempt
	var sent int64
	for first := true; ; {
		// The attempt's state is read before its logs, so that once it
		// has ended, the read that follows has all it wrote.
		ended := s.attemptEnded(r.Context(), ad, j.ID, lr.n, a.ID)
		rc, err := ad.Logs(r.Context(), a.ID, lr.task, lr.node, lr.stream)
		if err == nil {
			sent += copyFrom(w, rc, sent)
			first = false
		}
		if err != nil && (!lr.follow || ended) {
			// With --follow, a task that has not written yet is waited
			// for; otherwise, or once the attempt ended, there is none.
			if first {
				s.cfg.Log.Info("reading logs", "job", j.ID, "attempt", a.ID, "task", lr.task, "node", lr.node, "stream", lr.stream, "err", err)
				problem(w, http.StatusNotFound, "no-logs", "Not Found", fmt.Sprintf("attempt %s has no %s logs of task %q on node %d", a.ID, lr.stream, lr.task, lr.node))
			}
			return
		}
		if !lr.follow || ended {
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// attemptEnded reports whether attempt n of job has ended, as its backend
// says, or, when the backend does not know it (not yet there, or already
// released), as the job's record says.
func (s *Server) attemptEnded(ctx context.Context, ad adapters.Adapter, job string, n int, id string) bool {
	st, err := ad.Status(ctx, id)
	if errors.Is(err, adapters.ErrNotFound) {
		if cur, err := s.cfg.Jobs.Get(ctx, job); err == nil && len(cur.Attempts) >= n {
			return cur.Attempts[n-1].Ended()
		}
	}
	return err != nil || st.State.Ended()
}

// copyFrom writes what rc holds after the first sent bytes, flushes it,
// closes rc and returns how much it wrote.
func copyFrom(w http.ResponseWriter, rc io.ReadCloser, sent int64) int64 {
	defer rc.Close()
	if sk, ok := rc.(io.Seeker); ok && sent > 0 {
		sk.Seek(sent, io.SeekStart) // what was sent is not read again
	} else if sent > 0 {
		io.CopyN(io.Discard, rc, sent)
	}
	wrote, _ := io.Copy(w, rc)
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	return wrote
}

// awaitAttempt waits until the job has an attempt or has ended, and
// returns it as it then is.
func (s *Server) awaitAttempt(ctx context.Context, j *jobs.Job) (*jobs.Job, error) {
	ch, stop := s.cfg.Runner.Subscribe(j.ID)
	defer stop()
	for {
		// Read after subscribing, so no transition falls between.
		j, err := s.cfg.Jobs.Get(ctx, j.ID)
		if err != nil || len(j.Attempts) > 0 || j.State.Ended() {
			return j, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case _, open := <-ch:
			if !open {
				return s.cfg.Jobs.Get(ctx, j.ID)
			}
		}
	}
}

// jobEvents streams the job's transitions as server-sent events: its
// history first (after Last-Event-ID, if given), then each new one, until
// the job settles.
func (s *Server) jobEvents(w http.ResponseWriter, r *http.Request, c *Caller) {
	j, ok := s.job(w, r, c)
	if !ok {
		return
	}
	if _, ok := w.(http.Flusher); !ok {
		problem(w, http.StatusNotImplemented, "no-streaming", "Not Implemented", "this connection cannot stream")
		return
	}
	w = s.streaming(w)
	flusher := w.(http.Flusher)
	ch, stop := s.cfg.Runner.Subscribe(j.ID)
	defer stop()
	// Read again after subscribing, so no transition falls between.
	j, err := s.cfg.Jobs.Get(r.Context(), j.ID)
	if err != nil {
		s.internal(w, r, err)
		return
	}
	last := -1
	if v := r.Header.Get("Last-Event-ID"); v != "" {
		if n, err := strconv.Atoi(v); err == nil {
			last = n
		}
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	send := func(i int, t jobs.Transition) {
		data, _ := json.Marshal(struct {
			State  jobs.State `json:"state"`
			At     string     `json:"at"`
			Detail string     `json:"detail"`
		}{t.State, t.At.UTC().Format(time.RFC3339Nano), t.Detail})
		fmt.Fprintf(w, "id: %d\nevent: transition\ndata: %s\n\n", i, data)
		last = i
	}
	for i, t := range j.History {
		if i > last {
			send(i, t)
		}
	}
	flusher.Flush()
	if j.State == jobs.Settled {
		return
	}
	heartbeat := time.NewTicker(15 * time.Second)
	defer heartbeat.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-heartbeat.C:
			fmt.Fprint(w, ": still here\n\n")
			flusher.Flush()
		case _, open := <-ch:
			// Send from the stored history: it is complete even when a
			// notification was dropped.
			j, err := s.cfg.Jobs.Get(r.Context(), j.ID)
			if err != nil {
				return
			}
			for i, t := range j.History {
				if i > last {
					send(i, t)
				}
			}
			flusher.Flush()
			if !open || j.State == jobs.Settled {
				return
			}
		}
	}
}

func (s *Server) explain(w http.ResponseWriter, r *http.Request, c *Caller) {
	doc, ok := parseJob(w, r, c.body)
	if !ok {
		return
	}
	x, err := s.cfg.Matcher.Explain(doc, match.Options{})
	if err != nil {
		s.internal(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, x)
}
