package service_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cinet/cinet/broker/client"
	"github.com/cinet/cinet/broker/httpsig"
	"github.com/cinet/cinet/identity"
	. "github.com/cinet/cinet/settlement/settlementtest"
)

// from returns an HTTP client whose connections come from the loopback
// address ip, so that a test can stand for several clients.
func from(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 10 * time.Second}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
}

// flood is the attacker of TestHalfOpenConnections, run as a process of
// its own (the test binary with CINET_TEST_FLOOD=ADDR,N,MODE): it opens N
// connections to ADDR from 127.0.0.1, sends on each the headers of a
// submission of a megabyte and nothing more (MODE body) or only the start
// of its headers (MODE headers), says "ready" on stdout, and holds them
// until its stdin closes.
func flood(spec string) int {
	args := strings.Split(spec, ",")
	count, err := strconv.Atoi(args[1])
	if len(args) != 3 || err != nil {
		fmt.Fprintln(os.Stderr, "CINET_TEST_FLOOD: want ADDR,N,body|headers")
		return 2
	}
	addr := args[0]
	head := fmt.Sprintf("POST /v1/jobs HTTP/1.1\r\nHost: %s\r\nContent-Type: application/yaml\r\nContent-Length: 1000000\r\n\r\n", addr)
	if args[2] == "headers" {
		head = head[:len(head)-30]
	}
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.1")}, Timeout: 10 * time.Second}
	conns := make([]net.Conn, 0, count)
	refused := 0 // at connect, as a full accept queue may
	for range count {
		c, err := d.Dial("tcp", addr)
		if err != nil {
			refused++
			continue
		}
		c.Write([]byte(head)) // refused connections fail here: that is the point
		conns = append(conns, c)
	}
	if refused > count/2 {
		fmt.Fprintf(os.Stderr, "%d of %d connections were refused at connect\n", refused, count)
		return 1
	}
	fmt.Printf("ready %d %d\n", len(conns), refused)
	io.Copy(io.Discard, os.Stdin)
	for _, c := range conns {
		c.(*net.TCPConn).SetLinger(0)
		c.Close()
	}
	return 0
}

// startFlood runs a flood process of n connections and waits until they
// are all open; it ends when the test does.
func startFlood(t *testing.T, addr string, n int, mode string) int {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("CINET_TEST_FLOOD=%s,%d,%s", addr, n, mode))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		if err := cmd.Wait(); err != nil {
			t.Errorf("flood: %v: %s", err, stderr.String())
		}
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	var opened, refused int
	if _, perr := fmt.Sscanf(line, "ready %d %d\n", &opened, &refused); perr != nil {
		t.Fatalf("the flood did not open its %d connections: %q %v: %s", n, line, err, stderr.String())
	}
	return opened
}

// TestHalfOpenConnections: 20,000 connections from one address that send
// the headers of a large submission and then stall take no more than that
// address's share of the broker; a signed submission from another client
// is answered within a second, a stalled request is refused without its
// body being waited for, and idle connections are closed.
func TestHalfOpenConnections(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 20,000 connections")
	}
	const stalled = 20000
	e := startWith(t, "limits: {idleTimeout: 2s, connectionsPerAddress: 64}\n")
	addr := strings.TrimPrefix(e.url, "http://")

	// The first stalled request, before the flood: it is answered 401
	// without its body being waited for, and its connection closed.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST /v1/jobs HTTP/1.1\r\nHost: %s\r\nContent-Length: 1000000\r\n\r\n", addr)
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("a stalled request: %v", err)
	}
	if resp.StatusCode != 401 || !resp.Close {
		t.Errorf("a stalled request: %d, Connection: close %v; want 401 and close", resp.StatusCode, resp.Close)
	}
	io.Copy(io.Discard, resp.Body)
	if _, err := c.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Errorf("a stalled connection was not closed: %v", err)
	}

	// Two processes hold 10,000 connections each: one sends the headers
	// of a large submission and stalls, the other stalls within its
	// headers, which holds its connections until readHeaderTimeout.
	opened := startFlood(t, addr, stalled/2, "body")
	opened += startFlood(t, addr, stalled/2, "headers")
	t.Logf("the flood opened %d connections", opened)

	// Another client submits, signed, and is answered within a second.
	other := &client.Client{Base: e.url, Key: tenantKey, HTTP: from("127.0.0.2")}
	began := time.Now()
	j, err := other.SubmitJob(context.Background(), []byte(jobYAML("true")), "job.yaml")
	took := time.Since(began)
	if err != nil {
		t.Fatalf("a submission beside %d stalled connections: %v", stalled, err)
	}
	if took > time.Second {
		t.Errorf("a submission beside %d stalled connections took %s, more than a second", stalled, took)
	}
	t.Logf("submitted %s beside %d stalled connections in %s", j.ID, stalled, took)

	// Those with headers were answered 401 without their body being read
	// (or refused for their address's share); those without were held,
	// 64 at the most, and the rest refused. (What the flood counts as
	// open includes connections the kernel's full accept queue dropped,
	// which the broker never sees.)
	// The broker works through its accept queue after the flood has
	// connected: wait for it to have seen them.
	var perAddress, unauthenticated float64
	waitFor(t, "the flood's connections refused or answered", func() bool {
		perAddress, unauthenticated = refusedCount(t, e, "connections_per_address"), refusedCount(t, e, "unauthenticated")
		return perAddress >= stalled/4 && unauthenticated > 0
	})
	t.Logf("refused: %v for the address's share, %v unauthenticated", perAddress, unauthenticated)

	// An idle kept-alive connection is closed after idleTimeout.
	idle, err := (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.3")}}).Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	fmt.Fprintf(idle, "GET /healthz HTTP/1.1\r\nHost: %s\r\n\r\n", addr)
	br := bufio.NewReader(idle)
	idle.SetReadDeadline(time.Now().Add(30 * time.Second))
	if resp, err := http.ReadResponse(br, nil); err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz on the idle connection: %v", err)
	} else {
		io.Copy(io.Discard, resp.Body)
	}
	if _, err := br.ReadByte(); err == nil || isTimeout(err) {
		t.Errorf("an idle connection was kept past idleTimeout: %v", err)
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// metricsClient reads metrics from an address of its own, reusing its
// connection.
var metricsClient = from("127.0.0.9")

// refusedCount reads cinet_api_refused_total for a reason from the
// operator's metrics.
func refusedCount(t *testing.T, e *env, reason string) float64 {
	t.Helper()
	req, _ := http.NewRequest("GET", e.url+"/metrics", nil)
	httpsig.Sign(req, nil, operatorKey, time.Now(), time.Minute)
	resp, err := metricsClient.Do(req) // 127.0.0.1 may be flooded
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	prefix := `cinet_api_refused_total{reason="` + reason + `"} `
	for line := range strings.SplitSeq(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, prefix); ok {
			n, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	return 0
}

// TestRateLimits: a principal over its budget, and an address over its
// anonymous budget, are answered 429 problems with Retry-After, and
// counted; other principals and addresses are served meanwhile. Forged
// signatures spend the anonymous budget, so that once it is spent they
// are refused before they are checked.
func TestRateLimits(t *testing.T) {
	e := startWith(t, "limits: {principalRate: 0.5, principalBurst: 10, anonymousRate: 0.5, anonymousBurst: 10}\n")
	send := func(c *http.Client, k *identity.Key, path string) (int, http.Header, []byte) {
		t.Helper()
		req, _ := http.NewRequest("GET", e.url+path, nil)
		if k != nil {
			httpsig.Sign(req, nil, k, time.Now(), time.Minute)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, b
	}
	a, b, c, d := from("127.0.0.4"), from("127.0.0.5"), from("127.0.0.6"), from("127.0.0.7")

	// A tenant's eleventh request in a burst is refused; another tenant,
	// from the same address, is served.
	var status int
	var hdr http.Header
	var body []byte
	for range 11 {
		status, hdr, body = send(a, tenantKey, "/v1/jobs")
	}
	if status != 429 || hdr.Get("Content-Type") != "application/problem+json" || hdr.Get("Retry-After") == "" {
		t.Fatalf("a tenant over its budget: %d %v %s", status, hdr, body)
	}
	if status, _, body := send(a, otherTenant, "/v1/jobs"); status != 200 {
		t.Fatalf("another tenant, beside one over its budget: %d %s", status, body)
	}

	// An address's anonymous burst, then 429; another address is served.
	for range 10 {
		if status, _, body := send(b, nil, "/healthz"); status != 200 {
			t.Fatalf("anonymous within the burst: %d %s", status, body)
		}
	}
	if status, hdr, _ := send(b, nil, "/healthz"); status != 429 || hdr.Get("Retry-After") == "" {
		t.Fatalf("anonymous over the budget: %d", status)
	}
	if status, _, _ := send(c, nil, "/healthz"); status != 200 {
		t.Fatalf("another address: %d", status)
	}
	// Credentials from an address that spent its budget are refused
	// unchecked, even good ones: the address pays for what it sent.
	if status, _, _ := send(b, otherTenant, "/v1/jobs"); status != 429 {
		t.Fatalf("a signed request from a spent address: %d", status)
	}

	// Forged signatures (a key that is no principal's is one kind; a bad
	// signature another) spend the budget of the address that sends them.
	stranger := Key(99)
	for i := range 10 {
		if status, _, _ := send(d, stranger, "/v1/jobs"); status != 403 && status != 401 {
			t.Fatalf("forged request %d: %d", i, status)
		}
	}
	if status, _, _ := send(d, stranger, "/v1/jobs"); status != 429 {
		t.Fatalf("forged requests past the budget: %d, want 429", status)
	}
	for _, reason := range []string{"rate_principal", "rate_anonymous", "unauthenticated"} {
		if refusedCount(t, e, reason) == 0 {
			t.Errorf("no refusal counted as %s", reason)
		}
	}
}

// BenchmarkRequest measures what a request costs the broker end to end
// over loopback, with the rate limits engaged (at rates no caller
// reaches, so every request takes from its bucket and none is refused)
// and without them: the difference is what the limiter costs. Signed
// requests are authenticated from their headers before their body is
// read; "signed-10KiB" sends a body of 10 KiB that is refused before it
// is read (a principal of no role on the route), "signed" a GET that is
// answered.
//
//	go test ./broker/service -run XXX -bench Request -benchtime 3s
func BenchmarkRequest(b *testing.B) {
	for _, limits := range []struct{ name, conf string }{
		{"limits=on", "limits: {principalRate: 1e9, principalBurst: 1000000000, anonymousRate: 1e9, anonymousBurst: 1000000000}\n"},
		{"limits=off", "limits: {principalRate: -1, anonymousRate: -1}\n"},
	} {
		b.Run(limits.name, func(b *testing.B) {
			e := startWith(b, limits.conf)
			hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
			body := bytes.Repeat([]byte("x"), 10<<10)
			for _, kind := range []string{"public", "signed", "signed-10KiB"} {
				b.Run(kind, func(b *testing.B) {
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							var req *http.Request
							switch kind {
							case "public":
								req, _ = http.NewRequest("GET", e.url+"/healthz", nil)
							case "signed":
								req, _ = http.NewRequest("GET", e.url+"/v1/jobs?limit=1", nil)
								httpsig.Sign(req, nil, tenantKey, time.Now(), time.Minute)
							default:
								req, _ = http.NewRequest("POST", e.url+"/v1/offers", bytes.NewReader(body))
								httpsig.Sign(req, body, tenantKey, time.Now(), time.Minute)
							}
							resp, err := hc.Do(req)
							if err != nil {
								b.Fatal(err)
							}
							io.Copy(io.Discard, resp.Body)
							resp.Body.Close()
							if resp.StatusCode == 429 || resp.StatusCode >= 500 {
								b.Fatalf("%s: %d", kind, resp.StatusCode)
							}
						}
					})
				})
			}
		})
	}
}
