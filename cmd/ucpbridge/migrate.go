package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/ucpbridge/ucpbridge/authserver/store/sqlstore"
)

const migrateUsage = `usage: ucpbridge migrate --db DSN

Brings a platform database up to the schema this build uses (the
versioned migrations in authserver/store/sqlstore, each applied once, in
one transaction that concurrent instances queue on) and prints the schema
version. --db is a postgres:// URL or a SQLite file path. dev and serve
also migrate when they start; running migrate first, in a deploy step,
keeps a slow migration out of the instances' start.
`

func runMigrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	usageWith(fs, stderr, migrateUsage)
	dsn := fs.String("db", "", "PostgreSQL URL (postgres://…) or SQLite file path (required)")
	if err := parseFlags(fs, args, os.LookupEnv); err != nil {
		return err
	}
	if *dsn == "" || fs.NArg() > 0 {
		fs.Usage()
		return errors.New("migrate: --db is required")
	}
	st, err := sqlstore.Open(ctx, *dsn) // Open runs the migrations
	if err != nil {
		return err
	}
	defer st.Close()
	v, err := schemaVersion(ctx, st)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "database migrated: schema version %d\n", v)
	return err
}

// schemaVersion reads the version sqlstore records in schema_version.
func schemaVersion(ctx context.Context, st *sqlstore.Store) (int, error) {
	var v int
	if err := st.DB().QueryRowContext(ctx, `SELECT MAX(version) FROM schema_version`).Scan(&v); err != nil {
		return 0, fmt.Errorf("migrate: read the schema version: %w", err)
	}
	return v, nil
}
