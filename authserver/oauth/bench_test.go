package oauth_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/ucpbridge/ucpbridge/authserver/oauth"
	"github.com/ucpbridge/ucpbridge/authserver/store"
	"github.com/ucpbridge/ucpbridge/authserver/store/sqlstore/sqlstoretest"
)

// benchStores yields openers for a SQLite store and, with
// UCPBRIDGE_TEST_PG, a PostgreSQL one in a throwaway schema. Call an
// opener with the sub-benchmark's b: the store is then closed (and the
// schema dropped) when that run ends. b.Run may call its function several
// times (once per b.N guess, times -count); stores opened on the parent b
// would all stay open until the parent ends, and with -count above 1 the
// PostgreSQL pools exhaust the server's max_connections.
func benchStores() map[string]func(testing.TB) store.Store {
	stores := map[string]func(testing.TB) store.Store{"sqlite": func(tb testing.TB) store.Store { return sqlstoretest.SQLite(tb) }}
	if os.Getenv(sqlstoretest.EnvPG) != "" {
		stores["postgres"] = func(tb testing.TB) store.Store { return sqlstoretest.Postgres(tb) }
	}
	return stores
}

func tokenRequest(form url.Values) *http.Request {
	r := httptest.NewRequest(http.MethodPost, oauth.PathToken, strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return r
}

// BenchmarkTokenClientCredentials issues app tokens through the handler
// in process (no network): client authentication, scope check, one insert.
func BenchmarkTokenClientCredentials(b *testing.B) {
	for name, open := range benchStores() {
		b.Run(name, func(b *testing.B) {
			e := newEnvWithStore(b, open(b), nil)
			form := url.Values{"grant_type": {"client_credentials"}, "client_id": {merchantID}, "client_secret": {e.merchantSecret}, "scope": {"orders:read"}}
			b.SetParallelism(8) // 16 concurrent requests on 2 cores, as in the goal
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					w := httptest.NewRecorder()
					e.as.ServeHTTP(w, tokenRequest(form))
					if w.Code != 200 {
						b.Fatalf("%d %s", w.Code, w.Body)
					}
				}
			})
		})
	}
}

// BenchmarkTokenRefresh rotates a chain of refresh tokens: lookup, a
// locked rotation transaction, two inserts, the sealed response.
func BenchmarkTokenRefresh(b *testing.B) {
	for name, open := range benchStores() {
		b.Run(name, func(b *testing.B) {
			e := newEnvWithStore(b, open(b), nil)
			const redirect = "http://127.0.0.1/callback"
			code, verifier := e.codeFor(redirect, "purchase:complete offline_access")
			w := httptest.NewRecorder()
			e.as.ServeHTTP(w, tokenRequest(exchangeForm(code, verifier, redirect)))
			var tok struct {
				RefreshToken string `json:"refresh_token"`
			}
			json.Unmarshal(w.Body.Bytes(), &tok)
			b.ResetTimer()
			for b.Loop() {
				w := httptest.NewRecorder()
				e.as.ServeHTTP(w, tokenRequest(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}, "client_id": {agentID}}))
				if w.Code != 200 {
					b.Fatalf("%d %s", w.Code, w.Body)
				}
				json.Unmarshal(w.Body.Bytes(), &tok)
			}
		})
	}
}

// BenchmarkValidateAccessToken is what a resource server pays per request.
func BenchmarkValidateAccessToken(b *testing.B) {
	for name, open := range benchStores() {
		b.Run(name, func(b *testing.B) {
			e := newEnvWithStore(b, open(b), nil)
			w := httptest.NewRecorder()
			e.as.ServeHTTP(w, tokenRequest(url.Values{"grant_type": {"client_credentials"}, "client_id": {merchantID}, "client_secret": {e.merchantSecret}}))
			var tok struct {
				AccessToken string `json:"access_token"`
			}
			json.Unmarshal(w.Body.Bytes(), &tok)
			ctx := context.Background()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := e.as.ValidateAccessToken(ctx, tok.AccessToken); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}
