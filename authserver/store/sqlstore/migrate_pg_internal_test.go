package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"
)

// TestMigration5OnPostgres: a PostgreSQL database at version 4 with
// redeemed codes (one of a live family, one of a family a sweep deleted)
// and unused ones upgrades as on SQLite: the orphan goes, the rest stays,
// codes_expires gives way to the two partial indexes. And the orphan
// clean-up is an anti-join: NOT IN (SELECT id FROM grants) is a hashed
// subplan only while every grant id fits in work_mem; past that (tens of
// thousands of grants at the 4 MB default) PostgreSQL rescans grants for
// each redeemed code, a quadratic delete inside the upgrade transaction
// every instance's Open queues on.
func TestMigration5OnPostgres(t *testing.T) {
	dsn := os.Getenv("UCPBRIDGE_TEST_PG")
	if dsn == "" {
		t.Skip("UCPBRIDGE_TEST_PG is not set")
	}
	ctx := context.Background()
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	schemaName := fmt.Sprintf("t_m5_%d", time.Now().UnixNano())
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schemaName); err != nil {
		t.Fatal(err)
	}
	defer admin.ExecContext(ctx, "DROP SCHEMA "+schemaName+" CASCADE")
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schemaName)
	u.RawQuery = q.Encode()
	db, err := sql.Open("pgx", u.String())
	if err != nil {
		t.Fatal(err)
	}
	stmts := strings.Split(strings.ReplaceAll(schema, "{{bytes}}", "BYTEA"), ";")
	for _, m := range migrations[:4] {
		stmts = append(stmts, strings.Split(strings.ReplaceAll(m.both, "{{bytes}}", "BYTEA"), ";")...)
		if m.postgres != "" {
			stmts = append(stmts, m.postgres)
		}
	}
	stmts = append(stmts, `CREATE TABLE schema_version (version INTEGER NOT NULL)`, `INSERT INTO schema_version VALUES (4)`,
		`INSERT INTO grants (id, client_id, buyer_id, scope, resource, created_at, expires_at) VALUES ('g-live', 'c', 'b', 's', '', 1, 9999999999999)`)
	for i, grant := range []string{"'g-live'", "'g-gone'", "NULL"} {
		used := "1"
		if grant == "NULL" {
			used = "NULL"
		}
		stmts = append(stmts, fmt.Sprintf(`INSERT INTO codes (hash, client_id, buyer_id, redirect_uri, scope, resource, code_challenge, expires_at, used_at, grant_id)
			VALUES ('\x0%d', 'c', 'b', 'r', 's', '', 'x', 1, %s, %s)`, i, used, grant))
	}
	for _, stmt := range stmts {
		if strings.TrimSpace(stmt) != "" {
			if _, err := db.ExecContext(ctx, stmt); err != nil {
				t.Fatalf("%s: %v", stmt, err)
			}
		}
	}
	db.Close()
	s, err := Open(ctx, u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var left string
	if err := s.db.QueryRowContext(ctx, `SELECT string_agg(COALESCE(grant_id, 'unused'), ',' ORDER BY hash) FROM codes`).Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != "g-live,unused" {
		t.Fatalf("codes after migration 5: %v", left)
	}
	var idx string
	if err := s.db.QueryRowContext(ctx, `SELECT string_agg(indexname, ',' ORDER BY indexname) FROM pg_indexes
		WHERE schemaname = current_schema() AND tablename = 'codes' AND indexname <> 'codes_pkey'`).Scan(&idx); err != nil {
		t.Fatal(err)
	}
	if idx != "codes_client,codes_grant,codes_unused_expires" { // codes_client: migration 6
		t.Fatalf("indexes on codes: %v", idx)
	}

	// The plan of the clean-up with more grant ids than work_mem holds.
	for _, stmt := range []string{
		`INSERT INTO grants (id, client_id, buyer_id, scope, resource, created_at, expires_at)
			SELECT 'g' || i, 'c', 'b', 's', '', 1, i FROM generate_series(1, 20000) i`,
		`INSERT INTO codes (hash, client_id, buyer_id, redirect_uri, scope, resource, code_challenge, expires_at, used_at, grant_id)
			SELECT decode(md5(i::text), 'hex'), 'c', 'b', 'r', 's', '', 'x', i, i, 'g' || i FROM generate_series(1, 20000) i`,
		`ANALYZE grants`, `ANALYZE codes`,
	} {
		if _, err := s.db.ExecContext(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
	cleanup := strings.Split(codeRetention, ";")[0]
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `SET LOCAL work_mem = '64kB'`); err != nil {
		t.Fatal(err)
	}
	rows, err := tx.QueryContext(ctx, `EXPLAIN `+cleanup)
	if err != nil {
		t.Fatal(err)
	}
	var plan []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, line)
	}
	rows.Close()
	if p := strings.Join(plan, "\n"); strings.Contains(p, "SubPlan") || !strings.Contains(p, "Anti Join") {
		t.Fatalf("migration 5's clean-up is not an anti-join:\n%s", p)
	}
}
