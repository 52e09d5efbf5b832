package service_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cinet/cinet/broker/api"
	"github.com/cinet/cinet/broker/client"
	"github.com/cinet/cinet/broker/httpsig"
	"github.com/cinet/cinet/identity"
	"github.com/cinet/cinet/settlement/settlementtest"
	"github.com/cinet/cinet/spec"
)

// TestAuthorization calls every endpoint as every role and checks who is
// let through; then the cases the roles' rules single out.
func TestAuthorization(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	// A settled job of the tenant's, for the job and record endpoints.
	j, err := e.as(tenantKey).SubmitJob(ctx, []byte(jobYAML("echo hi")), "job.yaml")
	if err != nil {
		t.Fatal(err)
	}
	done := e.waitSettled(e.as(tenantKey), j.ID)
	record := done.Attempts[0].Record
	offerName := e.registerOffer(providerKey, "spare", 1).Name

	roles := map[api.Role]*identity.Key{api.Tenant: tenantKey, api.Provider: providerKey, api.Regulator: regulatorKey, api.Operator: operatorKey}
	fill := strings.NewReplacer("{id}", j.ID, "{name...}", offerName)
	month := done.CreatedAt.Format("2006-01")
	query := map[string]string{
		"/v1/ledger/statement":  "?period=" + month,
		"/v1/ledger/export":     "?period=" + month,
		"/v1/audit/proof":       "?record=" + record,
		"/v1/audit/consistency": "?old=1&new=2",
		"/v1/jobs/{id}/logs":    "",
	}
	body := map[string][]byte{
		"POST /v1/jobs":    []byte(jobYAML("true")),
		"POST /v1/explain": []byte(jobYAML("true")),
		"POST /v1/offers":  signedOffer(t, providerKey, "other", 1),
		"POST /v1/tokens":  []byte(fmt.Sprintf(`{"principal": %q, "role": "tenant"}`, tenantKey.ID())),
	}
	// A checkpoint signed, so that the public log has one to show.
	if _, err := e.as(regulatorKey).Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	for _, rt := range e.svc.API.Routes() {
		method, path, _ := strings.Cut(rt.Pattern(), " ")
		if rt.Public() {
			target := path
			if path == "/tile/" {
				target = "/tile/0/000.p/1"
			}
			want := 200
			if rt.Pattern() == "POST /v1/console/session" {
				want = 400 // without a code (TestConsoleSignIn signs in)
			}
			if status, _, b := e.raw(nil, method, target, nil); status != want {
				t.Errorf("public %s: %d %s", rt.Pattern(), status, b)
			}
			continue
		}
		target := fill.Replace(path) + query[path]
		if path == "/tile/entries/" {
			target = "/tile/entries/000.p/1"
		}
		// Unauthenticated: refused.
		if status, _, b := e.raw(nil, method, target, body[rt.Pattern()]); status != 401 {
			t.Errorf("%s without a signature: %d %s", rt.Pattern(), status, b)
		}
		for role, k := range roles {
			allowed := role == api.Operator || slices.Contains(rt.Roles(), role)
			if role == api.Regulator && method != "GET" && !strings.HasPrefix(path, "/v1/console/") {
				allowed = false
			}
			status, _, b := e.raw(k, method, target, body[rt.Pattern()])
			if denied := status == 403; denied == allowed || status == 401 || status >= 500 {
				t.Errorf("%s as %s: %d (allowed: %v) %s", rt.Pattern(), role, status, allowed, b)
			}
		}
	}

	// A tenant reading another tenant's job, logs, events, or cancelling
	// it: not found, as if it did not exist.
	for _, p := range []string{"GET /v1/jobs/" + j.ID, "GET /v1/jobs/" + j.ID + "/logs", "GET /v1/jobs/" + j.ID + "/events", "POST /v1/jobs/" + j.ID + "/cancel"} {
		method, path, _ := strings.Cut(p, " ")
		if status, _, b := e.raw(otherTenant, method, path, nil); status != 404 || strings.Contains(string(b), tenantKey.ID().String()) {
			t.Errorf("another tenant: %s: %d %s", p, status, b)
		}
	}
	if js, _ := e.as(otherTenant).Jobs(ctx, "", 0); len(js) != 0 {
		t.Errorf("another tenant lists %d jobs not its own", len(js))
	}
	// Another tenant's bills and records.
	for _, p := range []string{"/v1/ledger/balances?account=tenant/" + tenantKey.ID().String(), "/v1/audit/proof?record=" + record} {
		if status, _, b := e.raw(otherTenant, "GET", p, nil); status != 403 && status != 404 {
			t.Errorf("another tenant: %s: %d %s", p, status, b)
		}
	}
	// A provider withdrawing another's offer.
	e.registerOffer(otherProvider, "theirs", 1)
	if status, _, b := e.raw(providerKey, "DELETE", "/v1/offers/"+mustName(t, otherProvider, "theirs"), nil); status != 404 {
		t.Errorf("withdrawing another provider's offer: %d %s", status, b)
	}
	// A regulator writing anything.
	for _, p := range []string{"POST /v1/jobs", "POST /v1/offers", "POST /v1/tokens", "POST /v1/jobs/" + j.ID + "/cancel", "DELETE /v1/offers/" + offerName} {
		method, path, _ := strings.Cut(p, " ")
		if status, _, b := e.raw(regulatorKey, method, path, body[p]); status != 403 {
			t.Errorf("regulator: %s: %d %s", p, status, b)
		}
	}
	// A stranger: signed, but not a principal of this broker.
	if status, _, b := e.raw(settlementtest.Key(9), "GET", "/v1/jobs", nil); status != 403 || !strings.Contains(string(b), "not a principal") {
		t.Errorf("a stranger: %d %s", status, b)
	}

	// A stranger's requests cost the broker no nonce row.
	nonces := func() int {
		n, err := e.svc.Jobs.Nonces(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := nonces()
	for range 20 {
		e.raw(settlementtest.Key(9), "GET", "/v1/jobs", nil)
	}
	if after := nonces(); after != before {
		t.Errorf("20 requests from a stranger wrote %d nonce rows", after-before)
	}

	// A request signed for another broker, sent here: its signed
	// @authority is not this broker's.
	other, _ := http.NewRequest("GET", e.url+"/v1/jobs", nil)
	other.Host = "other-broker.example:8420"
	httpsig.Sign(other, nil, tenantKey, time.Now(), time.Minute)
	if resp, err := http.DefaultClient.Do(other); err != nil {
		t.Fatal(err)
	} else if b, _ := io.ReadAll(resp.Body); resp.StatusCode != 401 || !strings.Contains(string(b), "not this broker") {
		t.Errorf("a request signed for another broker: %d %s", resp.StatusCode, b)
	}
	// Two Signature-Input (or Signature) headers: refused, not the first
	// one taken.
	for _, h := range []string{"Signature-Input", "Signature"} {
		req, _ := http.NewRequest("GET", e.url+"/v1/jobs", nil)
		httpsig.Sign(req, nil, tenantKey, time.Now(), time.Minute)
		req.Header.Add(h, req.Header.Get(h))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 401 || !strings.Contains(string(b), "exactly one") {
			t.Errorf("two %s headers: %d %s", h, resp.StatusCode, b)
		}
	}

	// A replayed request: the same signed request twice.
	req, _ := http.NewRequest("GET", e.url+"/v1/jobs", nil)
	httpsig.Sign(req, nil, tenantKey, time.Now(), time.Minute)
	for i, want := range []int{200, 401} {
		resp, err := http.DefaultClient.Do(req.Clone(ctx))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("sending the same signed request, time %d: %d, want %d", i+1, resp.StatusCode, want)
		}
	}
	// An expired signature, and one from the future.
	for _, at := range []time.Time{time.Now().Add(-10 * time.Minute), time.Now().Add(10 * time.Minute)} {
		req, _ := http.NewRequest("GET", e.url+"/v1/jobs", nil)
		httpsig.Sign(req, nil, tenantKey, at, time.Minute)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 {
			t.Errorf("a signature made at %s: %d", at.Format(time.RFC3339), resp.StatusCode)
		}
	}

	// Tokens: one the operator issues works for its role and no other; a
	// forged or expired one does not.
	tok, err := e.as(operatorKey).IssueToken(ctx, tenantKey.ID().String(), "tenant", "1h")
	if err != nil {
		t.Fatal(err)
	}
	withToken := func(token, method, path string) int {
		req, _ := http.NewRequest(method, e.url+path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if s := withToken(tok.Token, "GET", "/v1/jobs/"+j.ID); s != 200 {
		t.Errorf("the tenant's token reading its job: %d", s)
	}
	if s := withToken(tok.Token, "GET", "/tile/entries/000.p/1"); s != 403 {
		t.Errorf("the tenant's token reading tiles: %d", s)
	}
	forged, _ := api.IssueToken(settlementtest.Key(9), tenantKey.ID(), api.Operator, time.Now(), time.Hour)
	expired, _ := api.IssueToken(operatorKey, tenantKey.ID(), api.Tenant, time.Now().Add(-2*time.Hour), time.Hour)
	for name, tk := range map[string]string{"forged": forged.Token, "expired": expired.Token, "garbage": "not-a-token"} {
		if s := withToken(tk, "GET", "/v1/jobs"); s != 401 {
			t.Errorf("a %s token: %d", name, s)
		}
	}
}

var otherProvider = settlementtest.Key(7)

func mustName(t *testing.T, k *identity.Key, pool string) string {
	cid, err := identity.NewComputeID(k.ID(), "cn-east-1", "a", pool)
	if err != nil {
		t.Fatal(err)
	}
	return cid.Name()
}

// TestOpenAPIMatchesRoutes: the OpenAPI document describes exactly the
// endpoints the server serves, with the same roles.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	var doc struct {
		Paths map[string]map[string]struct {
			Roles []api.Role `json:"x-cinet-roles"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(spec.OpenAPI, &doc); err != nil {
		t.Fatal(err)
	}
	e := start(t)
	served := map[string]bool{}
	for _, rt := range e.svc.API.Routes() {
		method, path, _ := strings.Cut(rt.Pattern(), " ")
		path = strings.NewReplacer("{name...}", "{name}").Replace(path)
		if strings.HasSuffix(path, "/tile/") || strings.HasSuffix(path, "/entries/") {
			path += "{path}"
		}
		key := strings.ToLower(method) + " " + path
		served[key] = true
		op, ok := doc.Paths[path][strings.ToLower(method)]
		if !ok {
			t.Errorf("%s is served but not in spec/api/openapi.json", key)
			continue
		}
		if !slices.Equal(op.Roles, rt.Roles()) {
			t.Errorf("%s: the spec gives roles %v, the server %v", key, op.Roles, rt.Roles())
		}
	}
	for path, ops := range doc.Paths {
		for method := range ops {
			if !served[method+" "+path] {
				t.Errorf("%s %s is in the spec but not served", method, path)
			}
		}
	}
	if !regexp.MustCompile(`"openapi": "3\.1\.\d+"`).Match(spec.OpenAPI) {
		t.Error("the document does not declare OpenAPI 3.1")
	}
}

// TestTokens: the operator issues a token with a signed request; it works
// until revoked, and is refused from the next request on. A stolen console
// session — the operator's included — or a token cannot mint tokens; a
// token the broker has no record of, one past the broker's longest
// lifetime, and one signed by another key are refused.
func TestTokens(t *testing.T) {
	e := startWith(t, "tokenMaxTTL: 48h\n")
	ctx := context.Background()
	op := e.as(operatorKey)
	tok, err := op.IssueToken(ctx, regulatorKey.ID().String(), "regulator", "1h")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tok.ID, "tok-") || tok.Token == "" || tok.Role != api.Regulator {
		t.Fatalf("issued %+v", tok)
	}
	byToken := &client.Client{Base: e.url, Token: tok.Token}
	if _, err := byToken.Balances(ctx, ""); err != nil {
		t.Fatalf("the regulator's token: %v", err)
	}
	// A token cannot mint another.
	opTok, err := op.IssueToken(ctx, operatorKey.ID().String(), "operator", "1h")
	if err != nil {
		t.Fatal(err)
	}
	byOpToken := &client.Client{Base: e.url, Token: opTok.Token}
	if _, err := byOpToken.IssueToken(ctx, tenantKey.ID().String(), "operator", "1h"); !isProblem(err, 403) {
		t.Errorf("a token minting a token: %v", err)
	}
	// Nor can a console session, the operator's included.
	cc, err := op.ConsoleCode(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b := &browser{t: t, base: e.url}
	if status, body := b.do("POST", "/v1/console/session", []byte(`{"code": "`+cc.Code+`"}`), false); status != 201 {
		t.Fatalf("the operator signing in: %d %s", status, body)
	}
	var sess struct{ CSRF string }
	_, sb := b.do("GET", "/v1/console/session", nil, false)
	json.Unmarshal(sb, &sess)
	b.csrf = sess.CSRF
	if status, body := b.do("POST", "/v1/tokens", []byte(`{"principal": "`+tenantKey.ID().String()+`", "role": "operator", "ttl": "24h"}`), true); status != 403 {
		t.Errorf("an operator's console session minting a token: %d %s", status, body)
	}
	// Past the broker's longest lifetime.
	if _, err := op.IssueToken(ctx, regulatorKey.ID().String(), "regulator", "49h"); !isProblem(err, 422) {
		t.Errorf("a token past tokenMaxTTL: %v", err)
	}

	// Listed; revoked; refused from then on, and listed as revoked.
	list, err := op.Tokens(ctx)
	if err != nil || len(list) != 2 {
		t.Fatalf("tokens listed: %v %v", list, err)
	}
	if _, err := op.RevokeToken(ctx, tok.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := byToken.Balances(ctx, ""); !isProblem(err, 401) || !strings.Contains(err.Error(), "revoked") {
		t.Errorf("a revoked token: %v", err)
	}
	list, _ = op.Tokens(ctx)
	for _, row := range list {
		if (row.ID == tok.ID) == row.Revoked.IsZero() {
			t.Errorf("listed after revoking %s: %+v", tok.ID, row)
		}
	}
	if _, err := op.RevokeToken(ctx, "tok-none"); !isProblem(err, 404) {
		t.Errorf("revoking an unknown token: %v", err)
	}
	// Only the operator lists or revokes.
	if status, _, _ := e.raw(regulatorKey, "GET", "/v1/tokens", nil); status != 403 {
		t.Errorf("a regulator listing tokens: %d", status)
	}
	if status, _, _ := e.raw(tenantKey, "DELETE", "/v1/tokens/"+opTok.ID, nil); status != 403 {
		t.Errorf("a tenant revoking a token: %d", status)
	}

	// A token signed with the broker's key that it never recorded (as a
	// token minted offline, or before tokens were recorded, would be), and
	// one signed by another key.
	for name, k := range map[string]*identity.Key{"unrecorded": operatorKey, "another key": tenantKey} {
		forged, err := api.IssueToken(k, tenantKey.ID(), api.Operator, time.Now(), time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := (&client.Client{Base: e.url, Token: forged.Token}).Jobs(ctx, "", 0); !isProblem(err, 401) {
			t.Errorf("a %s token: %v", name, err)
		}
	}
}

func isProblem(err error, status int) bool {
	var p *client.ProblemError
	return errors.As(err, &p) && p.Status == status
}
