package service_test

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"golang.org/x/mod/sumdb/note"

	"github.com/cinet/cinet/broker/client"
	"github.com/cinet/cinet/broker/jobs"
	"github.com/cinet/cinet/identity"
	. "github.com/cinet/cinet/settlement/settlementtest"
)

// screenshotDir is where the browser tests leave the console's views, at
// laptop and phone widths, for a reviewer (README.md names it).
var screenshotDir = filepath.Join("..", "..", ".screenshots", "console")

// newBrowser starts headless Chromium for a test; without it the test is
// skipped, unless CINET_TEST_BROWSER_REQUIRED is set (.ci/run sets it and
// installs Chromium).
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CINET_TEST_BROWSER_REQUIRED") != "" {
			t.Fatal("chromium is not installed: apt-get install chromium")
		}
		t.Skip("chromium is not installed")
	}
	// The browser's profile and its temporary files go in one directory,
	// removed once the browser has gone (its helper processes may still be
	// writing for a moment after).
	base, err := os.MkdirTemp("", "cinet-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	profile, tmp := filepath.Join(base, "profile"), filepath.Join(base, "tmp")
	for _, d := range []string{profile, tmp} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("headless", "new"), chromedp.UserDataDir(profile), chromedp.WindowSize(1280, 800), chromedp.Env("TMPDIR="+tmp))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(func() {
		cancel()
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			err := os.RemoveAll(base)
			if err == nil {
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("removing the browser's profile: %v", err)
				return
			}
		}
	})
	ctx, cancelCtx := chromedp.NewContext(actx)
	t.Cleanup(cancelCtx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(cancelTimeout)
	if err := chromedp.Run(ctx); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	return ctx
}

// a11yCheck lists what on the page a screen reader or a keyboard could
// not use: form controls without a label, buttons and links without a
// name, images without a text, tables without header cells, content wider
// than the window, and text below 4.5:1 contrast with its background.
const a11yCheck = `(() => {
  const out = [];
  const named = (e) => (e.getAttribute("aria-label") || e.textContent || "").trim() !== "";
  for (const c of document.querySelectorAll("input, textarea, select")) {
    if (!(c.id && document.querySelector('label[for="' + c.id + '"]')) && !c.getAttribute("aria-label")) out.push("unlabelled " + c.tagName + "#" + c.id);
  }
  for (const b of document.querySelectorAll("button, a[href]")) if (!named(b)) out.push("nameless " + b.tagName);
  for (const i of document.querySelectorAll("svg[role=img], img")) if (!(i.getAttribute("aria-label") || i.getAttribute("alt"))) out.push("image without text");
  for (const t of document.querySelectorAll("table")) if (!t.querySelector("th")) out.push("table without headers");
  if (document.documentElement.scrollWidth > window.innerWidth + 1) out.push("wider than the window: " + document.documentElement.scrollWidth + "px");
  const lum = (rgb) => { const v = rgb.match(/\d+(\.\d+)?/g).slice(0, 3).map((x) => { x = x / 255; return x <= 0.03928 ? x / 12.92 : ((x + 0.055) / 1.055) ** 2.4; }); return 0.2126 * v[0] + 0.7152 * v[1] + 0.0722 * v[2]; };
  const bg = (e) => { for (; e; e = e.parentElement) { const c = getComputedStyle(e).backgroundColor; if (!/rgba\(.*, 0\)$/.test(c) && c !== "transparent") return c; } return "rgb(255, 255, 255)"; };
  for (const e of document.querySelectorAll("body *")) {
    if (!e.childNodes.length || ![...e.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim())) continue;
    const a = lum(getComputedStyle(e).color), b = lum(bg(e));
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    if (ratio < 4.5) out.push("contrast " + ratio.toFixed(2) + " for " + e.tagName + ": " + e.textContent.trim().slice(0, 30));
  }
  if (!document.documentElement.lang) out.push("no lang");
  return out;
})()`

// shoot writes the page as it is at laptop and at phone width, after
// checking it for what would keep someone from using it.
func shoot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	if err := os.MkdirAll(screenshotDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, size := range []struct {
		label string
		w, h  int64
	}{{"laptop", 1280, 800}, {"phone", 390, 844}} {
		var png []byte
		var problems []string
		if err := chromedp.Run(ctx, chromedp.EmulateViewport(size.w, size.h), chromedp.Evaluate(a11yCheck, &problems), chromedp.FullScreenshot(&png, 100)); err != nil {
			t.Fatal(err)
		}
		if len(problems) > 0 {
			t.Errorf("%s at %s width: %s", name, size.label, strings.Join(problems, "; "))
		}
		if err := os.WriteFile(filepath.Join(screenshotDir, name+"-"+size.label+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := chromedp.Run(ctx, chromedp.EmulateViewport(1280, 800)); err != nil {
		t.Fatal(err)
	}
}

// signInAs opens the sign-in link a principal's code makes and waits for
// the console to show its first view.
func (e *env) signInAs(t *testing.T, ctx context.Context, k *identity.Key, firstView string) {
	t.Helper()
	status, _, body := e.raw(k, "POST", "/v1/console/codes", nil)
	var c struct{ URL string }
	if err := json.Unmarshal(body, &c); status != 201 || err != nil {
		t.Fatalf("a sign-in code: %d %s", status, body)
	}
	if err := chromedp.Run(ctx, chromedp.Navigate(c.URL),
		chromedp.WaitVisible(fmt.Sprintf(`//nav//a[@aria-current="page" and normalize-space()=%q]`, firstView))); err != nil {
		t.Fatalf("signing in: %v", err)
	}
}

// waitText waits until the element at sel holds text containing want.
func waitText(t *testing.T, ctx context.Context, sel, want string) {
	t.Helper()
	js := fmt.Sprintf(`(() => { const e = document.querySelector(%q); return !!e && e.textContent.includes(%q); })()`, sel, want)
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Run(wctx, chromedp.Poll(js, nil, chromedp.WithPollingInterval(50*time.Millisecond))); err != nil {
		var text string
		chromedp.Run(ctx, chromedp.Evaluate(`document.querySelector("main").innerText`, &text))
		t.Fatalf("waiting for %q in %s: %v; the page shows:\n%s", want, sel, err, text)
	}
}

// TestConsoleInABrowser drives the console in headless Chromium: a tenant
// signs in by link, submits a job from the form and watches it settle,
// sees its located errors for a bad document, and cannot open another
// tenant's job by its URL; a regulator sees the books balance; a provider
// its offers. Each view is photographed at laptop and phone widths.
func TestConsoleInABrowser(t *testing.T) {
	ctx := newBrowser(t)
	e := start(t)

	e.signInAs(t, ctx, tenantKey, "Jobs")
	waitText(t, ctx, "main", "No jobs yet")
	shoot(t, ctx, "tenant-jobs-empty")

	// Submit from the form and follow it to settled.
	doc := jobYAML(`echo hello from the console; echo '<img src=x onerror="document.body.dataset.pwned=1">'`)
	if err := chromedp.Run(ctx, chromedp.Navigate(e.url+"/ui/#/submit"), chromedp.WaitVisible("#doc"),
		chromedp.SetValue("#doc", doc), chromedp.Click(`//button[normalize-space()="Submit"]`)); err != nil {
		t.Fatal(err)
	}
	waitText(t, ctx, "main dl", "settled")
	waitText(t, ctx, "pre.logs", "hello from the console")
	// What a job writes is shown as text: markup in it is not run.
	waitText(t, ctx, "pre.logs", "<img src=x")
	var markupRan bool
	if err := chromedp.Run(ctx, chromedp.Evaluate(`document.querySelector("pre.logs").children.length > 0 || !!document.body.dataset.pwned`, &markupRan)); err != nil || markupRan {
		t.Fatalf("a job's output ran as markup (%v)", err)
	}
	var loc string
	if err := chromedp.Run(ctx, chromedp.Location(&loc)); err != nil || !strings.Contains(loc, "#/job/j-") {
		t.Fatalf("after submitting, the page is %s (%v)", loc, err)
	}
	shoot(t, ctx, "tenant-job")
	if err := chromedp.Run(ctx, chromedp.Navigate(e.url+"/ui/#/jobs")); err != nil {
		t.Fatal(err)
	}
	waitText(t, ctx, "main tbody", "settled (succeeded)")
	shoot(t, ctx, "tenant-jobs")

	// A job no offer can serve: its page says why, offer by offer.
	if err := chromedp.Run(ctx, chromedp.Navigate(e.url+"/ui/#/submit"), chromedp.WaitVisible("#doc"),
		chromedp.SetValue("#doc", strings.Replace(doc, "cpus: 1", "cpus: 64", 1)), chromedp.Click(`//button[normalize-space()="Submit"]`)); err != nil {
		t.Fatal(err)
	}
	waitText(t, ctx, "main", "0 could serve it")
	waitText(t, ctx, "main details summary", "insufficient_cpu")
	shoot(t, ctx, "tenant-job-unplaceable")

	// The statement: spend by day and by region, and the records. (The
	// period is wide, so that a month's end between the job and the page
	// changes nothing.)
	if err := chromedp.Run(ctx, chromedp.Navigate(e.url+"/ui/#/statement"), chromedp.WaitVisible("#period"),
		chromedp.SetValue("#period", "2000-01-01T00:00:00Z/2100-01-01T00:00:00Z"), chromedp.Click(`//button[normalize-space()="Show"]`)); err != nil {
		t.Fatal(err)
	}
	waitText(t, ctx, "main figure", "By day")
	waitText(t, ctx, "main .charts", "By region")
	waitText(t, ctx, "main tbody", "sha256:")
	shoot(t, ctx, "tenant-statement")

	for _, view := range []string{"balance", "offers"} {
		if err := chromedp.Run(ctx, chromedp.Navigate(e.url+"/ui/#/"+view), chromedp.WaitVisible("main table")); err != nil {
			t.Fatal(err)
		}
		shoot(t, ctx, "tenant-"+view)
	}

	// A request from the page that changes something but lacks the
	// session's CSRF token is refused, and makes no job.
	var csrfStatus int
	if err := chromedp.Run(ctx, chromedp.Evaluate(`fetch("/v1/jobs", {method: "POST", body: "x", credentials: "same-origin"}).then((r) => r.status)`, &csrfStatus,
		func(p *runtime.EvaluateParams) *runtime.EvaluateParams { return p.WithAwaitPromise(true) })); err != nil || csrfStatus != 403 {
		t.Fatalf("a POST without the CSRF token: %d %v", csrfStatus, err)
	}

	// A bad document: its errors, at their lines, and no job.
	if err := chromedp.Run(ctx, chromedp.Navigate(e.url+"/ui/#/submit"), chromedp.WaitVisible("#doc"),
		chromedp.SetValue("#doc", strings.Replace(doc, "cpus: 1", "cpus: -1", 1)), chromedp.Click(`//button[normalize-space()="Submit"]`)); err != nil {
		t.Fatal(err)
	}
	waitText(t, ctx, "main [role=alert]", "line 7, column")
	shoot(t, ctx, "tenant-submit-errors")
	// An oversized document: refused, and said so.
	if err := chromedp.Run(ctx, chromedp.Evaluate(`document.querySelector("#doc").value = "# " + "x".repeat(2 << 20)`, nil),
		chromedp.Click(`//button[normalize-space()="Submit"]`)); err != nil {
		t.Fatal(err)
	}
	waitText(t, ctx, "main [role=alert]", "over 1048576 bytes")

	// Another tenant's job, by its URL: not found.
	status, _, body := e.raw(otherTenant, "POST", "/v1/jobs", []byte(jobYAML("true")))
	var theirs jobs.Job
	if json.Unmarshal(body, &theirs); status != 201 {
		t.Fatalf("another tenant's job: %d %s", status, body)
	}
	if err := chromedp.Run(ctx, chromedp.Navigate(e.url+"/ui/#/job/"+theirs.ID)); err != nil {
		t.Fatal(err)
	}
	waitText(t, ctx, "main [role=alert]", "no job "+theirs.ID)
	var text string
	if err := chromedp.Run(ctx, chromedp.Text("main", &text)); err != nil || strings.Contains(text, otherTenant.ID().String()) {
		t.Fatalf("another tenant's job shows: %q %v", text, err)
	}

	// Signing out: back to the sign-in page, and the old session is gone.
	if err := chromedp.Run(ctx, chromedp.Click(`//button[normalize-space()="Sign out"]`), chromedp.WaitVisible("#code")); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Run(ctx, chromedp.Navigate(e.url+"/ui/#/jobs"), chromedp.WaitVisible("#code")); err != nil {
		t.Fatalf("after signing out the jobs page opened: %v", err)
	}
	shoot(t, ctx, "sign-in")

	e.signInAs(t, ctx, regulatorKey, "Books")
	waitText(t, ctx, "main", "Trial balance")
	shoot(t, ctx, "regulator-books")

	// The regulator verifies the tenant's usage record in the page, and
	// the page refuses it tampered with.
	js, err := e.as(tenantKey).Jobs(context.Background(), "", 0)
	if err != nil {
		t.Fatal(err)
	}
	var record string
	for _, j := range js {
		for _, a := range j.Attempts {
			record = cmp.Or(record, a.Record)
		}
	}
	if record == "" {
		t.Fatal("the tenant's job has no usage record")
	}
	verify := func(tamper string) string {
		t.Helper()
		var verdict string
		// Away and back: the view is made anew, nothing tampered kept.
		if err := chromedp.Run(ctx, chromedp.Navigate(e.url+"/ui/#/balance"), chromedp.WaitVisible("main table"),
			chromedp.Navigate(e.url+"/ui/#/verify/"+record),
			chromedp.Poll(`document.querySelector("#receipt") && document.querySelector("#receipt").value.startsWith("c2sp.org/tlog-proof@v1")`, nil),
			chromedp.Evaluate(tamper, nil),
			chromedp.Click(`//button[normalize-space()="Verify in this browser"]`),
			chromedp.Poll(`document.querySelector("#verdict").textContent.length > 0`, nil),
			chromedp.Text("#verdict", &verdict)); err != nil {
			t.Fatal(err)
		}
		return verdict
	}
	if v := verify(`0`); !strings.HasPrefix(v, "Verified in this browser") {
		t.Fatalf("the untouched receipt: %q", v)
	}
	shoot(t, ctx, "regulator-verify")
	_, otherVkey, err := note.GenerateKey(rand.Reader, "cinet.broker/other")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, tamper, want string }{
		{"another log's key", fmt.Sprintf(`document.querySelector("#vkey").value = %q`, otherVkey), "no valid signature"},
		{"the entry", `document.querySelector("#entry").value += " "`, "inclusion proof"},
		{"the checkpoint's root", `(() => { const r = document.querySelector("#receipt"); const lines = r.value.split("\n"); const at = lines.indexOf("") + 3; lines[at] = (lines[at][0] === "A" ? "B" : "A") + lines[at].slice(1); r.value = lines.join("\n"); })()`, "no valid signature"},
		{"the verifier key", `document.querySelector("#vkey").value = "cinet.broker/other+00000000+AQ" + "A".repeat(42)`, "verifier key"},
	} {
		if v := verify(tc.tamper); !strings.HasPrefix(v, "Refused") || !strings.Contains(v, tc.want) {
			t.Errorf("a receipt with %s tampered: %q", tc.name, v)
		}
	}
	shoot(t, ctx, "regulator-verify-refused")

	// The regulator checks the log in the page: the latest checkpoint, and
	// after the log grows, that it only grew since the one this browser
	// remembers; an older checkpoint tampered with is refused.
	auditCheck := func(tamper string) string {
		t.Helper()
		var verdict string
		if err := chromedp.Run(ctx, chromedp.Navigate(e.url+"/ui/#/balance"), chromedp.WaitVisible("main table"),
			chromedp.Navigate(e.url+"/ui/#/audit"), chromedp.WaitVisible("#older"),
			chromedp.Poll(`document.querySelector("#audit-vkey").value.length > 0`, nil),
			chromedp.Evaluate(tamper, nil),
			chromedp.Click(`//button[normalize-space()="Verify in this browser"]`),
			chromedp.Poll(`document.querySelector("#audit-verdict").textContent.length > 0`, nil),
			chromedp.Text("#audit-verdict", &verdict)); err != nil {
			t.Fatal(err)
		}
		return verdict
	}
	if v := auditCheck(`0`); !strings.Contains(v, "The latest checkpoint is signed") || strings.Contains(v, "Consistent") {
		t.Fatalf("the first audit: %q", v)
	}
	status, _, body = e.raw(tenantKey, "POST", "/v1/jobs", []byte(jobYAML("true")))
	var more jobs.Job
	if json.Unmarshal(body, &more); status != 201 {
		t.Fatalf("another job: %d %s", status, body)
	}
	e.waitSettled(e.as(tenantKey), more.ID)
	if v := auditCheck(`0`); !strings.Contains(v, "Consistent: the log only grew, from") {
		t.Fatalf("the audit after the log grew: %q", v)
	}
	waitText(t, ctx, "main figure", "Entries, by the last checkpoint of each day")
	shoot(t, ctx, "regulator-audit")
	tamperRoot := `(() => { const o = document.querySelector("#older"); const l = o.value.split("\n"); l[2] = (l[2][0] === "A" ? "B" : "A") + l[2].slice(1); o.value = l.join("\n"); })()`
	if v := auditCheck(tamperRoot); !strings.HasPrefix(v, "Refused") {
		t.Fatalf("an older checkpoint tampered with: %q", v)
	}

	// The regulator reads a tenant's statement and can download the FOCUS
	// export.
	if err := chromedp.Run(ctx, chromedp.Navigate(e.url+"/ui/#/statement"), chromedp.WaitVisible("#account"),
		chromedp.SetValue("#account", "tenant/"+tenantKey.ID().String()), chromedp.SetValue("#period", "2000-01-01T00:00:00Z/2100-01-01T00:00:00Z"),
		chromedp.Click(`//button[normalize-space()="Show"]`)); err != nil {
		t.Fatal(err)
	}
	waitText(t, ctx, "main tbody", "sha256:")
	waitText(t, ctx, "main", "FOCUS export")
	shoot(t, ctx, "regulator-statement")

	// The operator: health, metrics, and the tokens issued, one revoked
	// from the page.
	tok, err := e.as(operatorKey).IssueToken(context.Background(), regulatorKey.ID().String(), "regulator", "1h")
	if err != nil {
		t.Fatal(err)
	}
	e.signInAs(t, ctx, operatorKey, "Jobs")
	if err := chromedp.Run(ctx, chromedp.Navigate(e.url+"/ui/#/operate"), chromedp.WaitVisible("#tokens tbody"),
		chromedp.Click(`//button[normalize-space()="Revoke"]`)); err != nil {
		t.Fatal(err)
	}
	waitText(t, ctx, "main [aria-live]", "Token "+tok.ID+" revoked")
	if _, err := (&client.Client{Base: e.url, Token: tok.Token}).Balances(context.Background(), ""); err == nil {
		t.Fatal("a token revoked from the console still works")
	}
	waitText(t, ctx, "main tbody", tenantKey.ID().String())
	waitText(t, ctx, "main", "cinet_")
	shoot(t, ctx, "operator")

	// A job running on the provider's capacity shows on its page.
	status, _, body = e.raw(tenantKey, "POST", "/v1/jobs", []byte(jobYAML("sleep 600")))
	var long jobs.Job
	if json.Unmarshal(body, &long); status != 201 {
		t.Fatalf("a long job: %d %s", status, body)
	}
	defer func() {
		e.as(tenantKey).Cancel(context.Background(), long.ID)
		e.waitSettled(e.as(tenantKey), long.ID)
	}()
	e.waitRunning(e.as(tenantKey), long.ID)
	e.signInAs(t, ctx, providerKey, "Offers")
	waitText(t, ctx, "main tbody", "local-cpu")
	waitText(t, ctx, "#placements", long.ID+"-1")
	// A signed offer, uploaded from a file, registers; withdrawn, it goes.
	dir := t.TempDir()
	upload := func(name string, data []byte) {
		t.Helper()
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := chromedp.Run(ctx, chromedp.SetUploadFiles("#offer-file", []string{path}, chromedp.ByQuery),
			chromedp.Click(`//button[normalize-space()="Register"]`)); err != nil {
			t.Fatal(err)
		}
	}
	upload("offer.signed.json", signedOffer(t, providerKey, "console-pool", 2))
	waitText(t, ctx, "main tbody", "console-pool")
	waitText(t, ctx, "main [aria-live]", "Registered")
	shoot(t, ctx, "provider-offers")
	// Another provider's signed offer, uploaded by this one: refused.
	upload("theirs.signed.json", signedOffer(t, otherProvider, "not-mine", 1))
	waitText(t, ctx, "main [role=alert]", "a provider registers its own offers")
	var listed bool
	if err := chromedp.Run(ctx, chromedp.Evaluate(`document.querySelector("main tbody").textContent.includes("not-mine")`, &listed)); err != nil || listed {
		t.Fatalf("another provider's offer was registered by this one (%v)", err)
	}
	shoot(t, ctx, "provider-offer-refused")
	if err := chromedp.Run(ctx, chromedp.Click(`//button[contains(@aria-label, "console-pool")]`)); err != nil {
		t.Fatal(err)
	}
	waitText(t, ctx, "main [aria-live]", "Withdrew")
	if err := chromedp.Run(ctx, chromedp.Poll(`!document.querySelector("main tbody").textContent.includes("console-pool")`, nil)); err != nil {
		t.Fatal(err)
	}
}

// TestConsoleFederation: a regulator at the home broker of a job that ran
// on another broker sees both brokers, the peer, and the clearing
// statements countersigned with it; a broker alone says so.
func TestConsoleFederation(t *testing.T) {
	ctx := newBrowser(t)
	members := []identity.PrincipalID{HomeKey.ID(), ExecKey.ID()}
	a := federated(t, HomeKey, providerKey, "cn-north-1", members)
	b := federated(t, ExecKey, Key(8), "cn-east-1", members, a.svc.Federation.Addrs()[0])
	bg := context.Background()
	if _, err := b.as(Key(8)).RegisterOffer(bg, signedOfferOwnedBy(t, Key(8), "remote-cpu", 2, ExecKey.ID())); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a's book holds b's offer", func() bool { return a.svc.Book.Len() == 1 })
	j, err := a.as(tenantKey).SubmitJob(bg, []byte(jobYAML("true")), "job.yaml")
	if err != nil {
		t.Fatal(err)
	}
	a.waitSettled(a.as(tenantKey), j.ID)
	waitFor(t, "a's statement toward b is countersigned", func() bool {
		for _, c := range a.svc.Federation.Clearings() {
			if c.Result == "countersigned" {
				return true
			}
		}
		return false
	})
	waitFor(t, "a holds b's announcement", func() bool { return len(a.svc.Federation.Brokers()) == 2 })

	a.signInAs(t, ctx, regulatorKey, "Books")
	if err := chromedp.Run(ctx, chromedp.Navigate(a.url+"/ui/#/federation")); err != nil {
		t.Fatal(err)
	}
	waitText(t, ctx, "main", "countersigned")
	for _, want := range []string{"cn-east-1", ExecKey.ID().String(), "admits the 2 members", "None: every checkpoint"} {
		waitText(t, ctx, "main", want)
	}
	shoot(t, ctx, "regulator-federation")

	alone := start(t)
	alone.signInAs(t, ctx, operatorKey, "Jobs")
	if err := chromedp.Run(ctx, chromedp.Navigate(alone.url+"/ui/#/federation")); err != nil {
		t.Fatal(err)
	}
	waitText(t, ctx, "main", "This broker runs alone")
}
