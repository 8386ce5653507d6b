// Package sqlstore implements store.Store and store.Commerce on SQLite
// (modernc.org/sqlite, embedded, no cgo) and PostgreSQL (pgx), with one set
// of queries and a small dialect: placeholders, byte type, row locks,
// substring search.
//
// Atomicity: every multi-row change runs in one transaction. SQLite
// transactions begin IMMEDIATE (writers serialise up front instead of
// failing with SQLITE_BUSY on upgrade, which still matters when two
// processes share a file), and one process uses a single connection, so
// no method may query through s.db inside a transaction callback;
// PostgreSQL locks the refresh token
// or code row with SELECT … FOR UPDATE, so concurrent rotations queue on
// the row and the losers see the winner's result. Idempotency claims lock
// their record the same way; session versions and stock are guarded
// UPDATEs (version = ?, stock >= ?), which PostgreSQL re-checks against
// the committed row after waiting on its lock, so no read-then-write
// window exists.
package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/ucpbridge/ucpbridge/authserver/store"
)

// Store is a store.Store on a SQL database.
type Store struct {
	db  *sql.DB // writes and transactions
	rdb *sql.DB // plain reads: a read-only pool on SQLite, db on PostgreSQL
	d   dialect
	// stmts holds the hot queries prepared on db and rdb (stmts.go),
	// SQLite only; set in Open and read-only afterwards.
	stmts map[stmtKey]*sql.Stmt
}

var _ store.Store = (*Store)(nil)

type dialect struct {
	postgres  bool
	forUpdate string
	// instr names the substring-position function, instr(haystack,
	// needle) on SQLite and strpos on PostgreSQL: search matches terms
	// with it rather than LIKE so terms need no wildcard escaping.
	instr string
}

// Open connects and migrates. dsn is a postgres:// or postgresql:// URL
// for PostgreSQL; anything else is a SQLite file path (created if missing),
// opened in WAL mode with a busy timeout and immediate transactions.
func Open(ctx context.Context, dsn string) (*Store, error) {
	var (
		db, rdb *sql.DB
		d       dialect
		err     error
	)
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		d = dialect{postgres: true, forUpdate: " FOR UPDATE", instr: "strpos"}
		var cfg *pgx.ConnConfig
		if cfg, err = pgx.ParseConfig(dsn); err == nil {
			// Every lock-then-read in this package (spend holds, refresh
			// rotation, idempotency claims) relies on READ COMMITTED's
			// fresh snapshot per statement: a database or role default
			// of REPEATABLE READ would read sums from before the lock
			// wait and let spending pass the cap. It is pinned here, per
			// connection, whatever the server's default.
			cfg.RuntimeParams["default_transaction_isolation"] = "read committed"
			db = stdlib.OpenDB(*cfg)
			db.SetMaxOpenConns(32)
			db.SetMaxIdleConns(32)
		}
		rdb = db
	} else {
		q := url.Values{}
		for _, p := range []string{"journal_mode(WAL)", "busy_timeout(10000)", "foreign_keys(1)", "synchronous(NORMAL)"} {
			q.Add("_pragma", p)
		}
		q.Set("_txlock", "immediate")
		d = dialect{instr: "instr"}
		db, err = sql.Open("sqlite", "file:"+dsn+"?"+q.Encode())
		if err == nil {
			// One writer connection: SQLite has one writer anyway, and
			// queueing in the pool is fair and sleep-free where SQLite's
			// busy handler polls with growing sleeps (a 100 ms p99 under
			// load). Reads use their own pool; WAL lets them run alongside.
			db.SetMaxOpenConns(1)
			q.Del("_txlock")
			q.Add("_pragma", "query_only(1)")
			if rdb, err = sql.Open("sqlite", "file:"+dsn+"?"+q.Encode()); err != nil {
				db.Close()
			}
		}
	}
	if err != nil {
		return nil, fmt.Errorf("sqlstore: open: %w", err)
	}
	s := &Store{db: db, rdb: rdb, d: d}
	if err := s.migrate(ctx); err != nil {
		s.Close()
		return nil, err
	}
	// After the migrations: a statement is planned against the schema it
	// was prepared on.
	if err := s.prepare(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Close closes the database.
func (s *Store) Close() error {
	err := s.closeStmts()
	if dberr := s.db.Close(); err == nil {
		err = dberr
	}
	if s.rdb != s.db {
		if rerr := s.rdb.Close(); err == nil {
			err = rerr
		}
	}
	return err
}

// DB exposes the handle for tests and operational tooling.
func (s *Store) DB() *sql.DB { return s.db }

// bytesType is the column type of hashes: BLOB or BYTEA.
func (s *Store) bytesType() string {
	if s.d.postgres {
		return "BYTEA"
	}
	return "BLOB"
}

func (s *Store) migrate(ctx context.Context) error {
	ddl := strings.ReplaceAll(schema, "{{bytes}}", s.bytesType())
	for _, stmt := range strings.Split(ddl, ";") {
		if strings.TrimSpace(stmt) == "" {
			continue
		}
		if _, err := s.db.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("sqlstore: migrate: %w", err)
		}
	}
	return s.upgrade(ctx)
}

// migrations change the schema of databases created by earlier builds,
// in order; schema_version counts how many ran. Never edit or reorder one
// that shipped: append.
var migrations = []migration{
	// 1: client roles (platform keys, store-bound merchants), platform
	// ownership of OAuth clients, tokens bound to a store, buyer accounts,
	// spend holds, buyer order history.
	{both: `ALTER TABLE clients ADD COLUMN role TEXT NOT NULL DEFAULT '';
	ALTER TABLE clients ADD COLUMN store TEXT NOT NULL DEFAULT '';
	ALTER TABLE clients ADD COLUMN platform TEXT NOT NULL DEFAULT '';
	ALTER TABLE clients ADD COLUMN profile TEXT NOT NULL DEFAULT '';
	CREATE TABLE platform_clients (client_id TEXT PRIMARY KEY, platform_id TEXT NOT NULL);
	ALTER TABLE access_tokens ADD COLUMN store TEXT NOT NULL DEFAULT '';
	ALTER TABLE buyers ADD COLUMN account TEXT;
	CREATE TABLE spend_holds (
		id TEXT PRIMARY KEY, buyer_id TEXT NOT NULL, client_id TEXT NOT NULL, ref TEXT NOT NULL,
		amount BIGINT NOT NULL, currency TEXT NOT NULL, state TEXT NOT NULL, created_at BIGINT NOT NULL,
		expires_at BIGINT NOT NULL);
	CREATE INDEX spend_holds_pair ON spend_holds(buyer_id, client_id, created_at);
	CREATE INDEX spend_holds_created ON spend_holds(created_at);
	CREATE INDEX orders_buyer ON orders(buyer_id, created_at, shop_slug, id)`},
	// 2: PostgreSQL takes a spend hold in one statement (holdSpendFunc).
	{postgres: holdSpendFunc},
	// 3: self-registered clients (RFC 7591) with their registration
	// access token, exchanged access tokens (RFC 8693: the subject they
	// live by, the platform they act for), platform-owned resources.
	{both: `ALTER TABLE clients ADD COLUMN registration_hash {{bytes}};
	ALTER TABLE access_tokens ADD COLUMN subject_hash {{bytes}};
	ALTER TABLE access_tokens ADD COLUMN acting_platform TEXT NOT NULL DEFAULT '';
	CREATE TABLE platform_resources (resource TEXT PRIMARY KEY, platform_id TEXT NOT NULL, created_at BIGINT NOT NULL);
	CREATE INDEX platform_resources_platform ON platform_resources(platform_id, resource)`},
	// 4: the retention sweep (retention.go) finds what expired through
	// these, oldest first, instead of scanning the tables.
	{both: retentionIndexes},
	// 5: a redeemed code lives as long as the family it issued, so a
	// replay always revokes it.
	{both: codeRetention},
	// 6: self-registered clients nobody used are swept.
	{both: clientRetention},
}

// migration is one schema change: both runs on either engine, split at
// semicolons; postgres runs on PostgreSQL only, as one statement (a
// function body has semicolons of its own).
type migration struct {
	both     string
	postgres string
}

// upgrade runs the migrations a database lacks, in one transaction that
// concurrent openers (two instances starting on one PostgreSQL) queue on.
func (s *Store) upgrade(ctx context.Context) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if s.d.postgres {
			// Serialises openers; released at commit.
			if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(8021550417)`); err != nil {
				return fmt.Errorf("sqlstore: migrate: lock: %w", err)
			}
		}
		if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`); err != nil {
			return fmt.Errorf("sqlstore: migrate: %w", err)
		}
		var v sql.NullInt64
		if err := tx.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_version`).Scan(&v); err != nil {
			return fmt.Errorf("sqlstore: migrate: %w", err)
		}
		for i := int(v.Int64); i < len(migrations); i++ {
			stmts := strings.Split(strings.ReplaceAll(migrations[i].both, "{{bytes}}", s.bytesType()), ";")
			if s.d.postgres && migrations[i].postgres != "" {
				stmts = append(stmts, migrations[i].postgres)
			}
			for _, stmt := range stmts {
				if strings.TrimSpace(stmt) == "" {
					continue
				}
				if _, err := tx.ExecContext(ctx, stmt); err != nil {
					return fmt.Errorf("sqlstore: migration %d: %w", i+1, err)
				}
			}
		}
		if int(v.Int64) < len(migrations) {
			if _, err := tx.ExecContext(ctx, `DELETE FROM schema_version`); err != nil {
				return fmt.Errorf("sqlstore: migrate: %w", err)
			}
			if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO schema_version (version) VALUES (?)`), len(migrations)); err != nil {
				return fmt.Errorf("sqlstore: migrate: %w", err)
			}
		}
		return nil
	})
}

// schema uses BIGINT Unix milliseconds for times and JSON text for lists,
// which both engines store alike.
const schema = `
CREATE TABLE IF NOT EXISTS clients (
	id TEXT PRIMARY KEY, secret_hash {{bytes}}, type TEXT NOT NULL, name TEXT NOT NULL,
	redirect_uris TEXT NOT NULL, grant_types TEXT NOT NULL, scopes TEXT NOT NULL,
	developers TEXT NOT NULL, created_at BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS buyers (
	id TEXT PRIMARY KEY, email TEXT NOT NULL UNIQUE, password_hash TEXT NOT NULL, created_at BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS grants (
	id TEXT PRIMARY KEY, client_id TEXT NOT NULL, buyer_id TEXT NOT NULL, scope TEXT NOT NULL,
	resource TEXT NOT NULL, allowance TEXT, created_at BIGINT NOT NULL, expires_at BIGINT NOT NULL,
	revoked_at BIGINT);
CREATE TABLE IF NOT EXISTS codes (
	hash {{bytes}} PRIMARY KEY, client_id TEXT NOT NULL, buyer_id TEXT NOT NULL, redirect_uri TEXT NOT NULL,
	scope TEXT NOT NULL, resource TEXT NOT NULL, code_challenge TEXT NOT NULL, allowance TEXT,
	expires_at BIGINT NOT NULL, used_at BIGINT, grant_id TEXT);
CREATE TABLE IF NOT EXISTS refresh_tokens (
	hash {{bytes}} PRIMARY KEY, grant_id TEXT NOT NULL REFERENCES grants(id), state TEXT NOT NULL,
	expires_at BIGINT NOT NULL, rotated_at BIGINT, successor_hash {{bytes}}, sealed {{bytes}});
CREATE INDEX IF NOT EXISTS refresh_tokens_grant ON refresh_tokens(grant_id);
CREATE TABLE IF NOT EXISTS access_tokens (
	hash {{bytes}} PRIMARY KEY, grant_id TEXT, client_id TEXT NOT NULL, buyer_id TEXT NOT NULL,
	scope TEXT NOT NULL, resource TEXT NOT NULL, expires_at BIGINT NOT NULL, revoked_at BIGINT);
CREATE INDEX IF NOT EXISTS access_tokens_grant ON access_tokens(grant_id);
CREATE TABLE IF NOT EXISTS consents (
	buyer_id TEXT NOT NULL, client_id TEXT NOT NULL, scope TEXT NOT NULL, allowance TEXT,
	updated_at BIGINT NOT NULL, PRIMARY KEY (buyer_id, client_id));
CREATE TABLE IF NOT EXISTS shops (
	slug TEXT PRIMARY KEY, name TEXT NOT NULL, currency TEXT NOT NULL, config TEXT, created_at BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS products (
	shop_slug TEXT NOT NULL, id TEXT NOT NULL, title TEXT NOT NULL, text TEXT NOT NULL,
	min_price BIGINT NOT NULL, max_price BIGINT NOT NULL, currency TEXT NOT NULL, categories TEXT NOT NULL,
	doc TEXT, updated_at BIGINT NOT NULL, PRIMARY KEY (shop_slug, id));
CREATE TABLE IF NOT EXISTS product_categories (
	shop_slug TEXT NOT NULL, product_id TEXT NOT NULL, category TEXT NOT NULL,
	PRIMARY KEY (shop_slug, product_id, category));
CREATE INDEX IF NOT EXISTS product_categories_category ON product_categories(category, shop_slug, product_id);
CREATE TABLE IF NOT EXISTS variants (
	shop_slug TEXT NOT NULL, id TEXT NOT NULL, product_id TEXT NOT NULL, title TEXT NOT NULL,
	price BIGINT NOT NULL, stock BIGINT NOT NULL, image_url TEXT NOT NULL, ord INTEGER NOT NULL,
	PRIMARY KEY (shop_slug, id));
CREATE INDEX IF NOT EXISTS variants_product ON variants(shop_slug, product_id, ord);
CREATE TABLE IF NOT EXISTS sessions (
	kind TEXT NOT NULL, shop_slug TEXT NOT NULL, id TEXT NOT NULL, owner TEXT NOT NULL, status TEXT NOT NULL,
	version BIGINT NOT NULL, doc TEXT, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL,
	expires_at BIGINT NOT NULL, PRIMARY KEY (kind, shop_slug, id));
CREATE TABLE IF NOT EXISTS orders (
	shop_slug TEXT NOT NULL, id TEXT NOT NULL, checkout_id TEXT NOT NULL, owner TEXT NOT NULL,
	client_id TEXT NOT NULL, buyer_id TEXT NOT NULL, buyer_type TEXT NOT NULL, doc TEXT, created_at BIGINT NOT NULL,
	PRIMARY KEY (shop_slug, id), UNIQUE (shop_slug, checkout_id));
CREATE TABLE IF NOT EXISTS webhooks (
	id TEXT PRIMARY KEY, shop_slug TEXT NOT NULL, order_id TEXT NOT NULL, url TEXT NOT NULL,
	attempts INTEGER NOT NULL, next_at BIGINT NOT NULL, created_at BIGINT NOT NULL);
CREATE INDEX IF NOT EXISTS webhooks_due ON webhooks(next_at);
CREATE TABLE IF NOT EXISTS idempotency (
	scope TEXT NOT NULL, key TEXT NOT NULL, request_hash {{bytes}} NOT NULL, done INTEGER NOT NULL,
	status INTEGER NOT NULL, body {{bytes}}, created_at BIGINT NOT NULL, lease_until BIGINT NOT NULL,
	expires_at BIGINT NOT NULL, PRIMARY KEY (scope, key));
CREATE INDEX IF NOT EXISTS idempotency_expires ON idempotency(expires_at);
`

// q rewrites ? placeholders to $n for PostgreSQL. Queries here never
// contain a literal question mark.
func (s *Store) q(query string) string {
	if !s.d.postgres {
		return query
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// queryer is what both *sql.DB and *sql.Tx offer.
type queryer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func (s *Store) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlstore: begin: %w", err)
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlstore: commit: %w", err)
	}
	return nil
}

func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMS(v sql.NullInt64) time.Time {
	if !v.Valid || v.Int64 == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v.Int64)
}

func jsonList(v []string) string {
	if v == nil {
		v = []string{}
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func nullJSON(v json.RawMessage) any {
	if len(v) == 0 {
		return nil
	}
	return string(v)
}

func isUnique(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "23505"
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY || se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE
	}
	return false
}

func notFound(err error, what string) error {
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("sqlstore: %s: %w", what, store.ErrNotFound)
	}
	return fmt.Errorf("sqlstore: %s: %w", what, err)
}
