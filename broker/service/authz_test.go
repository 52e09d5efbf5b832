package service_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cinet/cinet/broker/api"
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
	if s := withToken(tok["token"].(string), "GET", "/v1/jobs/"+j.ID); s != 200 {
		t.Errorf("the tenant's token reading its job: %d", s)
	}
	if s := withToken(tok["token"].(string), "GET", "/tile/entries/000.p/1"); s != 403 {
		t.Errorf("the tenant's token reading tiles: %d", s)
	}
	forged, _, _ := api.IssueToken(settlementtest.Key(9), tenantKey.ID(), api.Operator, time.Now(), time.Hour)
	expired, _, _ := api.IssueToken(operatorKey, tenantKey.ID(), api.Tenant, time.Now().Add(-2*time.Hour), time.Hour)
	for name, tk := range map[string]string{"forged": forged, "expired": expired, "garbage": "not-a-token"} {
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
