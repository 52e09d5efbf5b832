package settlement

import (
	"context"
	"errors"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/cinet/cinet/descriptor"
	"github.com/cinet/cinet/settlement/auditlog"
)

// A Store keeps the books: offers' price schedules, usage records, ledger
// transactions and balances, holds, refusals, statements and the audit
// log, all in one database so that a record, its transaction and its log
// entries are written together or not at all. Implementations:
// settlement/sqlstore (SQLite, PostgreSQL, CockroachDB); every one passes
// settlement/storetest.
type Store interface {
	// Update runs fn in a serializable transaction and commits it. After a
	// serialization conflict it may run fn again, so fn must derive
	// everything it writes from what it reads in that run. Nothing fn
	// wrote persists unless Update returns nil.
	Update(ctx context.Context, fn func(Tx) error) error
	// View runs fn in a read-only transaction over a consistent snapshot.
	View(ctx context.Context, fn func(ReadTx) error) error
	Close() error
}

// ErrNotFound is returned by lookups that find nothing.
var ErrNotFound = errors.New("settlement: not found")

// ReadTx reads the books. Every method sees one snapshot.
type ReadTx interface {
	// Offer returns the canonical document of an offer by digest.
	Offer(digest string) ([]byte, error)
	// Records returns the stored records among ids.
	Records(ids []RecordID) (map[RecordID]*RecordRow, error)
	// Periods returns the settled periods of placements.
	Periods(placements []string) ([]PeriodRow, error)
	// Refusals returns stored refusals among digests (of the bytes refused).
	Refusals(digests []string) (map[string]*Refusal, error)
	// Holds returns the holds of jobs.
	Holds(jobs []string) (map[string]*Hold, error)
	// Balances returns balances, of one account or of all when account is "".
	Balances(account Account) ([]Balance, error)
	// Transactions returns the transactions that move an account (every
	// transaction when account is ""), with their items, lines and records,
	// for records whose period ends in [from, to), ordered by period end
	// and log index.
	Transactions(account Account, from, to time.Time) ([]*TransactionRow, error)
	// LogSize returns the number of entries in the audit log.
	LogSize() (int64, error)
	// ReadHashes returns stored log hashes (tlog.StoredHashIndex numbering).
	ReadHashes(indexes []int64) ([]tlog.Hash, error)
	// ReadEntries returns log entries [start, start+count).
	ReadEntries(start, count int64) ([][]byte, error)
	// LatestCheckpoint returns the newest checkpoint note and its size.
	LatestCheckpoint() ([]byte, int64, error)
	// Checkpoints returns up to limit kept checkpoints, newest first.
	Checkpoints(limit int) ([]*CheckpointRow, error)
	// Statements returns stored statements with a counterparty.
	Statements(counterparty string) ([]*StatementRow, error)
}

// Tx writes the books.
type Tx interface {
	ReadTx
	PutOffer(digest string, canonical []byte) error
	InsertRecords(rows []*RecordRow) error
	// InsertTransactions writes transactions and their lines and adds
	// their amounts to the balances. A store refuses a transaction whose
	// lines do not sum to zero.
	InsertTransactions(txs []*Transaction) error
	PutHolds(holds []*Hold) error
	// InsertRefusals keeps refusals, replacing any earlier refusal of the
	// same bytes.
	InsertRefusals(rs []*Refusal) error
	// AppendLog adds entries at indexes start, start+1, … with their
	// stored hashes; start must be the current size.
	AppendLog(start int64, entries [][]byte, hashes []auditlog.StoredHash) error
	// PutCheckpoint keeps a checkpoint signed at a time; sizes never
	// decrease.
	PutCheckpoint(size int64, note []byte, signedAt time.Time) error
	PutStatement(s *StatementRow) error
}

// A CheckpointRow is a kept checkpoint. SignedAt is zero for checkpoints
// kept before the store recorded it.
type CheckpointRow struct {
	Size     int64
	Note     []byte
	SignedAt time.Time
}

// A RecordRow is a settled usage record.
type RecordRow struct {
	ID              RecordID
	Job, Placement  string
	Sequence        int64
	ComputeID       string
	Offer           string
	Tenant          string
	Provider        string
	HomeBroker      string
	ExecutingBroker string
	PeriodStart     time.Time
	PeriodEnd       time.Time
	LogIndex        int64 // of its usage-record entry, which holds the envelope
	ReceivedAt      time.Time
}

// A PeriodRow is the period of a settled record of a placement.
type PeriodRow struct {
	Placement  string
	Record     RecordID
	Start, End time.Time
}

// A Refusal is a record kept out of the books, with why.
type Refusal struct {
	Digest     string   // "sha256:<hex>" of the bytes received
	Record     RecordID // when the bytes decoded to a record
	Reason     Reason
	Detail     string
	ReceivedAt time.Time
	LogIndex   int64
}

// A Hold reserves part of a tenant's budget for a job: its usage captures
// from it and the rest is released when the job ends. Amount = Captured +
// Released + what remains, and no part is ever negative.
type Hold struct {
	Job       string
	Account   Account
	Currency  string
	Amount    descriptor.Nanos
	Captured  descriptor.Nanos
	Released  descriptor.Nanos
	Open      bool
	CreatedAt time.Time
	ClosedAt  time.Time
}

// Remaining is what the hold still reserves.
func (h *Hold) Remaining() descriptor.Nanos {
	if !h.Open {
		return 0
	}
	return h.Amount - h.Captured - h.Released
}

// A TransactionRow is a stored transaction with its record.
type TransactionRow struct {
	*Transaction
	Usage *RecordRow // the usage record it posts
}

// A StatementRow is a clearing statement with its countersignature.
type StatementRow struct {
	Digest           string // of the statement payload
	Issuer           string
	Counterparty     string
	PeriodStart      time.Time
	PeriodEnd        time.Time
	Envelope         []byte
	Countersignature []byte // nil until countersigned
	LogIndex         int64
}
