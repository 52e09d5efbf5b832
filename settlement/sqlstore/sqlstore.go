// Package sqlstore keeps a broker's books in SQL: SQLite (modernc.org/sqlite,
// pure Go, the embedded default) or PostgreSQL and CockroachDB through pgx.
// One schema and one implementation serve all three; the dialects differ
// only in column types, placeholders and how a transaction is retried.
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/cockroachdb/cockroach-go/v2/crdb"
	_ "github.com/jackc/pgx/v5/stdlib" // driver "pgx"
	_ "modernc.org/sqlite"             // driver "sqlite"

	"github.com/cinet/cinet/settlement"
)

type dialect int

const (
	sqlite dialect = iota
	postgres
	cockroach
)

func (d dialect) String() string { return [...]string{"sqlite", "postgres", "cockroachdb"}[d] }

// Store is a settlement.Store over database/sql.
type Store struct {
	dialect dialect
	db      *sql.DB // writes (SQLite: one connection, transactions begin immediately)
	read    *sql.DB // reads (SQLite: a pool over the same file, in WAL mode)
}

var _ settlement.Store = (*Store)(nil)

// Open opens or creates a store and applies pending migrations. The
// location is a file path or sqlite:PATH for SQLite, or a postgres:// or
// cockroachdb:// URL.
func Open(ctx context.Context, location string) (*Store, error) {
	s := &Store{}
	var err error
	switch {
	case strings.HasPrefix(location, "postgres://"), strings.HasPrefix(location, "postgresql://"):
		s.dialect = postgres
		s.db, err = sql.Open("pgx", location)
		s.read = s.db
	case strings.HasPrefix(location, "cockroachdb://"):
		s.dialect = cockroach
		s.db, err = sql.Open("pgx", "postgres://"+strings.TrimPrefix(location, "cockroachdb://"))
		s.read = s.db
	default:
		s.dialect = sqlite
		path := strings.TrimPrefix(location, "sqlite:")
		if dir := filepath.Dir(path); dir != "" {
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return nil, fmt.Errorf("sqlstore: %w", err)
			}
		}
		// WAL with synchronous=FULL: a commit is on disk before it returns.
		pragmas := "_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)"
		dsn := "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + pragmas
		if s.db, err = sql.Open("sqlite", dsn+"&_txlock=immediate"); err == nil {
			s.db.SetMaxOpenConns(1)
			s.read, err = sql.Open("sqlite", dsn)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("sqlstore: opening %s store: %w", s.dialect, err)
	}
	if err := s.db.PingContext(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("sqlstore: connecting to %s store: %w", s.dialect, err)
	}
	if err := s.migrate(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Close closes the database handles.
func (s *Store) Close() error {
	var err error
	if s.read != nil && s.read != s.db {
		err = s.read.Close()
	}
	if s.db != nil {
		err = errors.Join(err, s.db.Close())
	}
	return err
}

func (s *Store) ddl(q string) string {
	types := map[dialect][3]string{
		sqlite:    {"BLOB", "INTEGER", "INTEGER"},
		postgres:  {"BYTEA", "BIGINT", "BOOLEAN"},
		cockroach: {"BYTES", "INT8", "BOOL"},
	}[s.dialect]
	return strings.NewReplacer("{{BLOB}}", types[0], "{{INT}}", types[1], "{{BOOL}}", types[2]).Replace(q)
}

// rebind turns ? placeholders into $1, $2, … for PostgreSQL.
func (s *Store) rebind(q string) string {
	if s.dialect == sqlite {
		return q
	}
	var b strings.Builder
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteByte(q[i])
	}
	return b.String()
}

func (s *Store) migrate(ctx context.Context) error {
	if _, err := s.db.ExecContext(ctx, s.ddl(`CREATE TABLE IF NOT EXISTS schema_migrations (version {{INT}} PRIMARY KEY)`)); err != nil {
		return fmt.Errorf("sqlstore: creating schema_migrations: %w", err)
	}
	for i, m := range migrations {
		version := i + 1
		err := s.update(ctx, func(tx *sql.Tx) error {
			var n int
			if err := tx.QueryRowContext(ctx, s.rebind(`SELECT COUNT(*) FROM schema_migrations WHERE version = ?`), version).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			for _, stmt := range strings.Split(s.ddl(m), ";") {
				if strings.TrimSpace(stmt) == "" {
					continue
				}
				if _, err := tx.ExecContext(ctx, stmt); err != nil {
					return fmt.Errorf("%w\n%s", err, stmt)
				}
			}
			_, err := tx.ExecContext(ctx, s.rebind(`INSERT INTO schema_migrations (version) VALUES (?)`), version)
			return err
		})
		if err != nil {
			return fmt.Errorf("sqlstore: migration %d: %w", version, err)
		}
	}
	return nil
}

// update runs fn in a serializable transaction with the dialect's retry
// discipline: CockroachDB's savepoint protocol (crdb.ExecuteTx), whole
// transactions retried on serialization failures for PostgreSQL
// (crdb.Execute; PostgreSQL can fail a serializable transaction at COMMIT,
// so the commit's error must be seen and retried), and a plain immediate
// transaction for SQLite, whose single writer cannot conflict.
func (s *Store) update(ctx context.Context, fn func(*sql.Tx) error) error {
	switch s.dialect {
	case cockroach:
		return crdb.ExecuteTx(ctx, s.db, &sql.TxOptions{Isolation: sql.LevelSerializable}, fn)
	case postgres:
		return crdb.Execute(func() error { return s.once(ctx, &sql.TxOptions{Isolation: sql.LevelSerializable}, fn) })
	}
	return s.once(ctx, nil, fn)
}

func (s *Store) once(ctx context.Context, opts *sql.TxOptions, fn func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, opts)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// Update implements settlement.Store. Writers take turns: the log has one
// append point, so every write transaction first locks the log's state
// row. On PostgreSQL and CockroachDB this orders writers before they touch
// anything else, so they never deadlock; SQLite's immediate transactions
// already take the database's write lock.
func (s *Store) Update(ctx context.Context, fn func(settlement.Tx) error) error {
	return s.update(ctx, func(tx *sql.Tx) error {
		if s.dialect != sqlite {
			if _, err := tx.ExecContext(ctx, `SELECT size FROM log_state WHERE id = 1 FOR UPDATE`); err != nil {
				return err
			}
		}
		return fn(&txn{s: s, ctx: ctx, tx: tx})
	})
}

// View implements settlement.Store.
func (s *Store) View(ctx context.Context, fn func(settlement.ReadTx) error) error {
	opts := &sql.TxOptions{ReadOnly: true}
	if s.dialect != sqlite {
		opts.Isolation = sql.LevelRepeatableRead
		if s.dialect == cockroach {
			opts.Isolation = sql.LevelSerializable
		}
	}
	tx, err := s.read.BeginTx(ctx, opts)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	return fn(&txn{s: s, ctx: ctx, tx: tx})
}
