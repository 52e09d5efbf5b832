//go:build unix

package slurm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/cinet/cinet/adapters"
	"github.com/cinet/cinet/descriptor"
	"github.com/cinet/cinet/identity"
)

// OfferConfig says how a cluster's partition is offered (spec/adapters.md
// §6.4): where it is, what it costs, and which accelerator each GRES is.
type OfferConfig struct {
	SlurmConf string `json:"slurmConf,omitempty"`
	// Partition whose nodes are offered. Required.
	Partition string `json:"partition"`
	// Region and Zone name where the cluster is ("cn-north-1", "hpc1");
	// Jurisdiction its country. Required.
	Region       string `json:"region"`
	Zone         string `json:"zone"`
	Jurisdiction string `json:"jurisdiction"`
	// Price is the centre's price schedule for a node of the partition.
	// Required.
	Price json.RawMessage `json:"price"`
	// Models names the accelerator model of each GPU GRES, by "name" or
	// "name:type" ("gpu:a100": "A100"); a typed GRES whose type the
	// vocabulary knows needs no entry.
	Models map[string]string `json:"models,omitempty"`
	// ValidFor is how long the offers hold (default 24h).
	ValidFor descriptor.Duration `json:"validFor,omitempty"`
}

// ParseOfferConfig decodes a configuration strictly and checks it.
func ParseOfferConfig(raw json.RawMessage) (*OfferConfig, error) {
	var c OfferConfig
	if err := adapters.DecodeConfig(raw, &c); err != nil {
		return nil, err
	}
	switch {
	case c.Partition == "":
		return nil, errors.New("slurm: partition is required: the partition whose nodes are offered")
	case c.Region == "" || c.Zone == "" || c.Jurisdiction == "":
		return nil, errors.New("slurm: region, zone and jurisdiction are required: where the cluster is")
	case len(c.Price) == 0:
		return nil, errors.New("slurm: price is required: the centre's price schedule for a node (currency, rates)")
	}
	return &c, nil
}

// Discovered is what discovery found: the offers, and why some nodes are
// not among them.
type Discovered struct {
	Offers  []*descriptor.Document
	Skipped []string
}

// slurmNode is one node as scontrol describes it.
type slurmNode map[string]string

var nodeField = regexp.MustCompile(`(?:^| )([A-Za-z]+)=`)

// parseNodes reads `scontrol show node -o`: one node a line, Key=value
// fields, some values holding spaces (OS=Linux 6.1 …).
func parseNodes(out string) []slurmNode {
	var nodes []slurmNode
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		idx := nodeField.FindAllStringSubmatchIndex(line, -1)
		if len(idx) == 0 {
			continue
		}
		n := slurmNode{}
		for i, m := range idx {
			end := len(line)
			if i+1 < len(idx) {
				end = idx[i+1][0]
			}
			n[line[m[2]:m[3]]] = strings.TrimSpace(line[m[1]:end])
		}
		nodes = append(nodes, n)
	}
	return nodes
}

// DiscoverOffers reads the partition's nodes and offers each shape of
// node (CPUs, memory, architecture, GRES) that can run jobs, as many as
// there are such nodes, as provider's offers owned by broker.
func DiscoverOffers(ctx context.Context, c *OfferConfig, provider, broker identity.PrincipalID, now time.Time) (*Discovered, error) {
	cmd := exec.CommandContext(ctx, "scontrol", "show", "node", "-o")
	cmd.Env = os.Environ()
	if c.SlurmConf != "" {
		cmd.Env = append(cmd.Env, "SLURM_CONF="+c.SlurmConf)
	}
	out, err := cmd.Output()
	if err != nil {
		msg := err.Error()
		if ee, ok := err.(*exec.ExitError); ok {
			msg = strings.TrimSpace(string(ee.Stderr))
		}
		return nil, fmt.Errorf("slurm: scontrol show node: %s: is slurmctld running, and slurmConf the cluster's?", msg)
	}
	return offersFrom(parseNodes(string(out)), c, provider, broker, now)
}

func offersFrom(nodes []slurmNode, c *OfferConfig, provider, broker identity.PrincipalID, now time.Time) (*Discovered, error) {
	type shape struct {
		arch        string
		cpus        int
		memMiB      int64
		model       string
		accelerator int
	}
	count := map[shape]int{}
	d := &Discovered{}
	inPartition := 0
	for _, n := range nodes {
		name := n["NodeName"]
		if !slices.Contains(strings.Split(n["Partitions"], ","), c.Partition) {
			continue
		}
		inPartition++
		if st := strings.ToUpper(n["State"]); strings.ContainsAny(st, "*") || hasAny(st, "DOWN", "DRAIN", "FAIL", "INVAL", "NOT_RESPONDING", "MAINT", "RESERVED", "POWER") {
			d.Skipped = append(d.Skipped, fmt.Sprintf("node %s: %s", name, n["State"]))
			continue
		}
		cpus, err1 := strconv.Atoi(n["CPUTot"])
		mem, err2 := strconv.ParseInt(n["RealMemory"], 10, 64)
		if err1 != nil || err2 != nil || cpus <= 0 || mem <= 0 {
			d.Skipped = append(d.Skipped, fmt.Sprintf("node %s: no CPU count or memory (CPUTot=%q RealMemory=%q)", name, n["CPUTot"], n["RealMemory"]))
			continue
		}
		s := shape{cpus: cpus, memMiB: mem}
		switch a := n["Arch"]; a {
		case "x86_64":
			s.arch = a
		case "aarch64", "arm64":
			s.arch = "arm64"
		default:
			d.Skipped = append(d.Skipped, fmt.Sprintf("node %s: architecture %q is not in the vocabulary", name, a))
			continue
		}
		model, devices, why := gpus(n["Gres"], c.Models)
		if why != "" {
			d.Skipped = append(d.Skipped, fmt.Sprintf("node %s: %s", name, why))
			continue
		}
		s.model, s.accelerator = model, devices
		count[s]++
	}
	if inPartition == 0 {
		return nil, fmt.Errorf("slurm: partition %s has no nodes (or does not exist)", c.Partition)
	}
	shapes := make([]shape, 0, len(count))
	for s := range count {
		shapes = append(shapes, s)
	}
	sort.Slice(shapes, func(i, j int) bool { return fmt.Sprint(shapes[i]) < fmt.Sprint(shapes[j]) })
	validFor := c.ValidFor.Std()
	if validFor <= 0 {
		validFor = 24 * time.Hour
	}
	for _, s := range shapes {
		class := descriptor.ComputeClass{CPU: descriptor.CPU{Arch: s.arch, Count: s.cpus}, Memory: descriptor.Quantity(s.memMiB << 20)}
		pool := fmt.Sprintf("%s-%dcpu-%dmib", c.Partition, s.cpus, s.memMiB)
		if s.accelerator > 0 {
			class.Accelerators = []descriptor.Accelerator{{Model: s.model, Count: s.accelerator}}
			pool += fmt.Sprintf("-%s-%d", strings.ToLower(s.model), s.accelerator)
		}
		pool = adapters.PoolName(pool, "")
		o, err := adapters.OfferSpec{
			Name: "slurm-" + pool, Labels: map[string]string{"slurm.partition": c.Partition},
			Provider: provider, Broker: broker, Region: c.Region, Zone: c.Zone, Pool: pool, Jurisdiction: c.Jurisdiction,
			Class: class, Quantity: count[s], Price: c.Price, ValidFrom: now, ValidFor: validFor,
		}.Document()
		if err != nil {
			return nil, fmt.Errorf("slurm: the offer for %s: %w", pool, err)
		}
		d.Offers = append(d.Offers, o)
	}
	return d, nil
}

// gpus reads a node's GPU GRES ("gpu:2", "gpu:a100:4(S:0-1)"): the model
// and devices, or why it cannot say.
func gpus(gres string, models map[string]string) (model string, count int, why string) {
	if gres == "" || gres == "(null)" {
		return "", 0, ""
	}
	for _, g := range strings.Split(gres, ",") {
		g, _, _ = strings.Cut(g, "(")
		parts := strings.Split(g, ":")
		if parts[0] != "gpu" {
			continue
		}
		n, err := strconv.Atoi(parts[len(parts)-1])
		if err != nil || n <= 0 {
			return "", 0, fmt.Sprintf("GRES %q has no device count", g)
		}
		key, typ := "gpu", ""
		if len(parts) == 3 {
			typ = parts[1]
			key += ":" + typ
		}
		name := models[key]
		if name == "" && typ != "" {
			if m, ok := descriptor.FindAccelerator(typ); ok {
				name = m.Name
			}
		}
		if name == "" {
			return "", 0, fmt.Sprintf("GRES %s: which accelerator it is is not known: name it in models (%q: MODEL)", g, key)
		}
		m, ok := descriptor.LookupAccelerator(name)
		if !ok {
			return "", 0, fmt.Sprintf("GRES %s: models says %q, which the vocabulary lacks", g, name)
		}
		if model != "" && model != m.Name {
			return "", 0, "it has GPUs of two models: offer them as separate partitions"
		}
		model, count = m.Name, count+n
	}
	return model, count, ""
}

func hasAny(s string, subs ...string) bool {
	for _, x := range subs {
		if strings.Contains(s, x) {
			return true
		}
	}
	return false
}
