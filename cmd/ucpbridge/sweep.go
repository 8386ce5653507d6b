package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"time"

	"github.com/ucpbridge/ucpbridge/authserver/shop"
	"github.com/ucpbridge/ucpbridge/authserver/store"
	"github.com/ucpbridge/ucpbridge/authserver/store/sqlstore"
)

const sweepUsage = `usage: ucpbridge sweep --db DSN [flags]

Deletes what the platform no longer needs, once, and prints the rows
deleted per table and how long it took: expired access tokens and
authorization codes, ended and revoked refresh families, self-registered
clients nobody consented to (the retention periods below; README
"Retention"), and the stores' expired idempotency
records, sessions and spend holds. dev and serve do the same on a timer;
this is for operators who prefer cron. --db is a postgres:// URL or a
SQLite file path. Work goes in small batches, each its own transaction,
so it is safe to run against a live platform, and on PostgreSQL next to
other instances' sweeps.
`

func runSweep(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sweep", flag.ContinueOnError)
	fs.SetOutput(stderr)
	usageWith(fs, stderr, sweepUsage)
	dsn := fs.String("db", "", "PostgreSQL URL (postgres://…) or SQLite file path (required)")
	var r store.Retention
	fs.DurationVar(&r.TokenGrace, "token-grace", store.DefaultTokenGrace, "keep access tokens this long after they expire")
	fs.DurationVar(&r.CodeRetention, "code-retention", store.DefaultCodeRetention, "keep unused authorization codes this long after they expire (a redeemed one lives as long as its family)")
	fs.DurationVar(&r.RevokedRetention, "revoked-retention", store.DefaultRevokedRetention, "keep revoked refresh families this long after the revocation")
	fs.DurationVar(&r.UnusedClientRetention, "unused-client-retention", store.DefaultUnusedClientRetention, "delete self-registered clients no buyer consented to this long after they registered")
	fs.IntVar(&r.BatchSize, "batch", 0, "rows per delete transaction (0: 50 on SQLite, 500 on PostgreSQL)")
	if err := parseFlags(fs, args, os.LookupEnv); err != nil {
		return err
	}
	if *dsn == "" || fs.NArg() > 0 {
		fs.Usage()
		return errors.New("sweep: --db is required")
	}
	if _, err := r.WithDefaults(); err != nil {
		return fmt.Errorf("sweep: %w", err)
	}
	if r.BatchSize < 0 {
		return errors.New("sweep: --batch must not be negative")
	}
	st, err := sqlstore.Open(ctx, *dsn)
	if err != nil {
		return err
	}
	defer st.Close()
	start := time.Now()
	deleted, busy, err := sweepAll(ctx, st, r)
	// What was deleted is reported even when the sweep stopped early.
	printSweep(stdout, deleted, busy, time.Since(start))
	if err != nil {
		return fmt.Errorf("sweep: %w", err)
	}
	return nil
}

// sweepAll runs the OAuth retention sweep until no backlog remains (each
// pass is bounded; a pass stops between batches when ctx ends), then the
// stores' sweeps with the periods the server uses.
func sweepAll(ctx context.Context, st *sqlstore.Store, r store.Retention) (map[string]int64, bool, error) {
	deleted := map[string]int64{}
	for {
		s, err := st.SweepExpired(ctx, time.Now(), r)
		for t, n := range s.Deleted {
			deleted[t] += n
		}
		if err != nil {
			return deleted, false, err
		}
		if s.Busy {
			return deleted, true, nil
		}
		if !s.More {
			break
		}
	}
	now := time.Now()
	for _, c := range []struct {
		table string
		sweep func() (int64, error)
	}{
		{"idempotency", func() (int64, error) { return st.SweepIdempotency(ctx, now) }},
		{"sessions", func() (int64, error) { return st.SweepSessions(ctx, now.Add(-shop.SessionRetention)) }},
		{"spend_holds", func() (int64, error) { return st.SweepHolds(ctx, now.Add(-shop.HoldRetention)) }},
	} {
		n, err := c.sweep()
		deleted[c.table] += n
		if err != nil {
			return deleted, false, err
		}
	}
	return deleted, false, nil
}

func printSweep(w io.Writer, deleted map[string]int64, busy bool, took time.Duration) {
	tables := []string{store.TableAccessTokens, store.TableCodes, store.TableGrants, store.TableRefreshTokens, "idempotency", "sessions", "spend_holds"}
	for t := range deleted {
		if !slices.Contains(tables, t) {
			tables = append(tables, t)
		}
	}
	sort.Strings(tables)
	fmt.Fprintf(w, "%-16s %12s\n", "table", "rows deleted")
	var total int64
	for _, t := range tables {
		fmt.Fprintf(w, "%-16s %12d\n", t, deleted[t])
		total += deleted[t]
	}
	fmt.Fprintf(w, "%-16s %12d\n", "total", total)
	if busy {
		fmt.Fprintln(w, "another instance is sweeping this database; it does the rest")
	}
	fmt.Fprintf(w, "took %s\n", took.Round(time.Microsecond))
}
