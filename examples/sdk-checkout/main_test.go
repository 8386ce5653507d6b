package main

import (
	"bytes"
	"context"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ucpbridge/ucpbridge/authserver/authservertest"
	"github.com/ucpbridge/ucpbridge/ucpclient/ucp"
)

// testConfig is the example's default configuration aimed at p, with the
// buyer's browser played by the consent page driver.
func testConfig(t *testing.T, p *authservertest.Platform, al *authservertest.Allowance) config {
	t.Helper()
	ctx := t.Context()
	return config{BaseURL: p.URL, APIKey: p.PlatformKey, ClientID: p.AgentClientID, Store: "flower-shop", Query: "roses",
		Quantity: 1, Ship: ucp.PostalAddress{StreetAddress: "10 Rue de Rivoli", AddressLocality: "Paris", PostalCode: "75001",
			AddressCountry: "FR", FirstName: "Ada", LastName: "Lovelace"},
		OpenBrowser: func(authURL string) error {
			// Not blocking: Connect waits for the redirect this sends.
			go func() {
				loc, err := p.SignIn(ctx, authURL, &authservertest.Consent{Allowance: al})
				if err != nil {
					t.Errorf("consent: %v", err)
					return
				}
				if res, err := http.Get(loc.String()); err == nil {
					res.Body.Close()
				}
			}()
			return nil
		}}
}

var orderLine = regexp.MustCompile(`(?m)^order   (\S+): (\d+\.\d{2}) EUR$`)

// TestRun buys roses at flower-shop with the buyer signed in: the order is
// placed, its id printed with the total in euros (two decimals), and the
// order is the store's (read back with the platform key).
func TestRun(t *testing.T) {
	t.Parallel()
	p := authservertest.Start(t, nil)
	cfg := testConfig(t, p, nil)
	cfg.TokenFile = filepath.Join(t.TempDir(), "buyer.json")
	var out bytes.Buffer
	if err := run(t.Context(), cfg, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	m := orderLine.FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no order line:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "found   bouquet_roses") {
		t.Fatalf("search line:\n%s", out.String())
	}
	getOrder(t, p, "flower-shop", m[1])

	// A second run reuses the saved tokens: no browser.
	cfg.OpenBrowser = func(string) error { t.Error("signed in again"); return nil }
	out.Reset()
	if err := run(t.Context(), cfg, &out); err != nil || !orderLine.MatchString(out.String()) {
		t.Fatalf("second run: %v\n%s", err, out.String())
	}
}

// TestRunYen buys at kyoto-tea, which completes only signed requests (the
// example signs every request with its profile's key), and prints yen
// without decimals.
func TestRunYen(t *testing.T) {
	t.Parallel()
	p := authservertest.Start(t, nil)
	jpy := &authservertest.Allowance{MaxPerOrder: "100000", DailyCap: "200000", Currency: "JPY", Days: 30}
	cfg := testConfig(t, p, jpy)
	cfg.Store, cfg.Query = "kyoto-tea", "tea"
	cfg.Ship = ucp.PostalAddress{StreetAddress: "1 Karasuma", AddressLocality: "Kyoto", PostalCode: "600-8001", AddressCountry: "JP"}
	var out bytes.Buffer
	if err := run(t.Context(), cfg, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if !regexp.MustCompile(`(?m)^order   \S+: \d+ JPY$`).MatchString(out.String()) {
		t.Fatalf("%s", out.String())
	}
}

// TestRunKeyOnly: the platform key alone cannot pay by card; the example
// prints the hosted page's URL and places no order.
func TestRunKeyOnly(t *testing.T) {
	t.Parallel()
	p := authservertest.Start(t, nil)
	cfg := testConfig(t, p, nil)
	cfg.KeyOnly = true
	cfg.OpenBrowser = func(string) error { t.Error("no sign-in with -key-only"); return nil }
	var out bytes.Buffer
	if err := run(t.Context(), cfg, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if !regexp.MustCompile(`(?m)^pay at  http://\S+/continue`).MatchString(out.String()) || strings.Contains(out.String(), "order ") {
		t.Fatalf("%s", out.String())
	}
}

// TestRunOverAllowance: a quantity over the buyer's per-order limit is a
// clear error naming the limit, and no order.
func TestRunOverAllowance(t *testing.T) {
	t.Parallel()
	p := authservertest.Start(t, nil)
	cfg := testConfig(t, p, nil)
	cfg.Quantity = 3
	var out bytes.Buffer
	err := run(t.Context(), cfg, &out)
	if err == nil || !strings.Contains(err.Error(), "max_per_order") || !strings.Contains(err.Error(), "50.00 EUR") {
		t.Fatalf("%v\n%s", err, out.String())
	}
}

func getOrder(t *testing.T, p *authservertest.Platform, slug, id string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, p.StoreURL(slug)+"/orders/"+id, nil)
	req.Header.Set("X-API-Key", p.PlatformKey)
	req.Header.Set("UCP-Agent", `profile="http://127.0.0.1:9/.well-known/ucp"`)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("order %s: HTTP %d", id, res.StatusCode)
	}
}

// TestMoney prints minor units with each currency's ISO 4217 decimals.
func TestMoney(t *testing.T) {
	for _, tc := range []struct {
		minor int64
		cur   string
		want  string
	}{{4190, "EUR", "41.90 EUR"}, {5, "USD", "0.05 USD"}, {5400, "JPY", "5400 JPY"}, {1234, "BHD", "1.234 BHD"}} {
		if got := money(tc.minor, tc.cur); got != tc.want {
			t.Errorf("money(%d, %s) = %q; want %q", tc.minor, tc.cur, got, tc.want)
		}
	}
}
