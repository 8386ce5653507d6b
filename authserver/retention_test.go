package authserver_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2/clientcredentials"

	"github.com/ucpbridge/ucpbridge/authserver"
	"github.com/ucpbridge/ucpbridge/authserver/authservertest"
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
	p := authservertest.Start(t, &authservertest.Options{Config: func(c *authserver.Config) {
		c.Now = now
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
