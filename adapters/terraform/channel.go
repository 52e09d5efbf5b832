//go:build unix

package terraform

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cinet/cinet/adapters"
)

// A channel is how a node agent hears from the executor and reports to
// it: through the placement's directory when the node is on the broker's
// machine, over HTTP (the executor's agent server, spec/adapters.md
// §3.4) when it is not.
type channel interface {
	placement() (adapters.Placement, error)
	// lock holds the node for this agent, or says another agent has it.
	lock() (unlock func(), ok bool, err error)
	// up reports whether the node already came up once.
	up(ntasks int) (bool, error)
	record(e event) error
	// control is what the executor says now: the start, how many tasks
	// may have started (1 + the highest go), and the stop reason.
	control() (st *start, allowed int, stop string, err error)
	// output is where task's stream goes; flush delivers all of it.
	output(task, stream string) (w *os.File, flush func() error, err error)
	workDir() string
	poll() time.Duration
}

// fileChannel is the placement's directory, on this machine.
type fileChannel struct {
	dir  string
	rank int
}

func (c *fileChannel) placement() (adapters.Placement, error) {
	var p adapters.Placement
	return p, readJSON(filepath.Join(c.dir, placementFile), &p)
}

func (c *fileChannel) lock() (func(), bool, error) {
	return lockDir(nodeDir(c.dir, c.rank))
}

// lockDir takes the lock file in dir, made if need be.
func lockDir(dir string) (func(), bool, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, false, err
	}
	f, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, false, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, false, nil
	}
	return func() { f.Close() }, true, nil
}

func (c *fileChannel) up(ntasks int) (bool, error) {
	rec, err := readNode(c.dir, c.rank, ntasks)
	return rec.up, err
}

func (c *fileChannel) record(e event) error {
	line, err := json.Marshal(e)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(nodeDir(c.dir, c.rank), eventsFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(append(line, '\n'))
	return errors.Join(err, f.Close())
}

func (c *fileChannel) control() (*start, int, string, error) {
	stop := readStop(c.dir)
	var st start
	if err := readJSON(filepath.Join(c.dir, controlDir, startFile), &st); err != nil {
		return nil, 0, stop, nil
	}
	allowed := 1
	for {
		if _, err := os.Stat(goFile(c.dir, allowed)); err != nil {
			break
		}
		allowed++
	}
	return &st, allowed, stop, nil
}

func (c *fileChannel) output(task, stream string) (*os.File, func() error, error) {
	path := logPath(c.dir, c.rank, task, stream)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, nil, err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	return f, func() error { return nil }, err
}

func (c *fileChannel) workDir() string     { return filepath.Join(nodeDir(c.dir, c.rank), "work") }
func (c *fileChannel) poll() time.Duration { return agentPoll }

// httpChannel is the executor's agent server, reached at base
// (…/placements/ID/TOKEN). The node keeps its work directory and a spool
// of its output under local; the output is shipped as it grows.
type httpChannel struct {
	base   string
	rank   int
	local  string
	client *http.Client
}

// agentHTTPPoll is how often an agent over HTTP asks for the executor's
// word; each ask also says it is alive.
const agentHTTPPoll = 250 * time.Millisecond

func newHTTPChannel(base string, rank int) (*httpChannel, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("report URL %q: want http(s)://HOST/…/placements/ID/TOKEN", base)
	}
	parts := strings.Split(strings.Trim(u.Path, "/"), "/")
	if len(parts) < 3 || parts[len(parts)-3] != "placements" || !adapters.ValidID(parts[len(parts)-2]) {
		return nil, fmt.Errorf("report URL %q: want …/placements/ID/TOKEN", base)
	}
	// The node's own directory: one per placement and node (named by a
	// hash of the URL, which holds the token), removed when the agent ends.
	sum := sha256.Sum256([]byte(base))
	local := filepath.Join(os.TempDir(), fmt.Sprintf("cinet-agent-%s-%d-%x", parts[len(parts)-2], rank, sum[:8]))
	return &httpChannel{base: strings.TrimSuffix(base, "/"), rank: rank, local: local, client: &http.Client{Timeout: 30 * time.Second}}, nil
}

// do sends a request, retrying what the network or the server's
// unavailability fails for about a minute; a refusal is not retried.
func (c *httpChannel) do(method, path string, q url.Values, body []byte) ([]byte, error) {
	if q == nil {
		q = url.Values{}
	}
	q.Set("rank", strconv.Itoa(c.rank))
	target := c.base + path + "?" + q.Encode()
	backoff := 100 * time.Millisecond
	deadline := time.Now().Add(time.Minute)
	for {
		req, err := http.NewRequest(method, target, bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		resp, err := c.client.Do(req)
		if err == nil {
			data, rerr := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
			resp.Body.Close()
			switch {
			case rerr != nil:
				err = rerr
			case resp.StatusCode/100 == 2:
				return data, nil
			case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests:
				err = fmt.Errorf("%s %s: %s", method, path, resp.Status)
			default:
				return nil, fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(data)))
			}
		}
		if time.Now().After(deadline) {
			return nil, err
		}
		time.Sleep(backoff)
		backoff = min(2*backoff, 5*time.Second)
	}
}

func (c *httpChannel) placement() (adapters.Placement, error) {
	var p adapters.Placement
	data, err := c.do(http.MethodGet, "/placement", nil, nil)
	if err != nil {
		return p, err
	}
	return p, json.Unmarshal(data, &p)
}

// lock holds the node's own directory, and removes it when released:
// the node's work and output spool go with the agent.
func (c *httpChannel) lock() (func(), bool, error) {
	unlock, ok, err := lockDir(c.local)
	if !ok || err != nil {
		return unlock, ok, err
	}
	return func() { os.RemoveAll(c.local); unlock() }, true, nil
}

// up is the server's to enforce: a second "up" for a node is refused.
func (c *httpChannel) up(int) (bool, error) { return false, nil }

func (c *httpChannel) record(e event) error {
	line, err := json.Marshal(e)
	if err != nil {
		return err
	}
	_, err = c.do(http.MethodPost, "/events", nil, line)
	return err
}

func (c *httpChannel) control() (*start, int, string, error) {
	data, err := c.do(http.MethodGet, "/control", nil, nil)
	if err != nil {
		return nil, 0, "", err
	}
	var ctl controlState
	if err := json.Unmarshal(data, &ctl); err != nil {
		return nil, 0, "", err
	}
	return ctl.Start, ctl.Allowed, ctl.Stop, nil
}

// output spools the stream to a local file and ships what it gains; the
// server appends a chunk only at the offset it has, so a chunk sent twice
// is written once.
func (c *httpChannel) output(task, stream string) (*os.File, func() error, error) {
	path := filepath.Join(c.local, "logs", task+"."+stream)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, nil, err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, nil, err
	}
	var sent int64
	ship := func() error {
		r, err := os.Open(path)
		if err != nil {
			return err
		}
		defer r.Close()
		for {
			buf := make([]byte, 1<<20)
			n, err := r.ReadAt(buf, sent)
			if n == 0 {
				if err == io.EOF || err == nil {
					return nil
				}
				return err
			}
			q := url.Values{"task": {task}, "stream": {stream}, "offset": {strconv.FormatInt(sent, 10)}}
			if _, err := c.do(http.MethodPost, "/logs", q, buf[:n]); err != nil {
				return err
			}
			sent += int64(n)
		}
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				ship()
			}
		}
	}()
	flush := func() error {
		close(stop)
		<-done
		return ship()
	}
	return f, flush, nil
}

func (c *httpChannel) workDir() string     { return filepath.Join(c.local, "work") }
func (c *httpChannel) poll() time.Duration { return agentHTTPPoll }

// controlState is what GET …/control answers.
type controlState struct {
	Start   *start `json:"start"`   // null until the nodes may start
	Allowed int    `json:"allowed"` // tasks that may have started
	Stop    string `json:"stop"`    // the stop reason, or ""
}
