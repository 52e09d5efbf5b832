// Package adapters declares what a broker asks of a compute backend — run
// a placement, say how it goes, hand over its logs and measured usage,
// stop it — and holds the registry backends enter themselves in. Each
// backend is a sub-package (adapters/local runs processes on the
// provider's machine); every one passes adapters/adaptertest.
package adapters

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cinet/cinet/descriptor"
	"github.com/cinet/cinet/identity"
)

// An Adapter runs placements on one backend. Every method is safe for
// concurrent use, and every one but Capacity is idempotent: the broker
// calls them again after it restarts, not knowing how far it got.
type Adapter interface {
	// Capacity is what the backend can run at once.
	Capacity(ctx context.Context) (Capacity, error)
	// Provision starts a placement's tasks. A second call with the same
	// placement ID does nothing.
	Provision(ctx context.Context, p Placement) error
	// Status says how a placement is doing. It returns ErrNotFound for an
	// ID never provisioned.
	Status(ctx context.Context, id string) (Status, error)
	// Logs returns what a task has written to a stream ("stdout" or
	// "stderr") so far on one node of the placement (0 … Instances()-1;
	// a service's replicas one after another).
	Logs(ctx context.Context, id, task string, node int, stream string) (io.ReadCloser, error)
	// Usage returns what the placement has used, as measured by the
	// backend: so far while it runs, in full once it has ended.
	Usage(ctx context.Context, id string) (Usage, error)
	// Release stops whatever of the placement still runs and frees what
	// it holds; its status, logs and usage stay readable.
	Release(ctx context.Context, id string) error
}

// ErrNotFound is returned for a placement the adapter never provisioned.
var ErrNotFound = errors.New("adapters: no such placement")

// A Placement is one attempt at running a job on a backend.
type Placement struct {
	// ID names the attempt; the adapter keys everything on it. It is 1 to
	// 128 of A-Z a-z 0-9 . _ -.
	ID    string
	Job   string
	Tasks []descriptor.Task // run in order; a task starts when the one before exited 0
	// Nodes run every task together, each node its own copy (the node
	// contract, NodeEnv); 0 is 1.
	Nodes int
	// Service, when set, makes the placement a service of
	// Service.Replicas groups of Nodes nodes (spec/jobs.md §7): the last
	// task serves on Service.Ports, which the adapter exposes and probes,
	// reporting them as Status.Endpoints.
	Service   *descriptor.Service
	Resources descriptor.Resources
	// Limits bound what each node may use: the offer's compute class.
	// The backend enforces them; zero is no bound.
	Limits Limits
	// Timeout bounds the whole run; 0 is none.
	Timeout time.Duration
	// Offer is the offer the placement runs under, when the broker knows
	// it: backends that create infrastructure read the compute class,
	// region and zone from it.
	Offer *descriptor.Offer
}

// Limits bound one node of a placement.
type Limits struct {
	CPUs   float64 `json:"cpus,omitempty"`   // CPU time per wall second
	Memory int64   `json:"memory,omitempty"` // bytes
	// Disk is what each node may write to its work directory, in bytes;
	// 0 for no bound.
	Disk int64 `json:"disk,omitempty"`
	// Accelerators is how many accelerator devices each node has.
	Accelerators int `json:"accelerators,omitempty"`
}

// The node contract (spec/jobs.md §7): every adapter starts every task of
// a placement once on each of its nodes, with these variables set.
const (
	EnvNodeRank            = "CINET_NODE_RANK"             // 0 … nodes-1
	EnvNumNodes            = "CINET_NUM_NODES"             // the placement's nodes
	EnvNodeAddr            = "CINET_NODE_ADDR"             // the address this node is reached at
	EnvNodeAddrs           = "CINET_NODE_ADDRS"            // every node's address, in rank order, one per line
	EnvRendezvousAddr      = "CINET_RENDEZVOUS_ADDR"       // node 0's address
	EnvRendezvousPort      = "CINET_RENDEZVOUS_PORT"       // a TCP port free on node 0 for the placement's use
	EnvAcceleratorsPerNode = "CINET_ACCELERATORS_PER_NODE" // devices on each node; 0 without
)

// NodeEnv returns the node contract's variables for the node of the given
// rank, whose nodes are reached at addrs (in rank order) and meet at
// port on the first.
func NodeEnv(p Placement, rank int, addrs []string, port int) []string {
	return []string{
		EnvNodeRank + "=" + strconv.Itoa(rank),
		EnvNumNodes + "=" + strconv.Itoa(len(addrs)),
		EnvNodeAddr + "=" + addrs[rank],
		EnvNodeAddrs + "=" + strings.Join(addrs, "\n"),
		EnvRendezvousAddr + "=" + addrs[0],
		EnvRendezvousPort + "=" + strconv.Itoa(port),
		EnvAcceleratorsPerNode + "=" + strconv.Itoa(p.Limits.Accelerators),
	}
}

// Capacity is what a backend offers at once.
type Capacity struct {
	CPUs   int
	Memory int64 // bytes
}

// State is where a placement stands.
type State string

// States.
const (
	Running   State = "running"   // provisioned; a task runs or is about to
	Succeeded State = "succeeded" // every task exited 0
	Failed    State = "failed"    // a task exited non-zero, was killed, or timed out
	Cancelled State = "cancelled" // stopped by Release before it ended
	Lost      State = "lost"      // the backend no longer knows how it went
)

// Ended reports whether the state is final.
func (s State) Ended() bool { return s != Running }

// Instances is how many nodes the placement runs on in all: Nodes for
// each replica.
func (p Placement) Instances() int {
	n := max(p.Nodes, 1)
	if p.Service != nil {
		n *= max(p.Service.Replicas, 1)
	}
	return n
}

// Status is how a placement is doing.
type Status struct {
	State  State
	Tasks  []TaskStatus // the tasks that have started, in order
	Detail string       // why it failed or was lost, in words
	// Endpoints are a service's ports, one per port and replica, while its
	// last task runs.
	Endpoints []Endpoint
}

// An Endpoint is where a replica of a service serves one of its ports.
type Endpoint struct {
	Name     string `json:"name"`
	Replica  int    `json:"replica"`
	Protocol string `json:"protocol"`
	Address  string `json:"address"`       // host:port
	URL      string `json:"url,omitempty"` // http://host:port, for http ports
	Ready    bool   `json:"ready"`
}

// ExitCode is the exit code of the last task that ran, or -1 when it was
// killed by a signal or none ran.
func (s Status) ExitCode() int {
	if n := len(s.Tasks); n > 0 && s.Tasks[n-1].Ended() {
		return s.Tasks[n-1].ExitCode
	}
	return -1
}

// TaskStatus is one task's run.
type TaskStatus struct {
	Name     string    `json:"name"`
	Started  time.Time `json:"started"`
	End      time.Time `json:"ended,omitzero"` // zero while it runs
	ExitCode int       `json:"exitCode"`       // -1 when killed by a signal
	Signal   string    `json:"signal,omitempty"`
	TimedOut bool      `json:"timedOut,omitempty"`
}

// Ended reports whether the task has finished.
func (t TaskStatus) Ended() bool { return !t.End.IsZero() }

// Usage is what a placement used, as the backend measured it. Only time
// the backend saw — tasks that started — counts.
type Usage struct {
	Start, End time.Time     // first task's start, last task's end (or now, while running)
	CPU        time.Duration // CPU time (user + system) of all tasks and their children, on every node
	PeakMemory int64         // the largest resident set of any task, in bytes, summed over the nodes
	Tasks      []TaskUsage
}

// Wall is the time from the first task's start to the last one's end.
func (u Usage) Wall() time.Duration { return u.End.Sub(u.Start) }

// TaskUsage is one task's measured usage.
type TaskUsage struct {
	Name       string        `json:"name"`
	Wall       time.Duration `json:"wall"`
	CPU        time.Duration `json:"cpu"`
	PeakMemory int64         `json:"peakMemory"`
}

// A Factory makes an adapter from its raw JSON configuration, which it
// decodes strictly (unknown fields are errors).
type Factory func(config json.RawMessage, host Host) (Adapter, error)

// Host is what the broker that runs an adapter says of itself, so that
// the adapter keeps tenants away from it. The zero Host asks nothing: a
// library's or a test's.
type Host struct {
	// Private are paths that hold the broker's secrets (its key, its data
	// directory): no task may see them.
	Private []string
	// Reserved are the hosts the broker's API and console are reached by
	// (names and addresses): no tenant's service may listen on them, for
	// a browser sends the console's cookies to every port of its host.
	Reserved []string
	// RequireIsolation refuses a configuration that runs tasks without
	// isolation (only cinet dev allows one).
	RequireIsolation bool
}

var (
	registryMu sync.Mutex
	registry   = map[string]Factory{}
)

// Register enters a backend under a name, from the backend's init.
// Registering a name twice panics.
func Register(name string, f Factory) {
	registryMu.Lock()
	defer registryMu.Unlock()
	if _, dup := registry[name]; dup {
		panic("adapters: " + name + " registered twice")
	}
	registry[name] = f
}

// New makes an adapter of a registered backend for no broker in
// particular (Open with the zero Host).
func New(name string, config json.RawMessage) (Adapter, error) {
	return Open(name, config, Host{})
}

// Open makes an adapter of a registered backend for the broker host.
func Open(name string, config json.RawMessage, host Host) (Adapter, error) {
	registryMu.Lock()
	f, ok := registry[name]
	registryMu.Unlock()
	if !ok {
		return nil, fmt.Errorf("adapters: no backend %q (have %v)", name, Names())
	}
	a, err := f(config, host)
	if err != nil {
		return nil, fmt.Errorf("adapters: %s: %w", name, err)
	}
	return a, nil
}

// Names lists the registered backends.
func Names() []string {
	registryMu.Lock()
	defer registryMu.Unlock()
	var out []string
	for n := range registry {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// ValidID reports whether s can name a placement.
func ValidID(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return s[0] != '.'
}

// Helpers for backends.

// DecodeConfig decodes a backend's JSON configuration into v strictly:
// unknown fields are errors. An empty configuration leaves v as it is.
func DecodeConfig(raw json.RawMessage, v any) error {
	if len(raw) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return nil
}

// WriteFileAtomic replaces path with data, synced, so that a reader (or
// a restart) sees the old file or the new one, never part of it.
func WriteFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// An OfferSpec is what a backend's discovery knows of one offer: Document
// makes the offer of it.
type OfferSpec struct {
	Name         string
	Labels       map[string]string
	Provider     identity.PrincipalID
	Broker       identity.PrincipalID // the broker that owns the offer
	Region, Zone string
	Pool         string // the compute identifier's pool: lowercase letters, digits, inner hyphens
	Jurisdiction string
	Class        descriptor.ComputeClass
	Quantity     int
	// Price is the price schedule: anything that marshals to an offer's
	// price (a descriptor.PriceSchedule, a map, raw JSON).
	Price     any
	ValidFrom time.Time
	ValidFor  time.Duration
}

// Document builds the offer, with the provider's compute identifier, and
// checks it as any offer document is checked.
func (s OfferSpec) Document() (*descriptor.Document, error) {
	cid, err := identity.NewComputeID(s.Provider, s.Region, s.Zone, s.Pool)
	if err != nil {
		return nil, err
	}
	class, err := json.Marshal(s.Class)
	if err != nil {
		return nil, err
	}
	doc := map[string]any{
		"apiVersion": "cinet/v1", "kind": "Offer",
		"metadata":  map[string]any{"name": s.Name, "labels": s.Labels},
		"computeId": cid.String(), "provider": s.Provider.String(), "broker": s.Broker.String(),
		"region": s.Region, "zone": s.Zone, "jurisdiction": s.Jurisdiction,
		"class": json.RawMessage(class), "quantity": max(s.Quantity, 1), "price": s.Price,
		"validFrom":  s.ValidFrom.UTC().Truncate(time.Second).Format(time.RFC3339),
		"validUntil": s.ValidFrom.UTC().Add(s.ValidFor).Truncate(time.Second).Format(time.RFC3339),
		"sequence":   s.ValidFrom.Unix(),
	}
	data, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	return descriptor.ParseOffer(s.Pool+".json", data)
}

// PoolName makes a compute identifier's pool of a provider's name for
// it ("p5.48xlarge" → "p5-48xlarge"), with "-spot" for the spot market.
func PoolName(name, market string) string {
	pool := strings.NewReplacer(".", "-", "_", "-", "/", "-", ":", "-").Replace(strings.ToLower(name))
	if market == "spot" {
		pool += "-spot"
	}
	return pool
}
