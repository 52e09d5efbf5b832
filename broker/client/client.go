// Package client calls a broker's HTTP API, signing each request with the
// caller's key (broker/httpsig) or sending an operator-issued token.
package client

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	v1 "github.com/cinet/cinet/broker/api/v1"
	"github.com/cinet/cinet/broker/httpsig"
	"github.com/cinet/cinet/identity"
)

// A Client calls one broker as one principal.
type Client struct {
	Base  string        // the broker's URL, e.g. http://127.0.0.1:8420
	Key   *identity.Key // signs requests; or
	Token string        // an operator-issued bearer token
	HTTP  *http.Client  // default http.DefaultClient
	Now   func() time.Time
}

// HTTPWithCA returns an HTTP client that trusts, besides the system's
// roots, the CA certificates of a PEM file: a broker's own CA, such as
// the one 'cinet dev --tls' writes.
func HTTPWithCA(caFile string) (*http.Client, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("the CA certificates: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("the CA certificates: %s holds no PEM certificate", caFile)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return &http.Client{Transport: tr}, nil
}

// A ProblemError is a broker's RFC 9457 answer to a failed request.
type ProblemError struct {
	v1.Problem
}

func (e *ProblemError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s (%d)", e.Title, e.Status)
	if e.Detail != "" {
		b.WriteString(": " + e.Detail)
	}
	for _, de := range e.Errors {
		b.WriteString("\n  ")
		if de.Line > 0 {
			fmt.Fprintf(&b, "%d:%d: ", de.Line, de.Column)
		}
		if de.Path != "" {
			b.WriteString(de.Path + ": ")
		}
		b.WriteString(de.Message)
	}
	return b.String()
}

// MaxRetries bounds how often Do sends a request again after the broker
// answered 429 (rate limited), each time after the Retry-After it gave:
// a request refused so was not read, so sending it again is safe.
const MaxRetries = 5

// Do sends a request and returns the response, which is the caller's to
// close. A problem answer is returned as a *ProblemError.
func (c *Client) Do(ctx context.Context, method, path string, body []byte, contentType string) (*http.Response, error) {
	for retry := 0; ; retry++ {
		resp, err := c.send(ctx, method, path, body, contentType)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode == http.StatusTooManyRequests && retry < MaxRetries {
			wait, err := strconv.Atoi(resp.Header.Get("Retry-After"))
			if err == nil && wait > 0 && wait <= 60 {
				resp.Body.Close()
				select {
				case <-ctx.Done():
					return nil, ctx.Err()
				case <-time.After(time.Duration(wait) * time.Second):
				}
				continue
			}
		}
		if resp.StatusCode >= 400 {
			defer resp.Body.Close()
			data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			var p ProblemError
			if err := json.Unmarshal(data, &p.Problem); err != nil || p.Status == 0 {
				return nil, fmt.Errorf("the broker answered %s: %s", resp.Status, bytes.TrimSpace(data))
			}
			return nil, &p
		}
		return resp, nil
	}
}

// send sends a request once, signed afresh.
func (c *Client) send(ctx context.Context, method, path string, body []byte, contentType string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(c.Base, "/")+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	switch {
	case c.Token != "":
		req.Header.Set("Authorization", "Bearer "+c.Token)
	case c.Key != nil:
		httpsig.Sign(req, body, c.Key, now(), time.Minute)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("calling the broker at %s: %w", c.Base, err)
	}
	return resp, nil
}

// JSON sends a request and decodes a JSON answer into out.
func (c *Client) JSON(ctx context.Context, method, path string, body []byte, contentType string, out any) error {
	resp, err := c.Do(ctx, method, path, body, contentType)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("decoding the broker's answer to %s %s: %w", method, path, err)
	}
	return nil
}

// Bytes sends a request and returns the answer's body.
func (c *Client) Bytes(ctx context.Context, method, path string) ([]byte, error) {
	resp, err := c.Do(ctx, method, path, nil, "")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return io.ReadAll(resp.Body)
}

// IsNotFound reports whether err is a 404 answer.
func IsNotFound(err error) bool {
	var p *ProblemError
	return errors.As(err, &p) && p.Status == http.StatusNotFound
}

// Info returns what the broker says of itself.
func (c *Client) Info(ctx context.Context) (*v1.Info, error) {
	var out v1.Info
	return &out, c.JSON(ctx, "GET", "/v1/info", nil, "", &out)
}

// SubmitJob submits a job document; filename names it in errors and says
// whether it is JSON (.json) or YAML.
func (c *Client) SubmitJob(ctx context.Context, doc []byte, filename string) (*v1.Job, error) {
	ct := "application/yaml"
	if strings.HasSuffix(filename, ".json") {
		ct = "application/json"
	}
	var j v1.Job
	return &j, c.JSON(ctx, "POST", "/v1/jobs?filename="+url.QueryEscape(filename), doc, ct, &j)
}

// Job returns a job.
func (c *Client) Job(ctx context.Context, id string) (*v1.Job, error) {
	var j v1.Job
	return &j, c.JSON(ctx, "GET", "/v1/jobs/"+url.PathEscape(id), nil, "", &j)
}

// Jobs lists jobs, newest first.
func (c *Client) Jobs(ctx context.Context, state string, limit int) ([]*v1.Job, error) {
	q := url.Values{}
	if state != "" {
		q.Set("state", state)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var out struct {
		Jobs []*v1.Job `json:"jobs"`
	}
	return out.Jobs, c.JSON(ctx, "GET", "/v1/jobs?"+q.Encode(), nil, "", &out)
}

// Cancel asks for a job to stop.
func (c *Client) Cancel(ctx context.Context, id string) (*v1.Job, error) {
	var j v1.Job
	return &j, c.JSON(ctx, "POST", "/v1/jobs/"+url.PathEscape(id)+"/cancel", nil, "", &j)
}

// Logs returns a task's output on one node of the job (0 for a one-node
// job); with follow, a stream that ends with the attempt.
func (c *Client) Logs(ctx context.Context, id, task string, node int, stream string, follow bool) (io.ReadCloser, error) {
	q := url.Values{}
	if task != "" {
		q.Set("task", task)
	}
	if node != 0 {
		q.Set("node", strconv.Itoa(node))
	}
	if stream != "" {
		q.Set("stream", stream)
	}
	if follow {
		q.Set("follow", "true")
	}
	resp, err := c.Do(ctx, "GET", "/v1/jobs/"+url.PathEscape(id)+"/logs?"+q.Encode(), nil, "")
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// Events calls fn with each of the job's transitions, history first, until
// the job settles, fn returns an error, or ctx ends.
func (c *Client) Events(ctx context.Context, id string, fn func(v1.Transition) error) error {
	resp, err := c.Do(ctx, "GET", "/v1/jobs/"+url.PathEscape(id)+"/events", nil, "")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		var t v1.Transition
		if err := json.Unmarshal([]byte(data), &t); err != nil {
			return fmt.Errorf("an event from the broker does not decode: %w", err)
		}
		if err := fn(t); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil && ctx.Err() == nil {
		return err
	}
	return ctx.Err()
}

// Explain asks where a job would run.
func (c *Client) Explain(ctx context.Context, doc []byte, filename string) (json.RawMessage, error) {
	ct := "application/yaml"
	if strings.HasSuffix(filename, ".json") {
		ct = "application/json"
	}
	var out json.RawMessage
	return out, c.JSON(ctx, "POST", "/v1/explain?filename="+url.QueryEscape(filename), doc, ct, &out)
}

// RegisterOffer sends a signed offer envelope.
func (c *Client) RegisterOffer(ctx context.Context, envelope []byte) (*v1.Offer, error) {
	var out v1.Offer
	return &out, c.JSON(ctx, "POST", "/v1/offers", envelope, "application/json", &out)
}

// Offers lists the book's offers, or one provider's.
func (c *Client) Offers(ctx context.Context, provider string) ([]v1.Offer, error) {
	var out struct {
		Offers []v1.Offer `json:"offers"`
	}
	q := ""
	if provider != "" {
		q = "?provider=" + url.QueryEscape(provider)
	}
	return out.Offers, c.JSON(ctx, "GET", "/v1/offers"+q, nil, "", &out)
}

// Federation reads the broker's place in the federation.
func (c *Client) Federation(ctx context.Context) (*v1.Federation, error) {
	var out v1.Federation
	return &out, c.JSON(ctx, "GET", "/v1/federation", nil, "", &out)
}

// Withdraw withdraws an offer by its pool's name.
func (c *Client) Withdraw(ctx context.Context, name string) error {
	return c.JSON(ctx, "DELETE", "/v1/offers/"+name, nil, "", nil)
}

// Balances is the API's balances answer.
type Balances = v1.Balances

// Balances reads account balances ("" for the caller's own, or all).
func (c *Client) Balances(ctx context.Context, account string) (*Balances, error) {
	q := ""
	if account != "" {
		q = "?account=" + url.QueryEscape(account)
	}
	var out Balances
	return &out, c.JSON(ctx, "GET", "/v1/ledger/balances"+q, nil, "", &out)
}

// Statement reads an account's statement for a period.
func (c *Client) Statement(ctx context.Context, account, period string) (json.RawMessage, error) {
	q := url.Values{"period": {period}}
	if account != "" {
		q.Set("account", account)
	}
	var out json.RawMessage
	return out, c.JSON(ctx, "GET", "/v1/ledger/statement?"+q.Encode(), nil, "", &out)
}

// Export returns the FOCUS CSV of an account's charges in a period.
func (c *Client) Export(ctx context.Context, account, period string) ([]byte, error) {
	q := url.Values{"period": {period}, "format": {"focus"}}
	if account != "" {
		q.Set("account", account)
	}
	return c.Bytes(ctx, "GET", "/v1/ledger/export?"+q.Encode())
}

// Checkpoint returns the audit log's latest checkpoint note.
func (c *Client) Checkpoint(ctx context.Context) ([]byte, error) {
	return c.Bytes(ctx, "GET", "/v1/audit/checkpoint")
}

// Proof returns a record's log entry, checkpoint and inclusion proof.
func (c *Client) Proof(ctx context.Context, record string) (*v1.Proof, error) {
	var out v1.Proof
	return &out, c.JSON(ctx, "GET", "/v1/audit/proof?record="+url.QueryEscape(record), nil, "", &out)
}

// IssueToken asks the broker (as its operator, with a signed request) for
// a token.
func (c *Client) IssueToken(ctx context.Context, principal, role, ttl string) (*v1.IssuedToken, error) {
	body, _ := json.Marshal(map[string]string{"principal": principal, "role": role, "ttl": ttl})
	var out v1.IssuedToken
	return &out, c.JSON(ctx, "POST", "/v1/tokens", body, "application/json", &out)
}

// Tokens lists the tokens the broker issued that have not expired.
func (c *Client) Tokens(ctx context.Context) ([]*v1.TokenRecord, error) {
	var out struct {
		Tokens []*v1.TokenRecord `json:"tokens"`
	}
	return out.Tokens, c.JSON(ctx, "GET", "/v1/tokens", nil, "", &out)
}

// RevokeToken revokes a token by its ID.
func (c *Client) RevokeToken(ctx context.Context, id string) (*v1.TokenRecord, error) {
	var out v1.TokenRecord
	return &out, c.JSON(ctx, "DELETE", "/v1/tokens/"+url.PathEscape(id), nil, "", &out)
}

// A ConsoleCode signs a browser in to the broker's console, once.
type ConsoleCode = v1.ConsoleCode

// ConsoleCode asks for a one-time console sign-in code for the caller.
func (c *Client) ConsoleCode(ctx context.Context) (*ConsoleCode, error) {
	var cc ConsoleCode
	return &cc, c.JSON(ctx, "POST", "/v1/console/codes", nil, "", &cc)
}
