package sqlstore

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ucpbridge/ucpbridge/authserver/store"
)

func randHash(t *testing.T) []byte {
	t.Helper()
	h := make([]byte, 32)
	rand.Read(h)
	return h
}

// TestPreparedStatements (SQLite): the hot queries are prepared at Open
// and the hot paths run them; a statement survives errors, a cancelled
// context and a schema change made by another connection (another
// process migrating the file), is never left holding a read snapshot,
// and Close closes them all.
func TestPreparedStatements(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "stmts.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if n := len(readStmts) + len(writeStmts); len(s.stmts) != n {
		t.Fatalf("%d statements prepared, want %d", len(s.stmts), n)
	}
	now := time.Now()
	if err := s.CreateClient(ctx, &store.Client{ID: "plat", Type: store.ClientWeb, Name: "P", Role: store.RolePlatform,
		CIMD: []string{"https://agent.example/a.json"}, CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateClient(ctx, &store.Client{ID: "app", Type: store.ClientWeb, Name: "A", Platform: "plat", CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	a := &store.AccessToken{Hash: randHash(t), ClientID: "app", Scope: "s", ExpiresAt: now.Add(time.Hour)}
	if err := s.SaveAccessToken(ctx, a); err != nil {
		t.Fatal(err)
	}

	// Errors and a cancelled context leave the statements usable.
	if err := s.SaveAccessToken(ctx, a); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("duplicate token: %v, want ErrConflict", err)
	}
	if _, err := s.AccessToken(ctx, randHash(t), now); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown token: %v, want ErrNotFound", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.AccessToken(cctx, a.Hash, now); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
	if err := s.SaveAccessToken(cctx, &store.AccessToken{Hash: randHash(t), ClientID: "plat", ExpiresAt: now}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled save: %v", err)
	}
	check := func(what string, a *store.AccessToken) {
		t.Helper()
		if got, err := s.AccessToken(ctx, a.Hash, now); err != nil || got.Platform != "plat" {
			t.Fatalf("%s: AccessToken = %+v, %v", what, got, err)
		}
		if c, err := s.Client(ctx, "plat"); err != nil || len(c.CIMD) != 1 {
			t.Fatalf("%s: Client = %+v, %v", what, c, err)
		}
		if err := s.SaveAccessToken(ctx, &store.AccessToken{Hash: randHash(t), ClientID: "plat", ExpiresAt: now}); err != nil {
			t.Fatalf("%s: SaveAccessToken: %v", what, err)
		}
	}
	check("after errors", a)

	// Many concurrent readers and writers share the statements (run
	// with -race); afterwards no connection still holds a read
	// transaction: a truncating checkpoint, which waits for every
	// reader, completes.
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for range 50 {
				if i%2 == 0 {
					if err := s.SaveAccessToken(ctx, &store.AccessToken{Hash: randHash(t), ClientID: "plat", ExpiresAt: now}); err != nil {
						t.Error(err)
						return
					}
				} else if _, err := s.AccessToken(ctx, a.Hash, now); err != nil {
					t.Error(err)
					return
				}
				if _, err := s.Client(ctx, "plat"); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	var busy, logged, moved int
	cctx, cancel = context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := s.db.QueryRowContext(cctx, `PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &logged, &moved); err != nil || busy != 0 {
		t.Fatalf("checkpoint: busy %d, %v: a statement holds a read transaction", busy, err)
	}

	// Another connection changes the schema under the statements:
	// SQLite re-prepares them, and they see the change.
	other, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	for _, ddl := range []string{
		`ALTER TABLE access_tokens ADD COLUMN extra TEXT`,
		`CREATE INDEX access_tokens_extra ON access_tokens(extra)`,
		`UPDATE access_tokens SET revoked_at = 1`,
	} {
		if _, err := other.ExecContext(ctx, ddl); err != nil {
			t.Fatal(err)
		}
	}
	other.Close()
	if _, err := s.AccessToken(ctx, a.Hash, now); !errors.Is(err, store.ErrRevoked) {
		t.Fatalf("after another connection's change: %v, want ErrRevoked", err)
	}
	b := &store.AccessToken{Hash: randHash(t), ClientID: "app", ExpiresAt: now.Add(time.Hour)}
	if err := s.SaveAccessToken(ctx, b); err != nil {
		t.Fatal(err)
	}
	check("after a schema change", b)

	// The hot paths do run the prepared statements: with them closed
	// (and left in place), they fail.
	for _, st := range s.stmts {
		st.Close()
	}
	if _, err := s.AccessToken(ctx, a.Hash, now); err == nil || !strings.Contains(err.Error(), "statement is closed") {
		t.Errorf("AccessToken with its statement closed: %v", err)
	}
	if _, err := s.Client(ctx, "plat"); err == nil || !strings.Contains(err.Error(), "statement is closed") {
		t.Errorf("Client with its statement closed: %v", err)
	}
	if err := s.SaveAccessToken(ctx, &store.AccessToken{Hash: randHash(t), ClientID: "plat", ExpiresAt: now}); err == nil ||
		!strings.Contains(err.Error(), "statement is closed") {
		t.Errorf("SaveAccessToken with its statement closed: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Close leaves the map in place (requests may still read it) with
	// every statement closed.
	for k, st := range s.stmts {
		if _, err := st.ExecContext(ctx); err == nil || !strings.Contains(err.Error(), "statement is closed") {
			t.Fatalf("statement %q after Close: %v", k.query, err)
		}
	}
}
