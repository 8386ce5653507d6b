package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/ucpbridge/ucpbridge/authserver/store"
	"github.com/ucpbridge/ucpbridge/authserver/store/sqlstore"
)

// TestSweepCommand: `ucpbridge sweep --db` deletes the expired tokens of
// a database (through a backlog larger than one pass), keeps the live
// one and prints the rows per table and the duration.
func TestSweepCommand(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := filepath.Join(t.TempDir(), "ucpbridge.db")
	st, err := sqlstore.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for i := range 7 {
		if err := st.SaveAccessToken(ctx, &store.AccessToken{Hash: fmt.Appendf(nil, "old-%d", i), ClientID: "m", ExpiresAt: now.Add(-time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.SaveAccessToken(ctx, &store.AccessToken{Hash: []byte("live"), ClientID: "m", ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	var out, errb bytes.Buffer
	if err := run(ctx, []string{"sweep", "--db", db, "--batch", "2"}, &out, &errb); err != nil {
		t.Fatalf("%v\n%s", err, errb.String())
	}
	for _, re := range []string{`(?m)^\s*access_tokens\s+7\s*$`, `(?m)^\s*codes\s+0\s*$`, `(?m)^\s*total\s+7\s*$`, `(?m)^took \d`} {
		if !regexp.MustCompile(re).MatchString(out.String()) {
			t.Fatalf("output lacks %s:\n%s", re, out.String())
		}
	}
	st, err = sqlstore.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.AccessToken(ctx, []byte("live"), now); err != nil {
		t.Fatalf("live token: %v", err)
	}
	if _, err := st.AccessToken(ctx, []byte("old-0"), now); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("expired token: %v", err)
	}
}

func TestSweepCommandRefusesBadInput(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "ucpbridge.db")
	for _, args := range [][]string{{"sweep"}, {"sweep", "--db", db, "--token-grace", "-1s"}, {"sweep", "--db", db, "--batch", "-3"}} {
		var out, errb bytes.Buffer
		if err := run(context.Background(), args, &out, &errb); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
}
