package sqlstore

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestCloseWhileQuerying (SQLite, run with -race): Close may be called
// while requests still run (a shutdown past its grace period), as
// database/sql allows; the statement map those requests read must not be
// written by Close.
func TestCloseWhileQuerying(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "close.db"))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for range 200 {
				// Errors after Close are expected; the race is the point.
				_, _ = s.AccessToken(ctx, randHash(t), time.Now())
			}
		}()
	}
	close(start)
	time.Sleep(time.Millisecond)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if len(s.stmts) == 0 {
		t.Fatal("no statements were prepared")
	}
	for k, st := range s.stmts {
		if _, err := st.ExecContext(ctx); err == nil || !strings.Contains(err.Error(), "statement is closed") {
			t.Fatalf("statement %q after Close: %v", k.query, err)
		}
	}
}
