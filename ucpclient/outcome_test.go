package ucpclient

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ucpbridge/ucpbridge/authserver/authservertest"
	"github.com/ucpbridge/ucpbridge/mandate"
	"github.com/ucpbridge/ucpbridge/ucpclient/ucp"
)

// TestOutcomeOf classifies each response shape a complete_checkout gets,
// as this project's stores (authserver/shop) and the Artos API send them.
func TestOutcomeOf(t *testing.T) {
	t.Parallel()
	const handlers = `"payment_handlers":{"sh.artos.crypto":[{"version":"2026-04-08","id":"artos.crypto"}],"sh.artos.card":[{"version":"2026-04-08","id":"artos.card"}]}`
	envelope := func(code, content string) string {
		return `{"ucp":{"version":"2026-04-08","status":"error"},"messages":[{"type":"error","code":"` + code + `","content":"` + content + `","severity":"requires_buyer_input"}]}`
	}
	tests := []struct {
		name  string
		body  string
		kind  OutcomeKind
		code  string
		check func(t *testing.T, o CheckoutOutcome)
	}{
		{"completed", `{"ucp":{"version":"2026-04-08","status":"success"},"id":"co_1","status":"completed","currency":"EUR","totals":[{"type":"total","amount":3500}],"order":{"id":"ord_1","permalink_url":"https://x/o/1"}}`,
			OutcomeCompleted, "", func(t *testing.T, o CheckoutOutcome) {
				if o.Order == nil || o.Order.ID != "ord_1" || o.Checkout == nil || o.Checkout.ID != "co_1" {
					t.Errorf("%+v", o)
				}
			}},
		{"completed, order without status", `{"ucp":{"status":"success"},"id":"co_1","status":"ready_for_complete","order":{"id":"ord_2","permalink_url":"u"}}`,
			OutcomeCompleted, "", func(t *testing.T, o CheckoutOutcome) {
				if o.Order.ID != "ord_2" {
					t.Errorf("%+v", o)
				}
			}},
		{"payment selection, ours (success with the checkout)", `{"ucp":{"version":"2026-04-08","status":"success",` + handlers + `},"id":"co_1","status":"incomplete","messages":[{"type":"error","code":"payment_selection_required","content":"pick one","severity":"recoverable"}]}`,
			OutcomePaymentSelectionRequired, "payment_selection_required", func(t *testing.T, o CheckoutOutcome) {
				want := []Rail{{ID: "artos.card", Name: "sh.artos.card"}, {ID: "artos.crypto", Name: "sh.artos.crypto", Crypto: true}}
				if fmt.Sprint(o.Rails) != fmt.Sprint(want) || o.Message != "pick one" {
					t.Errorf("rails %+v", o.Rails)
				}
			}},
		{"payment selection, Artos (error with the checkout)", `{"ucp":{"status":"error",` + handlers + `},"id":"co_1","status":"incomplete","messages":[{"type":"error","code":"payment_selection_required","content":"pick"}]}`,
			OutcomePaymentSelectionRequired, "payment_selection_required", func(t *testing.T, o CheckoutOutcome) {
				if len(o.Rails) != 2 {
					t.Errorf("rails %+v", o.Rails)
				}
			}},
		{"payment selection as info is not a refusal", `{"ucp":{"status":"success"},"id":"co_1","status":"completed","order":{"id":"o","permalink_url":"u"},"messages":[{"type":"info","code":"payment_selection_required","content":"x"}]}`,
			OutcomeCompleted, "", nil},
		{"escalation (3DS)", `{"ucp":{"status":"success"},"id":"co_1","status":"requires_escalation","continue_url":"https://shop/continue/1","messages":[{"type":"error","code":"requires_3ds","content":"authenticate"}]}`,
			OutcomeEscalationRequired, "requires_3ds", func(t *testing.T, o CheckoutOutcome) {
				if o.ContinueURL != "https://shop/continue/1" {
					t.Errorf("%+v", o)
				}
			}},
		{"escalation without continue_url", `{"ucp":{"status":"success"},"id":"co_1","status":"requires_escalation"}`,
			OutcomeFailed, "escalation_without_continue_url", nil},
		{"escalation envelope", `{"ucp":{"status":"error"},"messages":[{"type":"error","code":"buyer_review_required","content":"review"}],"continue_url":"https://shop/c"}`,
			OutcomeEscalationRequired, "buyer_review_required", nil},
		{"spend cap, per order", envelope("spend_cap_exceeded", "this order is 70.00 EUR; the buyer allows at most 50.00 EUR per order"),
			OutcomeAllowanceRefused, "spend_cap_exceeded", func(t *testing.T, o CheckoutOutcome) {
				r := o.Refusal
				if r == nil || r.Limit != LimitMaxPerOrder || r.Max != 5000 || r.Currency != "EUR" || r.HasRemaining || o.Checkout != nil {
					t.Errorf("%+v", r)
				}
			}},
		{"spend cap, daily", envelope("spend_cap_exceeded", "this order is 35.00 EUR; the daily cap is 120.50 EUR and 15.50 EUR remains today (UTC), payments in flight included"),
			OutcomeAllowanceRefused, "spend_cap_exceeded", func(t *testing.T, o CheckoutOutcome) {
				r := o.Refusal
				if r.Limit != LimitDailyCap || r.Max != 12050 || !r.HasRemaining || r.Remaining != 1550 || r.Currency != "EUR" {
					t.Errorf("%+v", r)
				}
			}},
		{"spend cap, JPY and BHD amounts", envelope("spend_cap_exceeded", "this order is 9000 JPY; the daily cap is 10000 JPY and 500 JPY remains today (UTC)"),
			OutcomeAllowanceRefused, "spend_cap_exceeded", func(t *testing.T, o CheckoutOutcome) {
				if r := o.Refusal; r.Max != 10000 || r.Remaining != 500 || r.Currency != "JPY" {
					t.Errorf("%+v", r)
				}
			}},
		{"spend cap, wording unknown", envelope("spend_cap_exceeded", "over the limit"),
			OutcomeAllowanceRefused, "spend_cap_exceeded", func(t *testing.T, o CheckoutOutcome) {
				if r := o.Refusal; r.Limit != "" || r.HasRemaining || r.Message != "over the limit" {
					t.Errorf("%+v", r)
				}
			}},
		{"allowance expired", envelope("allowance_expired", "expired at 2026-01-01T00:00:00Z"),
			OutcomeAllowanceRefused, "allowance_expired", func(t *testing.T, o CheckoutOutcome) {
				if o.Refusal.Limit != LimitExpiry {
					t.Errorf("%+v", o.Refusal)
				}
			}},
		{"allowance currency", envelope("allowance_currency_mismatch", "the allowance is in EUR and this order in USD; amounts are never converted"),
			OutcomeAllowanceRefused, "allowance_currency_mismatch", func(t *testing.T, o CheckoutOutcome) {
				if o.Refusal.Limit != LimitCurrency || o.Refusal.Currency != "EUR" {
					t.Errorf("%+v", o.Refusal)
				}
			}},
		{"allowance required", envelope("allowance_required", "no allowance"),
			OutcomeAllowanceRefused, "allowance_required", func(t *testing.T, o CheckoutOutcome) {
				if o.Refusal.Limit != LimitAllowance {
					t.Errorf("%+v", o.Refusal)
				}
			}},
		{"allowance id mismatch (envelope)", envelope("mandate_scope_mismatch", "not the buyer's allowance"),
			OutcomeAllowanceRefused, "mandate_scope_mismatch", func(t *testing.T, o CheckoutOutcome) {
				if o.Refusal.Limit != LimitPaymentMandateID {
					t.Errorf("%+v", o.Refusal)
				}
			}},
		{"mandate scope mismatch on the checkout is stale terms", `{"ucp":{"status":"success"},"id":"co_1","status":"ready_for_complete","messages":[{"type":"error","code":"mandate_scope_mismatch","content":"terms changed"}]}`,
			OutcomeFailed, "mandate_scope_mismatch", func(t *testing.T, o CheckoutOutcome) {
				if o.Refusal != nil || o.Checkout == nil {
					t.Errorf("%+v", o)
				}
			}},
		{"sign-in (crypto without the buyer)", envelope("authentication_required", "crypto payments are the buyer's"),
			OutcomeSignInRequired, "authentication_required", nil},
		{"payment failed on the checkout", `{"ucp":{"status":"success"},"id":"co_1","status":"ready_for_complete","messages":[{"type":"warning","code":"w","content":"w"},{"type":"error","code":"payment_failed","content":"the card was declined"}]}`,
			OutcomeFailed, "payment_failed", func(t *testing.T, o CheckoutOutcome) {
				if o.Message != "the card was declined" || len(o.Messages) != 2 {
					t.Errorf("%+v", o)
				}
			}},
		{"store error envelope", envelope("not_found", "checkout not found"), OutcomeFailed, "not_found", nil},
		{"in progress", `{"ucp":{"status":"success"},"id":"co_1","status":"complete_in_progress"}`, OutcomeInProgress, "", nil},
		{"not completed, no message", `{"ucp":{"status":"success"},"id":"co_1","status":"ready_for_complete"}`, OutcomeFailed, "not_completed", nil},
		{"error envelope without messages", `{"ucp":{"status":"error"}}`, OutcomeFailed, "not_completed", nil},
		{"error envelope, untyped message", `{"ucp":{"status":"error"},"messages":[{"code":"spend_cap_exceeded","content":"x"}]}`, OutcomeAllowanceRefused, "spend_cap_exceeded", nil},
		{"not JSON", `<html>`, OutcomeFailed, "invalid_response", func(t *testing.T, o CheckoutOutcome) {
			if o.Err == nil {
				t.Error("no Err")
			}
		}},
		{"empty", ``, OutcomeFailed, "invalid_response", nil},
		{"checkout that does not decode strictly", `{"ucp":{"status":"success"},"id":"co_1","status":"completed","totals":[{"type":"total","amount":1.5}],"order":{"id":"o","permalink_url":"u"}}`,
			OutcomeCompleted, "", func(t *testing.T, o CheckoutOutcome) {
				if o.Checkout != nil || o.Order.ID != "o" {
					t.Errorf("%+v", o)
				}
			}},
	}
	for _, tt := range tests {
		o := OutcomeOf(json.RawMessage(tt.body))
		if o.Kind != tt.kind || o.Code != tt.code {
			t.Errorf("%s: kind %q code %q, want %q %q (%+v)", tt.name, o.Kind, o.Code, tt.kind, tt.code, o)
			continue
		}
		if string(o.Raw) != tt.body {
			t.Errorf("%s: Raw not kept", tt.name)
		}
		if tt.check != nil {
			t.Run(tt.name, func(t *testing.T) { tt.check(t, o) })
		}
	}
}

// agentProfile serves a platform (agent) UCP profile publishing the
// signer's key, with AP2 among its capabilities, as a platform must for a
// store to verify its mandates.
func agentProfile(t *testing.T, s *Ap2Signer) string {
	t.Helper()
	jwk, err := json.Marshal(s.key.PublicJWK())
	if err != nil {
		t.Fatal(err)
	}
	caps := map[string][]ucp.Capability{}
	for _, c := range []string{ucp.CapCheckout, ucp.CapCart, ucp.CapOrder, ucp.CapCatalogSearch, ucp.CapCatalogLookup,
		ucp.CapFulfillment, ucp.CapDiscount, ucp.CapAP2Mandate} {
		cp := ucp.Capability{Entity: ucp.Entity{Version: ucp.Version, Spec: "https://ucp.dev/spec", Schema: "https://ucp.dev/schema.json"}}
		switch c {
		case ucp.CapFulfillment, ucp.CapAP2Mandate:
			cp.Extends = ucp.Extends{ucp.CapCheckout}
		case ucp.CapDiscount:
			cp.Extends = ucp.Extends{ucp.CapCheckout, ucp.CapCart}
		}
		caps[c] = []ucp.Capability{cp}
	}
	body, err := json.Marshal(&ucp.Profile{UCP: ucp.ProfileUCP{Version: ucp.Version,
		Services: map[string][]ucp.Service{ucp.ServiceShopping: {{Entity: ucp.Entity{Version: ucp.Version,
			Spec: "https://ucp.dev/spec", Schema: "https://ucp.dev/mcp.json"}, Transport: "mcp"}}},
		Capabilities: caps, PaymentHandlers: map[string][]ucp.PaymentHandler{}}, SigningKeys: []json.RawMessage{jwk}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/.well-known/ucp"
}

// TestRealStore drives this project's stores (authservertest) over REST:
// their checkouts' merchant_authorization verifies against their published
// keys, the totals guard passes them, the signer's mandates are accepted,
// and OutcomeOf classifies each completion they answer.
func TestRealStore(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("boots the platform")
	}
	p := authservertest.Start(t, &authservertest.Options{SQLiteOnly: true})
	signer := newTestSigner(t)
	profileURL := agentProfile(t, signer)
	var n atomic.Int64
	platform := func() []string {
		return []string{"X-API-Key", p.PlatformKey, "UCP-Agent", `profile="` + profileURL + `"`,
			"Idempotency-Key", fmt.Sprintf("ucpclient-test-%d-%d", n.Add(1), len(profileURL))}
	}
	storeKeys := func(slug string) *mandate.KeySet {
		code, b := getJSON(t, "GET", p.StoreURL(slug)+"/.well-known/ucp", "")
		if code != 200 {
			t.Fatalf("profile %s: %d %s", slug, code, b)
		}
		ks, err := mandate.ParseKeySet(b)
		if err != nil || ks.Len() == 0 {
			t.Fatalf("profile %s keys: %v %s", slug, err, b)
		}
		return ks
	}
	keys := map[string]*mandate.KeySet{"flower-shop": storeKeys("flower-shop"), "energy-sport": storeKeys("energy-sport")}

	// quote creates a checkout and returns it as get_checkout does, after
	// the checks ConfirmPurchase makes before completing.
	quote := func(t *testing.T, slug, body string) json.RawMessage {
		t.Helper()
		code, b := getJSON(t, "POST", p.StoreURL(slug)+"/checkout-sessions", body, platform()...)
		if code != 201 {
			t.Fatalf("create: %d %s", code, b)
		}
		var c struct{ ID string }
		_ = json.Unmarshal(b, &c)
		code, got := getJSON(t, "GET", p.StoreURL(slug)+"/checkout-sessions/"+c.ID, "", platform()...)
		if code != 200 {
			t.Fatalf("get: %d %s", code, got)
		}
		for _, body := range []json.RawMessage{b, got} {
			if err := VerifyMerchantAuthorization(body, keys[slug]); err != nil {
				t.Fatalf("merchant_authorization of %s: %v", body, err)
			}
			if err := CheckTotals(body); err != nil {
				t.Fatalf("totals of %s: %v", body, err)
			}
		}
		var wrongStore error = VerifyMerchantAuthorization(got, keys[map[string]string{"flower-shop": "energy-sport", "energy-sport": "flower-shop"}[slug]])
		if !errors.Is(wrongStore, mandate.ErrMerchantAuthorizationInvalid) {
			t.Fatalf("another store's keys: %v", wrongStore)
		}
		tampered := strings.Replace(string(got), `"type":"total","amount":`, `"type":"total","amount":1`, 1)
		if err := VerifyMerchantAuthorization(json.RawMessage(tampered), keys[slug]); !errors.Is(err, mandate.ErrMerchantAuthorizationInvalid) {
			t.Fatalf("tampered: %v", err)
		}
		var neg struct {
			UCP ucp.Envelope `json:"ucp"`
		}
		if json.Unmarshal(got, &neg) != nil || neg.UCP.Capabilities[ucp.CapAP2Mandate] == nil {
			t.Fatalf("AP2 not negotiated, so mandates would go unchecked: %s", got)
		}
		return got
	}
	completeWith := func(t *testing.T, s *Ap2Signer, slug string, checkout json.RawMessage, instrument string, auth []string) CheckoutOutcome {
		t.Helper()
		tok, err := s.MintCheckoutMandate(checkout, slug, nil)
		if err != nil {
			t.Fatal(err)
		}
		body := `{"ap2":{"checkout_mandate":"` + tok + `"}` + instrument + `}`
		var id struct{ ID string }
		_ = json.Unmarshal(checkout, &id)
		_, b := getJSON(t, "POST", p.StoreURL(slug)+"/checkout-sessions/"+id.ID+"/complete", body, auth...)
		return OutcomeOf(b)
	}
	complete := func(t *testing.T, slug string, checkout json.RawMessage, instrument string, auth []string) CheckoutOutcome {
		t.Helper()
		return completeWith(t, signer, slug, checkout, instrument, auth)
	}
	card := func(token string) string {
		return `,"payment":{"instruments":[{"handler_id":"artos.card","type":"card","selected":true,"credential":{"type":"token","token":"` + token + `"}}]}`
	}
	roses := func(q int) string {
		return fmt.Sprintf(`{"line_items":[{"item":{"id":"bouquet_roses"},"quantity":%d}]}`, q)
	}
	const usShipping = `{"line_items":[{"item":{"id":"rr2-10"},"quantity":1}],"fulfillment":{"methods":[{"type":"shipping","destinations":[{"street_address":"1 Main St","address_locality":"Boulder","address_region":"CO","postal_code":"80301","address_country":"US"}]}]}}`

	t.Run("completed", func(t *testing.T) {
		o := complete(t, "flower-shop", quote(t, "flower-shop", roses(1)), card("success_token"), platform())
		if o.Kind != OutcomeCompleted || o.Order == nil || o.Order.ID == "" {
			t.Fatalf("%+v %s", o, o.Raw)
		}
	})
	t.Run("mandate by a key the agent does not publish", func(t *testing.T) {
		o := completeWith(t, newTestSigner(t), "flower-shop", quote(t, "flower-shop", roses(1)), card("success_token"), platform())
		if o.Kind != OutcomeFailed || o.Code != string(mandate.CodeAgentMissingKey) {
			t.Fatalf("%+v %s", o, o.Raw)
		}
	})
	t.Run("escalation", func(t *testing.T) {
		o := complete(t, "flower-shop", quote(t, "flower-shop", roses(1)), card("escalate_token"), platform())
		if o.Kind != OutcomeEscalationRequired || o.ContinueURL == "" || o.Code != "requires_3ds" {
			t.Fatalf("%+v %s", o, o.Raw)
		}
	})
	t.Run("declined", func(t *testing.T) {
		o := complete(t, "flower-shop", quote(t, "flower-shop", roses(1)), card("fail_token"), platform())
		if o.Kind != OutcomeFailed || o.Code != "payment_failed" || o.Checkout == nil {
			t.Fatalf("%+v %s", o, o.Raw)
		}
	})
	t.Run("payment selection", func(t *testing.T) {
		o := complete(t, "energy-sport", quote(t, "energy-sport", usShipping), "", platform())
		if o.Kind != OutcomePaymentSelectionRequired || len(o.Rails) != 2 || o.Rails[0].ID != "artos.card" || !o.Rails[1].Crypto {
			t.Fatalf("%+v %s", o, o.Raw)
		}
	})
	t.Run("crypto with the platform key", func(t *testing.T) {
		o := complete(t, "energy-sport", quote(t, "energy-sport", usShipping),
			`,"payment":{"instruments":[{"handler_id":"artos.crypto","type":"crypto","selected":true,"credential":{"token":"0xabc"}}]}`, platform())
		if o.Kind != OutcomeSignInRequired || o.Code != "authentication_required" {
			t.Fatalf("%+v %s", o, o.Raw)
		}
	})
	t.Run("allowance", func(t *testing.T) {
		tok, err := p.BuyerToken(t.Context(), "purchase:complete dev.ucp.shopping.order:read offline_access", nil)
		if err != nil {
			t.Fatal(err)
		}
		// The buyer's bearer alone, never with the platform key.
		buyer := func() []string {
			return []string{"Authorization", "Bearer " + tok.AccessToken, "UCP-Agent", `profile="` + profileURL + `"`,
				"Idempotency-Key", fmt.Sprintf("ucpclient-buyer-%d", n.Add(1))}
		}
		// 70.00 EUR is over the 50.00 per order.
		o := complete(t, "flower-shop", quote(t, "flower-shop", roses(2)), card("success_token"), buyer())
		if o.Kind != OutcomeAllowanceRefused || o.Refusal.Limit != LimitMaxPerOrder || o.Refusal.Max != 5000 || o.Refusal.Currency != "EUR" {
			t.Fatalf("%+v %+v %s", o, o.Refusal, o.Raw)
		}
		// Orders within it until the daily cap (120.50) refuses one, and
		// says what remains.
		var spent int64
		for range 6 {
			c := quote(t, "flower-shop", roses(1))
			o = complete(t, "flower-shop", c, card("success_token"), buyer())
			if o.Kind != OutcomeCompleted {
				break
			}
			spent += GrandTotal(c)
		}
		r := o.Refusal
		if o.Kind != OutcomeAllowanceRefused || r.Code != "spend_cap_exceeded" || r.Limit != LimitDailyCap || r.Max != 12050 ||
			!r.HasRemaining || r.Remaining != 12050-spent || r.Currency != "EUR" || spent == 0 {
			t.Fatalf("spent %d: %+v %+v %s", spent, o, r, o.Raw)
		}
	})
}

// FuzzResponses: whatever a business answers, the classifiers and guards
// neither panic nor call a malformed body completed or consistent.
func FuzzResponses(f *testing.F) {
	for _, s := range []string{
		`{"ucp":{"status":"error"},"messages":[{"type":"error","code":"spend_cap_exceeded","content":"the daily cap is 1.00 EUR and 0.50 EUR remains today"}]}`,
		`{"ucp":{"status":"success"},"id":"c","status":"completed","order":{"id":"o"},"totals":[{"type":"total","amount":1}]}`,
		`{"id":"c","currency":"EUR","totals":[{"type":"subtotal","amount":1},{"type":"total","amount":1}],"ap2":{"merchant_authorization":"e30..e30"}}`,
		`[]`, `null`, ``, `{"totals":[{"type":"total","amount":1e400}]}`,
	} {
		f.Add([]byte(s))
	}
	keys := mandate.NewKeySet()
	f.Fuzz(func(t *testing.T, b []byte) {
		o := OutcomeOf(b)
		if o.Kind == OutcomeCompleted && !json.Valid(b) {
			t.Fatalf("invalid JSON completed: %q", b)
		}
		if o.Kind == OutcomeAllowanceRefused && o.Refusal == nil {
			t.Fatal("refusal without details")
		}
		if CheckTotals(b) == nil && !json.Valid(b) {
			t.Fatalf("invalid JSON passed the totals guard: %q", b)
		}
		_ = GrandTotal(b)
		_ = CurrencyOf(b)
		_ = IsUCPError(b)
		_ = MessageOf(b)
		if VerifyMerchantAuthorization(b, keys) == nil {
			t.Fatal("verified against no keys")
		}
	})
}
