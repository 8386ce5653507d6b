package bridge_test

import (
	"crypto/rand"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/ucpbridge/ucpbridge/authserver"
	"github.com/ucpbridge/ucpbridge/authserver/authservertest"
	"github.com/ucpbridge/ucpbridge/authserver/oauth"
	"github.com/ucpbridge/ucpbridge/bridge"
	"github.com/ucpbridge/ucpbridge/mandate"
)

// TestHTTPFrontMadeUpBearersDoNotStarveBuyers (review 13): the bridge
// exchanges every bearer it has not seen, from one address and as one
// platform client, so were refused exchanges charged to the token
// endpoint's rate limits, anyone could send the bridge made-up bearers
// until every buyer's exchange was refused with slow_down (the bridge
// then answers 503 to all). With the limits on, a flood of made-up
// bearers is 401 each, and a real buyer's fresh bearer still works.
func TestHTTPFrontMadeUpBearersDoNotStarveBuyers(t *testing.T) {
	srv := httptest.NewUnstartedServer(nil)
	mcpURL := "http://" + srv.Listener.Addr().String() + "/mcp"
	p := authservertest.Start(t, &authservertest.Options{BridgeResources: []string{mcpURL},
		Config: func(c *authserver.Config) {
			c.DisableRateLimits = false
			// Small buckets that refill slowly: the test sends far more
			// than they hold.
			c.OAuth.RateLimits.PerIP = oauth.RateLimit{Rate: 0.5, Burst: 15}
			c.OAuth.RateLimits.PerClient = oauth.RateLimit{Rate: 0.5, Burst: 15}
		}})
	key, err := mandate.GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	b, err := bridge.New(bridge.Config{PlatformURL: p.URL, APIKey: p.PlatformKey,
		AgentProfile: strings.TrimSuffix(mcpURL, "/mcp") + "/.well-known/ucp", SigningKey: key})
	if err != nil {
		t.Fatal(err)
	}
	h, err := b.HTTPHandler(bridge.HTTPOptions{PublicURL: mcpURL})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.(io.Closer).Close() })
	srv.Config.Handler = h
	srv.Start()
	t.Cleanup(srv.Close)

	// A buyer signs the agent in for the bridge's resource (not yet sent
	// to the bridge, so its exchange is still to come).
	conf := p.OAuth2Config("purchase:complete", "orders:read")
	v := oauth2.GenerateVerifier()
	resource := oauth2.SetAuthURLParam("resource", mcpURL)
	loc, err := p.SignIn(t.Context(), conf.AuthCodeURL("s", oauth2.S256ChallengeOption(v), resource), nil)
	if err != nil {
		t.Fatal(err)
	}
	buyer, err := conf.Exchange(t.Context(), loc.Query().Get("code"), oauth2.VerifierOption(v), resource)
	if err != nil {
		t.Fatal(err)
	}

	initialize := func(tok string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, mcpURL, strings.NewReader(
			`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		(&oauth2.Token{AccessToken: tok}).SetAuthHeader(req)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	statuses := map[int]int{}
	for range 60 {
		statuses[initialize("ucpb_at_"+rand.Text())]++
	}
	if statuses[http.StatusUnauthorized] != 60 {
		t.Errorf("made-up bearers: %v, want 401 each", statuses)
	}
	if got := initialize(buyer.AccessToken); got != http.StatusOK {
		t.Fatalf("the buyer's bearer after the flood: HTTP %d", got)
	}
}
