// Package sqldb opens the SQL databases cinet keeps state in — SQLite
// (modernc.org/sqlite, pure Go, the embedded default), PostgreSQL, and
// CockroachDB through pgx — and hides how they differ: column types,
// placeholders, how a serializable transaction is retried, and schema
// migrations. Stores (settlement/sqlstore, broker/store) build on it.
package sqldb

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
)

// Dialect is the kind of database.
type Dialect int

// Dialects.
const (
	SQLite Dialect = iota
	Postgres
	Cockroach
)

func (d Dialect) String() string { return [...]string{"sqlite", "postgres", "cockroachdb"}[d] }

// DB is an open database.
type DB struct {
	Dialect Dialect
	W       *sql.DB // writes (SQLite: one connection; transactions begin immediately)
	R       *sql.DB // reads (SQLite: a pool over the same file, in WAL mode)
}

// Open opens a database: a file path or sqlite:PATH for SQLite, or a
// postgres:// or cockroachdb:// URL.
func Open(ctx context.Context, location string) (*DB, error) {
	d := &DB{}
	var err error
	switch {
	case strings.HasPrefix(location, "postgres://"), strings.HasPrefix(location, "postgresql://"):
		d.Dialect = Postgres
		d.W, err = sql.Open("pgx", location)
		d.R = d.W
	case strings.HasPrefix(location, "cockroachdb://"):
		d.Dialect = Cockroach
		d.W, err = sql.Open("pgx", "postgres://"+strings.TrimPrefix(location, "cockroachdb://"))
		d.R = d.W
	default:
		d.Dialect = SQLite
		path := strings.TrimPrefix(location, "sqlite:")
		if dir := filepath.Dir(path); dir != "" {
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return nil, fmt.Errorf("sqldb: %w", err)
			}
		}
		// The file holds what tenants and providers must not read of each
		// other: only its owner may open it. SQLite gives its journal
		// files the database file's mode.
		if err := ownerOnly(path); err != nil {
			return nil, fmt.Errorf("sqldb: %w", err)
		}
		// WAL with synchronous=FULL: a commit is on disk before it returns.
		pragmas := "_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)"
		dsn := "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + pragmas
		if d.W, err = sql.Open("sqlite", dsn+"&_txlock=immediate"); err == nil {
			d.W.SetMaxOpenConns(1)
			d.R, err = sql.Open("sqlite", dsn)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("sqldb: opening %s database: %w", d.Dialect, err)
	}
	if err := d.W.PingContext(ctx); err != nil {
		d.Close()
		return nil, fmt.Errorf("sqldb: connecting to %s database: %w", d.Dialect, err)
	}
	return d, nil
}

// ownerOnly creates the file at path if it does not exist, and makes it
// readable and writable by its owner alone, with its journal files.
func ownerOnly(path string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	f.Close()
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if err := os.Chmod(p, 0o600); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

// Close closes the database handles.
func (d *DB) Close() error {
	var err error
	if d.R != nil && d.R != d.W {
		err = d.R.Close()
	}
	if d.W != nil {
		err = errors.Join(err, d.W.Close())
	}
	return err
}

// DDL replaces {{BLOB}}, {{INT}} and {{BOOL}} with the dialect's types.
func (d *DB) DDL(q string) string {
	types := map[Dialect][3]string{
		SQLite:    {"BLOB", "INTEGER", "INTEGER"},
		Postgres:  {"BYTEA", "BIGINT", "BOOLEAN"},
		Cockroach: {"BYTES", "INT8", "BOOL"},
	}[d.Dialect]
	return strings.NewReplacer("{{BLOB}}", types[0], "{{INT}}", types[1], "{{BOOL}}", types[2]).Replace(q)
}

// Rebind turns ? placeholders into $1, $2, … for PostgreSQL and
// CockroachDB.
func (d *DB) Rebind(q string) string {
	if d.Dialect == SQLite {
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

// Migrate applies the migrations not yet applied, each in its own
// transaction, recording them by number in table.
func (d *DB) Migrate(ctx context.Context, table string, migrations []string) error {
	if _, err := d.W.ExecContext(ctx, d.DDL(`CREATE TABLE IF NOT EXISTS `+table+` (version {{INT}} PRIMARY KEY)`)); err != nil {
		return fmt.Errorf("sqldb: creating %s: %w", table, err)
	}
	for i, m := range migrations {
		version := i + 1
		err := d.Update(ctx, func(tx *sql.Tx) error {
			var n int
			if err := tx.QueryRowContext(ctx, d.Rebind(`SELECT COUNT(*) FROM `+table+` WHERE version = ?`), version).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			for _, stmt := range strings.Split(d.DDL(m), ";") {
				if strings.TrimSpace(stmt) == "" {
					continue
				}
				if _, err := tx.ExecContext(ctx, stmt); err != nil {
					return fmt.Errorf("%w\n%s", err, stmt)
				}
			}
			_, err := tx.ExecContext(ctx, d.Rebind(`INSERT INTO `+table+` (version) VALUES (?)`), version)
			return err
		})
		if err != nil {
			return fmt.Errorf("sqldb: %s migration %d: %w", table, version, err)
		}
	}
	return nil
}

// Update runs fn in a serializable transaction with the dialect's retry
// discipline: CockroachDB's savepoint protocol (crdb.ExecuteTx), whole
// transactions retried on serialization failures for PostgreSQL
// (crdb.Execute; PostgreSQL can fail a serializable transaction at COMMIT,
// so the commit's error must be seen and retried), and a plain immediate
// transaction for SQLite, whose single writer cannot conflict. fn may run
// more than once.
func (d *DB) Update(ctx context.Context, fn func(*sql.Tx) error) error {
	switch d.Dialect {
	case Cockroach:
		return crdb.ExecuteTx(ctx, d.W, &sql.TxOptions{Isolation: sql.LevelSerializable}, fn)
	case Postgres:
		return crdb.Execute(func() error { return d.once(ctx, &sql.TxOptions{Isolation: sql.LevelSerializable}, fn) })
	}
	return d.once(ctx, nil, fn)
}

func (d *DB) once(ctx context.Context, opts *sql.TxOptions, fn func(*sql.Tx) error) error {
	tx, err := d.W.BeginTx(ctx, opts)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// View runs fn in a read-only transaction over a consistent snapshot.
func (d *DB) View(ctx context.Context, fn func(*sql.Tx) error) error {
	opts := &sql.TxOptions{ReadOnly: true}
	switch d.Dialect {
	case Postgres:
		opts.Isolation = sql.LevelRepeatableRead
	case Cockroach:
		opts.Isolation = sql.LevelSerializable
	}
	tx, err := d.R.BeginTx(ctx, opts)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	return fn(tx)
}
