package authserver_test

// Second security review of issue 9 (the parts that landed after the
// first review). Each TestReview9b… test showed a hole and now guards its fix.

import (
	"encoding/json"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/ucpbridge/ucpbridge/authserver/authservertest"
)

// TestReview9bDualBearerIgnoresResource: a buyer token issued for one
// RFC 8707 resource (here /account/mcp) "works only there" (README,
// credentials table; issue 9: "that resource must match, or the call is
// refused"). Alone at a store it is refused (401). Sent next to the
// platform key (Artos platform+buyer), the guard builds a Dual principal
// that keeps the bearer's buyer but drops the token's resource (and
// scopes), and Principal.CheckResource skips every non-bearer
// credential: the store accepts the token and acts on its buyer: here it
// applies the buyer's Artos coupon (the store reads the buyer's account)
// at a resource the buyer never issued the token for.
func TestReview9bDualBearerIgnoresResource(t *testing.T) {
	t.Parallel()
	p := authservertest.Start(t, &authservertest.Options{SQLiteOnly: true})
	ctx := t.Context()
	conf := p.OAuth2Config("purchase:complete")
	verifier := oauth2.GenerateVerifier()
	resource := p.URL + "/account/mcp"
	loc, err := p.SignIn(ctx, conf.AuthCodeURL("state", oauth2.S256ChallengeOption(verifier),
		oauth2.SetAuthURLParam("resource", resource)), &authservertest.Consent{Allowance: &authservertest.Allowance{
		MaxPerOrder: "500", DailyCap: "500", Currency: "USD", Days: 30}})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := conf.Exchange(ctx, loc.Query().Get("code"), oauth2.VerifierOption(verifier), oauth2.SetAuthURLParam("resource", resource))
	if err != nil {
		t.Fatal(err)
	}
	body := `{"line_items":[{"item":{"id":"energy-gels-12"},"quantity":2}],"context":{"eligibility":["sh.artos.coupon"]}}`
	// Alone, the token is refused at the store: it was issued for the
	// account MCP.
	status, _, b := call(t, "POST", p.StoreURL("energy-sport")+"/checkout-sessions", body,
		"Authorization", "Bearer "+tok.AccessToken, "Idempotency-Key", "review9b-resource-alone-0001")
	if status != 401 {
		t.Fatalf("precondition: the /account/mcp token alone at a store got HTTP %d: %s", status, b)
	}
	// With the platform key, the same token names its buyer at the store.
	status, _, b = call(t, "POST", p.StoreURL("energy-sport")+"/checkout-sessions", body,
		"X-API-Key", p.PlatformKey, "Authorization", "Bearer "+tok.AccessToken, "Idempotency-Key", "review9b-resource-dual-0001")
	if status == 401 || status == 403 {
		return // refused: the token's resource was checked
	}
	var c struct {
		Totals []struct {
			DisplayText string `json:"display_text"`
			Amount      int64  `json:"amount"`
		} `json:"totals"`
	}
	_ = json.Unmarshal(b, &c)
	coupon := int64(0)
	for _, tl := range c.Totals {
		if tl.DisplayText == "Artos coupon" {
			coupon = -tl.Amount
		}
	}
	t.Errorf("a buyer token bound to %s was accepted at energy-sport next to the platform key (HTTP %d) and its buyer used: coupon credit %d applied (token resource ignored for key+bearer)",
		resource, status, coupon)
	if !strings.Contains(string(b), "chk_") {
		t.Log(string(b))
	}
}
