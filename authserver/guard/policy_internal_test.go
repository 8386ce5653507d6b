package guard

import (
	"errors"
	"net/http"
	"testing"
)

// TestRuleMechanics: each part of a Rule refuses on its own.
func TestRuleMechanics(t *testing.T) {
	t.Parallel()
	platformKey := &Principal{Kind: KindPlatform, Tier: TierToken, Credential: CredentialAPIKey, ClientID: "p", Platform: "p"}
	buyer := &Principal{Kind: KindBuyer, Tier: TierToken, Credential: CredentialBearer, ClientID: "a", BuyerID: "b",
		Scopes: []string{"dev.ucp.shopping.checkout:manage"}}
	dual := &Principal{Kind: KindPlatform, Tier: TierToken, Credential: CredentialAPIKey, ClientID: "p", Platform: "p", BuyerID: "b", Dual: true}
	signed := &Principal{Kind: KindPlatform, Tier: TierSigned, Credential: CredentialAPIKey, ClientID: "p"}
	for _, tc := range []struct {
		name   string
		rule   Rule
		p      *Principal
		status int // 0 allowed
		code   string
	}{
		{"kind allowed", Rule{Kinds: []Kind{KindPlatform}}, platformKey, 0, ""},
		{"kind refused", Rule{Kinds: []Kind{KindPlatform}}, buyer, 403, "forbidden"},
		{"anonymous must authenticate", Rule{Kinds: []Kind{KindPlatform}}, nil, 401, "identity_required"},
		{"scope held", Rule{Scopes: map[Kind][]string{KindBuyer: {"purchase:complete", "dev.ucp.shopping.checkout:manage"}}}, buyer, 0, ""},
		{"scope missing", Rule{Scopes: map[Kind][]string{KindBuyer: {"purchase:complete"}}}, buyer, 403, "insufficient_scope"},
		{"api keys carry no scopes", Rule{Scopes: map[Kind][]string{KindPlatform: {"purchase:complete"}}}, platformKey, 0, ""},
		{"buyer-bound refuses key+bearer", Rule{BuyerBound: true}, dual, 403, "credential_conflict"},
		{"buyer-bound takes the bearer alone", Rule{BuyerBound: true}, buyer, 0, ""},
		{"tier met", Rule{MinTier: TierSigned}, signed, 0, ""},
		{"tier too weak", Rule{MinTier: TierSigned}, platformKey, 403, "forbidden"},
	} {
		err := tc.rule.check(tc.p, OpCreateCheckout)
		var ge *Error
		switch {
		case tc.status == 0 && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.status != 0 && (!errors.As(err, &ge) || ge.Code != tc.code || ge.Status != tc.status):
			t.Errorf("%s: %v, want %d %s", tc.name, err, tc.status, tc.code)
		}
	}
	// insufficient_scope names the scopes in its challenge.
	err := Rule{Scopes: map[Kind][]string{KindBuyer: {"purchase:complete"}}}.check(buyer, OpCompleteCheckout)
	var ge *Error
	if !errors.As(err, &ge) || ge.Challenge("r", "") != `Bearer realm="r", error="insufficient_scope", error_description="complete_checkout needs one of the scopes purchase:complete", scope="purchase:complete"` {
		t.Fatalf("challenge: %v", err)
	}
	// No credential sent: the challenge names the metadata, no error code
	// (RFC 6750 §3.1).
	err = Rule{Kinds: []Kind{KindPlatform}}.check(Anonymous(), OpCreateCheckout)
	if !errors.As(err, &ge) || ge.Challenge("r", "m") != `Bearer realm="r", resource_metadata="m"` {
		t.Fatalf("anonymous challenge: %q", ge.Challenge("r", "m"))
	}
	if (&Error{Status: http.StatusForbidden, Code: "forbidden"}).Challenge("r", "") != "" {
		t.Fatal("a 403 no token fixes has a challenge")
	}
}
