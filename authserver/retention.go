package authserver

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"time"

	"github.com/ucpbridge/ucpbridge/authserver/metrics"
	"github.com/ucpbridge/ucpbridge/authserver/store"
)

// DefaultSweepInterval is how often Run sweeps expired OAuth records.
// Under steady load the token tables hold about rate × (token lifetime
// + Retention.TokenGrace + interval) rows.
const DefaultSweepInterval = 5 * time.Minute

// sweepBacklogPause is the wait before the next sweep when one stopped
// at Retention.MaxBatches: the backlog is worked off promptly, with a
// pause that lets writes queued behind the batches through.
const sweepBacklogPause = time.Second

// sweeper is the retention sweep's settings, resolved by New.
type sweeper struct {
	store     store.Sweeper
	retention store.Retention
	interval  time.Duration
	onSweep   func(store.SweepStats)
	metrics   *metrics.Metrics
	log       *slog.Logger
	now       func() time.Time
}

func newSweeper(cfg Config) (sweeper, error) {
	r, err := cfg.Retention.WithDefaults()
	if err != nil {
		return sweeper{}, fmt.Errorf("authserver: %w", err)
	}
	sw := sweeper{store: cfg.Store, retention: r, interval: cfg.SweepInterval, onSweep: cfg.OnSweep, metrics: cfg.Metrics, log: cfg.Logger, now: cfg.Now}
	if sw.interval == 0 {
		sw.interval = DefaultSweepInterval
	}
	if sw.log == nil {
		sw.log = slog.New(slog.DiscardHandler)
	}
	if sw.now == nil {
		sw.now = time.Now
	}
	return sw, nil
}

// SweepOAuth deletes the OAuth records Config.Retention no longer needs
// (expired access tokens and codes, ended and revoked refresh families;
// see store.Retention), logs what it did at Info, counts it in
// Config.Metrics and returns the figures.
// Run calls it on a timer; `ucpbridge sweep` once.
func (s *Server) SweepOAuth(ctx context.Context) (store.SweepStats, error) {
	st, err := s.sweep.store.SweepExpired(ctx, s.sweep.now(), s.sweep.retention)
	attrs := SweepLogAttrs(st)
	if err != nil {
		s.sweep.log.LogAttrs(ctx, slog.LevelError, "authserver: retention sweep", append(attrs, slog.Any("err", err))...)
	} else {
		s.sweep.log.LogAttrs(ctx, slog.LevelInfo, "authserver: retention sweep", attrs...)
	}
	// Rows deleted before a failure are gone: they are counted too.
	for table, n := range st.Deleted {
		s.sweep.metrics.RowsSwept(table, n)
	}
	result := metrics.SweepOK
	switch {
	case err != nil:
		result = metrics.SweepError
	case st.Busy:
		result = metrics.SweepBusy
	case st.More:
		result = metrics.SweepMore
	}
	s.sweep.metrics.SweepDone(metrics.SweepOAuth, result, st.Duration)
	return st, err
}

// SweepLogAttrs are st as log attributes: rows deleted per table (sorted
// by name), the total, the duration and the More and Busy flags.
func SweepLogAttrs(st store.SweepStats) []slog.Attr {
	tables := make([]string, 0, len(st.Deleted))
	for t := range st.Deleted {
		tables = append(tables, t)
	}
	sort.Strings(tables)
	attrs := make([]slog.Attr, 0, len(tables)+4)
	for _, t := range tables {
		attrs = append(attrs, slog.Int64(t, st.Deleted[t]))
	}
	return append(attrs, slog.Int64("total", st.Total()), slog.Duration("duration", st.Duration),
		slog.Bool("more", st.More), slog.Bool("busy", st.Busy))
}

// sweepEvery sweeps at once, then every interval (sooner while a
// backlog remains) until ctx ends.
func (s *Server) sweepEvery(ctx context.Context) {
	if s.sweep.interval < 0 {
		return
	}
	for {
		st, err := s.SweepOAuth(ctx)
		if ctx.Err() != nil {
			return
		}
		if s.sweep.onSweep != nil {
			s.sweep.onSweep(st)
		}
		wait := s.sweep.interval
		if err == nil && st.More {
			wait = min(wait, sweepBacklogPause)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}
