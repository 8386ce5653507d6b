package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
)

// Prepared statements for the hottest queries, SQLite only.
//
// Given a string, database/sql prepares the statement, runs it and
// finalizes it on every call, and on SQLite (modernc.org/sqlite, the C
// library translated to Go) parsing and planning cost more than the
// primary-key lookup itself: about half the CPU of ValidateAccessToken,
// a sixth of a client_credentials issuance. The queries listed below are
// prepared once per pool at Open, after the migrations, as *sql.Stmt:
// database/sql then prepares each on a connection the first time it runs
// there and reuses it, and SQLite re-prepares a statement by itself if
// the schema changes under it (another process migrating the file).
//
// PostgreSQL runs every query as text: pgx already prepares and caches
// statements per connection by their text, and drops one a schema change
// invalidated, which an *sql.Stmt would keep. Measured with the same
// statements prepared there too (8 alternating runs, benchstat), nothing
// changed beyond the noise: ValidateAccessToken 49.6 → 46.6 µs (p=0.65),
// client_credentials 409 → 390 µs (p=0.44), CreateComplete 3.26 → 3.32 ms
// (p=0.96).
//
// Only constant queries belong in these lists, and a listed query must
// be passed to exec, queryRow or query with its pool (or a transaction,
// for write statements) to use its statement; anything else runs as text.
var (
	// readStmts run on rdb.
	readStmts = []string{
		qAccessToken, qClient, qClientCIMD,
		qShop, qSession, qOrder,
	}
	// writeStmts run on db, alone or in a transaction (tx.StmtContext:
	// the statement on the one writer connection the transaction holds).
	writeStmts = []string{
		qInsertAccess,
		qCreateSession, qUpdateSession, qSessionVersion, qTakeStock, qStock, qInsertOrder, qInsertWebhook,
		qIdemInsert, qFinishIdem,
	}
)

type stmtKey struct {
	db    *sql.DB
	query string
}

// prepare prepares readStmts and writeStmts. It runs once, in Open, with
// nothing else using the store: s.stmts is read-only afterwards.
func (s *Store) prepare(ctx context.Context) error {
	if s.d.postgres {
		return nil
	}
	s.stmts = map[stmtKey]*sql.Stmt{}
	for _, pool := range []struct {
		db      *sql.DB
		queries []string
	}{{s.rdb, readStmts}, {s.db, writeStmts}} {
		for _, query := range pool.queries {
			st, err := pool.db.PrepareContext(ctx, s.q(query))
			if err != nil {
				return fmt.Errorf("sqlstore: prepare: %w", err)
			}
			s.stmts[stmtKey{pool.db, query}] = st
		}
	}
	return nil
}

// closeStmts closes the prepared statements (before their pools close).
// The map itself stays: Close may run while requests are still reading
// it (database/sql lets Close wait for queries already started), so
// writing it here would be a data race. A closed statement fails with
// "sql: statement is closed", as a closed pool would.
func (s *Store) closeStmts() error {
	var err error
	for _, st := range s.stmts {
		if cerr := st.Close(); err == nil {
			err = cerr
		}
	}
	return err
}

// stmt returns query's prepared statement for q (s.db, s.rdb or a
// transaction on s.db), or nil.
func (s *Store) stmt(ctx context.Context, q queryer, query string) *sql.Stmt {
	switch q := q.(type) {
	case *sql.DB:
		return s.stmts[stmtKey{q, query}]
	case *sql.Tx:
		// Inside a transaction the writer's statement is bound to the
		// transaction's connection; it must not be prepared through
		// s.db here, whose one connection the transaction holds.
		if st := s.stmts[stmtKey{s.db, query}]; st != nil {
			return q.StmtContext(ctx, st)
		}
	}
	return nil
}

// exec runs query (with ? placeholders) on q.
func (s *Store) exec(ctx context.Context, q queryer, query string, args ...any) (sql.Result, error) {
	if st := s.stmt(ctx, q, query); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return q.ExecContext(ctx, s.q(query), args...)
}

// queryRow runs query (with ? placeholders) on q.
func (s *Store) queryRow(ctx context.Context, q queryer, query string, args ...any) *sql.Row {
	if st := s.stmt(ctx, q, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return q.QueryRowContext(ctx, s.q(query), args...)
}

// query runs query (with ? placeholders) on q.
func (s *Store) query(ctx context.Context, q queryer, query string, args ...any) (*sql.Rows, error) {
	if st := s.stmt(ctx, q, query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return q.QueryContext(ctx, s.q(query), args...)
}
