package settlement

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sort"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/cinet/cinet/descriptor"
	"github.com/cinet/cinet/settlement/auditlog"
)

// emptyRoot is the RFC 6962 hash of the empty tree.
var emptyRoot = tlog.Hash(sha256.Sum256(nil))

// Checkpoint signs the log as it stands and keeps the checkpoint; if the
// log has not grown since the last one, it returns that one. Checkpoints
// never go backwards: the store refuses one smaller than the last.
func (s *Settler) Checkpoint(ctx context.Context) (*auditlog.Checkpoint, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out *auditlog.Checkpoint
	err := s.cfg.Store.Update(ctx, func(tx Tx) error {
		size, err := tx.LogSize()
		if err != nil {
			return err
		}
		note, latest, err := tx.LatestCheckpoint()
		switch {
		case err == nil && latest == size:
			out, err = auditlog.OpenCheckpoint(note, s.VerifierKey())
			return err
		case err == nil && latest > size:
			return fmt.Errorf("settlement: the log has %d entries but a checkpoint of %d was issued: the store lost entries", size, latest)
		case err != nil && !errors.Is(err, ErrNotFound):
			return err
		}
		root := emptyRoot
		if size > 0 {
			if root, err = auditlog.TreeHash(size, tlog.HashReaderFunc(tx.ReadHashes)); err != nil {
				return err
			}
		}
		if out, err = auditlog.Sign(s.signer, s.cfg.Origin, size, root); err != nil {
			return err
		}
		return tx.PutCheckpoint(size, out.Note, s.cfg.Now().UTC())
	})
	return out, err
}

// CheckpointAt signs a checkpoint of the log's first n entries, which may
// be fewer than it has now (for a consistency proof from an older size).
// It is not kept: kept checkpoints only grow.
func (s *Settler) CheckpointAt(ctx context.Context, n int64) (*auditlog.Checkpoint, error) {
	root := emptyRoot
	err := s.cfg.Store.View(ctx, func(tx ReadTx) error {
		size, err := tx.LogSize()
		if err != nil {
			return err
		}
		if n < 0 || n > size {
			return fmt.Errorf("settlement: the log has %d entries, not %d", size, n)
		}
		if n > 0 {
			root, err = auditlog.TreeHash(n, tlog.HashReaderFunc(tx.ReadHashes))
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return auditlog.Sign(s.signer, s.cfg.Origin, n, root)
}

// KeptCheckpoint is a checkpoint the broker issued, and when.
type KeptCheckpoint struct {
	Size     int64
	SignedAt time.Time // zero for those kept before the time was recorded
	Note     []byte
}

// Checkpoints returns up to limit of the checkpoints issued, newest first:
// the log's size over time.
func (s *Settler) Checkpoints(ctx context.Context, limit int) ([]KeptCheckpoint, error) {
	var out []KeptCheckpoint
	err := s.cfg.Store.View(ctx, func(tx ReadTx) error {
		rows, err := tx.Checkpoints(limit)
		for _, r := range rows {
			out = append(out, KeptCheckpoint{Size: r.Size, SignedAt: r.SignedAt, Note: r.Note})
		}
		return err
	})
	return out, err
}

// LatestCheckpoint returns the newest checkpoint issued, or ErrNotFound.
func (s *Settler) LatestCheckpoint(ctx context.Context) (*auditlog.Checkpoint, error) {
	var out *auditlog.Checkpoint
	err := s.cfg.Store.View(ctx, func(tx ReadTx) error {
		note, _, err := tx.LatestCheckpoint()
		if err != nil {
			return err
		}
		out, err = auditlog.OpenCheckpoint(note, s.VerifierKey())
		return err
	})
	return out, err
}

// Proof is a record's log entry with its C2SP tlog-proof receipt.
type Proof struct {
	Record     RecordID
	Index      int64
	Entry      []byte // the log entry, verbatim
	Receipt    []byte // .tlog-proof
	Checkpoint *auditlog.Checkpoint
}

// Prove returns the inclusion proof of a record's entry in the log,
// against the latest checkpoint, issuing one first if the record came
// after it.
func (s *Settler) Prove(ctx context.Context, id RecordID) (*Proof, error) {
	var index int64
	err := s.cfg.Store.View(ctx, func(tx ReadTx) error {
		rows, err := tx.Records([]RecordID{id})
		if err != nil {
			return err
		}
		row, ok := rows[id]
		if !ok {
			return fmt.Errorf("settlement: record %s: %w", id, ErrNotFound)
		}
		index = row.LogIndex
		return nil
	})
	if err != nil {
		return nil, err
	}
	return s.ProveIndex(ctx, id, index)
}

// ProveIndex is Prove for a log index.
func (s *Settler) ProveIndex(ctx context.Context, id RecordID, index int64) (*Proof, error) {
	cp, err := s.LatestCheckpoint(ctx)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	if cp == nil || cp.Size <= index {
		if cp, err = s.Checkpoint(ctx); err != nil {
			return nil, err
		}
	}
	p := &Proof{Record: id, Index: index, Checkpoint: cp}
	err = s.cfg.Store.View(ctx, func(tx ReadTx) error {
		entries, err := tx.ReadEntries(index, 1)
		if err != nil {
			return err
		}
		p.Entry = entries[0]
		p.Receipt, err = auditlog.Receipt(cp, index, tlog.HashReaderFunc(tx.ReadHashes))
		return err
	})
	return p, err
}

// ProveConsistency returns the proof that the log at size old is a prefix
// of the log at size n.
func (s *Settler) ProveConsistency(ctx context.Context, old, n int64) ([]tlog.Hash, error) {
	var p []tlog.Hash
	err := s.cfg.Store.View(ctx, func(tx ReadTx) error {
		size, err := tx.LogSize()
		if err != nil {
			return err
		}
		if n > size {
			return fmt.Errorf("settlement: the log has %d entries, not %d", size, n)
		}
		p, err = auditlog.ProveConsistency(old, n, tlog.HashReaderFunc(tx.ReadHashes))
		return err
	})
	return p, err
}

// Balances returns balances, of one account or of all when account is "".
func (s *Settler) Balances(ctx context.Context, account Account) ([]Balance, error) {
	var out []Balance
	err := s.cfg.Store.View(ctx, func(tx ReadTx) error {
		var err error
		out, err = tx.Balances(account)
		return err
	})
	return out, err
}

// TrialBalance sums every balance per currency; double entry makes each
// sum zero.
func (s *Settler) TrialBalance(ctx context.Context) (map[string]descriptor.Nanos, error) {
	all, err := s.Balances(ctx, "")
	if err != nil {
		return nil, err
	}
	out := map[string]descriptor.Nanos{}
	for _, b := range all {
		if out[b.Currency], err = out[b.Currency].CheckedAdd(b.Amount); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// An AccountStatement is the transactions that moved an account, for the
// records whose period ends in [From, To), with the period's net change per
// currency.
type AccountStatement struct {
	Account      Account
	From, To     time.Time
	Transactions []*TransactionRow
	Net          map[string]descriptor.Nanos
}

// Statement returns an account's statement for a period.
func (s *Settler) Statement(ctx context.Context, account Account, from, to time.Time) (*AccountStatement, error) {
	st := &AccountStatement{Account: account, From: from, To: to, Net: map[string]descriptor.Nanos{}}
	err := s.cfg.Store.View(ctx, func(tx ReadTx) error {
		var err error
		st.Transactions, err = tx.Transactions(account, from, to)
		return err
	})
	if err != nil {
		return nil, err
	}
	for _, t := range st.Transactions {
		if st.Net[t.Currency], err = st.Net[t.Currency].CheckedAdd(t.Amount(account)); err != nil {
			return nil, err
		}
	}
	return st, nil
}

// ErrHold wraps the reasons a hold cannot be placed or released.
var ErrHold = errors.New("settlement: hold")

// ErrHoldExists is a hold placed for a job that has one: PlaceHold returns
// the one it has with it.
var ErrHoldExists = errors.New("the job already has a hold")

// PlaceHold reserves amount of a tenant's budget for a job. Usage the job
// incurs on this broker captures from the hold. A job has one hold: asked
// again, PlaceHold returns the job's hold and an error wrapping
// ErrHoldExists.
func (s *Settler) PlaceHold(ctx context.Context, job string, tenant Account, currency string, amount descriptor.Nanos) (*Hold, error) {
	if amount < 0 || job == "" || tenant.Kind() != TenantAccounts || !descriptor.IsCurrency(currency) {
		return nil, fmt.Errorf("%w: a hold needs a job, a tenant account, a currency and a non-negative amount", ErrHold)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	h := &Hold{Job: job, Account: tenant, Currency: currency, Amount: amount, Open: true, CreatedAt: s.cfg.Now().UTC()}
	var had *Hold
	err := s.cfg.Store.Update(ctx, func(tx Tx) error {
		existing, err := tx.Holds([]string{job})
		if err != nil {
			return err
		}
		if e, ok := existing[job]; ok {
			had = e
			return fmt.Errorf("%w: job %s: %w", ErrHold, job, ErrHoldExists)
		}
		return tx.PutHolds([]*Hold{h})
	})
	if had != nil {
		return had, err
	}
	if err != nil {
		return nil, err
	}
	return h, nil
}

// ReleaseHold closes a job's hold, releasing what usage did not capture.
func (s *Settler) ReleaseHold(ctx context.Context, job string) (*Hold, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var h *Hold
	err := s.cfg.Store.Update(ctx, func(tx Tx) error {
		holds, err := tx.Holds([]string{job})
		if err != nil {
			return err
		}
		var ok bool
		if h, ok = holds[job]; !ok {
			return fmt.Errorf("%w: job %s has no hold: %w", ErrHold, job, ErrNotFound)
		}
		if !h.Open {
			return nil
		}
		h.Released += h.Remaining()
		h.Open, h.ClosedAt = false, s.cfg.Now().UTC()
		return tx.PutHolds([]*Hold{h})
	})
	return h, err
}

// Holds returns the holds of jobs.
func (s *Settler) Holds(ctx context.Context, jobs ...string) ([]*Hold, error) {
	var out []*Hold
	err := s.cfg.Store.View(ctx, func(tx ReadTx) error {
		m, err := tx.Holds(jobs)
		for _, h := range m {
			out = append(out, h)
		}
		return err
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Job < out[j].Job })
	return out, err
}

// TileSource is the log as the C2SP tlog-tiles handler reads it
// (auditlog.Handler): tiles up to the latest checkpoint.
func (s *Settler) TileSource() auditlog.Source { return tileSource{s} }

type tileSource struct{ s *Settler }

func (t tileSource) Checkpoint(ctx context.Context) (*auditlog.Checkpoint, error) {
	return t.s.LatestCheckpoint(ctx)
}

func (t tileSource) ReadHashes(ctx context.Context, indexes []int64) ([]tlog.Hash, error) {
	var out []tlog.Hash
	err := t.s.cfg.Store.View(ctx, func(tx ReadTx) error {
		var err error
		out, err = tx.ReadHashes(indexes)
		return err
	})
	return out, err
}

func (t tileSource) ReadEntries(ctx context.Context, start, count int64) ([][]byte, error) {
	var out [][]byte
	err := t.s.cfg.Store.View(ctx, func(tx ReadTx) error {
		var err error
		out, err = tx.ReadEntries(start, count)
		return err
	})
	return out, err
}

// LogSize returns the number of entries in the audit log.
func (s *Settler) LogSize(ctx context.Context) (int64, error) {
	var n int64
	err := s.cfg.Store.View(ctx, func(tx ReadTx) error {
		var err error
		n, err = tx.LogSize()
		return err
	})
	return n, err
}
