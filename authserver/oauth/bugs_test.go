package oauth_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"golang.org/x/oauth2"

	"github.com/ucpbridge/ucpbridge/authserver/oauth"
	"github.com/ucpbridge/ucpbridge/authserver/store"
	"github.com/ucpbridge/ucpbridge/authserver/store/sqlstore/sqlstoretest"
)

// TestCIMDNoOpenRedirect: a CIMD document names its own redirect URIs, so
// errors found before the buyer has used our page are shown on it; only
// after the buyer acts (deny) does the browser go to the document's URI.
func TestCIMDNoOpenRedirect(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	const evil = "https://evil.example/landing"
	var docURL string
	doc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"client_id": docURL, "client_name": "Phish", "redirect_uris": []string{evil},
			"scope": "orders:read"})
	}))
	defer doc.Close()
	docURL = doc.URL + "/client.json"
	base := func(mod func(q url.Values)) string {
		q := url.Values{"response_type": {"code"}, "client_id": {docURL}, "redirect_uri": {evil}, "state": {"s"},
			"scope": {"orders:read"}, "code_challenge": {oauth2.S256ChallengeFromVerifier(oauth2.GenerateVerifier())}, "code_challenge_method": {"S256"}}
		mod(q)
		return e.url(oauth.PathAuthorize) + "?" + q.Encode()
	}
	for name, mod := range map[string]func(url.Values){
		"implicit flow":   func(q url.Values) { q.Set("response_type", "token") },
		"no PKCE":         func(q url.Values) { q.Del("code_challenge") },
		"plain PKCE":      func(q url.Values) { q.Set("code_challenge_method", "plain") },
		"scope outside":   func(q url.Values) { q.Set("scope", "purchase:complete") },
		"unknown scope":   func(q url.Values) { q.Set("scope", "admin") },
		"bad resource":    func(q url.Values) { q.Set("resource", "not-a-uri") },
		"no redirect uri": func(q url.Values) { q.Del("redirect_uri"); q.Set("response_type", "token") },
	} {
		status, _, body, res := newBrowser(t).open(base(mod))
		if status != 400 || res.Header.Get("Location") != "" || !strings.Contains(body, "cannot continue") {
			t.Errorf("%s: %d Location %q", name, status, res.Header.Get("Location"))
		}
	}
	// After the buyer decides, the document's URI gets the answer.
	b := newBrowser(t)
	status, form, _, _ := b.open(base(func(url.Values) {}))
	if status != 200 {
		t.Fatalf("consent page: %d", status)
	}
	res := b.submit(e.url(oauth.PathAuthorize), form, map[string]string{"email": buyerEmail, "password": buyerPassword, "action": "deny"})
	if loc := res.Header.Get("Location"); res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, evil+"?") || !strings.Contains(loc, "access_denied") {
		t.Fatalf("deny: %d %s", res.StatusCode, loc)
	}
}

// TestLoopbackRedirectURIRules: any port on a registered loopback URI,
// but only real ports, and never a fragment.
func TestLoopbackRedirectURIRules(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	open := func(redirect string) (int, string) {
		q := url.Values{"response_type": {"code"}, "client_id": {agentID}, "redirect_uri": {redirect}, "state": {"s"},
			"code_challenge": {oauth2.S256ChallengeFromVerifier(oauth2.GenerateVerifier())}, "code_challenge_method": {"S256"}}
		status, _, body, _ := newBrowser(t).open(e.url(oauth.PathAuthorize) + "?" + q.Encode())
		return status, body
	}
	for _, ok := range []string{"http://127.0.0.1/callback", "http://127.0.0.1:1/callback", "http://127.0.0.1:65535/callback", "http://127.0.0.1:8080/callback"} {
		if status, body := open(ok); status != 200 {
			t.Errorf("%s refused: %d %s", ok, status, body)
		}
	}
	for _, bad := range []string{
		"http://127.0.0.1:8080/callback#frag",
		"http://127.0.0.1:8080/callback#",
		"http://127.0.0.1:0/callback",
		"http://127.0.0.1:65536/callback",
		"http://127.0.0.1:99999/callback",
		"http://127.0.0.1:/callback",
		"http://127.0.0.1:08080/callback",
		"http://127.0.0.1:123456/callback",
	} {
		if status, body := open(bad); status != 400 || !strings.Contains(body, "redirect_uri is not registered") {
			t.Errorf("%s accepted: %d", bad, status)
		}
	}
}

// TestConsentCurrencyExponents: the allowance is typed in major units of
// its currency and stored in that currency's minor units (ISO 4217):
// yen have none, dinars three. Unknown codes are refused.
func TestConsentCurrencyExponents(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	const redirect = "http://127.0.0.1:7000/callback"
	grant := func(per, daily, cur string) (map[string]any, bool) {
		conf := e.oauth2Config(agentID, redirect, "purchase:complete")
		verifier := oauth2.GenerateVerifier()
		b := newBrowser(t)
		authURL := conf.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier))
		_, form, _, _ := b.open(authURL)
		res := b.submit(e.url(oauth.PathAuthorize), form, map[string]string{"email": buyerEmail, "password": buyerPassword, "action": "approve",
			"max_per_order": per, "daily_cap": daily, "currency": cur, "expires_days": "30"})
		if res.StatusCode != http.StatusSeeOther {
			return nil, false
		}
		loc, _ := url.Parse(res.Header.Get("Location"))
		tok, err := conf.Exchange(context.Background(), loc.Query().Get("code"), oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatal(err)
		}
		al, _ := tok.Extra("allowance").(map[string]any)
		return al, true
	}
	for _, tc := range []struct {
		per, daily, cur string
		wantPer         float64
		wantDaily       float64
	}{
		{"125", "1000", "JPY", 125, 1000},
		{"125", "1000", "jpy", 125, 1000},
		{"125.50", "300", "EUR", 12550, 30000},
		{"1.234", "2.5", "BHD", 1234, 2500},
		{"10", "20", "XAF", 10, 20},
	} {
		al, ok := grant(tc.per, tc.daily, tc.cur)
		if !ok || al["max_per_order"] != tc.wantPer || al["daily_cap"] != tc.wantDaily || al["currency"] != strings.ToUpper(tc.cur) {
			t.Errorf("%s %s %s: %v", tc.per, tc.daily, tc.cur, al)
		}
	}
	for _, tc := range [][3]string{
		{"125.5", "1000", "JPY"}, // yen have no decimals
		{"1.2345", "2", "BHD"},
		{"10", "20", "XYZ"}, // not ISO 4217
		{"10", "20", "XAU"}, // no minor unit
		{"10", "20", "EU"},
		{"-1", "20", "EUR"},
		{"5.", "20", "EUR"},
		{"10000000001", "10000000001", "EUR"}, // above 10^12 minor units
	} {
		if al, ok := grant(tc[0], tc[1], tc[2]); ok {
			t.Errorf("%v accepted: %v", tc, al)
		}
	}
}

// levels records the level of every log record.
type levels struct {
	mu  sync.Mutex
	max slog.Level
	n   int
}

func (l *levels) Enabled(context.Context, slog.Level) bool { return true }
func (l *levels) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n == 0 || r.Level > l.max {
		l.max = r.Level
	}
	l.n++
	return nil
}
func (l *levels) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *levels) WithGroup(string) slog.Handler      { return l }
func (l *levels) errors() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n > 0 && l.max >= slog.LevelError
}

// TestBadBytes: NUL or invalid UTF-8 where the store would see it is a
// 400 invalid_request (or an invalid API key), never a 5xx, and nothing
// is logged as an error; on PostgreSQL too, which refuses such text.
func TestBadBytes(t *testing.T) {
	t.Parallel()
	stores := map[string]func(testing.TB) store.Store{"sqlite": func(t testing.TB) store.Store { return sqlstoretest.SQLite(t) }}
	stores["postgres"] = func(t testing.TB) store.Store {
		if st := sqlstoretest.Postgres(t); st != nil {
			return st
		}
		return nil
	}
	for name, open := range stores {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			st := open(t)
			if st == nil {
				t.Skip(sqlstoretest.EnvPG + " not set")
			}
			log := &levels{}
			e := newEnvWithStore(t, st, func(c *oauth.Config) { c.Logger = slog.New(log) })
			basic := func(id, secret string) string {
				return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))
			}
			for label, auth := range map[string]string{
				"NUL in a Basic client id":    basic("demo\x00agent", "x"),
				"bad UTF-8 in a Basic id":     basic("\xff\xfe", "x"),
				"NUL in a Basic secret":       basic(merchantID, "a\x00b"),
				"raw NUL in Basic (no %-ing)": "Basic " + base64.StdEncoding.EncodeToString([]byte("a\x00b:c")),
			} {
				for _, path := range []string{oauth.PathToken, oauth.PathRevoke, oauth.PathIntrospect} {
					req, _ := http.NewRequest("POST", e.url(path), strings.NewReader("grant_type=client_credentials&token=x"))
					req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
					req.Header.Set("Authorization", auth)
					res, err := http.DefaultClient.Do(req)
					if err != nil {
						t.Fatal(err)
					}
					var m map[string]any
					json.NewDecoder(res.Body).Decode(&m)
					res.Body.Close()
					if res.StatusCode != 400 || m["error"] != "invalid_request" {
						t.Errorf("%s at %s: %d %v", label, path, res.StatusCode, m)
					}
				}
			}
			for _, key := range []string{"demo\x00agent.secret", "\xff\xfe.secret", merchantID + ".\x00"} {
				if _, err := e.as.ValidateAPIKey(context.Background(), key); !errors.Is(err, oauth.ErrInvalidAPIKey) {
					t.Errorf("API key %q: %v", key, err)
				}
			}
			// A CIMD document that does not qualify is the client's
			// problem: refused on the page, logged at most at debug.
			doc := httptest.NewServer(http.NotFoundHandler())
			defer doc.Close()
			status, _, _, _ := newBrowser(t).open(e.oauth2Config(doc.URL+"/client.json", "http://127.0.0.1/cb").
				AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
			if status != 400 {
				t.Errorf("refused CIMD id: %d", status)
			}
			if log.errors() {
				t.Errorf("bad input was logged as an error")
			}
		})
	}
}
