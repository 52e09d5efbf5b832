package sqlstore

// migrations are applied in order; each runs in its own transaction and is
// recorded in schema_migrations. {{BLOB}}, {{INT}} and {{BOOL}} are the
// dialect's types. Amounts are BIGINT nano-units; times are BIGINT Unix
// nanoseconds in UTC.
var migrations = []string{
	// 1: the books and the audit log.
	`
CREATE TABLE offers (
	digest   TEXT PRIMARY KEY,
	document {{BLOB}} NOT NULL
);
CREATE TABLE records (
	id               TEXT PRIMARY KEY,
	job              TEXT NOT NULL,
	placement        TEXT NOT NULL,
	sequence         {{INT}} NOT NULL,
	compute_id       TEXT NOT NULL,
	offer            TEXT NOT NULL,
	tenant           TEXT NOT NULL,
	provider         TEXT NOT NULL,
	home_broker      TEXT NOT NULL,
	executing_broker TEXT NOT NULL,
	period_start     {{INT}} NOT NULL,
	period_end       {{INT}} NOT NULL,
	log_index        {{INT}} NOT NULL,
	received_at      {{INT}} NOT NULL
);
CREATE INDEX records_placement ON records (placement);
CREATE INDEX records_period_end ON records (period_end);
CREATE TABLE transactions (
	log_index {{INT}} PRIMARY KEY,
	record    TEXT NOT NULL,
	role      TEXT NOT NULL,
	currency      TEXT NOT NULL,
	posted_at     {{INT}} NOT NULL,
	home_fee      {{INT}} NOT NULL,
	executing_fee {{INT}} NOT NULL
);
CREATE TABLE items (
	tx           {{INT}} NOT NULL,
	seq          {{INT}} NOT NULL,
	meter        TEXT NOT NULL,
	model        TEXT NOT NULL,
	tier         TEXT NOT NULL,
	start_ns     {{INT}} NOT NULL,
	end_ns       {{INT}} NOT NULL,
	consumed     TEXT NOT NULL,
	pricing_qty  TEXT NOT NULL,
	pricing_unit TEXT NOT NULL,
	unit_price   TEXT NOT NULL,
	amount       {{INT}} NOT NULL,
	PRIMARY KEY (tx, seq)
);
CREATE TABLE lines (
	tx      {{INT}} NOT NULL,
	seq     {{INT}} NOT NULL,
	account TEXT NOT NULL,
	amount  {{INT}} NOT NULL,
	PRIMARY KEY (tx, seq)
);
CREATE INDEX lines_account ON lines (account);
CREATE TABLE balances (
	account  TEXT NOT NULL,
	currency TEXT NOT NULL,
	amount   {{INT}} NOT NULL,
	PRIMARY KEY (account, currency)
);
CREATE TABLE holds (
	job        TEXT PRIMARY KEY,
	account    TEXT NOT NULL,
	currency   TEXT NOT NULL,
	amount     {{INT}} NOT NULL,
	captured   {{INT}} NOT NULL,
	released   {{INT}} NOT NULL,
	is_open    {{BOOL}} NOT NULL,
	created_at {{INT}} NOT NULL,
	closed_at  {{INT}} NOT NULL,
	CHECK (amount >= 0 AND captured >= 0 AND released >= 0 AND captured + released <= amount)
);
CREATE TABLE refusals (
	digest      TEXT PRIMARY KEY,
	record      TEXT NOT NULL,
	reason      TEXT NOT NULL,
	detail      TEXT NOT NULL,
	received_at {{INT}} NOT NULL,
	log_index   {{INT}} NOT NULL
);
CREATE TABLE log_entries (
	idx  {{INT}} PRIMARY KEY,
	data {{BLOB}} NOT NULL
);
CREATE TABLE log_hashes (
	idx  {{INT}} PRIMARY KEY,
	hash {{BLOB}} NOT NULL
);
CREATE TABLE log_state (
	id   {{INT}} PRIMARY KEY CHECK (id = 1),
	size {{INT}} NOT NULL
);
INSERT INTO log_state (id, size) VALUES (1, 0);
CREATE TABLE checkpoints (
	size {{INT}} PRIMARY KEY,
	note {{BLOB}} NOT NULL
);
CREATE TABLE statements (
	digest           TEXT PRIMARY KEY,
	issuer           TEXT NOT NULL,
	counterparty     TEXT NOT NULL,
	period_start     {{INT}} NOT NULL,
	period_end       {{INT}} NOT NULL,
	envelope         {{BLOB}} NOT NULL,
	countersignature {{BLOB}},
	log_index        {{INT}} NOT NULL
);
CREATE INDEX statements_counterparty ON statements (counterparty);
`,
	// 2: when each checkpoint was signed (0 for those kept before).
	`
ALTER TABLE checkpoints ADD COLUMN signed_at {{INT}} NOT NULL DEFAULT 0;
`,
}
