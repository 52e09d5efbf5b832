package federation

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	v1 "github.com/cinet/cinet/broker/api/v1"
	"github.com/cinet/cinet/identity"
	"github.com/cinet/cinet/settlement"
	"github.com/cinet/cinet/settlement/auditlog"
)

// Witnessing (spec/protocol.md §3.3, §4.5): every broker gossips its audit
// log's checkpoints; every other member checks each one against the last
// it saw from that log — asking the log for a consistency proof — and,
// when it holds, cosigns it in the C2SP tlog-cosignature format and hands
// the cosignature back. Two checkpoints from one log that no consistency
// proof can join are an equivocation: both signed notes are kept and
// reported.
const (
	TopicCheckpoints = "/cinet/checkpoints/1.0.0"
	ProtocolWitness  = "/cinet/witness/1.0.0"
	MaxCheckpoint    = 4 << 10  // one signed checkpoint, with its cosignatures
	MaxWitness       = 64 << 10 // a consistency proof or a cosigned checkpoint
	witnessDeadline  = 10 * time.Second
	keptEquivocation = 100
)

// A Log is the broker's own audit log, as its witnesses ask about it:
// settlement.Settler implements it.
type Log interface {
	LatestCheckpoint(ctx context.Context) (*auditlog.Checkpoint, error)
	ProveConsistency(ctx context.Context, old, n int64) ([]tlog.Hash, error)
}

// WitnessName is the key name under which a broker cosigns other logs'
// checkpoints; the key is the broker's own.
func WitnessName(id identity.PrincipalID) string {
	return "cinet.witness/" + identity.ProviderFingerprint(id)
}

// An Equivocation is two checkpoints one broker signed that cannot both
// be true of one log: the same size with different roots, or no
// consistency proof from the smaller to the larger. Either note, checked
// against the broker's verifier key, is its own evidence.
// It is the API's type (v1.Equivocation): the node keeps what it shows.
type Equivocation = v1.Equivocation

type witnessRequest struct {
	Op  string `json:"op"` // "consistency" or "cosign"
	Old int64  `json:"old,omitempty"`
	New int64  `json:"new,omitempty"`
	// Note is the checkpoint with the witness's cosignature added, for
	// "cosign".
	Note []byte `json:"note,omitempty"`
}

type witnessResponse struct {
	Proof []tlog.Hash `json:"proof,omitempty"`
	Code  string      `json:"code,omitempty"` // refused, unavailable
	Error string      `json:"error,omitempty"`
}

// witness is a node's state as a witness, and as a log others witness.
type witness struct {
	queue chan witnessed
	// seen is the newest checkpoint of each other log found consistent
	// with all seen before it.
	seen map[identity.PrincipalID]*auditlog.Checkpoint
	// handed is the size of the newest checkpoint of each log whose
	// cosignature its broker took, since this node started.
	handed map[identity.PrincipalID]int64
	// cosigned holds the cosignature lines witnesses handed back for this
	// broker's checkpoints, by tree size and witness.
	cosigned      map[int64]map[identity.PrincipalID]string
	notes         map[int64][]byte // this broker's checkpoints that were cosigned, by size
	equivocations []Equivocation
	file          string
}

type witnessed struct {
	author identity.PrincipalID
	c      *auditlog.Checkpoint
}

// witnessFile is what a node keeps across restarts: as a witness, the
// checkpoints it saw and the equivocations it found; as a log, the
// newest of its checkpoints that witnesses cosigned, with their lines.
type witnessFile struct {
	Seen          map[string][]byte `json:"seen"`
	Equivocations []Equivocation    `json:"equivocations"`
	Cosigned      *keptCosigned     `json:"cosigned,omitempty"`
}

type keptCosigned struct {
	Note  []byte            `json:"note"`  // the checkpoint as the log signed it
	Lines map[string]string `json:"lines"` // each witness's cosignature line, by its DID
}

func (n *Node) loadWitness() {
	n.w = witness{queue: make(chan witnessed, 256), seen: map[identity.PrincipalID]*auditlog.Checkpoint{}, handed: map[identity.PrincipalID]int64{},
		cosigned: map[int64]map[identity.PrincipalID]string{}, notes: map[int64][]byte{}}
	if n.cfg.PeersFile == "" {
		return
	}
	n.w.file = n.cfg.PeersFile[:len(n.cfg.PeersFile)-len("peers.json")] + "witness.json"
	data, err := os.ReadFile(n.w.file)
	if err != nil {
		return
	}
	var f witnessFile
	if err := json.Unmarshal(data, &f); err != nil {
		n.cfg.Log.Warn("reading the witness's state; starting afresh", "file", n.w.file, "err", err)
		return
	}
	for b, signed := range f.Seen {
		id, err := identity.ParsePrincipalID(b)
		if err != nil {
			continue
		}
		if c, err := openCheckpointOf(id, signed); err == nil {
			n.w.seen[id] = c
		}
	}
	n.w.equivocations = f.Equivocations
	if k := f.Cosigned; k != nil {
		if c, err := openCheckpointOf(n.self, k.Note); err == nil {
			n.w.notes[c.Size], n.w.cosigned[c.Size] = c.Note, map[identity.PrincipalID]string{}
			for did, line := range k.Lines {
				if id, err := identity.ParsePrincipalID(did); err == nil {
					n.w.cosigned[c.Size][id] = line
				}
			}
		}
	}
}

// saveWitness keeps the witness's state; the caller holds n.mu.
func (n *Node) saveWitness() {
	if n.w.file == "" {
		return
	}
	f := witnessFile{Seen: map[string][]byte{}, Equivocations: n.w.equivocations}
	for id, c := range n.w.seen {
		f.Seen[id.String()] = c.Note
	}
	if best := n.newestCosigned(); best >= 0 {
		f.Cosigned = &keptCosigned{Note: n.w.notes[best], Lines: map[string]string{}}
		for id, line := range n.w.cosigned[best] {
			f.Cosigned.Lines[id.String()] = line
		}
	}
	data, err := json.Marshal(f)
	if err == nil {
		err = writeFileAtomic(n.w.file, data)
	}
	if err != nil {
		n.cfg.Log.Warn("keeping the witness's state", "err", err)
	}
}

func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// openCheckpointOf verifies a checkpoint of broker's log: its origin is
// the broker's log origin and the broker's key signed it. Cosignature
// lines after the signature are allowed.
func openCheckpointOf(broker identity.PrincipalID, signed []byte) (*auditlog.Checkpoint, error) {
	origin := settlement.LogOrigin(broker)
	vkey, err := broker.VerifierKey(origin)
	if err != nil {
		return nil, err
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, err
	}
	n, err := note.Open(signed, note.VerifierList(v))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", auditlog.ErrBadCheckpoint, err)
	}
	// The checkpoint as its log signed it, without cosignatures: the one
	// signature verified is the log's.
	bare := []byte(n.Text + "\n— " + n.Sigs[0].Name + " " + n.Sigs[0].Base64 + "\n")
	return auditlog.OpenCheckpoint(bare, vkey)
}

// validateCheckpoint decides on a gossiped checkpoint: its author's log's,
// signed by it.
func (n *Node) validateCheckpoint(_ context.Context, from peer.ID, msg *pubsub.Message) pubsub.ValidationResult {
	const t = TopicCheckpoints
	if msg.GetFrom() == n.host.ID() {
		return pubsub.ValidationAccept
	}
	author, ok := n.member(msg.GetFrom())
	if !ok {
		return n.verdict(t, pubsub.ValidationReject, "not-a-member", from, nil)
	}
	if len(msg.Data) > MaxCheckpoint {
		return n.verdict(t, pubsub.ValidationReject, "too-large", from, nil)
	}
	c, err := openCheckpointOf(author, msg.Data)
	if err != nil {
		return n.verdict(t, pubsub.ValidationReject, "bad-signature", from, err)
	}
	msg.ValidatorData = witnessed{author: author, c: c}
	return n.verdict(t, pubsub.ValidationAccept, "", from, nil)
}

// PublishCheckpoint gossips a checkpoint of this broker's log.
func (n *Node) PublishCheckpoint(ctx context.Context, signed []byte) error {
	if len(signed) > MaxCheckpoint {
		return fmt.Errorf("%w: a checkpoint of %d bytes", ErrTooLarge, len(signed))
	}
	return n.checkpoints.Publish(ctx, signed)
}

// publishCheckpoints gossips this broker's latest checkpoint whenever it
// grows, and again every 10 s for members that joined or came back since.
func (n *Node) publishCheckpoints(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var last int64 = -1
	var at time.Time
	for {
		if c, err := n.cfg.AuditLog.LatestCheckpoint(ctx); err == nil && c != nil && (c.Size != last || time.Since(at) > 10*time.Second) {
			if err := n.PublishCheckpoint(ctx, c.Note); err == nil {
				last, at = c.Size, time.Now()
			} else if ctx.Err() == nil {
				n.cfg.Log.Info("gossiping a checkpoint", "size", c.Size, "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// witnessLoop checks the checkpoints other logs gossip, one at a time.
func (n *Node) witnessLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case w := <-n.w.queue:
			n.witness(ctx, w.author, w.c)
		}
	}
}

// witness checks one checkpoint of another broker's log against the one
// seen before, and cosigns it when consistent.
func (n *Node) witness(ctx context.Context, author identity.PrincipalID, c *auditlog.Checkpoint) {
	n.cfg.Log.Debug("witnessing a checkpoint", "broker", author, "size", c.Size)
	n.mu.Lock()
	prev := n.w.seen[author]
	n.mu.Unlock()
	switch {
	case prev == nil:
		// The first checkpoint of a log is taken as it is.
	case c.Size == prev.Size:
		if c.Hash != prev.Hash {
			n.equivocation(author, prev, c, fmt.Sprintf("two checkpoints of size %d with different roots", c.Size))
			return
		}
		if n.cosignedBefore(author, c) {
			return
		}
	default:
		older, newer := prev, c
		if c.Size < prev.Size {
			older, newer = c, prev
		}
		proof, err := n.askConsistency(ctx, author, older.Size, newer.Size)
		if err != nil {
			n.cfg.Log.Info("asking a log for a consistency proof", "broker", author, "err", err)
			return // asked again with the next checkpoint
		}
		if err := auditlog.VerifyConsistency(older, newer, proof); err != nil {
			n.equivocation(author, prev, c, fmt.Sprintf("no consistency proof joins size %d to size %d: %v", older.Size, newer.Size, err))
			return
		}
		if c.Size < prev.Size {
			return // an old checkpoint, consistent with what was seen
		}
	}
	n.mu.Lock()
	n.w.seen[author] = c
	n.saveWitness()
	n.mu.Unlock()
	if err := n.cosign(ctx, author, c); err != nil {
		// Tried again when the log next gossips this checkpoint.
		n.cfg.Log.Info("handing a cosignature back", "broker", author, "size", c.Size, "err", err)
		return
	}
	n.mu.Lock()
	n.w.handed[author] = c.Size
	n.mu.Unlock()
}

// cosignedBefore: this witness has handed the log's broker a cosignature
// of the checkpoint since it started.
func (n *Node) cosignedBefore(author identity.PrincipalID, c *auditlog.Checkpoint) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	size, ok := n.w.handed[author]
	return ok && size == c.Size
}

func (n *Node) equivocation(author identity.PrincipalID, first, second *auditlog.Checkpoint, detail string) {
	n.m.equivocations.Inc()
	n.cfg.Log.Error("a broker signed two inconsistent checkpoints of its log", "broker", author, "detail", detail,
		"first", string(first.Note), "second", string(second.Note))
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, e := range n.w.equivocations {
		if e.Broker == author && bytes.Equal(e.Second, second.Note) {
			return
		}
	}
	n.w.equivocations = append(n.w.equivocations, Equivocation{Broker: author, First: first.Note, Second: second.Note, Detail: detail, At: n.cfg.Now().UTC()})
	if len(n.w.equivocations) > keptEquivocation {
		n.w.equivocations = n.w.equivocations[1:]
	}
	n.saveWitness()
}

// Equivocations returns the inconsistent checkpoints this broker has seen.
func (n *Node) Equivocations() []Equivocation {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.w.equivocations)
}

func (n *Node) askConsistency(ctx context.Context, author identity.PrincipalID, old, size int64) ([]tlog.Hash, error) {
	resp, err := n.callWitness(ctx, author, witnessRequest{Op: "consistency", Old: old, New: size})
	return resp.Proof, err
}

// cosign adds this broker's cosignature to a checkpoint and hands it to
// the log's broker.
func (n *Node) cosign(ctx context.Context, author identity.PrincipalID, c *auditlog.Checkpoint) error {
	signer, err := n.cfg.Key.CosignatureSigner(WitnessName(n.self))
	if err != nil {
		return err
	}
	v, _ := author.VerifierKey(c.Origin)
	verifier, err := note.NewVerifier(v)
	if err != nil {
		return err
	}
	opened, err := note.Open(c.Note, note.VerifierList(verifier))
	if err != nil {
		return err
	}
	signed, err := note.Sign(opened, signer)
	if err != nil {
		return err
	}
	_, err = n.callWitness(ctx, author, witnessRequest{Op: "cosign", Note: signed})
	if err == nil {
		n.m.cosigned.Inc()
	}
	return err
}

func (n *Node) callWitness(ctx context.Context, to identity.PrincipalID, req witnessRequest) (witnessResponse, error) {
	var resp witnessResponse
	if err := n.call(ctx, to, ProtocolWitness, witnessDeadline, MaxWitness, req, &resp); err != nil {
		return witnessResponse{}, err
	}
	if resp.Code != "" {
		return resp, fmt.Errorf("federation: broker %s: %s", to, resp.Error)
	}
	return resp, nil
}

// serveWitness answers a witness: a consistency proof of this broker's
// log, or the witness's cosignature of one of its checkpoints.
func (n *Node) serveWitness(s network.Stream) {
	serveOne(n, s, ProtocolWitness, witnessDeadline, MaxWitness, func(ctx context.Context, asker identity.PrincipalID, req witnessRequest) any {
		if n.cfg.AuditLog == nil {
			return witnessResponse{Code: "refused", Error: "this broker keeps no audit log"}
		}
		switch req.Op {
		case "consistency":
			p, err := n.cfg.AuditLog.ProveConsistency(ctx, req.Old, req.New)
			if err != nil {
				return witnessResponse{Code: "refused", Error: err.Error()}
			}
			return witnessResponse{Proof: p}
		case "cosign":
			if err := n.keepCosignature(asker, req.Note); err != nil {
				return witnessResponse{Code: "refused", Error: err.Error()}
			}
			return witnessResponse{}
		}
		return witnessResponse{Code: "refused", Error: fmt.Sprintf("unknown operation %q", req.Op)}
	})
}

// keepCosignature checks a witness's cosignature of one of this broker's
// checkpoints and keeps it.
func (n *Node) keepCosignature(witness identity.PrincipalID, signed []byte) error {
	c, err := openCheckpointOf(n.self, signed)
	if err != nil {
		return err
	}
	cv, err := witness.CosignatureVerifier(WitnessName(witness))
	if err != nil {
		return err
	}
	opened, err := note.Open(signed, note.VerifierList(cv))
	if err != nil {
		return fmt.Errorf("the cosignature of %s does not verify: %w", witness, err)
	}
	var line string
	for _, sig := range opened.Sigs {
		if sig.Name == cv.Name() && sig.Hash == cv.KeyHash() {
			line = "— " + sig.Name + " " + sig.Base64 + "\n"
		}
	}
	if line == "" {
		return errors.New("no cosignature found")
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.w.cosigned[c.Size] == nil {
		n.w.cosigned[c.Size] = map[identity.PrincipalID]string{}
		// Keep the cosignatures of the few newest sizes.
		var sizes []int64
		for size := range n.w.cosigned {
			sizes = append(sizes, size)
		}
		sort.Slice(sizes, func(i, j int) bool { return sizes[i] > sizes[j] })
		for _, size := range sizes[min(len(sizes), 16):] {
			delete(n.w.cosigned, size)
			delete(n.w.notes, size)
		}
	}
	n.w.cosigned[c.Size][witness] = line
	n.w.notes[c.Size] = c.Note
	n.saveWitness()
	return nil
}

// newestCosigned is the largest size of this broker's checkpoints that
// witnesses cosigned, or -1; the caller holds n.mu.
func (n *Node) newestCosigned() int64 {
	var best int64 = -1
	for size := range n.w.cosigned {
		best = max(best, size)
	}
	return best
}

// Witnessed returns the newest checkpoint of this broker's log that
// witnesses cosigned, with every cosignature kept for it, as a C2SP signed
// note; nil when none has been.
func (n *Node) Witnessed() []byte {
	n.mu.Lock()
	defer n.mu.Unlock()
	best := n.newestCosigned()
	if best < 0 {
		return nil
	}
	var lines []string
	for _, l := range n.w.cosigned[best] {
		lines = append(lines, l)
	}
	sort.Strings(lines)
	out := bytes.Clone(n.w.notes[best])
	for _, l := range lines {
		out = append(out, l...)
	}
	return out
}
