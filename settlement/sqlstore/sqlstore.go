// Package sqlstore keeps a broker's books in SQL: SQLite (modernc.org/sqlite,
// pure Go, the embedded default) or PostgreSQL and CockroachDB through pgx.
// One schema and one implementation serve all three; the dialects differ
// only in column types, placeholders and how a transaction is retried.
package sqlstore

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/cinet/cinet/settlement"
	"github.com/cinet/cinet/settlement/sqlstore/sqldb"
)

// Store is a settlement.Store over database/sql.
type Store struct {
	*sqldb.DB
}

var _ settlement.Store = (*Store)(nil)

// Open opens or creates a store and applies pending migrations. The
// location is a file path or sqlite:PATH for SQLite, or a postgres:// or
// cockroachdb:// URL.
func Open(ctx context.Context, location string) (*Store, error) {
	db, err := sqldb.Open(ctx, location)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: %w", err)
	}
	if err := db.Migrate(ctx, "schema_migrations", migrations); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlstore: %w", err)
	}
	return &Store{db}, nil
}

// Update implements settlement.Store. Writers take turns: the log has one
// append point, so every write transaction first locks the log's state
// row. On PostgreSQL and CockroachDB this orders writers before they touch
// anything else, so they never deadlock; SQLite's immediate transactions
// already take the database's write lock.
func (s *Store) Update(ctx context.Context, fn func(settlement.Tx) error) error {
	return s.DB.Update(ctx, func(tx *sql.Tx) error {
		if s.Dialect != sqldb.SQLite {
			if _, err := tx.ExecContext(ctx, `SELECT size FROM log_state WHERE id = 1 FOR UPDATE`); err != nil {
				return err
			}
		}
		return fn(&txn{s: s, ctx: ctx, tx: tx})
	})
}

// View implements settlement.Store.
func (s *Store) View(ctx context.Context, fn func(settlement.ReadTx) error) error {
	return s.DB.View(ctx, func(tx *sql.Tx) error { return fn(&txn{s: s, ctx: ctx, tx: tx}) })
}
