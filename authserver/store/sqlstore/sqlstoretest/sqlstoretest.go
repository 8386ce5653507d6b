// Package sqlstoretest opens throwaway sqlstore databases for tests and
// benchmarks in any package.
package sqlstoretest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // admin connection

	"github.com/ucpbridge/ucpbridge/authserver/store/sqlstore"
)

// EnvPG names the variable holding the PostgreSQL DSN for tests.
const EnvPG = "UCPBRIDGE_TEST_PG"

// SQLite opens a fresh SQLite store in a temporary directory.
func SQLite(t testing.TB) *sqlstore.Store {
	t.Helper()
	s, err := sqlstore.Open(context.Background(), filepath.Join(t.TempDir(), "ucpbridge.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// Postgres opens a store in a new schema of the UCPBRIDGE_TEST_PG database,
// dropped when the test ends. It returns nil when the variable is unset.
func Postgres(t testing.TB) *sqlstore.Store {
	t.Helper()
	dsn := os.Getenv(EnvPG)
	if dsn == "" {
		return nil
	}
	ctx := context.Background()
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 6)
	rand.Read(b)
	schema := fmt.Sprintf("t_%x", b)
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		admin.Close()
		t.Fatalf("create schema: %v", err)
	}
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	s, err := sqlstore.Open(ctx, u.String())
	if err != nil {
		t.Fatal(err)
	}
	// Cleanups run last-in first-out: close the store, then drop.
	t.Cleanup(func() {
		admin.ExecContext(ctx, "DROP SCHEMA "+schema+" CASCADE")
		admin.Close()
	})
	t.Cleanup(func() { s.Close() })
	return s
}

// PostgresPair opens two stores on one new schema of the
// UCPBRIDGE_TEST_PG database, each with its own connection pool: two
// server instances sharing a database. It returns nils when the variable
// is unset.
func PostgresPair(t testing.TB) (*sqlstore.Store, *sqlstore.Store) {
	t.Helper()
	a := Postgres(t)
	if a == nil {
		return nil, nil
	}
	var schema string
	if err := a.DB().QueryRowContext(context.Background(), "SELECT current_schema()").Scan(&schema); err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(os.Getenv(EnvPG))
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	b, err := sqlstore.Open(context.Background(), u.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return a, b
}
