package authserver_test

import (
	"errors"
	"net/http/httptest"
	"testing"

	"golang.org/x/oauth2/clientcredentials"

	"github.com/ucpbridge/ucpbridge/authserver"
)

// TestIdentify: the platform API key (<client_id>.<secret>) and bearer
// tokens identify the caller; the key wins over a bearer; anything wrong
// is refused with the typed error.
func TestIdentify(t *testing.T) {
	e := newEnv(t, nil)
	cc := &clientcredentials.Config{ClientID: merchantID, ClientSecret: e.merchantSecret, TokenURL: e.srv.URL + authserver.PathToken, Scopes: []string{"orders:read"}}
	tok, err := cc.Token(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	key := merchantID + "." + e.merchantSecret
	for _, tc := range []struct {
		name         string
		apiKey, auth string
		client       string
		scopes       int
		err          error
	}{
		{"none", "", "", "", 0, nil},
		{"api key", key, "", merchantID, 0, nil},
		{"api key wins over bearer", key, "Bearer ucpb_at_bogus", merchantID, 0, nil},
		{"bearer", "", "Bearer " + tok.AccessToken, merchantID, 1, nil},
		{"bearer scheme is case-insensitive", "", "bearer " + tok.AccessToken, merchantID, 1, nil},
		{"wrong secret", merchantID + ".ucpb_cs_wrong", "", "", 0, authserver.ErrInvalidAPIKey},
		{"unknown client", "nobody." + e.merchantSecret, "", "", 0, authserver.ErrInvalidAPIKey},
		{"public client has no secret", agentID + ".x", "", "", 0, authserver.ErrInvalidAPIKey},
		{"no separator", e.merchantSecret, "", "", 0, authserver.ErrInvalidAPIKey},
		{"empty secret", merchantID + ".", "", "", 0, authserver.ErrInvalidAPIKey},
		{"secret as bearer", "", "Bearer " + e.merchantSecret, "", 0, authserver.ErrInvalidToken},
		{"basic scheme", "", "Basic eDp5", "", 0, authserver.ErrInvalidToken},
		{"unknown token", "", "Bearer ucpb_at_nope", "", 0, authserver.ErrInvalidToken},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/s/x/orders/1", nil)
			if tc.apiKey != "" {
				r.Header.Set("X-API-Key", tc.apiKey)
			}
			if tc.auth != "" {
				r.Header.Set("Authorization", tc.auth)
			}
			c, err := e.as.Identify(r)
			if !errors.Is(err, tc.err) || (err == nil) != (tc.err == nil) {
				t.Fatalf("err %v, want %v", err, tc.err)
			}
			if tc.client == "" {
				if c != nil {
					t.Fatalf("caller %+v", c)
				}
				return
			}
			if c == nil || c.ClientID != tc.client || len(c.Scopes) != tc.scopes {
				t.Fatalf("caller %+v", c)
			}
		})
	}
}
