package federation

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/network"

	"github.com/cinet/cinet/broker/jobs"
	"github.com/cinet/cinet/identity"
)

// ProtocolExec carries a placement between its home broker and the broker
// that executes it (spec/protocol.md §5): forward, status, logs, cancel,
// usage and its acknowledgement. Only the home broker asks; the executing
// broker answers only about the placements that broker forwarded.
const ProtocolExec = "/cinet/exec/1.0.0"

// Bounds of the exec protocol.
const (
	MaxExec      = 4 << 20 // one request or reply: a job document of up to 1 MiB, escaped, or a log chunk
	execDeadline = 30 * time.Second
)

// Executing is the executing broker's side of forwarded placements:
// broker/jobs.Runner implements it. home is the asking broker, as the
// connection authenticated it.
type Executing interface {
	Accept(ctx context.Context, home identity.PrincipalID, f jobs.Forward) error
	ExecStatus(ctx context.Context, home identity.PrincipalID, placement string) (jobs.RemoteStatus, error)
	ExecLogs(ctx context.Context, home identity.PrincipalID, q jobs.LogRequest) ([]byte, error)
	ExecCancel(ctx context.Context, home identity.PrincipalID, placement string) error
	ExecUsage(ctx context.Context, home identity.PrincipalID, placement string) (jobs.Delivery, error)
	ExecAck(ctx context.Context, home identity.PrincipalID, placement, record string) error
}

// The exec protocol's operations.
const (
	opForward = "forward"
	opStatus  = "status"
	opLogs    = "logs"
	opCancel  = "cancel"
	opUsage   = "usage"
	opAck     = "ack"
)

type execRequest struct {
	Op        string           `json:"op"`
	Placement string           `json:"placement,omitempty"`
	Forward   *jobs.Forward    `json:"forward,omitempty"`
	Logs      *jobs.LogRequest `json:"logs,omitempty"`
	Record    string           `json:"record,omitempty"`
}

type execResponse struct {
	// Code is set when the request was not done: not-found,
	// no-reservation, refused, or unavailable (try again).
	Code   string             `json:"code,omitempty"`
	Error  string             `json:"error,omitempty"`
	Status *jobs.RemoteStatus `json:"status,omitempty"`
	Data   []byte             `json:"data,omitempty"`
	Usage  *jobs.Delivery     `json:"usage,omitempty"`
}

// serveExec answers a home broker about the placements it forwarded here.
func (n *Node) serveExec(s network.Stream) {
	serveOne(n, s, ProtocolExec, execDeadline, MaxExec, func(ctx context.Context, home identity.PrincipalID, req execRequest) any {
		resp := n.execFor(ctx, home, req)
		n.m.exec.WithLabelValues(req.Op, orDefault(resp.Code, "ok")).Inc()
		return resp
	})
}

func (n *Node) execFor(ctx context.Context, home identity.PrincipalID, req execRequest) execResponse {
	x := n.cfg.Executing
	if x == nil {
		return execResponse{Code: codeRefused, Error: "this broker executes no forwarded placements"}
	}
	var resp execResponse
	var err error
	switch req.Op {
	case opForward:
		if req.Forward == nil {
			return execResponse{Code: codeRefused, Error: "forward: no placement given"}
		}
		if err := n.checkAuthority(home, req.Forward.Submission); err != nil {
			return execResponse{Code: codeRefused, Error: err.Error()}
		}
		if err = x.Accept(ctx, home, *req.Forward); err == nil {
			// The placement holds the instances now: the lease is spent.
			n.forgetLease(req.Forward.Reservation)
		}
	case opStatus:
		var st jobs.RemoteStatus
		st, err = x.ExecStatus(ctx, home, req.Placement)
		resp.Status = &st
	case opLogs:
		if req.Logs == nil {
			return execResponse{Code: codeRefused, Error: "logs: no slice given"}
		}
		resp.Data, err = x.ExecLogs(ctx, home, *req.Logs)
	case opCancel:
		err = x.ExecCancel(ctx, home, req.Placement)
	case opUsage:
		var d jobs.Delivery
		d, err = x.ExecUsage(ctx, home, req.Placement)
		resp.Usage = &d
	case opAck:
		err = x.ExecAck(ctx, home, req.Placement, req.Record)
	default:
		return execResponse{Code: codeRefused, Error: fmt.Sprintf("unknown operation %q", req.Op)}
	}
	if err == nil {
		return resp
	}
	if code, msg := codeOf(err); code != "" {
		return execResponse{Code: code, Error: msg}
	}
	// The store or an adapter failed: the asker tries again; what failed
	// is this broker's business.
	n.cfg.Log.Warn("answering a forwarded placement", "op", req.Op, "home", home, "placement", req.Placement, "err", err)
	return execResponse{Code: codeUnavailable, Error: "the executing broker could not answer now; ask again"}
}

// callExec sends one exec request to the executing broker.
func (n *Node) callExec(ctx context.Context, exec identity.PrincipalID, req execRequest) (execResponse, error) {
	var resp execResponse
	if err := n.call(ctx, exec, ProtocolExec, execDeadline, MaxExec, req, &resp); err != nil {
		return execResponse{}, err
	}
	if resp.Code != "" {
		return resp, errorOf(exec, resp.Code, resp.Error)
	}
	return resp, nil
}

// Forward hands a placement to the broker that holds its lease.
func (n *Node) Forward(ctx context.Context, exec identity.PrincipalID, f jobs.Forward) error {
	_, err := n.callExec(ctx, exec, execRequest{Op: opForward, Placement: f.Placement, Forward: &f})
	return err
}

// ExecStatus asks how a forwarded placement is doing.
func (n *Node) ExecStatus(ctx context.Context, exec identity.PrincipalID, placement string) (jobs.RemoteStatus, error) {
	resp, err := n.callExec(ctx, exec, execRequest{Op: opStatus, Placement: placement})
	if err != nil {
		return jobs.RemoteStatus{}, err
	}
	if resp.Status == nil {
		return jobs.RemoteStatus{}, fmt.Errorf("federation: broker %s answered a status request without a status", exec)
	}
	return *resp.Status, nil
}

// Logs reads a slice of a forwarded placement's output.
func (n *Node) Logs(ctx context.Context, exec identity.PrincipalID, q jobs.LogRequest) ([]byte, error) {
	resp, err := n.callExec(ctx, exec, execRequest{Op: opLogs, Placement: q.Placement, Logs: &q})
	if err != nil {
		return nil, err
	}
	if len(resp.Data) > q.Limit {
		return nil, fmt.Errorf("federation: broker %s sent %d bytes of output, %d asked", exec, len(resp.Data), q.Limit)
	}
	return resp.Data, nil
}

// Cancel asks the executing broker to stop a placement.
func (n *Node) Cancel(ctx context.Context, exec identity.PrincipalID, placement string) error {
	_, err := n.callExec(ctx, exec, execRequest{Op: opCancel, Placement: placement})
	return err
}

// Usage asks for a forwarded placement's signed usage record.
func (n *Node) Usage(ctx context.Context, exec identity.PrincipalID, placement string) (jobs.Delivery, error) {
	resp, err := n.callExec(ctx, exec, execRequest{Op: opUsage, Placement: placement})
	if err != nil {
		return jobs.Delivery{}, err
	}
	if resp.Usage == nil {
		return jobs.Delivery{}, fmt.Errorf("federation: broker %s answered a usage request without a delivery", exec)
	}
	return *resp.Usage, nil
}

// Ack tells the executing broker the record was taken in.
func (n *Node) Ack(ctx context.Context, exec identity.PrincipalID, placement, record string) error {
	_, err := n.callExec(ctx, exec, execRequest{Op: opAck, Placement: placement, Record: record})
	return err
}

// Remote is the node as the home broker's runner reaches other brokers.
func (n *Node) Remote() jobs.Remote { return remote{n} }

type remote struct{ *Node }

func (r remote) Status(ctx context.Context, exec identity.PrincipalID, placement string) (jobs.RemoteStatus, error) {
	return r.ExecStatus(ctx, exec, placement)
}

// checkAuthority checks that a forwarded job's signed submission was sent
// to its home broker: the authority the tenant signed is the host of the
// API the home broker announced, when it announced one.
func (n *Node) checkAuthority(home identity.PrincipalID, sub *jobs.Submission) error {
	if sub == nil {
		return nil
	}
	n.mu.Lock()
	a := n.announced[home]
	n.mu.Unlock()
	if a == nil || a.API == "" {
		return nil
	}
	u, err := url.Parse(a.API)
	if err != nil {
		return nil
	}
	if !strings.EqualFold(u.Host, sub.Proof.Authority) {
		return fmt.Errorf("the tenant signed its submission for %s, not for the home broker %s (%s)", sub.Proof.Authority, home, u.Host)
	}
	return nil
}
