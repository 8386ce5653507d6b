package mandate

import (
	"context"
	"encoding/base64"
	"os"
	"strings"
	"testing"
	"time"
)

func golden(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// TestAP2GoldenCheckoutMandate verifies the AP2 v0.2 example chain with
// every check except the two signatures whose keys AP2 does not publish.
func TestAP2GoldenCheckoutMandate(t *testing.T) {
	t.Parallel()
	chain := golden(t, "ap2-v0.2-checkout-mandate.txt")
	opts := &SDJWTVerifyOptions{
		Audience: "merchant", Nonce: "b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4",
		Now:               func() time.Time { return time.Unix(1777342400, 0) },
		skipRootSignature: true, skipMerchantSignature: true,
	}
	m, err := VerifySDJWTCheckoutMandate(context.Background(), chain, opts)
	if err != nil {
		t.Fatal(err)
	}
	if m.OpenHash != "FzLoxbbtgQGYZxoSM2NJYJtkFTSsdfUBoVEQ12k7JN8" {
		t.Errorf("open hash %s", m.OpenHash)
	}
	if m.Closed["checkout_hash"] != "NivWhuqfzcvZNapvIEJ2-3tsdQLkiuIcye2g46WVgX8" || Digest(m.CheckoutJWT) != m.Closed["checkout_hash"] {
		t.Errorf("checkout_hash %v", m.Closed["checkout_hash"])
	}
	if !strings.Contains(string(m.Checkout), `"09414145-b70b-483a-b85c-aa0fa0c45800"`) {
		t.Errorf("checkout %s", m.Checkout)
	}
	if m.Open["vct"] != VCTOpenCheckout || m.Closed["vct"] != VCTClosedCheckout {
		t.Errorf("vct %v %v", m.Open["vct"], m.Closed["vct"])
	}

	// Each binding is live: break it and the golden chain fails.
	i := strings.Index(chain, "~~")
	open, closed := chain[:i+1], chain[i+2:]
	otherOpen := golden(t, "ap2-v0.2-payment-mandate.txt")
	otherOpen = otherOpen[:strings.Index(otherOpen, "~~")+1]
	for name, c := range map[string]struct {
		chain string
		mod   func(o *SDJWTVerifyOptions)
		code  Code
	}{
		"closed hop under an open payment mandate": {otherOpen + "~" + closed, nil, CodeMandateScopeMismatch},
		"open mandate re-serialised (sd_hash)":     {reheader(t, open) + "~" + closed, nil, CodeMandateScopeMismatch},
		"open mandate missing a disclosure":        {open[:strings.LastIndex(strings.TrimSuffix(open, "~"), "~")+1] + "~" + closed, nil, CodeMandateInvalidSignature},
		"wrong audience":                           {chain, func(o *SDJWTVerifyOptions) { o.Audience = "credential-provider" }, CodeMandateScopeMismatch},
		"wrong nonce":                              {chain, func(o *SDJWTVerifyOptions) { o.Nonce = "00" }, CodeMandateScopeMismatch},
		"after the open mandate expired":           {chain, func(o *SDJWTVerifyOptions) { o.Now = func() time.Time { return time.Unix(1777345957+120, 0) } }, CodeMandateExpired},
		"merchant not allowed":                     {chain, func(o *SDJWTVerifyOptions) { o.MerchantID = "merchant_2" }, ""},
		"live checkout differs": {chain, func(o *SDJWTVerifyOptions) {
			o.Checkout = []byte(`{"id":"other","currency":"USD","totals":[{"type":"total","amount":1}]}`)
		}, CodeMandateScopeMismatch},
	} {
		o := *opts
		if c.mod != nil {
			c.mod(&o)
		}
		_, err := VerifySDJWTCheckoutMandate(context.Background(), c.chain, &o)
		if c.code == "" {
			// The checkout JWT names merchant_1 itself, which wins over
			// MerchantID: the constraint still passes.
			if err != nil {
				t.Errorf("%s: %v", name, err)
			}
			continue
		}
		if me, ok := err.(*Error); !ok || me.Code != c.code {
			t.Errorf("%s: got %v, want %s", name, err, c.code)
		}
	}
}

// TestAP2GoldenHashes checks the documented hash values of both examples
// and the cross-links between them.
func TestAP2GoldenHashes(t *testing.T) {
	t.Parallel()
	checkout := golden(t, "ap2-v0.2-checkout-mandate.txt")
	payment := golden(t, "ap2-v0.2-payment-mandate.txt")
	split := func(chain string) (*SDJWT, *SDJWT) {
		i := strings.Index(chain, "~~")
		o, err := ParseSDJWT(chain[:i+1])
		if err != nil {
			t.Fatal(err)
		}
		c, err := ParseSDJWT(chain[i+2:])
		if err != nil {
			t.Fatal(err)
		}
		return o, c
	}
	co, cc := split(checkout)
	po, pc := split(payment)
	if co.Hash() != "FzLoxbbtgQGYZxoSM2NJYJtkFTSsdfUBoVEQ12k7JN8" || po.Hash() != "uixoHemmfrrCSbPREo9j-ziLuMkqExsPeWrwA-PK0Ck" {
		t.Fatalf("sd_hash: %s %s", co.Hash(), po.Hash())
	}
	if co.Disclosures[2].Digest != "QtXTJtWqg999CmUWGjHFTWMkRPguDfeK3wGSaInd-dw" || cc.Disclosures[0].Digest != "7VLY-eKTFSShLoZRXY5jXcD2UHm1JvPmoANYRqqxy34" {
		t.Fatal("disclosure digests")
	}
	payload, _ := unverifiedPayload(pc.JWT)
	claims, err := pc.Resolve(payload)
	if err != nil {
		t.Fatal(err)
	}
	if claims["sd_hash"] != po.Hash() {
		t.Fatal("payment closed hop sd_hash")
	}
	closedPay, _ := delegate(claims)
	if closedPay["transaction_id"] != "NivWhuqfzcvZNapvIEJ2-3tsdQLkiuIcye2g46WVgX8" {
		t.Fatalf("transaction_id %v", closedPay["transaction_id"])
	}
	openPayload, _ := unverifiedPayload(po.JWT)
	openClaims, err := po.Resolve(openPayload)
	if err != nil {
		t.Fatal(err)
	}
	openPay, _ := delegate(openClaims)
	var ref any
	for _, c := range openPay["constraints"].([]any) {
		if m := c.(map[string]any); m["type"] == "payment.reference" {
			ref = m["conditional_transaction_id"]
		}
	}
	if ref != co.Hash() {
		t.Fatalf("payment.reference %v, want the open checkout mandate's hash %s", ref, co.Hash())
	}
	// The payment closed hop is signed by the agent key in the open
	// payment mandate's cnf.
	key, err := cnfKey(openPay)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := parseAndVerify(pc.JWT, key); err != nil {
		t.Fatalf("payment KB hop: %v", err)
	}
}

// reheader re-encodes the JWT header of an SD-JWT with one more space: the
// same claims, other bytes, so every hash over it changes.
func reheader(t *testing.T, sd string) string {
	seg, rest, _ := strings.Cut(sd, ".")
	h, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(append([]byte(" "), h...)) + "." + rest
}
