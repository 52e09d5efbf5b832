package sqlstore

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/cinet/cinet/settlement"
	"github.com/cinet/cinet/settlement/sqlstore/sqldb"
)

// TestUpgradeKeepsCheckpoints: a store made before checkpoints recorded
// when they were signed opens with its checkpoints whole, their time
// unknown, and keeps new ones with their time.
func TestUpgradeKeepsCheckpoints(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "books.db")
	old, err := sqldb.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if err := old.Migrate(ctx, "schema_migrations", migrations[:1]); err != nil {
		t.Fatal(err)
	}
	if _, err := old.W.ExecContext(ctx, `UPDATE log_state SET size = 2 WHERE id = 1`); err != nil {
		t.Fatal(err)
	}
	if _, err := old.W.ExecContext(ctx, `INSERT INTO checkpoints (size, note) VALUES (1, 'one')`); err != nil {
		t.Fatal(err)
	}
	old.Close()

	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	at := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	if err := s.Update(ctx, func(tx settlement.Tx) error { return tx.PutCheckpoint(2, []byte("two"), at) }); err != nil {
		t.Fatal(err)
	}
	if err := s.View(ctx, func(tx settlement.ReadTx) error {
		rows, err := tx.Checkpoints(10)
		if err != nil || len(rows) != 2 || rows[0].Size != 2 || !rows[0].SignedAt.Equal(at) ||
			rows[1].Size != 1 || string(rows[1].Note) != "one" || !rows[1].SignedAt.IsZero() {
			t.Errorf("after the upgrade: %+v %v", rows, err)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}
