package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// TestUpgradeFromBaseSchema: a database made by a build before the
// migrations (the base schema alone) opens, gains the new columns with
// its rows intact, and opening it again runs nothing twice.
func TestUpgradeFromBaseSchema(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	for _, stmt := range strings.Split(strings.ReplaceAll(schema, "{{bytes}}", "BLOB"), ";") {
		if strings.TrimSpace(stmt) != "" {
			if _, err := db.Exec(stmt); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := db.Exec(`INSERT INTO clients (id, type, name, redirect_uris, grant_types, scopes, developers, created_at)
		VALUES ('old-app', 'installed', 'Old', '[]', '[]', '[]', '[]', 1)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	for range 2 {
		s, err := Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		c, err := s.Client(ctx, "old-app")
		if err != nil || c.Name != "Old" || c.Role != "" || c.Store != "" {
			t.Fatalf("old client after upgrade: %+v, %v", c, err)
		}
		var v int
		if err := s.db.QueryRow(`SELECT version FROM schema_version`).Scan(&v); err != nil || v != len(migrations) {
			t.Fatalf("schema_version %d, %v", v, err)
		}
		s.Close()
	}
}

// TestMigration5CodesOfSweptFamilies: a database at version 4, whose
// sweeps deleted families but not the codes they were redeemed with,
// loses those codes on upgrade (a replay has nothing left to revoke) and
// keeps the rest; the code sweep's partial indexes replace the old one.
func TestMigration5CodesOfSweptFamilies(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "v4.db")
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	stmts := strings.Split(strings.ReplaceAll(schema, "{{bytes}}", "BLOB"), ";")
	for _, m := range migrations[:4] {
		stmts = append(stmts, strings.Split(strings.ReplaceAll(m.both, "{{bytes}}", "BLOB"), ";")...)
	}
	stmts = append(stmts, `CREATE TABLE schema_version (version INTEGER NOT NULL)`, `INSERT INTO schema_version VALUES (4)`,
		`INSERT INTO grants (id, client_id, buyer_id, scope, resource, created_at, expires_at) VALUES ('g-live', 'c', 'b', 's', '', 1, 9999999999999)`)
	for i, grant := range []string{"'g-live'", "'g-gone'", "NULL"} {
		stmts = append(stmts, fmt.Sprintf(`INSERT INTO codes (hash, client_id, buyer_id, redirect_uri, scope, resource, code_challenge, expires_at, used_at, grant_id)
			VALUES (x'0%d', 'c', 'b', 'r', 's', '', 'x', 1, %s, %s)`, i, map[bool]string{true: "NULL", false: "1"}[grant == "NULL"], grant))
	}
	for _, stmt := range stmts {
		if strings.TrimSpace(stmt) != "" {
			if _, err := db.Exec(stmt); err != nil {
				t.Fatalf("%s: %v", stmt, err)
			}
		}
	}
	db.Close()
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var left []string
	rows, err := s.db.Query(`SELECT COALESCE(grant_id, 'unused') FROM codes ORDER BY hash`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var g string
		rows.Scan(&g)
		left = append(left, g)
	}
	rows.Close()
	if strings.Join(left, ",") != "g-live,unused" {
		t.Fatalf("codes after migration 5: %v", left)
	}
	var idx []string
	rows, err = s.db.Query(`SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'codes' AND sql IS NOT NULL ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var n string
		rows.Scan(&n)
		idx = append(idx, n)
	}
	rows.Close()
	if strings.Join(idx, ",") != "codes_client,codes_grant,codes_unused_expires" {
		t.Fatalf("indexes on codes: %v", idx)
	}
}
