package connlimit_test

import (
	"net"
	"testing"
	"time"

	"github.com/cinet/cinet/broker/connlimit"
)

func TestClient(t *testing.T) {
	for _, tc := range []struct {
		addr net.Addr
		want string
	}{
		{&net.TCPAddr{IP: net.ParseIP("127.0.0.1"), Port: 1}, "127.0.0.1/32"},
		{&net.TCPAddr{IP: net.ParseIP("::ffff:10.1.2.3"), Port: 1}, "10.1.2.3/32"},
		{&net.TCPAddr{IP: net.ParseIP("2001:db8:1:2:3:4:5:6"), Port: 1}, "2001:db8:1:2::/64"},
		{&net.TCPAddr{IP: net.ParseIP("2001:db8:1:2:ffff::1"), Port: 9}, "2001:db8:1:2::/64"},
		{&net.UnixAddr{Name: "/run/x.sock", Net: "unix"}, "invalid Prefix"},
	} {
		if got := connlimit.Client(tc.addr).String(); got != tc.want {
			t.Errorf("Client(%v) = %s, want %s", tc.addr, got, tc.want)
		}
	}
}

// accepted runs Accept on l and returns the connections it gives.
func accepted(t *testing.T, l net.Listener) <-chan net.Conn {
	out := make(chan net.Conn, 100)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				close(out)
				return
			}
			out <- c
		}
	}()
	return out
}

func dialFrom(t *testing.T, from, to string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 10 * time.Second}
	c, err := d.Dial("tcp", to)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// closedAtOnce dials from to and reports whether the server closed the
// connection: at once, which may reset it before connect returns, or on
// the first read.
func closedAtOnce(t *testing.T, from, to string) bool {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 10 * time.Second}
	c, err := d.Dial("tcp", to)
	if err != nil {
		return true
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err = c.Read(make([]byte, 1))
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return false
	}
	return err != nil
}

func TestLimits(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := make(chan string, 10)
	l := connlimit.Listen(inner, connlimit.Limits{Total: 3, PerAddress: 2}, func(r string) { refused <- r })
	// The refusal is counted after the connection is closed, so after
	// the client may see it closed: wait for it.
	wantRefused := func(reason string) {
		t.Helper()
		select {
		case r := <-refused:
			if r != reason {
				t.Fatalf("refused for %s, want %s", r, reason)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("no refusal counted, want %s", reason)
		}
	}
	defer l.Close()
	conns := accepted(t, l)
	addr := inner.Addr().String()

	a1, a2 := dialFrom(t, "127.0.0.1", addr), dialFrom(t, "127.0.0.1", addr)
	s1, s2 := <-conns, <-conns
	// A third from the same address is closed at once.
	if !closedAtOnce(t, "127.0.0.1", addr) {
		t.Fatal("a third connection from one address was kept")
	}
	wantRefused(connlimit.ReasonAddress)
	// Another address has its own bound, within the total.
	dialFrom(t, "127.0.0.2", addr)
	<-conns
	// The total is reached: a new address is refused too.
	if !closedAtOnce(t, "127.0.0.3", addr) {
		t.Fatal("a connection beyond the total was kept")
	}
	wantRefused(connlimit.ReasonTotal)
	// Closing gives the place back, once however often it is closed.
	s1.Close()
	s1.Close()
	if total, from := l.Held(a1.LocalAddr()); total != 2 || from != 1 {
		t.Fatalf("after a close: %d held, %d from the address", total, from)
	}
	dialFrom(t, "127.0.0.1", addr)
	c := <-conns
	if total, from := l.Held(a2.LocalAddr()); total != 3 || from != 2 {
		t.Fatalf("after a new connection: %d held, %d from the address", total, from)
	}
	s2.Close()
	c.Close()
	if _, from := l.Held(a1.LocalAddr()); from != 0 {
		t.Fatalf("%d still held from an address whose connections all closed", from)
	}
}
