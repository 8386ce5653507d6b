package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"time"

	"github.com/ucpbridge/ucpbridge/authserver"
	"github.com/ucpbridge/ucpbridge/authserver/shop"
	"github.com/ucpbridge/ucpbridge/authserver/store/sqlstore"
)

// runServe runs the platform for real: an explicit public issuer, the
// spec's https-only profile rules (no dev fallbacks), keys from disk.
func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", ":8080", "listen address")
	issuer := fs.String("issuer", "", "public base URL, e.g. https://api.example.com (required; http only for loopback)")
	dsn := fs.String("db", "", "PostgreSQL URL (postgres://…) or SQLite file path (required)")
	keysDir := fs.String("keys-dir", "", "directory holding each store's signing key, <slug>.jwk (required; created keys are written here)")
	sealFile := fs.String("seal-key", "", "file holding the 32-byte seal key, shared by every instance (required; created if missing)")
	seed := fs.Bool("seed-demo", false, "create the demo stores if they do not exist")
	verbose := fs.Bool("v", false, "log every request error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *issuer == "" || *dsn == "" || *keysDir == "" || *sealFile == "" {
		fs.Usage()
		return errors.New("serve: --issuer, --db, --keys-dir and --seal-key are required")
	}
	if err := checkIssuer(*issuer); err != nil {
		return err
	}
	st, err := sqlstore.Open(ctx, *dsn)
	if err != nil {
		return err
	}
	defer st.Close()
	key, err := loadOrCreateKey(*sealFile)
	if err != nil {
		return err
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelInfo
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	as, err := authserver.New(authserver.Config{Issuer: *issuer, Store: st, CIMD: authserver.NewCIMDFetcher(nil), SealKey: key, Logger: logger})
	if err != nil {
		return err
	}
	stores, err := shop.New(shop.Config{BaseURL: *issuer, Store: st, Keys: &shop.FileKeys{Dir: *keysDir},
		Authenticate: identify(as, *issuer), Logger: logger})
	if err != nil {
		return err
	}
	if *seed {
		if err := shop.Seed(ctx, st, shop.DemoShops(), time.Now()); err != nil {
			return err
		}
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "ucpbridge serve: listening on %s as %s\n", ln.Addr(), *issuer)
	srv := &http.Server{Handler: platformHandler(as, stores), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second}
	go stores.SweepEvery(ctx, time.Hour)
	go stores.DeliverEvery(ctx, time.Second)
	return serveUntilDone(ctx, srv, ln)
}

// checkIssuer: https, or http on a loopback host (a local TLS-terminating
// proxy); no path, query or trailing slash.
func checkIssuer(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || (u.Path != "" && u.Path != "/") || s[len(s)-1] == '/' {
		return fmt.Errorf("serve: --issuer %q must be an origin like https://api.example.com", s)
	}
	if u.Scheme == "https" {
		return nil
	}
	if ip, err := netip.ParseAddr(u.Hostname()); u.Scheme == "http" && (u.Hostname() == "localhost" || err == nil && ip.IsLoopback()) {
		return nil
	}
	return fmt.Errorf("serve: --issuer %q must use https", s)
}
