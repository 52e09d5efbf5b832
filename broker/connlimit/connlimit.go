// Package connlimit bounds the connections a server holds: in all, and
// from any one client address, so that no client can take the file
// descriptors every other client needs. A connection over either bound is
// closed as soon as it is accepted, before a byte of it is read, and
// counted by the reason it was refused.
//
// Clients are told apart by their IP address; IPv6 addresses by their
// /64 prefix, the block one host or one customer is usually given, so
// that a client cannot step around the bound by the addresses of its own
// network.
package connlimit

import (
	"net"
	"net/netip"
	"sync"
)

// Reasons a connection is refused, for the Refused callback.
const (
	ReasonTotal   = "connections"             // the bound on all connections
	ReasonAddress = "connections_per_address" // the bound on one address's
)

// Limits are the bounds; a bound of 0 or less is no bound.
type Limits struct {
	Total      int // connections held at once, in all
	PerAddress int // connections held at once from one client (IPv6: one /64)
}

// Listener is a net.Listener that holds at most its Limits of connections.
type Listener struct {
	net.Listener
	limits  Limits
	refused func(reason string) // may be nil

	mu     sync.Mutex
	total  int
	byAddr map[netip.Prefix]int
}

// Listen wraps l. refused, when not nil, is called (from Accept's
// goroutine) for each connection refused.
func Listen(l net.Listener, limits Limits, refused func(reason string)) *Listener {
	return &Listener{Listener: l, limits: limits, refused: refused, byAddr: map[netip.Prefix]int{}}
}

// Accept returns the next connection within the limits; those beyond them
// are closed (with a reset, so that no state of them lingers) and not
// returned.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		key := Client(c.RemoteAddr())
		reason := l.take(key)
		if reason == "" {
			return &conn{Conn: c, release: sync.OnceFunc(func() { l.give(key) })}, nil
		}
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetLinger(0)
		}
		c.Close()
		if l.refused != nil {
			l.refused(reason)
		}
	}
}

// take counts a connection of key in, or says why it may not be.
func (l *Listener) take(key netip.Prefix) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.limits.Total > 0 && l.total >= l.limits.Total:
		return ReasonTotal
	case l.limits.PerAddress > 0 && l.byAddr[key] >= l.limits.PerAddress:
		return ReasonAddress
	}
	l.total++
	l.byAddr[key]++
	return ""
}

func (l *Listener) give(key netip.Prefix) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if l.byAddr[key]--; l.byAddr[key] <= 0 {
		delete(l.byAddr, key)
	}
}

// Held returns the connections held now, in all and from the client of
// addr.
func (l *Listener) Held(addr net.Addr) (total, fromClient int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total, l.byAddr[Client(addr)]
}

// Client is the key a client address is counted under: its IP address as
// a /32, or the /64 that holds an IPv6 address. Addresses that are not IP
// (a Unix socket's) all share the zero prefix.
func Client(addr net.Addr) netip.Prefix {
	var ap netip.AddrPort
	switch a := addr.(type) {
	case *net.TCPAddr:
		ap = a.AddrPort()
	case *net.UDPAddr:
		ap = a.AddrPort()
	default:
		if addr != nil {
			ap, _ = netip.ParseAddrPort(addr.String())
		}
	}
	return ClientIP(ap.Addr())
}

// ClientIP is Client for an IP address.
func ClientIP(ip netip.Addr) netip.Prefix {
	ip = ip.Unmap()
	if !ip.IsValid() {
		return netip.Prefix{}
	}
	bits := 32
	if ip.Is6() {
		bits = 64
	}
	p, _ := ip.Prefix(bits)
	return p
}

// conn gives its place back when closed, once.
type conn struct {
	net.Conn
	release func()
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.release()
	return err
}
