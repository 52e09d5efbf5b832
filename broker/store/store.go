// Package store keeps a broker's own state in SQL — jobs, the offers
// providers registered, and the nonces of signed API requests — on the
// same databases as the ledger (settlement/sqlstore/sqldb): a SQLite file
// by default, or PostgreSQL or CockroachDB.
package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cinet/cinet/broker/book"
	"github.com/cinet/cinet/broker/jobs"
	"github.com/cinet/cinet/settlement/sqlstore/sqldb"
)

var migrations = []string{
	// 1: jobs, registered offers, request nonces. (The ledger's tables
	// live in the same database when it is PostgreSQL or CockroachDB: no
	// name may be one of settlement/sqlstore's.)
	`
CREATE TABLE jobs (
	id         TEXT PRIMARY KEY,
	tenant     TEXT NOT NULL,
	state      TEXT NOT NULL,
	created_at {{INT}} NOT NULL,
	updated_at {{INT}} NOT NULL,
	version    {{INT}} NOT NULL,
	doc        {{BLOB}} NOT NULL
);
CREATE INDEX jobs_tenant ON jobs (tenant, created_at);
CREATE INDEX jobs_state ON jobs (state, created_at);
CREATE TABLE registered_offers (
	digest     TEXT PRIMARY KEY,
	name       TEXT NOT NULL,
	provider   TEXT NOT NULL,
	sequence   {{INT}} NOT NULL,
	envelope   {{BLOB}} NOT NULL,
	withdrawn  {{BOOL}} NOT NULL,
	created_at {{INT}} NOT NULL
);
CREATE INDEX registered_offers_name ON registered_offers (name);
CREATE TABLE api_nonces (
	nonce   TEXT PRIMARY KEY,
	expires {{INT}} NOT NULL
);
CREATE INDEX api_nonces_expires ON api_nonces (expires);
`,
	// 2: leases this broker granted peers on its offers, kept until they
	// are confirmed, released or run out (spec/protocol.md §4.2).
	`
CREATE TABLE leases (
	id      TEXT PRIMARY KEY,
	offer   TEXT NOT NULL,
	count   {{INT}} NOT NULL,
	holder  TEXT NOT NULL,
	expires {{INT}} NOT NULL
);
`,
	// 3: the API tokens this broker issued, so that they can be listed
	// and revoked (revoked is 0 until then); kept until they expire.
	`
CREATE TABLE api_tokens (
	id        TEXT PRIMARY KEY,
	principal TEXT NOT NULL,
	role      TEXT NOT NULL,
	issued    {{INT}} NOT NULL,
	expires   {{INT}} NOT NULL,
	revoked   {{INT}} NOT NULL DEFAULT 0
);
CREATE INDEX api_tokens_expires ON api_tokens (expires);
`,
}

// Store implements jobs.Store and keeps offers and nonces.
type Store struct {
	db *sqldb.DB
}

var _ jobs.Store = (*Store)(nil)

// Open opens or creates the store at a location (see sqldb.Open).
func Open(ctx context.Context, location string) (*Store, error) {
	db, err := sqldb.Open(ctx, location)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	if err := db.Migrate(ctx, "broker_migrations", migrations); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: %w", err)
	}
	return &Store{db}, nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// Ping checks the database answers.
func (s *Store) Ping(ctx context.Context) error { return s.db.W.PingContext(ctx) }

func ns(t time.Time) int64  { return t.UnixNano() }
func utc(n int64) time.Time { return time.Unix(0, n).UTC() }

// Create implements jobs.Store.
func (s *Store) Create(ctx context.Context, j *jobs.Job) error {
	doc, err := json.Marshal(j)
	if err != nil {
		return err
	}
	return s.db.Update(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.db.Rebind(`INSERT INTO jobs (id, tenant, state, created_at, updated_at, version, doc)
			VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`),
			j.ID, j.Tenant, string(j.State), ns(j.CreatedAt), ns(j.UpdatedAt), j.Version, doc)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("%w: %s", jobs.ErrExists, j.ID)
		}
		return nil
	})
}

func scanJob(sc interface{ Scan(...any) error }) (*jobs.Job, error) {
	var doc []byte
	if err := sc.Scan(&doc); err != nil {
		return nil, err
	}
	var j jobs.Job
	if err := json.Unmarshal(doc, &j); err != nil {
		return nil, fmt.Errorf("store: a stored job does not decode: %w", err)
	}
	return &j, nil
}

// Get implements jobs.Store.
func (s *Store) Get(ctx context.Context, id string) (*jobs.Job, error) {
	var j *jobs.Job
	err := s.db.View(ctx, func(tx *sql.Tx) error {
		var err error
		j, err = scanJob(tx.QueryRowContext(ctx, s.db.Rebind(`SELECT doc FROM jobs WHERE id = ?`), id))
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: %s", jobs.ErrNotFound, id)
		}
		return err
	})
	return j, err
}

// Update implements jobs.Store.
func (s *Store) Update(ctx context.Context, j *jobs.Job) error {
	next := *j
	next.Version++
	doc, err := json.Marshal(&next)
	if err != nil {
		return err
	}
	err = s.db.Update(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.db.Rebind(`UPDATE jobs SET state = ?, updated_at = ?, version = ?, doc = ? WHERE id = ? AND version = ?`),
			string(next.State), ns(next.UpdatedAt), next.Version, doc, j.ID, j.Version)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			var exists int
			if err := tx.QueryRowContext(ctx, s.db.Rebind(`SELECT COUNT(*) FROM jobs WHERE id = ?`), j.ID).Scan(&exists); err != nil {
				return err
			}
			if exists == 0 {
				return fmt.Errorf("%w: %s", jobs.ErrNotFound, j.ID)
			}
			return fmt.Errorf("%w: %s", jobs.ErrConflict, j.ID)
		}
		return nil
	})
	if err == nil {
		j.Version = next.Version
	}
	return err
}

func (s *Store) query(ctx context.Context, q string, args ...any) ([]*jobs.Job, error) {
	var out []*jobs.Job
	err := s.db.View(ctx, func(tx *sql.Tx) error {
		out = nil
		rows, err := tx.QueryContext(ctx, s.db.Rebind(q), args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			j, err := scanJob(rows)
			if err != nil {
				return err
			}
			out = append(out, j)
		}
		return rows.Err()
	})
	return out, err
}

// List implements jobs.Store.
func (s *Store) List(ctx context.Context, f jobs.Filter) ([]*jobs.Job, error) {
	q, args := `SELECT doc FROM jobs WHERE 1 = 1`, []any{}
	if f.Tenant != "" {
		q += ` AND tenant = ?`
		args = append(args, f.Tenant)
	}
	if f.State != "" {
		q += ` AND state = ?`
		args = append(args, string(f.State))
	}
	if !f.Before.IsZero() {
		q += ` AND created_at < ?`
		args = append(args, ns(f.Before))
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, 1000)
	return s.query(ctx, q+fmt.Sprintf(` ORDER BY created_at DESC, id DESC LIMIT %d`, limit), args...)
}

// Active implements jobs.Store.
func (s *Store) Active(ctx context.Context) ([]*jobs.Job, error) {
	return s.query(ctx, `SELECT doc FROM jobs WHERE state <> ? ORDER BY created_at, id`, string(jobs.Settled))
}

// Counts implements jobs.Store.
func (s *Store) Counts(ctx context.Context) (map[jobs.State]int, error) {
	out := map[jobs.State]int{}
	err := s.db.View(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT state, COUNT(*) FROM jobs GROUP BY state`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var st string
			var n int
			if err := rows.Scan(&st, &n); err != nil {
				return err
			}
			out[jobs.State(st)] = n
		}
		return rows.Err()
	})
	return out, err
}

// An OfferRow is a registered offer: the provider's signed envelope.
type OfferRow struct {
	Digest    string
	Name      string // the pool's name
	Provider  string
	Sequence  int64
	Envelope  []byte
	Withdrawn bool
	CreatedAt time.Time
}

// PutOffer keeps a registered offer; the same digest twice is kept once.
func (s *Store) PutOffer(ctx context.Context, o *OfferRow) error {
	return s.db.Update(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, s.db.Rebind(`INSERT INTO registered_offers (digest, name, provider, sequence, envelope, withdrawn, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (digest) DO NOTHING`),
			o.Digest, o.Name, o.Provider, o.Sequence, o.Envelope, false, ns(o.CreatedAt))
		return err
	})
}

// WithdrawOffer marks every offer of a pool withdrawn.
func (s *Store) WithdrawOffer(ctx context.Context, name string) error {
	return s.db.Update(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, s.db.Rebind(`UPDATE registered_offers SET withdrawn = ? WHERE name = ?`), true, name)
		return err
	})
}

// Offer returns a registered offer by digest, withdrawn or not.
func (s *Store) Offer(ctx context.Context, digest string) (*OfferRow, error) {
	rows, err := s.offers(ctx, `WHERE digest = ?`, digest)
	if err != nil {
		return nil, err
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("store: no offer %s", digest)
	}
	return rows[0], nil
}

// Offers returns the offers not withdrawn, oldest first.
func (s *Store) Offers(ctx context.Context) ([]*OfferRow, error) {
	return s.offers(ctx, `WHERE withdrawn = ?`, false)
}

// WithdrawnOffers returns the offers marked withdrawn.
func (s *Store) WithdrawnOffers(ctx context.Context) ([]*OfferRow, error) {
	return s.offers(ctx, `WHERE withdrawn = ?`, true)
}

func (s *Store) offers(ctx context.Context, where string, args ...any) ([]*OfferRow, error) {
	var out []*OfferRow
	err := s.db.View(ctx, func(tx *sql.Tx) error {
		out = nil
		rows, err := tx.QueryContext(ctx, s.db.Rebind(`SELECT digest, name, provider, sequence, envelope, withdrawn, created_at FROM registered_offers `+where+` ORDER BY created_at, digest`), args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			o := &OfferRow{}
			var created int64
			if err := rows.Scan(&o.Digest, &o.Name, &o.Provider, &o.Sequence, &o.Envelope, &o.Withdrawn, &created); err != nil {
				return err
			}
			o.CreatedAt = utc(created)
			out = append(out, o)
		}
		return rows.Err()
	})
	return out, err
}

// UseNonce records a request nonce until it expires; it returns false if
// the nonce was already used (a replay).
func (s *Store) UseNonce(ctx context.Context, nonce string, expires time.Time) (bool, error) {
	fresh := false
	err := s.db.Update(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.db.Rebind(`INSERT INTO api_nonces (nonce, expires) VALUES (?, ?) ON CONFLICT (nonce) DO NOTHING`), nonce, ns(expires))
		if err != nil {
			return err
		}
		n, _ := res.RowsAffected()
		fresh = n == 1
		return nil
	})
	return fresh, err
}

// Nonces returns how many request nonces the store remembers.
func (s *Store) Nonces(ctx context.Context) (int, error) {
	var n int
	err := s.db.R.QueryRowContext(ctx, `SELECT COUNT(*) FROM api_nonces`).Scan(&n)
	return n, err
}

// ForgetNonces drops nonces that expired before now.
func (s *Store) ForgetNonces(ctx context.Context, now time.Time) error {
	return s.db.Update(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, s.db.Rebind(`DELETE FROM api_nonces WHERE expires < ?`), ns(now))
		return err
	})
}

// A TokenRow is an API token the broker issued: not the token itself,
// which only its holder keeps, but what it grants and whether it was
// revoked.
type TokenRow struct {
	ID        string    `json:"id"`
	Principal string    `json:"principal"`
	Role      string    `json:"role"`
	Issued    time.Time `json:"issued"`
	Expires   time.Time `json:"expires"`
	Revoked   time.Time `json:"revoked,omitzero"` // zero while it is good
}

// PutToken records a token issued.
func (s *Store) PutToken(ctx context.Context, t *TokenRow) error {
	return s.db.Update(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, s.db.Rebind(`INSERT INTO api_tokens (id, principal, role, issued, expires) VALUES (?, ?, ?, ?, ?)`),
			t.ID, t.Principal, t.Role, ns(t.Issued), ns(t.Expires))
		return err
	})
}

// ErrNoToken is returned for a token the broker holds no record of.
var ErrNoToken = errors.New("store: no such token")

const tokenColumns = `id, principal, role, issued, expires, revoked`

func scanToken(sc interface{ Scan(...any) error }) (*TokenRow, error) {
	t := &TokenRow{}
	var issued, expires, revoked int64
	if err := sc.Scan(&t.ID, &t.Principal, &t.Role, &issued, &expires, &revoked); err != nil {
		return nil, err
	}
	t.Issued, t.Expires = utc(issued), utc(expires)
	if revoked != 0 {
		t.Revoked = utc(revoked)
	}
	return t, nil
}

// Token returns the record of a token, or ErrNoToken.
func (s *Store) Token(ctx context.Context, id string) (*TokenRow, error) {
	t, err := scanToken(s.db.R.QueryRowContext(ctx, s.db.Rebind(`SELECT `+tokenColumns+` FROM api_tokens WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: %s", ErrNoToken, id)
	}
	return t, err
}

// Tokens lists the tokens that have not expired at now, revoked or not,
// oldest first.
func (s *Store) Tokens(ctx context.Context, now time.Time) ([]*TokenRow, error) {
	rows, err := s.db.R.QueryContext(ctx, s.db.Rebind(`SELECT `+tokenColumns+` FROM api_tokens WHERE expires > ? ORDER BY issued, id`), ns(now))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*TokenRow
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// RevokeToken marks a token revoked at at, and returns its record; one
// revoked already keeps its first revocation time. ErrNoToken when there
// is no such token.
func (s *Store) RevokeToken(ctx context.Context, id string, at time.Time) (*TokenRow, error) {
	var t *TokenRow
	err := s.db.Update(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, s.db.Rebind(`UPDATE api_tokens SET revoked = ? WHERE id = ? AND revoked = 0`), ns(at), id); err != nil {
			return err
		}
		var err error
		t, err = scanToken(tx.QueryRowContext(ctx, s.db.Rebind(`SELECT `+tokenColumns+` FROM api_tokens WHERE id = ?`), id))
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: %s", ErrNoToken, id)
		}
		return err
	})
	return t, err
}

// ForgetTokens drops the records of tokens that expired before now: no
// request can carry them any more.
func (s *Store) ForgetTokens(ctx context.Context, now time.Time) error {
	return s.db.Update(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, s.db.Rebind(`DELETE FROM api_tokens WHERE expires < ?`), ns(now))
		return err
	})
}

// PutLease keeps a lease granted to a peer.
func (s *Store) PutLease(ctx context.Context, r book.Reservation) error {
	return s.db.Update(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, s.db.Rebind(`INSERT INTO leases (id, offer, count, holder, expires) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET expires = excluded.expires`), r.ID, r.Offer, r.Count, r.Holder, ns(r.Expires))
		return err
	})
}

// DeleteLease forgets a lease: released, confirmed or run out. Forgetting
// one not kept does nothing.
func (s *Store) DeleteLease(ctx context.Context, id string) error {
	return s.db.Update(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, s.db.Rebind(`DELETE FROM leases WHERE id = ?`), id)
		return err
	})
}

// Leases returns the leases kept that run out after now, and forgets the
// others.
func (s *Store) Leases(ctx context.Context, now time.Time) ([]book.Reservation, error) {
	var out []book.Reservation
	err := s.db.Update(ctx, func(tx *sql.Tx) error {
		out = nil
		if _, err := tx.ExecContext(ctx, s.db.Rebind(`DELETE FROM leases WHERE expires <= ?`), ns(now)); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, `SELECT id, offer, count, holder, expires FROM leases ORDER BY expires, id`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var r book.Reservation
			var expires int64
			if err := rows.Scan(&r.ID, &r.Offer, &r.Count, &r.Holder, &expires); err != nil {
				return err
			}
			r.Expires = utc(expires)
			out = append(out, r)
		}
		return rows.Err()
	})
	return out, err
}
