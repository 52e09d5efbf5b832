package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/cinet/cinet/descriptor"
	"github.com/cinet/cinet/settlement"
	"github.com/cinet/cinet/settlement/auditlog"
)

// txn implements settlement.Tx over one database transaction.
type txn struct {
	s   *Store
	ctx context.Context
	tx  *sql.Tx
}

var _ settlement.Tx = (*txn)(nil)

func (t *txn) exec(q string, args ...any) error {
	_, err := t.tx.ExecContext(t.ctx, t.s.Rebind(q), args...)
	return err
}

func (t *txn) query(q string, args ...any) (*sql.Rows, error) {
	return t.tx.QueryContext(t.ctx, t.s.Rebind(q), args...)
}

// maxParams keeps every statement under both SQLite's and PostgreSQL's
// limits on bound parameters.
const maxParams = 30000

// insertRows writes rows with multi-row INSERT statements.
func (t *txn) insertRows(table string, cols []string, rows [][]any, suffix string) error {
	per := max(1, maxParams/len(cols))
	for len(rows) > 0 {
		n := min(per, len(rows))
		var b strings.Builder
		fmt.Fprintf(&b, "INSERT INTO %s (%s) VALUES ", table, strings.Join(cols, ", "))
		tuple := "(" + strings.TrimSuffix(strings.Repeat("?, ", len(cols)), ", ") + ")"
		args := make([]any, 0, n*len(cols))
		for i, r := range rows[:n] {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(tuple)
			args = append(args, r...)
		}
		b.WriteString(" " + suffix)
		if err := t.exec(b.String(), args...); err != nil {
			return fmt.Errorf("sqlstore: writing %s: %w", table, err)
		}
		rows = rows[n:]
	}
	return nil
}

// in runs q, which ends in "IN", for keys in chunks, calling scan on each
// row.
func (t *txn) in(q string, keys []string, scan func(*sql.Rows) error) error {
	return inChunks(t, q, keys, scan)
}

func inChunks[K string | int64](t *txn, q string, keys []K, scan func(*sql.Rows) error) error {
	const chunk = 1000
	for len(keys) > 0 {
		n := min(chunk, len(keys))
		args := make([]any, n)
		for i, k := range keys[:n] {
			args[i] = k
		}
		rows, err := t.query(q+" ("+strings.TrimSuffix(strings.Repeat("?, ", n), ", ")+")", args...)
		if err != nil {
			return err
		}
		for rows.Next() {
			if err := scan(rows); err != nil {
				rows.Close()
				return err
			}
		}
		if err := rows.Close(); err != nil {
			return err
		}
		if err := rows.Err(); err != nil {
			return err
		}
		keys = keys[n:]
	}
	return nil
}

func ns(t time.Time) int64  { return t.UnixNano() }
func utc(n int64) time.Time { return time.Unix(0, n).UTC() }
func strs[S ~string](in []S) []string {
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = string(s)
	}
	return out
}

func (t *txn) Offer(digest string) ([]byte, error) {
	var doc []byte
	err := t.tx.QueryRowContext(t.ctx, t.s.Rebind(`SELECT document FROM offers WHERE digest = ?`), digest).Scan(&doc)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, settlement.ErrNotFound
	}
	return doc, err
}

func (t *txn) PutOffer(digest string, canonical []byte) error {
	return t.insertRows("offers", []string{"digest", "document"}, [][]any{{digest, canonical}}, "ON CONFLICT (digest) DO NOTHING")
}

const recordCols = "id, job, placement, sequence, compute_id, offer, tenant, provider, home_broker, executing_broker, period_start, period_end, log_index, received_at"

func scanRecord(sc interface{ Scan(...any) error }, prefix []any) (*settlement.RecordRow, error) {
	r := &settlement.RecordRow{}
	var start, end, received int64
	var id string
	dest := append(prefix, &id, &r.Job, &r.Placement, &r.Sequence, &r.ComputeID, &r.Offer, &r.Tenant, &r.Provider,
		&r.HomeBroker, &r.ExecutingBroker, &start, &end, &r.LogIndex, &received)
	if err := sc.Scan(dest...); err != nil {
		return nil, err
	}
	r.ID, r.PeriodStart, r.PeriodEnd, r.ReceivedAt = settlement.RecordID(id), utc(start), utc(end), utc(received)
	return r, nil
}

func (t *txn) Records(ids []settlement.RecordID) (map[settlement.RecordID]*settlement.RecordRow, error) {
	out := map[settlement.RecordID]*settlement.RecordRow{}
	err := t.in(`SELECT `+recordCols+` FROM records WHERE id IN`, strs(ids), func(rows *sql.Rows) error {
		r, err := scanRecord(rows, nil)
		if err == nil {
			out[r.ID] = r
		}
		return err
	})
	return out, err
}

func (t *txn) InsertRecords(rs []*settlement.RecordRow) error {
	if len(rs) == 0 {
		return nil
	}
	rows := make([][]any, len(rs))
	for i, r := range rs {
		rows[i] = []any{string(r.ID), r.Job, r.Placement, r.Sequence, r.ComputeID, r.Offer, r.Tenant, r.Provider,
			r.HomeBroker, r.ExecutingBroker, ns(r.PeriodStart), ns(r.PeriodEnd), r.LogIndex, ns(r.ReceivedAt)}
	}
	return t.insertRows("records", strings.Split(recordCols, ", "), rows, "")
}

func (t *txn) Periods(placements []string) ([]settlement.PeriodRow, error) {
	var out []settlement.PeriodRow
	err := t.in(`SELECT placement, id, period_start, period_end FROM records WHERE placement IN`, dedupe(placements), func(rows *sql.Rows) error {
		var p settlement.PeriodRow
		var id string
		var start, end int64
		if err := rows.Scan(&p.Placement, &id, &start, &end); err != nil {
			return err
		}
		p.Record, p.Start, p.End = settlement.RecordID(id), utc(start), utc(end)
		out = append(out, p)
		return nil
	})
	return out, err
}

func dedupe(in []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

func (t *txn) Refusals(digests []string) (map[string]*settlement.Refusal, error) {
	out := map[string]*settlement.Refusal{}
	err := t.in(`SELECT digest, record, reason, detail, received_at, log_index FROM refusals WHERE digest IN`, dedupe(digests), func(rows *sql.Rows) error {
		r := &settlement.Refusal{}
		var record, reason string
		var received int64
		if err := rows.Scan(&r.Digest, &record, &reason, &r.Detail, &received, &r.LogIndex); err != nil {
			return err
		}
		r.Record, r.Reason, r.ReceivedAt = settlement.RecordID(record), settlement.Reason(reason), utc(received)
		out[r.Digest] = r
		return nil
	})
	return out, err
}

func (t *txn) InsertRefusals(rs []*settlement.Refusal) error {
	if len(rs) == 0 {
		return nil
	}
	rows := make([][]any, len(rs))
	for i, r := range rs {
		rows[i] = []any{r.Digest, string(r.Record), string(r.Reason), r.Detail, ns(r.ReceivedAt), r.LogIndex}
	}
	return t.insertRows("refusals", []string{"digest", "record", "reason", "detail", "received_at", "log_index"}, rows,
		"ON CONFLICT (digest) DO UPDATE SET record = excluded.record, reason = excluded.reason, detail = excluded.detail, received_at = excluded.received_at, log_index = excluded.log_index")
}

func (t *txn) Holds(jobs []string) (map[string]*settlement.Hold, error) {
	out := map[string]*settlement.Hold{}
	err := t.in(`SELECT job, account, currency, amount, captured, released, is_open, created_at, closed_at FROM holds WHERE job IN`, dedupe(jobs), func(rows *sql.Rows) error {
		h := &settlement.Hold{}
		var account string
		var amount, captured, released, created, closed int64
		if err := rows.Scan(&h.Job, &account, &h.Currency, &amount, &captured, &released, &h.Open, &created, &closed); err != nil {
			return err
		}
		h.Account, h.Amount, h.Captured, h.Released = settlement.Account(account), descriptor.Nanos(amount), descriptor.Nanos(captured), descriptor.Nanos(released)
		h.CreatedAt, h.ClosedAt = utc(created), utc(closed)
		out[h.Job] = h
		return nil
	})
	return out, err
}

func (t *txn) PutHolds(hs []*settlement.Hold) error {
	if len(hs) == 0 {
		return nil
	}
	rows := make([][]any, len(hs))
	for i, h := range hs {
		if h.Captured < 0 || h.Released < 0 || h.Captured+h.Released > h.Amount {
			return fmt.Errorf("sqlstore: hold for job %s would go negative: amount %s, captured %s, released %s", h.Job, h.Amount.Decimal(), h.Captured.Decimal(), h.Released.Decimal())
		}
		rows[i] = []any{h.Job, string(h.Account), h.Currency, int64(h.Amount), int64(h.Captured), int64(h.Released), h.Open, ns(h.CreatedAt), ns(h.ClosedAt)}
	}
	return t.insertRows("holds", []string{"job", "account", "currency", "amount", "captured", "released", "is_open", "created_at", "closed_at"}, rows,
		`ON CONFLICT (job) DO UPDATE SET captured = excluded.captured, released = excluded.released, is_open = excluded.is_open, closed_at = excluded.closed_at`)
}

type balanceKey struct{ account, currency string }

func (t *txn) InsertTransactions(txs []*settlement.Transaction) error {
	if len(txs) == 0 {
		return nil
	}
	var txRows, itemRows, lineRows [][]any
	deltas := map[balanceKey]descriptor.Nanos{}
	for _, tx := range txs {
		var sum descriptor.Nanos
		for _, l := range tx.Lines {
			var err error
			if sum, err = sum.CheckedAdd(l.Amount); err != nil {
				return fmt.Errorf("sqlstore: transaction %s: %w", tx.ID, err)
			}
		}
		if sum != 0 {
			return fmt.Errorf("sqlstore: refusing transaction %s: its lines sum to %s %s, not zero", tx.ID, sum.Decimal(), tx.Currency)
		}
		txRows = append(txRows, []any{tx.LogIndex, string(tx.Record), string(tx.Role), tx.Currency, ns(tx.PostedAt), int64(tx.HomeFee), int64(tx.ExecutingFee)})
		for i, it := range tx.Items {
			itemRows = append(itemRows, []any{tx.LogIndex, i, string(it.Meter), it.Model, it.Tier, ns(it.Start), ns(it.End),
				it.ConsumedQty, it.PricingQuantity, it.PricingUnit, it.UnitPrice, int64(it.Amount)})
		}
		for i, l := range tx.Lines {
			lineRows = append(lineRows, []any{tx.LogIndex, i, string(l.Account), int64(l.Amount)})
			k := balanceKey{string(l.Account), tx.Currency}
			var err error
			if deltas[k], err = deltas[k].CheckedAdd(l.Amount); err != nil {
				return fmt.Errorf("sqlstore: balance of %s: %w", l.Account, err)
			}
		}
	}
	if err := t.insertRows("transactions", []string{"log_index", "record", "role", "currency", "posted_at", "home_fee", "executing_fee"}, txRows, ""); err != nil {
		return err
	}
	if err := t.insertRows("items", []string{"tx", "seq", "meter", "model", "tier", "start_ns", "end_ns", "consumed", "pricing_qty", "pricing_unit", "unit_price", "amount"}, itemRows, ""); err != nil {
		return err
	}
	if err := t.insertRows("lines", []string{"tx", "seq", "account", "amount"}, lineRows, ""); err != nil {
		return err
	}
	return t.addBalances(deltas)
}

// addBalances adds deltas to balances in Go, with overflow checked, and
// writes the new values: SQLite would turn an overflowing integer sum into
// a float, and money is never a float.
func (t *txn) addBalances(deltas map[balanceKey]descriptor.Nanos) error {
	var accounts []string
	for k := range deltas {
		accounts = append(accounts, k.account)
	}
	current := map[balanceKey]descriptor.Nanos{}
	err := t.in(`SELECT account, currency, amount FROM balances WHERE account IN`, dedupe(accounts), func(rows *sql.Rows) error {
		var k balanceKey
		var amount int64
		if err := rows.Scan(&k.account, &k.currency, &amount); err != nil {
			return err
		}
		current[k] = descriptor.Nanos(amount)
		return nil
	})
	if err != nil {
		return err
	}
	var rows [][]any
	for k, d := range deltas {
		v, err := current[k].CheckedAdd(d)
		if err != nil {
			return fmt.Errorf("sqlstore: balance of %s in %s: %w", k.account, k.currency, err)
		}
		rows = append(rows, []any{k.account, k.currency, int64(v)})
	}
	return t.insertRows("balances", []string{"account", "currency", "amount"}, rows, "ON CONFLICT (account, currency) DO UPDATE SET amount = excluded.amount")
}

func (t *txn) Balances(account settlement.Account) ([]settlement.Balance, error) {
	q, args := `SELECT account, currency, amount FROM balances ORDER BY account, currency`, []any{}
	if account != "" {
		q, args = `SELECT account, currency, amount FROM balances WHERE account = ? ORDER BY currency`, []any{string(account)}
	}
	rows, err := t.query(q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []settlement.Balance
	for rows.Next() {
		var b settlement.Balance
		var acc string
		var amount int64
		if err := rows.Scan(&acc, &b.Currency, &amount); err != nil {
			return nil, err
		}
		b.Account, b.Amount = settlement.Account(acc), descriptor.Nanos(amount)
		out = append(out, b)
	}
	return out, rows.Err()
}

func (t *txn) Transactions(account settlement.Account, from, to time.Time) ([]*settlement.TransactionRow, error) {
	where := `FROM transactions t JOIN records r ON r.id = t.record WHERE r.period_end >= ? AND r.period_end < ?`
	args := []any{ns(from), ns(to)}
	if account != "" {
		where += ` AND t.log_index IN (SELECT tx FROM lines WHERE account = ?)`
		args = append(args, string(account))
	}
	rows, err := t.query(`SELECT t.log_index, t.record, t.role, t.currency, t.posted_at, t.home_fee, t.executing_fee, r.`+
		strings.ReplaceAll(recordCols, ", ", ", r.")+" "+where+` ORDER BY r.period_end, t.log_index`, args...)
	if err != nil {
		return nil, err
	}
	var out []*settlement.TransactionRow
	byIndex := map[int64]*settlement.TransactionRow{}
	for rows.Next() {
		tr := &settlement.TransactionRow{Transaction: &settlement.Transaction{}}
		var record, role string
		var posted, home, exec int64
		rec, err := scanRecord(rows, []any{&tr.LogIndex, &record, &role, &tr.Currency, &posted, &home, &exec})
		if err != nil {
			rows.Close()
			return nil, err
		}
		tr.ID, tr.Transaction.Record, tr.Role, tr.PostedAt = record, settlement.RecordID(record), settlement.Role(role), utc(posted)
		tr.HomeFee, tr.ExecutingFee, tr.Usage = descriptor.Nanos(home), descriptor.Nanos(exec), rec
		out = append(out, tr)
		byIndex[tr.LogIndex] = tr
	}
	if err := rows.Close(); err != nil {
		return nil, err
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, nil
	}
	sub := ` WHERE tx IN (SELECT t.log_index ` + where + `) ORDER BY tx, seq`
	err = t.each(`SELECT tx, meter, model, tier, start_ns, end_ns, consumed, pricing_qty, pricing_unit, unit_price, amount FROM items`+sub, args, func(rows *sql.Rows) error {
		var ix, start, end, amount int64
		var meter string
		var it settlement.RatedItem
		if err := rows.Scan(&ix, &meter, &it.Model, &it.Tier, &start, &end, &it.ConsumedQty, &it.PricingQuantity, &it.PricingUnit, &it.UnitPrice, &amount); err != nil {
			return err
		}
		it.Meter, it.Start, it.End, it.Amount = settlement.MeterKind(meter), utc(start), utc(end), descriptor.Nanos(amount)
		if tr := byIndex[ix]; tr != nil {
			tr.Items = append(tr.Items, it)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = t.each(`SELECT tx, account, amount FROM lines`+sub, args, func(rows *sql.Rows) error {
		var ix, amount int64
		var acc string
		if err := rows.Scan(&ix, &acc, &amount); err != nil {
			return err
		}
		if tr := byIndex[ix]; tr != nil {
			tr.Lines = append(tr.Lines, settlement.Line{Account: settlement.Account(acc), Amount: descriptor.Nanos(amount)})
		}
		return nil
	})
	return out, err
}

// each runs q and calls scan on each row.
func (t *txn) each(q string, args []any, scan func(*sql.Rows) error) error {
	rows, err := t.query(q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

func (t *txn) LogSize() (int64, error) {
	var n int64
	err := t.tx.QueryRowContext(t.ctx, `SELECT size FROM log_state WHERE id = 1`).Scan(&n)
	return n, err
}

func (t *txn) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	found := map[int64]tlog.Hash{}
	err := inChunks(t, `SELECT idx, hash FROM log_hashes WHERE idx IN`, indexes, func(rows *sql.Rows) error {
		var ix int64
		var h []byte
		if err := rows.Scan(&ix, &h); err != nil {
			return err
		}
		if len(h) != tlog.HashSize {
			return fmt.Errorf("sqlstore: log hash %d is %d bytes", ix, len(h))
		}
		found[ix] = tlog.Hash(h)
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]tlog.Hash, len(indexes))
	for i, ix := range indexes {
		h, ok := found[ix]
		if !ok {
			return nil, fmt.Errorf("sqlstore: log hash %d is missing", ix)
		}
		out[i] = h
	}
	return out, nil
}

func (t *txn) ReadEntries(start, count int64) ([][]byte, error) {
	rows, err := t.query(`SELECT idx, data FROM log_entries WHERE idx >= ? AND idx < ? ORDER BY idx`, start, start+count)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make([][]byte, 0, count)
	for rows.Next() {
		var ix int64
		var data []byte
		if err := rows.Scan(&ix, &data); err != nil {
			return nil, err
		}
		if ix != start+int64(len(out)) {
			return nil, fmt.Errorf("sqlstore: log entry %d is missing", start+int64(len(out)))
		}
		out = append(out, data)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if int64(len(out)) != count {
		return nil, fmt.Errorf("sqlstore: asked for %d log entries from %d, found %d", count, start, len(out))
	}
	return out, nil
}

func (t *txn) AppendLog(start int64, entries [][]byte, hashes []auditlog.StoredHash) error {
	size, err := t.LogSize()
	if err != nil {
		return err
	}
	if size != start {
		return fmt.Errorf("sqlstore: appending at %d to a log of %d entries", start, size)
	}
	rows := make([][]any, len(entries))
	for i, e := range entries {
		rows[i] = []any{start + int64(i), e}
	}
	if err := t.insertRows("log_entries", []string{"idx", "data"}, rows, ""); err != nil {
		return err
	}
	rows = make([][]any, len(hashes))
	for i, h := range hashes {
		rows[i] = []any{h.Index, h.Hash[:]}
	}
	if err := t.insertRows("log_hashes", []string{"idx", "hash"}, rows, ""); err != nil {
		return err
	}
	return t.exec(`UPDATE log_state SET size = ? WHERE id = 1`, start+int64(len(entries)))
}

func (t *txn) LatestCheckpoint() ([]byte, int64, error) {
	var note []byte
	var size int64
	err := t.tx.QueryRowContext(t.ctx, `SELECT size, note FROM checkpoints ORDER BY size DESC LIMIT 1`).Scan(&size, &note)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, 0, settlement.ErrNotFound
	}
	return note, size, err
}

func (t *txn) Checkpoints(limit int) ([]*settlement.CheckpointRow, error) {
	rows, err := t.query(`SELECT size, note, signed_at FROM checkpoints ORDER BY size DESC LIMIT ?`, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*settlement.CheckpointRow
	for rows.Next() {
		var r settlement.CheckpointRow
		var at int64
		if err := rows.Scan(&r.Size, &r.Note, &at); err != nil {
			return nil, err
		}
		if at != 0 {
			r.SignedAt = time.Unix(0, at).UTC()
		}
		out = append(out, &r)
	}
	return out, rows.Err()
}

func (t *txn) PutCheckpoint(size int64, note []byte, signedAt time.Time) error {
	_, latest, err := t.LatestCheckpoint()
	if err != nil && !errors.Is(err, settlement.ErrNotFound) {
		return err
	}
	if size < latest {
		return fmt.Errorf("sqlstore: a checkpoint of %d entries after one of %d: checkpoints never go backwards", size, latest)
	}
	logSize, err := t.LogSize()
	if err != nil {
		return err
	}
	if size > logSize {
		return fmt.Errorf("sqlstore: a checkpoint of %d entries for a log of %d", size, logSize)
	}
	return t.insertRows("checkpoints", []string{"size", "note", "signed_at"}, [][]any{{size, note, signedAt.UnixNano()}}, "ON CONFLICT (size) DO NOTHING")
}

func (t *txn) PutStatement(s *settlement.StatementRow) error {
	return t.insertRows("statements", []string{"digest", "issuer", "counterparty", "period_start", "period_end", "envelope", "countersignature", "log_index"},
		[][]any{{s.Digest, s.Issuer, s.Counterparty, ns(s.PeriodStart), ns(s.PeriodEnd), s.Envelope, s.Countersignature, s.LogIndex}},
		"ON CONFLICT (digest) DO UPDATE SET countersignature = excluded.countersignature")
}

func (t *txn) Statements(counterparty string) ([]*settlement.StatementRow, error) {
	rows, err := t.query(`SELECT digest, issuer, counterparty, period_start, period_end, envelope, countersignature, log_index
		FROM statements WHERE counterparty = ? OR issuer = ? ORDER BY period_start, digest`, counterparty, counterparty)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*settlement.StatementRow
	for rows.Next() {
		s := &settlement.StatementRow{}
		var start, end int64
		if err := rows.Scan(&s.Digest, &s.Issuer, &s.Counterparty, &start, &end, &s.Envelope, &s.Countersignature, &s.LogIndex); err != nil {
			return nil, err
		}
		s.PeriodStart, s.PeriodEnd = utc(start), utc(end)
		out = append(out, s)
	}
	return out, rows.Err()
}
