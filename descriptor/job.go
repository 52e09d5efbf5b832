package descriptor

import (
	"strings"
	"time"
)

// APIVersion is the apiVersion of every v1 document.
const APIVersion = "cinet/v1"

// Kinds of v1 documents.
const (
	KindJob   = "Job"
	KindOffer = "Offer"
)

// Defaults applied to a Job when its fields are omitted (spec/descriptor-v1.md).
const (
	DefaultNodes            = 1
	DefaultCPUs             = 1.0
	DefaultObjective        = "cost"
	DefaultEstimatedRuntime = Duration(time.Hour)
)

// Metadata names a document.
type Metadata struct {
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels,omitempty"`
}

// A Job is a tenant's description of work. Parse fills omitted fields with
// their defaults, so Nodes, Resources.CPUs, Objective.Type and
// EstimatedRuntime are always set on a parsed Job.
type Job struct {
	APIVersion       string    `json:"apiVersion"`
	Kind             string    `json:"kind"`
	Metadata         Metadata  `json:"metadata"`
	Tasks            []Task    `json:"tasks"`
	Nodes            int       `json:"nodes,omitempty"`
	Resources        Resources `json:"resources,omitzero"`
	Placement        Placement `json:"placement,omitzero"`
	Requirements     *Expr     `json:"requirements,omitempty"`
	Rank             *Expr     `json:"rank,omitempty"`
	Objective        Objective `json:"objective,omitzero"`
	Budget           *Budget   `json:"budget,omitempty"`
	EstimatedRuntime Duration  `json:"estimatedRuntime,omitempty"`
	Timeouts         Timeouts  `json:"timeouts,omitzero"`
	Recovery         Recovery  `json:"recovery,omitzero"`
	Inputs           []Input   `json:"inputs,omitempty"`
	Outputs          []Output  `json:"outputs,omitempty"`
	// Service makes the job a long-running service; nil for a batch job.
	Service *Service `json:"service,omitempty"`
}

// Instances is how many instances of an offer the job takes: its nodes,
// for every replica of a service.
func (j *Job) Instances() int {
	n := max(j.Nodes, 1)
	if j.Service != nil {
		n *= max(j.Service.Replicas, 1)
	}
	return n
}

// A Service is a job that serves until it is cancelled: its last task
// listens on Ports on every node of every replica, and the broker reports
// an endpoint for each port of each replica once Readiness passes there.
// Parse fills Replicas, each port's Protocol and the probe's defaults.
type Service struct {
	Replicas  int           `json:"replicas,omitempty"`
	Ports     []ServicePort `json:"ports"`
	Readiness *Readiness    `json:"readiness,omitempty"`
}

// A ServicePort is a port the service listens on.
type ServicePort struct {
	Name     string `json:"name"`
	Port     int    `json:"port"`
	Protocol string `json:"protocol,omitempty"` // "tcp" (the default) or "http"
}

// Readiness is how the broker tells that a replica serves: an HTTP GET of
// Path that answers 2xx or 3xx, or without a path a TCP connection, to
// Port, every Period from InitialDelay after the service starts, each
// given Timeout.
type Readiness struct {
	Port         string   `json:"port,omitempty"` // a port's name; the first port by default
	Path         string   `json:"path,omitempty"`
	InitialDelay Duration `json:"initialDelay,omitempty"`
	Period       Duration `json:"period,omitempty"`
	Timeout      Duration `json:"timeout,omitempty"`
}

// Service defaults.
const (
	DefaultReadinessPeriod  = Duration(5 * time.Second)
	DefaultReadinessTimeout = Duration(2 * time.Second)
)

// A Task is one step of a job. Tasks run in order on every node; a task
// starts when the one before it has exited 0.
type Task struct {
	Name    string            `json:"name"`
	Image   string            `json:"image,omitempty"`
	Command []string          `json:"command,omitempty"`
	Args    []string          `json:"args,omitempty"`
	Env     map[string]string `json:"env,omitempty"`
	Workdir string            `json:"workdir,omitempty"`
}

// Resources is what each node of a job needs.
type Resources struct {
	CPUs         float64              `json:"cpus,omitempty"`
	Memory       Quantity             `json:"memory,omitempty"`
	Disk         Quantity             `json:"disk,omitempty"`
	Accelerators []AcceleratorRequest `json:"accelerators,omitempty"`
}

// An AcceleratorRequest asks for Count devices either by model ("H100") or
// by need (kind, vendor, memory, frameworks, compute capability, TFLOPS),
// or lists choices (AnyOf), any one of which serves: 8 A100s or 4 H100s.
// Memory and TFLOPS are per device.
type AcceleratorRequest struct {
	Model             string                `json:"model,omitempty"`
	Kind              string                `json:"kind,omitempty"`
	Vendor            string                `json:"vendor,omitempty"`
	Count             int                   `json:"count"`
	Memory            Quantity              `json:"memory,omitempty"`
	Frameworks        []FrameworkConstraint `json:"frameworks,omitempty"`
	ComputeCapability VersionConstraint     `json:"computeCapability,omitzero"`
	TFLOPS            TFLOPS                `json:"tflops,omitzero"`
	// AnyOf holds 2 to 8 choices, each a request of its own; a request
	// with choices has no other field.
	AnyOf []AcceleratorRequest `json:"anyOf,omitempty"`
}

// Choices returns the requests any one of which serves r: its AnyOf, or r
// itself.
func (r *AcceleratorRequest) Choices() []AcceleratorRequest {
	if len(r.AnyOf) > 0 {
		return r.AnyOf
	}
	return []AcceleratorRequest{*r}
}

// A FrameworkConstraint asks for a framework at a version range.
type FrameworkConstraint struct {
	Name    string            `json:"name"`
	Version VersionConstraint `json:"version"`
}

// Placement restricts where a job may run.
type Placement struct {
	Regions       AllowDeny `json:"regions,omitzero"`
	Jurisdictions AllowDeny `json:"jurisdictions,omitzero"`
	Providers     AllowDeny `json:"providers,omitzero"`
}

// AllowDeny is a pair of lists: when Allow is non-empty a value must match
// one of its entries, and it must match none of Deny's.
type AllowDeny struct {
	Allow []string `json:"allow,omitempty"`
	Deny  []string `json:"deny,omitempty"`
}

// IsZero reports whether neither list is set.
func (a AllowDeny) IsZero() bool { return len(a.Allow) == 0 && len(a.Deny) == 0 }

// Permits reports whether v passes the lists; an entry ending in "*"
// matches every value with that prefix.
func (a AllowDeny) Permits(v string) bool {
	for _, d := range a.Deny {
		if patternMatch(d, v) {
			return false
		}
	}
	if len(a.Allow) == 0 {
		return true
	}
	for _, p := range a.Allow {
		if patternMatch(p, v) {
			return true
		}
	}
	return false
}

// PermitsJurisdiction is Permits for ISO 3166 codes: an entry "CN" also
// matches its subdivisions ("CN-GD"); "CN-GD" matches only itself.
func (a AllowDeny) PermitsJurisdiction(code string) bool {
	within := func(entry string) bool { return code == entry || strings.HasPrefix(code, entry+"-") }
	for _, d := range a.Deny {
		if within(d) {
			return false
		}
	}
	if len(a.Allow) == 0 {
		return true
	}
	for _, e := range a.Allow {
		if within(e) {
			return true
		}
	}
	return false
}

func patternMatch(pattern, v string) bool {
	if prefix, ok := strings.CutSuffix(pattern, "*"); ok {
		return strings.HasPrefix(v, prefix)
	}
	return pattern == v
}

// Objective says what "best" means for a job.
type Objective struct {
	Type    string   `json:"type,omitempty"` // cost, time, latency or balanced
	Weights *Weights `json:"weights,omitempty"`
}

// Weights weigh the parts of a balanced objective.
type Weights struct {
	Cost    float64 `json:"cost,omitempty"`
	Time    float64 `json:"time,omitempty"`
	Latency float64 `json:"latency,omitempty"`
}

// A Budget limits what a job may cost.
type Budget struct {
	Currency        string  `json:"currency"`
	MaxPricePerHour Decimal `json:"maxPricePerHour,omitzero"`
	MaxTotal        Decimal `json:"maxTotal,omitzero"`
}

// Timeouts bound how long a job may wait and run.
type Timeouts struct {
	Queue Duration `json:"queue,omitempty"`
	Run   Duration `json:"run,omitempty"`
}

// Recovery says when a failed job is started again.
type Recovery struct {
	MaxRestarts    int    `json:"maxRestarts,omitempty"`
	OnExitCodes    []int  `json:"onExitCodes,omitempty"`
	CheckpointPath string `json:"checkpointPath,omitempty"`
}

// Input is data placed at Path before the first task starts.
type Input struct {
	Name   string `json:"name"`
	Source string `json:"source"`
	Path   string `json:"path"`
}

// Output is data copied from Path to Destination after the last task.
type Output struct {
	Name        string `json:"name"`
	Path        string `json:"path"`
	Destination string `json:"destination"`
}

func (j *Job) applyDefaults() {
	if j.Nodes == 0 {
		j.Nodes = DefaultNodes
	}
	if j.Resources.CPUs == 0 {
		j.Resources.CPUs = DefaultCPUs
	}
	if j.Objective.Type == "" {
		j.Objective.Type = DefaultObjective
	}
	if sv := j.Service; sv != nil {
		if sv.Replicas == 0 {
			sv.Replicas = 1
		}
		for i := range sv.Ports {
			if sv.Ports[i].Protocol == "" {
				sv.Ports[i].Protocol = "tcp"
			}
		}
		if sv.Readiness == nil {
			sv.Readiness = &Readiness{}
		}
		r := sv.Readiness
		if r.Port == "" && len(sv.Ports) > 0 {
			r.Port = sv.Ports[0].Name
		}
		if r.Period == 0 {
			r.Period = DefaultReadinessPeriod
		}
		if r.Timeout == 0 {
			r.Timeout = DefaultReadinessTimeout
		}
	}
	if j.EstimatedRuntime == 0 {
		j.EstimatedRuntime = DefaultEstimatedRuntime
		if j.Timeouts.Run != 0 && j.Timeouts.Run < j.EstimatedRuntime {
			j.EstimatedRuntime = j.Timeouts.Run
		}
	}
}
