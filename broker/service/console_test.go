package service_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/cinet/cinet/broker/api"
	"github.com/cinet/cinet/broker/jobs"
	"github.com/cinet/cinet/broker/service"
	"github.com/cinet/cinet/identity"
)

// browser is a console client: it carries the session cookie, and the
// CSRF token when told to.
type browser struct {
	t      *testing.T
	base   string
	cookie *http.Cookie
	csrf   string
}

func (b *browser) do(method, path string, body []byte, withCSRF bool) (int, []byte) {
	b.t.Helper()
	req, _ := http.NewRequest(method, b.base+path, bytes.NewReader(body))
	if b.cookie != nil {
		req.AddCookie(b.cookie)
	}
	if withCSRF {
		req.Header.Set(api.CSRFHeader, b.csrf)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	for _, c := range resp.Cookies() {
		if c.Name == api.SessionCookie {
			b.cookie = c
		}
	}
	return resp.StatusCode, out
}

// consoleCode asks, signed with the tenant's key, for a sign-in code.
func (e *env) consoleCode(t *testing.T) string {
	t.Helper()
	status, _, body := e.raw(tenantKey, "POST", "/v1/console/codes", nil)
	var c struct{ Code, URL string }
	if err := json.Unmarshal(body, &c); status != 201 || err != nil || c.Code == "" || !strings.HasSuffix(c.URL, "/ui/#code="+c.Code) {
		t.Fatalf("a sign-in code: %d %s", status, body)
	}
	return c.Code
}

// TestConsoleSignIn: a code, issued to a signed request, buys one session
// once; the session reads what its principal may and no more; a request
// that changes something without the session's CSRF token is refused and
// changes nothing; signing out ends the session.
func TestConsoleSignIn(t *testing.T) {
	e := start(t)
	code := e.consoleCode(t)
	b := &browser{t: t, base: e.url}
	status, body := b.do("POST", "/v1/console/session", []byte(`{"code": "`+code+`"}`), false)
	var s struct {
		Principal, CSRF string
		Role            api.Role
	}
	if err := json.Unmarshal(body, &s); status != 201 || err != nil || s.Role != api.Tenant || s.Principal != tenantKey.ID().String() || s.CSRF == "" {
		t.Fatalf("signing in: %d %s", status, body)
	}
	if b.cookie == nil || !b.cookie.HttpOnly || b.cookie.SameSite != http.SameSiteStrictMode {
		t.Fatalf("session cookie %+v", b.cookie)
	}
	b.csrf = s.CSRF

	// The code is good once.
	other := &browser{t: t, base: e.url}
	if status, body := other.do("POST", "/v1/console/session", []byte(`{"code": "`+code+`"}`), false); status != 401 || !strings.Contains(string(body), "used already") {
		t.Errorf("a used code: %d %s", status, body)
	}
	for _, bad := range []string{`{"code": "forged"}`, `{}`, `not json`, `{"code": "x", "role": "operator"}`} {
		if status, _ := other.do("POST", "/v1/console/session", []byte(bad), false); status != 400 && status != 401 {
			t.Errorf("sign-in with %s: %d", bad, status)
		}
	}
	if other.cookie != nil {
		t.Fatal("a refused sign-in set a cookie")
	}

	// The session reads the tenant's jobs, and nothing else of anyone's.
	if status, body := b.do("GET", "/v1/jobs", nil, false); status != 200 {
		t.Fatalf("listing jobs: %d %s", status, body)
	}
	status, _, body = e.raw(otherTenant, "POST", "/v1/jobs", []byte(jobYAML("true")))
	var j jobs.Job
	json.Unmarshal(body, &j)
	if status != 201 {
		t.Fatalf("another tenant's submission: %d %s", status, body)
	}
	if status, body := b.do("GET", "/v1/jobs/"+j.ID, nil, false); status != 404 {
		t.Errorf("another tenant's job by URL: %d %s", status, body)
	}
	if status, body := b.do("GET", "/v1/offers", nil, false); status != 200 {
		t.Errorf("offers: %d %s", status, body)
	}

	// No CSRF token: refused, and no job was made.
	before := countJobs(t, b)
	if status, body := b.do("POST", "/v1/jobs", []byte(jobYAML("true")), false); status != 403 || !strings.Contains(string(body), "X-CSRF-Token") {
		t.Errorf("a submission without the CSRF token: %d %s", status, body)
	}
	saved := b.csrf
	b.csrf = "forged"
	if status, _ := b.do("POST", "/v1/jobs", []byte(jobYAML("true")), true); status != 403 {
		t.Errorf("a submission with a forged CSRF token: %d", status)
	}
	b.csrf = saved
	if after := countJobs(t, b); after != before {
		t.Fatalf("refused submissions made %d jobs", after-before)
	}
	if status, body := b.do("POST", "/v1/jobs", []byte(jobYAML("true")), true); status != 201 {
		t.Fatalf("a submission with the CSRF token: %d %s", status, body)
	}
	// A session cannot mint codes for more sessions.
	if status, _ := b.do("POST", "/v1/console/codes", nil, true); status != 403 {
		t.Errorf("a code for a session: %d", status)
	}
	// The session says who it is.
	if status, body := b.do("GET", "/v1/console/session", nil, false); status != 200 || !strings.Contains(string(body), s.CSRF) {
		t.Errorf("the session: %d %s", status, body)
	}

	// Signing out ends it; the old cookie is refused.
	old := *b.cookie
	if status, _ := b.do("DELETE", "/v1/console/session", nil, true); status != 204 {
		t.Fatalf("signing out: %d", status)
	}
	b.cookie = &old
	if status, body := b.do("GET", "/v1/jobs", nil, false); status != 401 {
		t.Errorf("after signing out: %d %s", status, body)
	}
}

func countJobs(t *testing.T, b *browser) int {
	t.Helper()
	status, body := b.do("GET", "/v1/jobs", nil, false)
	var l struct{ Jobs []json.RawMessage }
	if err := json.Unmarshal(body, &l); status != 200 || err != nil {
		t.Fatalf("listing jobs: %d %s", status, body)
	}
	return len(l.Jobs)
}

// TestConsolePages: the console is served from the binary under a strict
// Content-Security-Policy, and loads nothing from elsewhere.
func TestConsolePages(t *testing.T) {
	e := start(t)
	// Anything that would load from another origin: an element's src or
	// href, a CSS url() or @import, a script import or fetch.
	external := regexp.MustCompile(`(?i)((src|href)\s*=\s*["']?|url\(\s*["']?|@import\s+["']?|import[^;]*from\s*["']|fetch\(\s*["'])(https?:)?//`)
	for _, p := range []string{"/ui/", "/ui/app.js", "/ui/app.css", "/ui/verify.js"} {
		req, _ := http.NewRequest("GET", e.url+p, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		csp := resp.Header.Get("Content-Security-Policy")
		if resp.StatusCode != 200 || !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe") {
			t.Errorf("%s: %d, CSP %q", p, resp.StatusCode, csp)
		}
		if m := external.Find(body); m != nil {
			t.Errorf("%s loads from another origin: %s", p, m)
		}
	}
}

// TestPlacements: a provider sees the jobs running on its capacity — where
// and since when — and nothing of the tenant's; another provider sees none
// of them.
func TestPlacements(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	status, _, body := e.raw(tenantKey, "POST", "/v1/jobs", []byte(jobYAML("echo started; sleep 600")))
	var j jobs.Job
	if json.Unmarshal(body, &j); status != 201 {
		t.Fatalf("submit: %d %s", status, body)
	}
	defer func() {
		e.as(tenantKey).Cancel(ctx, j.ID)
		e.waitSettled(e.as(tenantKey), j.ID)
	}()
	e.waitRunning(e.as(tenantKey), j.ID)
	status, _, body = e.raw(providerKey, "GET", "/v1/placements", nil)
	var p struct{ Placements []api.PlacementView }
	if err := json.Unmarshal(body, &p); status != 200 || err != nil || len(p.Placements) != 1 || p.Placements[0].Placement != j.ID+"-1" || p.Placements[0].Provider != providerKey.ID() {
		t.Fatalf("the provider's placements: %d %s", status, body)
	}
	for _, secret := range []string{tenantKey.ID().String(), "api-test", "sleep 600"} {
		if strings.Contains(string(body), secret) {
			t.Errorf("the provider sees %q of the tenant's", secret)
		}
	}
	if status, _, body := e.raw(otherProvider, "GET", "/v1/placements", nil); status != 200 || strings.Contains(string(body), j.ID) {
		t.Errorf("another provider's placements: %d %s", status, body)
	}
	if status, _, _ := e.raw(tenantKey, "GET", "/v1/placements", nil); status != 403 {
		t.Errorf("a tenant reading placements: %d", status)
	}
}

// TestCheckpointHistory: the checkpoints the broker issued, newest first,
// each with when it was signed — the log's size over time.
func TestCheckpointHistory(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	regulator := e.as(regulatorKey)
	if _, err := regulator.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	status, _, body := e.raw(tenantKey, "POST", "/v1/jobs", []byte(jobYAML("true")))
	var j jobs.Job
	if json.Unmarshal(body, &j); status != 201 {
		t.Fatalf("submit: %d %s", status, body)
	}
	e.waitSettled(e.as(tenantKey), j.ID)
	if _, err := regulator.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	status, _, body = e.raw(regulatorKey, "GET", "/v1/audit/checkpoints", nil)
	var h struct{ Checkpoints []api.CheckpointView }
	if err := json.Unmarshal(body, &h); status != 200 || err != nil || len(h.Checkpoints) < 2 {
		t.Fatalf("history: %d %s", status, body)
	}
	newest, older := h.Checkpoints[0], h.Checkpoints[len(h.Checkpoints)-1]
	if newest.Size <= older.Size || newest.SignedAt.Before(older.SignedAt) || newest.SignedAt.IsZero() || !strings.Contains(newest.Checkpoint, "\n\n— ") {
		t.Errorf("history %+v", h.Checkpoints)
	}
	for _, q := range []string{"limit=0", "limit=1001", "limit=x"} {
		if status, _, _ := e.raw(regulatorKey, "GET", "/v1/audit/checkpoints?"+q, nil); status != 400 {
			t.Errorf("checkpoints?%s: %d", q, status)
		}
	}
	if status, _, body := e.raw(regulatorKey, "GET", "/v1/audit/checkpoints?limit=1", nil); status != 200 || strings.Count(string(body), `"size"`) != 1 {
		t.Errorf("limit=1: %d %s", status, body)
	}
}

// TestServiceReceivesNoConsoleCookie: a tenant runs a service that echoes
// the Cookie header of each request into its answer; a victim signed in to
// the console (a cookie jar that keeps cookies as browsers do, by host and
// not by port) opens the service's endpoint, as the console links it. No
// console cookie reaches the service. A broker configured to expose
// services on the console's own host refuses to start.
func TestServiceReceivesNoConsoleCookie(t *testing.T) {
	e := start(t)
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	victim := &http.Client{Jar: jar}
	code := e.consoleCode(t)
	resp, err := victim.Post(e.url+"/v1/console/session", "application/json", strings.NewReader(`{"code": "`+code+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	base, _ := url.Parse(e.url)
	if resp.StatusCode != 201 || len(jar.Cookies(base)) == 0 {
		t.Fatalf("signing in: %d, cookies %v", resp.StatusCode, jar.Cookies(base))
	}

	doc := serviceJob("echo", 1, `{ $h = ""; while (<$c>) { last if /^\r?$/; $h .= $_ if /^cookie:/i } print $c "HTTP/1.0 200 OK\r\n\r\nheaders:$h\n"; close $c }`)
	j, err := e.as(otherTenant).SubmitJob(context.Background(), []byte(doc), "echo.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var ep string
	waitFor(t, "the echo service ready", func() bool {
		cur, err := e.as(otherTenant).Job(context.Background(), j.ID)
		if err != nil {
			t.Fatal(err)
		}
		if cur.State.Ended() {
			t.Fatalf("the echo service ended: %s %s", cur.State, cur.Detail)
		}
		if n := len(cur.Attempts); n > 0 && len(cur.Attempts[n-1].Endpoints) == 1 && cur.Attempts[n-1].Endpoints[0].Ready {
			ep = cur.Attempts[n-1].Endpoints[0].URL
		}
		return ep != ""
	})
	defer e.as(otherTenant).Cancel(context.Background(), j.ID)

	resp, err = victim.Get(ep + "/")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.HasPrefix(string(got), "headers:") {
		t.Fatalf("the echo service answered %q", got)
	}
	if strings.Contains(strings.ToLower(string(got)), "cookie") {
		t.Fatalf("a tenant's service at %s received the console's cookie: %q", ep, got)
	}
	// The endpoint's host is not the console's.
	epURL, _ := url.Parse(ep)
	if epURL.Hostname() == base.Hostname() {
		t.Fatalf("the service is exposed on the console's host %s", base.Hostname())
	}

	// Exposing services on the console's host is refused at start.
	dir := t.TempDir()
	if err := identity.WriteKeyFile(filepath.Join(dir, "broker.key"), operatorKey); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`region: r
data: %s
listen: 127.0.0.1:0
providers:
  - provider: %s
    adapter: local
    config: {workdir: %s, serviceListen: 127.0.0.1}
`, dir, providerKey.ID(), filepath.Join(dir, "work"))
	path := filepath.Join(dir, "broker.yaml")
	os.WriteFile(path, []byte(cfg), 0o600)
	c, err := service.LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := service.New(context.Background(), c, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "console") {
		t.Fatalf("a broker exposing services on the console's host: %v", err)
	}
}
