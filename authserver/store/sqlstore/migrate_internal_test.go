package sqlstore

import (
	"context"
	"database/sql"
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
