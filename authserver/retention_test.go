package authserver_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/ucpbridge/ucpbridge/authserver"
	"github.com/ucpbridge/ucpbridge/authserver/authservertest"
	"github.com/ucpbridge/ucpbridge/authserver/metrics"
	"github.com/ucpbridge/ucpbridge/authserver/shop"
	"github.com/ucpbridge/ucpbridge/authserver/store"
)

// syncBuffer is a log sink the server's goroutines and the test share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestRunSweepsExpiredTokens: Run sweeps on its timer; a merchant's
// token (issued through golang.org/x/oauth2) is deleted once expired
// past the grace, the figures reach OnSweep and the log at Info.
func TestRunSweepsExpiredTokens(t *testing.T) {
	t.Parallel()
	var skew atomic.Int64 // the platform's clock runs this far ahead
	now := func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	sweeps := make(chan store.SweepStats, 100)
	var logs syncBuffer
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg, metrics.Options{})
	if err != nil {
		t.Fatal(err)
	}
	p := authservertest.Start(t, &authservertest.Options{Config: func(c *authserver.Config) {
		c.Now = now
		c.Metrics = m
		c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		c.SweepInterval = 10 * time.Millisecond
		c.Retention = store.Retention{TokenGrace: time.Second}
		c.OnSweep = func(st store.SweepStats) {
			select {
			case sweeps <- st:
			default:
			}
		}
	}})
	cc := clientcredentials.Config{ClientID: p.MerchantID, ClientSecret: p.MerchantSecret, TokenURL: p.TokenURL, Scopes: []string{"orders:read"}}
	tok, err := cc.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256([]byte(tok.AccessToken))
	if _, err := p.Store.AccessToken(context.Background(), h[:], now()); err != nil {
		t.Fatalf("fresh token: %v", err)
	}
	skew.Store(int64(2 * time.Hour)) // past the 1 h lifetime and the grace
	deadline := time.After(30 * time.Second)
	for {
		var st store.SweepStats
		select {
		case st = <-sweeps:
		case <-deadline:
			t.Fatal("no sweep deleted the expired token")
		}
		if st.Deleted[store.TableAccessTokens] > 0 {
			break
		}
	}
	if _, err := p.Store.AccessToken(context.Background(), h[:], now()); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("swept token: %v", err)
	}
	if l := logs.String(); !strings.Contains(l, "level=INFO msg=\"authserver: retention sweep\" access_tokens=1") {
		t.Fatalf("no Info line with the figures in:\n%s", l)
	}
	// And the metrics: rows per table, one duration series per result.
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var rows float64
	var sweepSeries []string
	for _, mf := range mfs {
		for _, mm := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range mm.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			switch mf.GetName() {
			case "ucpbridge_sweep_deleted_rows_total":
				if labels["table"] == store.TableAccessTokens {
					rows = mm.GetCounter().GetValue()
				}
			case "ucpbridge_sweep_duration_seconds":
				sweepSeries = append(sweepSeries, labels["sweep"]+"/"+labels["result"])
			}
		}
	}
	if rows < 1 || !slices.Contains(sweepSeries, "oauth/ok") {
		t.Fatalf("metrics: access_tokens deleted %v, sweep series %v", rows, sweepSeries)
	}
}

// TestNewRefusesNegativeRetention: a negative period is a configuration
// error, not a sweep that deletes what is still needed.
func TestNewRefusesNegativeRetention(t *testing.T) {
	t.Parallel()
	p := authservertest.Start(t, &authservertest.Options{SQLiteOnly: true})
	_, err := authserver.New(authserver.Config{Issuer: "https://api.example", Store: p.Store, Keys: &shop.MemoryKeys{},
		Retention: store.Retention{RevokedRetention: -time.Hour}})
	if err == nil || !strings.Contains(err.Error(), "RevokedRetention") {
		t.Fatalf("%v", err)
	}
}
