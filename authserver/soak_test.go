package authserver_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ucpbridge/ucpbridge/authserver"
	"github.com/ucpbridge/ucpbridge/authserver/shop"
	"github.com/ucpbridge/ucpbridge/authserver/store"
	"github.com/ucpbridge/ucpbridge/authserver/store/sqlstore"
	"github.com/ucpbridge/ucpbridge/authserver/store/sqlstore/sqlstoretest"
)

// TestSoakRetention is the issue 13 soak, run by hand (it is skipped
// unless UCPBRIDGE_SOAK is set): the platform as `ucpbridge dev` builds
// it (rate limits off, demo fixtures) on a SQLite file, or PostgreSQL
// with UCPBRIDGE_SOAK_PG=1 and UCPBRIDGE_TEST_PG, serving on loopback;
// 16 workers issue client_credentials tokens at full speed over HTTP
// keep-alive with a 5 s token lifetime. It prints the database size
// every 10 s and the token latencies (p50, p99, max) of each 10 s window
// and of the whole run.
//
//	UCPBRIDGE_SOAK=1 go test -run TestSoakRetention -v -timeout 30m ./authserver/
//
// Settings (environment): UCPBRIDGE_SOAK_SECONDS (default 120),
// UCPBRIDGE_SOAK_SWEEP (a sweep interval; "off" runs no sweeper;
// default 10s), UCPBRIDGE_SOAK_GRACE (Retention.TokenGrace, default 5s),
// UCPBRIDGE_SOAK_BATCH (Retention.BatchSize, default the store's),
// UCPBRIDGE_SOAK_WORKERS (default 16; 0 with UCPBRIDGE_SOAK_WRK=1 to
// load with wrk alone, whose latency distribution is then printed),
// UCPBRIDGE_SOAK_NOINDEX=1 (drop access_tokens_expires first: the
// index's cost on issuance), UCPBRIDGE_SOAK_VACUUM=1 (PostgreSQL: VACUUM
// access_tokens every 10 s, for a server with autovacuum off).
func TestSoakRetention(t *testing.T) {
	if os.Getenv("UCPBRIDGE_SOAK") == "" {
		t.Skip("set UCPBRIDGE_SOAK=1 to run the retention soak")
	}
	env := func(k, def string) string {
		if v := os.Getenv(k); v != "" {
			return v
		}
		return def
	}
	seconds, _ := strconv.Atoi(env("UCPBRIDGE_SOAK_SECONDS", "120"))
	workers, _ := strconv.Atoi(env("UCPBRIDGE_SOAK_WORKERS", "16"))
	batch, _ := strconv.Atoi(env("UCPBRIDGE_SOAK_BATCH", "0")) // 0: the default
	grace, err := time.ParseDuration(env("UCPBRIDGE_SOAK_GRACE", "5s"))
	if err != nil {
		t.Fatal(err)
	}
	interval := time.Duration(-1)
	if v := env("UCPBRIDGE_SOAK_SWEEP", "10s"); v != "off" {
		if interval, err = time.ParseDuration(v); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	var (
		st   *sqlstore.Store
		size func() string
	)
	if os.Getenv("UCPBRIDGE_SOAK_PG") != "" {
		if st = sqlstoretest.Postgres(t); st == nil {
			t.Fatal("UCPBRIDGE_SOAK_PG needs " + sqlstoretest.EnvPG)
		}
		size = func() string {
			var tok, all int64
			st.DB().QueryRowContext(ctx, `SELECT pg_total_relation_size('access_tokens'),
				(SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
				 WHERE n.nspname = current_schema() AND c.relkind = 'r')`).Scan(&tok, &all)
			var rows int64
			st.DB().QueryRowContext(ctx, `SELECT count(*) FROM access_tokens`).Scan(&rows)
			return fmt.Sprintf("schema %.1f MB (access_tokens with indexes %.1f MB), %d access tokens", mb(all), mb(tok), rows)
		}
	} else {
		path := filepath.Join(t.TempDir(), "ucpbridge.db")
		if st, err = sqlstore.Open(ctx, path); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		size = func() string {
			var pages, free, pageSize, rows int64
			st.DB().QueryRowContext(ctx, `SELECT page_count, freelist_count, page_size FROM pragma_page_count, pragma_freelist_count, pragma_page_size`).Scan(&pages, &free, &pageSize)
			st.DB().QueryRowContext(ctx, `SELECT count(*) FROM access_tokens`).Scan(&rows)
			fi, _ := os.Stat(path)
			wal, _ := os.Stat(path + "-wal")
			var walSize int64
			if wal != nil {
				walSize = wal.Size()
			}
			return fmt.Sprintf("file %.1f MB (in use %.1f MB, free pages %.1f MB), wal %.1f MB, %d access tokens",
				mb(fi.Size()), mb((pages-free)*pageSize), mb(free*pageSize), mb(walSize), rows)
		}
	}
	if os.Getenv("UCPBRIDGE_SOAK_NOINDEX") != "" {
		if _, err := st.DB().ExecContext(ctx, `DROP INDEX access_tokens_expires`); err != nil {
			t.Fatal(err)
		}
	}
	if err := authserver.SeedDemo(ctx, st, time.Now()); err != nil {
		t.Fatal(err)
	}
	sweeps := make(chan store.SweepStats, 1000)
	type span struct{ from, to time.Time }
	var (
		spansMu sync.Mutex
		spans   []span // when each sweep ran
	)
	cfg := authserver.Config{Store: st, Keys: &shop.MemoryKeys{}, Dev: true, DisableRateLimits: true,
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
		Retention: store.Retention{TokenGrace: grace, BatchSize: batch}, SweepInterval: interval,
		OnSweep: func(s store.SweepStats) {
			end := time.Now()
			spansMu.Lock()
			spans = append(spans, span{end.Add(-s.Duration), end})
			spansMu.Unlock()
			select {
			case sweeps <- s:
			default:
			}
		}}
	cfg.OAuth.AccessTokenTTL = 5 * time.Second
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Issuer = "http://" + ln.Addr().String()
	srv, err := authserver.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: srv}
	go hs.Serve(ln)
	defer hs.Close()
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); srv.Run(runCtx) }()
	defer func() { stop(); <-done }()

	t.Logf("soak: %d s, %d workers, token lifetime 5 s, grace %v, sweep every %v (negative: off); before: %s", seconds, workers, grace, interval, size())
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {"orders:read"}}.Encode()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	type sample struct {
		at time.Time
		d  time.Duration
	}
	var (
		mu      sync.Mutex
		samples []sample
		errs    int
	)
	end := time.Now().Add(time.Duration(seconds) * time.Second)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			var mine []sample
			bad := 0
			for time.Now().Before(end) {
				req, _ := http.NewRequest(http.MethodPost, cfg.Issuer+"/ucp/oauth2/token", strings.NewReader(form))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.SetBasicAuth(authserver.DemoMerchantID, authserver.DemoMerchantSecret)
				start := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					bad++
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					bad++
					continue
				}
				mine = append(mine, sample{start, time.Since(start)})
			}
			mu.Lock()
			samples = append(samples, mine...)
			errs += bad
			mu.Unlock()
		})
	}
	var wrkOut []byte
	wrkDone := make(chan struct{})
	if os.Getenv("UCPBRIDGE_SOAK_WRK") != "" {
		// wrk (C, two threads, 16 connections) instead of the Go workers:
		// less of the two cores goes to the load generator.
		script := filepath.Join(t.TempDir(), "token.lua")
		auth := base64.StdEncoding.EncodeToString([]byte(authserver.DemoMerchantID + ":" + authserver.DemoMerchantSecret))
		os.WriteFile(script, []byte(`wrk.method = "POST"
wrk.body = "`+form+`"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic `+auth+`"
`), 0o600)
		go func() {
			defer close(wrkDone)
			wrkOut, _ = exec.Command("wrk", "-t2", "-c16", fmt.Sprintf("-d%ds", seconds), "--latency", "-s", script, cfg.Issuer+"/ucp/oauth2/token").CombinedOutput()
		}()
	} else {
		close(wrkDone)
	}
	begin := time.Now()
	tick := time.NewTicker(10 * time.Second)
	for time.Now().Before(end) {
		<-tick.C
		if os.Getenv("UCPBRIDGE_SOAK_VACUUM") != "" {
			// Stands in for autovacuum where the server has it off: a
			// deleted row's space is reused only once vacuumed.
			vstart := time.Now()
			if _, err := st.DB().ExecContext(ctx, `VACUUM access_tokens`); err != nil {
				t.Error(err)
			}
			t.Logf("VACUUM access_tokens took %v", time.Since(vstart).Round(time.Millisecond))
		}
		t.Logf("t=%3.0fs %s", time.Since(begin).Seconds(), size())
	}
	tick.Stop()
	wg.Wait()
	<-wrkDone
	if wrkOut != nil {
		t.Logf("wrk:\n%s", wrkOut)
	}
	elapsed := time.Since(begin)
	// Per-window latencies, then the whole run.
	slices.SortFunc(samples, func(a, b sample) int { return a.at.Compare(b.at) })
	for w := begin; w.Before(begin.Add(elapsed)); w = w.Add(10 * time.Second) {
		var ds []time.Duration
		for _, s := range samples {
			if !s.at.Before(w) && s.at.Before(w.Add(10*time.Second)) {
				ds = append(ds, s.d)
			}
		}
		t.Logf("window %3.0fs: %s", w.Sub(begin).Seconds(), latencies(ds, 10*time.Second))
	}
	all := make([]time.Duration, len(samples))
	for i, s := range samples {
		all[i] = s.d
	}
	t.Logf("run: %s, %d errors", latencies(all, elapsed), errs)
	// Requests that began while a sweep ran against the others, in the
	// same run: a comparison the machine's other load affects alike.
	spansMu.Lock()
	var during, outside []time.Duration
	var sweeping time.Duration
	for _, sp := range spans {
		sweeping += sp.to.Sub(sp.from)
	}
	for _, smp := range samples {
		in := false
		for _, sp := range spans {
			if !smp.at.Before(sp.from) && smp.at.Before(sp.to) {
				in = true
				break
			}
		}
		if in {
			during = append(during, smp.d)
		} else {
			outside = append(outside, smp.d)
		}
	}
	spansMu.Unlock()
	if len(spans) > 0 {
		t.Logf("begun while sweeping (%v in all): %s", sweeping.Round(time.Millisecond), latencies(during, sweeping))
		t.Logf("begun while not sweeping: %s", latencies(outside, elapsed-sweeping))
	}
	var swept store.SweepStats
	swept.Deleted = map[string]int64{}
	var n int
	var longest time.Duration
drain:
	for {
		select {
		case s := <-sweeps:
			n++
			for k, v := range s.Deleted {
				swept.Deleted[k] += v
			}
			longest = max(longest, s.Duration)
		default:
			break drain
		}
	}
	t.Logf("sweeps: %d, deleted %v, longest %v", n, swept.Deleted, longest)
	t.Logf("after the load: %s", size())
	if interval > 0 {
		// Wait for the tokens still in their lifetime and grace to go.
		time.Sleep(5*time.Second + grace + interval + time.Second)
		t.Logf("after the last tokens expired and a sweep ran: %s", size())
	}
}

func mb(n int64) float64 { return float64(n) / (1 << 20) }

func latencies(ds []time.Duration, over time.Duration) string {
	if len(ds) == 0 {
		return "no samples"
	}
	slices.Sort(ds)
	q := func(p float64) time.Duration { return ds[min(len(ds)-1, int(p*float64(len(ds))))] }
	return fmt.Sprintf("%d tokens (%.0f/s), p50 %v, p99 %v, max %v", len(ds), float64(len(ds))/over.Seconds(),
		q(0.5).Round(10*time.Microsecond), q(0.99).Round(10*time.Microsecond), ds[len(ds)-1].Round(10*time.Microsecond))
}
