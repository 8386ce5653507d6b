package authserver_test

// Security review of issue 9 on the composed platform (real OAuth, guard,
// stores). Each TestReview9… test showed a hole (it failed
// before the fix it now guards); TestReview9Safe… tests pin down behaviour
// the review verified to be safe.

import (
	"encoding/json"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/ucpbridge/ucpbridge/authserver/authservertest"
)

// TestReview9CodeIssuedBeforeRevocationStillMintsTokens: the buyer
// revokes an agent ("revoking also revokes that client's tokens for the
// buyer"; the account page says "The agent's tokens no longer work").
// RevokeAuthorization revokes the client's grants and their tokens, but
// not the authorization codes the consent page has already handed out
// and the client has not yet redeemed (CodeTTL). Such a code, redeemed
// after the revocation, mints a fresh access token (and refresh token,
// with offline_access) that the guard accepts: the revoked agent keeps
// acting as the buyer, e.g. claiming the platform's checkouts and
// reading the buyer's orders.
func TestReview9CodeIssuedBeforeRevocationStillMintsTokens(t *testing.T) {
	t.Parallel()
	p := authservertest.Start(t, &authservertest.Options{SQLiteOnly: true})
	ctx := t.Context()
	conf := p.OAuth2Config("purchase:complete", "orders:read", "offline_access")
	verifier := oauth2.GenerateVerifier()
	loc, err := p.SignIn(ctx, conf.AuthCodeURL("state", oauth2.S256ChallengeOption(verifier)), nil)
	if err != nil {
		t.Fatal(err)
	}
	code := loc.Query().Get("code")
	if code == "" {
		t.Fatalf("no code in %s", loc)
	}
	// The buyer revokes the agent before it redeemed the code.
	if _, err := p.Server.OAuth.RevokeAuthorization(ctx, p.BuyerID, p.AgentClientID); err != nil {
		t.Fatal(err)
	}
	tok, err := conf.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		return // refused: the revocation covered the outstanding code
	}
	// The token works at a store as the buyer: it creates a checkout in
	// the buyer's name.
	status, _, b := call(t, "POST", p.StoreURL("flower-shop")+"/checkout-sessions", `{"line_items":[{"item":{"id":"bouquet_roses"},"quantity":1}]}`,
		"Authorization", "Bearer "+tok.AccessToken, "Idempotency-Key", "review9-revoked-code-create-1")
	var c struct{ ID string }
	_ = json.Unmarshal(b, &c)
	t.Errorf("a code issued before the buyer revoked the agent was redeemed after the revocation: access token issued (refresh token %t); at the store it got HTTP %d (checkout %q)",
		tok.RefreshToken != "", status, c.ID)
	if status == 201 && !strings.Contains(string(b), "chk_") {
		t.Log(string(b))
	}
}
