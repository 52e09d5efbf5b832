//go:build unix

package local

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/cinet/cinet/adapters"
	"github.com/cinet/cinet/descriptor"
)

// A service exposes the ports of a service placement's replicas while its
// last task runs (spec/jobs.md §7): for each port of each replica, a
// listener on the host that forwards every connection to node 0 of the
// replica, dialled in the replica's network namespace; and a probe per
// replica that goes through the same listener, so that a ready endpoint is
// one a client can use.
type service struct {
	sv        *descriptor.Service
	listeners []net.Listener
	dialers   []*dialer // one per replica
	stop      chan struct{}
	wg        sync.WaitGroup
	change    chan struct{} // has a value when endpoints changed since last read

	mu  sync.Mutex
	eps []adapters.Endpoint // port by port within each replica
}

// startService starts exposing and probing the service's replicas, whose
// node 0s are at nets.
func startService(sv *descriptor.Service, host string, nets []replicaNet) (*service, error) {
	s := &service{sv: sv, stop: make(chan struct{}), change: make(chan struct{}, 1)}
	for r, rn := range nets {
		d, err := newDialer(rn.netns)
		if err != nil {
			s.close()
			return nil, err
		}
		s.dialers = append(s.dialers, d)
		for _, port := range sv.Ports {
			l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
			if err != nil {
				s.close()
				return nil, fmt.Errorf("listening for port %s of replica %d: %w", port.Name, r, err)
			}
			s.listeners = append(s.listeners, l)
			ep := adapters.Endpoint{Name: port.Name, Replica: r, Protocol: port.Protocol, Address: l.Addr().String()}
			if port.Protocol == "http" {
				ep.URL = "http://" + ep.Address
			}
			s.eps = append(s.eps, ep)
			target := net.JoinHostPort(rn.addr, strconv.Itoa(port.Port))
			s.wg.Go(func() { s.forward(l, d, target) })
		}
	}
	for r := range nets {
		s.wg.Go(func() { s.probe(r) })
	}
	return s, nil
}

// endpoints returns the endpoints as they now are.
func (s *service) endpoints() []adapters.Endpoint {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.eps)
}

// changed has a value when the endpoints changed; nil for no service.
func (s *service) changed() <-chan struct{} {
	if s == nil {
		return nil
	}
	return s.change
}

// close stops exposing and probing; a nil service is closed already.
func (s *service) close() {
	if s == nil {
		return
	}
	select {
	case <-s.stop:
		return
	default:
	}
	close(s.stop)
	for _, l := range s.listeners {
		l.Close()
	}
	s.wg.Wait()
	for _, d := range s.dialers {
		d.close()
	}
}

// forward serves a listener: each connection is joined to one dialled to
// target in the replica's network.
// At most maxConns connections per port are forwarded at once; more wait
// to be accepted.
func (s *service) forward(l net.Listener, d *dialer, target string) {
	var conns sync.WaitGroup
	defer conns.Wait()
	slots := make(chan struct{}, maxConns)
	for {
		select {
		case slots <- struct{}{}:
		case <-s.stop:
			return
		}
		c, err := l.Accept()
		if err != nil {
			return
		}
		conns.Go(func() {
			defer func() { <-slots }()
			defer c.Close()
			up, err := d.dial(target)
			if err != nil {
				return
			}
			defer up.Close()
			// Either side closing ends both, and so does the service
			// stopping.
			done := make(chan struct{}, 2)
			go func() { io.Copy(up, c); closeWrite(up); done <- struct{}{} }()
			go func() { io.Copy(c, up); closeWrite(c); done <- struct{}{} }()
			for range 2 {
				select {
				case <-done:
				case <-s.stop:
					return
				}
			}
		})
	}
}

const maxConns = 256

func closeWrite(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.CloseWrite()
	}
}

// probe checks replica r as the service's readiness says, until the
// service stops, and records each change.
func (s *service) probe(r int) {
	rd := s.sv.Readiness
	s.mu.Lock()
	var addr, url string
	for _, ep := range s.eps {
		if ep.Replica == r && ep.Name == rd.Port {
			addr, url = ep.Address, "http://"+ep.Address+rd.Path
		}
	}
	s.mu.Unlock()
	client := &http.Client{
		Timeout:       rd.Timeout.Std(),
		Transport:     &http.Transport{DisableKeepAlives: true, Proxy: nil},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	check := func() bool {
		if rd.Path == "" {
			c, err := net.DialTimeout("tcp", addr, rd.Timeout.Std())
			if err != nil {
				return false
			}
			// The forwarder accepts at once: the connection counts once
			// the replica's side has it too, which a read that does not
			// end at once shows (a closed upstream ends it with EOF).
			c.SetReadDeadline(time.Now().Add(min(rd.Timeout.Std(), 200*time.Millisecond)))
			_, err = c.Read(make([]byte, 1))
			c.Close()
			var ne net.Error
			return err == nil || (errors.As(err, &ne) && ne.Timeout())
		}
		resp, err := client.Get(url)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode >= 200 && resp.StatusCode < 400
	}
	wait := rd.InitialDelay.Std()
	for {
		select {
		case <-s.stop:
			return
		case <-time.After(wait):
		}
		wait = rd.Period.Std()
		ready := check()
		s.mu.Lock()
		moved := false
		for i := range s.eps {
			if s.eps[i].Replica == r && s.eps[i].Ready != ready {
				s.eps[i].Ready, moved = ready, true
			}
		}
		s.mu.Unlock()
		if moved {
			select {
			case s.change <- struct{}{}:
			default:
			}
		}
	}
}

// A dialer connects to addresses in a replica's network namespace: a
// thread of its own enters the namespace and makes each connection's
// socket there (a socket belongs to the namespace it was made in, and
// works from any thread after). The thread is never given back to the
// runtime: it ends with its goroutine, so nothing else runs in the
// namespace. A dialer without a namespace dials in the host's.
type dialer struct {
	reqs chan dialReq // nil for the host's namespace
}

type dialReq struct {
	addr string
	resp chan dialResp
}

type dialResp struct {
	conn net.Conn
	err  error
}

const dialTimeout = 5 * time.Second

func newDialer(netns *os.File) (*dialer, error) {
	d := &dialer{}
	if netns == nil {
		return d, nil
	}
	d.reqs = make(chan dialReq)
	entered := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := enterNetns(netns); err != nil {
			entered <- err
			return
		}
		entered <- nil
		for req := range d.reqs {
			c, err := net.DialTimeout("tcp", req.addr, dialTimeout)
			req.resp <- dialResp{c, err}
		}
	}()
	if err := <-entered; err != nil {
		return nil, fmt.Errorf("entering the replica's network namespace: %w", err)
	}
	return d, nil
}

func (d *dialer) dial(addr string) (net.Conn, error) {
	if d.reqs == nil {
		return net.DialTimeout("tcp", addr, dialTimeout)
	}
	resp := make(chan dialResp, 1)
	d.reqs <- dialReq{addr, resp}
	r := <-resp
	return r.conn, r.err
}

// close ends the dialer; no dial may be under way or follow.
func (d *dialer) close() {
	if d.reqs != nil {
		close(d.reqs)
	}
}
