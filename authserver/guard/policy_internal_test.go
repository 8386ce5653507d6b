package guard

import (
	"errors"
	"net/http"
	"testing"
)

// TestRuleMechanics: each part of a Rule refuses on its own, so the guard
// issue can narrow the table row by row.
func TestRuleMechanics(t *testing.T) {
	t.Parallel()
	platformKey := &Principal{Kind: KindPlatform, Tier: TierToken, Credential: CredentialAPIKey, ClientID: "p"}
	buyer := &Principal{Kind: KindBuyer, Tier: TierToken, Credential: CredentialBearer, ClientID: "a", BuyerID: "b",
		Scopes: []string{"dev.ucp.shopping.checkout:manage"}}
	signed := &Principal{Kind: KindPlatform, Tier: TierSigned, Credential: CredentialAPIKey, ClientID: "p"}
	for _, tc := range []struct {
		name string
		rule Rule
		p    *Principal
		code string // "" allowed
	}{
		{"kind allowed", Rule{Kinds: []Kind{KindPlatform}}, platformKey, ""},
		{"kind refused", Rule{Kinds: []Kind{KindPlatform}}, buyer, "forbidden"},
		{"nil is anonymous", Rule{Kinds: []Kind{KindPlatform}}, nil, "forbidden"},
		{"scope held", Rule{AnyScope: []string{"purchase:complete", "dev.ucp.shopping.checkout:manage"}}, buyer, ""},
		{"scope missing", Rule{AnyScope: []string{"purchase:complete"}}, buyer, "insufficient_scope"},
		{"api keys carry no scopes", Rule{AnyScope: []string{"purchase:complete"}}, platformKey, ""},
		{"tier met", Rule{MinTier: TierSigned}, signed, ""},
		{"tier too weak", Rule{MinTier: TierSigned}, platformKey, "forbidden"},
		{"anonymous below token", Rule{MinTier: TierToken}, Anonymous(), "forbidden"},
	} {
		err := tc.rule.check(tc.p, OpCreateCheckout)
		var ge *Error
		switch {
		case tc.code == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.code != "" && (!errors.As(err, &ge) || ge.Code != tc.code || ge.Status != http.StatusForbidden):
			t.Errorf("%s: %v, want %s", tc.name, err, tc.code)
		}
	}
}
