package oauth_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/ucpbridge/ucpbridge/authserver/oauth"
	"github.com/ucpbridge/ucpbridge/authserver/store"
)

func (e *env) addPlatform(id, name string) {
	e.t.Helper()
	_, hash := oauth.NewClientSecret()
	if err := e.st.CreateClient(context.Background(), &store.Client{ID: id, Type: store.ClientWeb, Name: name, Role: store.RolePlatform,
		Platform: id, SecretHash: hash, GrantTypes: []string{"client_credentials", oauth.GrantTypeTokenExchange}, CreatedAt: e.now}); err != nil {
		e.t.Fatal(err)
	}
}

// TestRegisterResourceRules: a platform registers https URLs or plain
// http on loopback, spelled canonically, never the platform API's own,
// and one owner per URL.
func TestRegisterResourceRules(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := t.Context()
	e.addPlatform("plat-a", "Platform A")
	e.addPlatform("plat-b", "Platform B")
	for _, ok := range []string{"https://bridge.example/mcp", "http://127.0.0.1:4000/mcp", "http://localhost:4000/mcp", "http://[::1]:4000/mcp",
		"https://bridge.example"} {
		if err := e.as.RegisterResource(ctx, "plat-a", ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	if err := e.as.RegisterResource(ctx, "plat-a", "https://bridge.example/mcp"); err != nil {
		t.Errorf("registering again: %v", err)
	}
	if err := e.as.RegisterResource(ctx, "plat-b", "https://bridge.example/mcp"); !errors.Is(err, store.ErrConflict) {
		t.Errorf("another platform's resource: %v", err)
	}
	for _, bad := range []string{"http://bridge.example/mcp", "https://bridge.example/mcp#x", "https://u@bridge.example/mcp",
		"https://bridge.example/mcp?x=1", "/mcp", "bridge.example/mcp", "ftp://bridge.example/mcp", "https://bridge.example/a b",
		"HTTPS://bridge.example/mcp", "https://Bridge.example:443/mcp?", ""} {
		var re *oauth.ResourceError
		if err := e.as.RegisterResource(ctx, "plat-a", bad); !errors.As(err, &re) {
			t.Errorf("%q: %v", bad, err)
		}
	}
	for _, own := range []string{e.srv.URL, e.srv.URL + "/", e.srv.URL + "/mcp", e.srv.URL + "/catalog", e.srv.URL + "/account/mcp",
		e.srv.URL + "/s/flower-shop", e.srv.URL + "/s/flower-shop/mcp"} {
		var re *oauth.ResourceError
		if err := e.as.RegisterResource(ctx, "plat-a", own); !errors.As(err, &re) {
			t.Errorf("the platform API's own %q: %v", own, err)
		}
	}
	for _, who := range []string{agentID, merchantID, "nobody"} {
		if err := e.as.RegisterResource(ctx, who, "https://other.example/mcp"); err == nil {
			t.Errorf("%s registered a resource", who)
		}
	}
	if list, _ := e.st.PlatformResources(ctx, "plat-a"); len(list) != 5 {
		t.Errorf("plat-a's resources %q", list)
	}
}

// TestAuthorizeResources: the authorization request accepts the
// platform API's own URLs and registered resources, names a registered
// resource's owner on the consent page, and refuses anything else with
// invalid_target (sent back to the client, whose redirect is verified).
func TestAuthorizeResources(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.addPlatform("plat-a", "Bridgeworks")
	const bridge = "http://127.0.0.1:4000/mcp"
	if err := e.as.RegisterResource(t.Context(), "plat-a", bridge); err != nil {
		t.Fatal(err)
	}
	conf := e.oauth2Config(agentID, "http://127.0.0.1:7000/callback", "purchase:complete")
	verifier := oauth2.GenerateVerifier()
	open := func(resource string) (int, string, *http.Response) {
		status, _, page, res := newBrowser(t).open(conf.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier),
			oauth2.SetAuthURLParam("resource", resource)))
		return status, page, res
	}
	status, page, _ := open(bridge)
	if status != 200 || !strings.Contains(page, "Bridgeworks") || !strings.Contains(page, bridge) {
		t.Fatalf("registered resource: %d %s", status, page)
	}
	for _, own := range []string{e.srv.URL, e.srv.URL + "/account/mcp", e.srv.URL + "/s/flower-shop/mcp"} {
		if status, page, _ := open(own); status != 200 || strings.Contains(page, "Bridgeworks") {
			t.Errorf("own resource %s: %d", own, status)
		}
	}
	for _, unknown := range []string{"https://elsewhere.example/mcp", bridge + "/", "http://localhost:4000/mcp", "http://127.0.0.1:4001/mcp",
		strings.Replace(e.srv.URL, "127.0.0.1", "localhost", 1) + "/mcp"} {
		status, _, res := open(unknown)
		loc := res.Header.Get("Location")
		if status != http.StatusSeeOther || !strings.Contains(loc, "error=invalid_target") || !strings.HasPrefix(loc, "http://127.0.0.1:7000/callback") {
			t.Errorf("unknown resource %s: %d %s", unknown, status, loc)
		}
	}
	// A token for the registered resource carries it.
	q := e.approve(newBrowser(t), conf.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("resource", bridge)), nil)
	tok, err := conf.Exchange(t.Context(), q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	info, err := e.as.ValidateAccessToken(t.Context(), tok.AccessToken)
	if err != nil || info.Resource != bridge {
		t.Fatalf("token %+v %v", info, err)
	}
}
