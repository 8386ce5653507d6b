package account_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/ucpbridge/ucpbridge/authserver"
	"github.com/ucpbridge/ucpbridge/authserver/account"
	"github.com/ucpbridge/ucpbridge/authserver/authservertest"
	"github.com/ucpbridge/ucpbridge/authserver/oauth"
	"github.com/ucpbridge/ucpbridge/authserver/store"
	"github.com/ucpbridge/ucpbridge/ucpclient/ucp"
)

// TestStatelessToolsCall: a bare tools/call POST with the bearer, no
// initialize and no session, Accept: application/json only, is answered
// (the Artos SDK sends exactly that), echoing the request id.
func TestStatelessToolsCall(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tok := e.ada("purchase:complete")
	res, out, b := e.post(`{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"get_buyer_context"}}`, "Authorization", tok)
	if res.StatusCode != http.StatusOK || out == nil || out.Result == nil || out.Result.IsError || string(out.ID) != "42" {
		t.Fatalf("HTTP %d %s", res.StatusCode, b)
	}
	var bc account.BuyerContext
	if err := json.Unmarshal(out.Result.StructuredContent, &bc); err != nil || bc.Profile.ID != e.p.BuyerID {
		t.Fatalf("%s %v", out.Result.StructuredContent, err)
	}
	// The saved card's token never leaves the platform.
	if strings.Contains(string(b), "success_token") {
		t.Fatalf("the card token leaked: %s", b)
	}
}

// TestSpentTodayFollowsOrders: get_buyer_context shows the calling
// agent's caps, and spentTodayAmount is live: an order placed through the
// store API with the buyer's bearer (paid with the saved card) counts at
// once, and list_my_orders shows it.
func TestSpentTodayFollowsOrders(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tok := e.ada("purchase:complete orders:read")
	bc := ok[account.BuyerContext](e, tok, "get_buyer_context", nil)
	caps := bc.SpendingCaps
	if !bc.HasAgentAuthorization || caps == nil || caps.MaxPerOrderAmount != 5000 || caps.DailyCapAmount != 12050 ||
		caps.Currency != "EUR" || caps.SpentTodayAmount != 0 || caps.RemainingTodayAmount != 12050 || caps.AllowanceID == "" ||
		caps.ExpiresAt.Before(time.Now().Add(29*24*time.Hour)) {
		t.Fatalf("caps before: %+v", bc)
	}
	c := e.buy(tok, "tulip_bunch", 1)
	if c.Status != ucp.CheckoutCompleted || c.Order == nil {
		t.Fatalf("the order was not placed: %+v", c)
	}
	paid := total(c)
	caps = ok[account.BuyerContext](e, tok, "get_buyer_context", nil).SpendingCaps
	if caps.SpentTodayAmount != paid || caps.RemainingTodayAmount != 12050-paid {
		t.Fatalf("after an order of %d: %+v", paid, caps)
	}
	ol := ok[account.OrderList](e, tok, "list_my_orders", nil)
	if len(ol.Orders) != 1 || ol.Orders[0].ID != c.Order.ID || ol.Orders[0].TotalAmount != paid || ol.Orders[0].Store != "flower-shop" ||
		ol.Orders[0].StoreName == "" || ol.Orders[0].PlacedBy != "agent" || ol.Orders[0].AgentClientID != e.p.AgentClientID ||
		len(ol.Orders[0].Items) != 1 || ol.Orders[0].Items[0].ID != "tulip_bunch" || ol.Orders[0].Items[0].Quantity != 1 {
		t.Fatalf("list_my_orders: %+v", ol)
	}
	// The caps are the calling agent's: another agent of the same buyer
	// sees its own (none spent).
	other := e.token(e.addAgent("other-agent", "Other agent"), &authservertest.Consent{})
	if caps := ok[account.BuyerContext](e, other, "get_buyer_context", nil).SpendingCaps; caps == nil || caps.SpentTodayAmount != 0 {
		t.Fatalf("another agent's caps: %+v", caps)
	}
}

// TestOrdersPagedAcrossStores: list_my_orders covers every store, newest
// first, in pages joined by next_cursor with nothing repeated or missed
// (two orders placed at the same instant included); another buyer's
// orders never appear, and get_my_order of another buyer's order is not
// found, exactly like an order that does not exist.
func TestOrdersPagedAcrossStores(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	bob := e.addBuyer("buyer_bob", "bob@example.com", "bob-password-1234", store.AccountDoc{Name: "Bob"})
	ada, bobTok := e.ada("orders:read"), e.token(e.p.OAuth2Config("orders:read"), bob)
	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	stores := []string{"flower-shop", "energy-sport", "kyoto-tea"}
	currency := map[string]string{"flower-shop": "EUR", "energy-sport": "USD", "kyoto-tea": "JPY"}
	var adaOrders []string
	for i := range 7 {
		at := base.Add(time.Duration(i) * time.Minute)
		if i == 4 {
			at = base.Add(3 * time.Minute) // the same instant as order 3, at another store
		}
		slug, id := stores[i%3], fmt.Sprintf("ord_ada%d", i)
		e.placeOrder(slug, id, e.p.BuyerID, e.p.AgentClientID, at, int64(1000+i), currency[slug])
		adaOrders = append(adaOrders, slug+"/"+id)
		if i < 3 {
			e.placeOrder(slug, fmt.Sprintf("ord_bob%d", i), "buyer_bob", e.p.AgentClientID, at.Add(time.Second), 500, currency[slug])
		}
	}
	var got []account.OrderSummary
	cursor, pages := "", 0
	for {
		args := map[string]any{"limit": 3}
		if cursor != "" {
			args["cursor"] = cursor
		}
		page := ok[account.OrderList](e, ada, "list_my_orders", args)
		pages++
		got = append(got, page.Orders...)
		if page.NextCursor == "" {
			break
		}
		if pages > 5 {
			t.Fatal("paging does not end")
		}
		cursor = page.NextCursor
	}
	if pages != 3 || len(got) != 7 {
		t.Fatalf("%d pages, %d orders: %+v", pages, len(got), got)
	}
	var refs []string
	for i, o := range got {
		refs = append(refs, o.OrderRef)
		if i > 0 && o.PlacedAt.After(got[i-1].PlacedAt) {
			t.Errorf("not newest first: %v after %v", o.PlacedAt, got[i-1].PlacedAt)
		}
		if o.Currency != currency[o.Store] || o.TotalAmount < 1000 || !strings.HasPrefix(o.ID, "ord_ada") {
			t.Errorf("order %+v", o)
		}
	}
	slices.Sort(refs)
	slices.Sort(adaOrders)
	if !slices.Equal(refs, adaOrders) {
		t.Fatalf("orders %v, want %v", refs, adaOrders)
	}
	if all := ok[account.OrderList](e, ada, "list_my_orders", nil); len(all.Orders) != 7 || all.NextCursor != "" {
		t.Fatalf("default page: %d orders, cursor %q", len(all.Orders), all.NextCursor)
	}
	if bobs := ok[account.OrderList](e, bobTok, "list_my_orders", nil); len(bobs.Orders) != 3 ||
		slices.ContainsFunc(bobs.Orders, func(o account.OrderSummary) bool { return !strings.HasPrefix(o.ID, "ord_bob") }) {
		t.Fatalf("bob's orders: %+v", bobs)
	}

	// One order, by its ref and by its bare id.
	for _, ref := range []string{"energy-sport/ord_ada1", "ord_ada1"} {
		d := ok[account.OrderDetail](e, ada, "get_my_order", map[string]any{"order_id": ref})
		var doc ucp.Order
		if err := json.Unmarshal(d.Order, &doc); err != nil || d.ID != "ord_ada1" || d.Store != "energy-sport" || d.TotalAmount != 1001 ||
			doc.ID != "ord_ada1" || len(doc.LineItems) != 1 || doc.Currency != "USD" {
			t.Fatalf("get_my_order %s: %+v %v", ref, d, err)
		}
	}
	// Bob's order is not Ada's to read, whichever way it is named; the
	// refusal is the one a missing order gets.
	for _, ref := range []string{"flower-shop/ord_bob0", "ord_bob0", "flower-shop/ord_nope", "ord_nope", "no-such-store/ord_ada0", "flower-shop/"} {
		text := e.refused(ada, "get_my_order", map[string]any{"order_id": ref}, account.CodeNotFound)
		if strings.Contains(text, "bob") && !strings.Contains(text, ref) {
			t.Errorf("the refusal says more than the id: %q", text)
		}
	}
	// Bad paging arguments are tool errors the agent can correct.
	e.refused(ada, "list_my_orders", map[string]any{"cursor": "not-a-cursor"}, account.CodeInvalidArgument)
	for _, limit := range []int{0, 51, -1} {
		e.refused(ada, "list_my_orders", map[string]any{"limit": limit}, "")
	}
}

// TestUpdateSpendingLimits: limits go down, and the stores enforce the
// lowered ones at once; a raise is a tool error sending the buyer to the
// consent page, and changes nothing.
func TestUpdateSpendingLimits(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tok := e.ada("purchase:complete orders:read")
	agent := e.p.AgentClientID
	lim := ok[account.SpendingLimits](e, tok, "update_spending_limits", map[string]any{"client_id": agent, "max_per_order_amount": 1000})
	if lim.ClientID != agent || lim.SpendingCaps.MaxPerOrderAmount != 1000 || lim.SpendingCaps.DailyCapAmount != 12050 {
		t.Fatalf("lowered: %+v", lim)
	}
	if caps := ok[account.BuyerContext](e, tok, "get_buyer_context", nil).SpendingCaps; caps.MaxPerOrderAmount != 1000 {
		t.Fatalf("get_buyer_context after lowering: %+v", caps)
	}
	// A 19.00 EUR order is now over the limit at the store.
	c := e.buy(tok, "tulip_bunch", 1)
	if c.Status == ucp.CheckoutCompleted || !slices.ContainsFunc(c.Messages, func(m ucp.Message) bool { return m.Code == oauth.CodeSpendCapExceeded }) {
		t.Fatalf("the store let an order over the lowered limit through: %+v", c)
	}

	// Raises are refused, each naming the limit.
	for arg, v := range map[string]any{"max_per_order_amount": 5000, "daily_cap_amount": 20000,
		"expires_at": time.Now().Add(400 * 24 * time.Hour).UTC().Format(time.RFC3339)} {
		text := e.refused(tok, "update_spending_limits", map[string]any{"client_id": agent, arg: v}, account.CodeRaiseNeedsConsent)
		if !strings.Contains(text, arg) || !strings.Contains(text, "consent page") {
			t.Errorf("raise of %s: %q", arg, text)
		}
	}
	if caps := ok[account.BuyerContext](e, tok, "get_buyer_context", nil).SpendingCaps; caps.MaxPerOrderAmount != 1000 || caps.DailyCapAmount != 12050 {
		t.Fatalf("a refused raise changed the caps: %+v", caps)
	}
	// An earlier expiry and a lower daily cap together.
	exp := time.Now().Add(48 * time.Hour).UTC().Truncate(time.Second)
	lim = ok[account.SpendingLimits](e, tok, "update_spending_limits", map[string]any{"client_id": agent, "daily_cap_amount": 3000,
		"expires_at": exp.Format(time.RFC3339)})
	if lim.SpendingCaps.DailyCapAmount != 3000 || !lim.SpendingCaps.ExpiresAt.Equal(exp) || lim.SpendingCaps.MaxPerOrderAmount != 1000 {
		t.Fatalf("lowered again: %+v", lim)
	}
	// An expiry brought into the past ends the authorization at once:
	// the caps still show, so the agent can tell the buyer why it cannot
	// pay.
	ok[account.SpendingLimits](e, tok, "update_spending_limits", map[string]any{"client_id": agent,
		"expires_at": time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)})
	if bc := ok[account.BuyerContext](e, tok, "get_buyer_context", nil); bc.HasAgentAuthorization || bc.SpendingCaps == nil ||
		bc.SpendingCaps.ExpiresAt.After(time.Now()) {
		t.Fatalf("expired: %+v", bc)
	}
	// Arguments a buyer could get wrong.
	e.refused(tok, "update_spending_limits", map[string]any{"client_id": agent}, "")                               // nothing to change
	e.refused(tok, "update_spending_limits", map[string]any{"client_id": agent, "daily_cap_amount": -5}, "")       // schema
	e.refused(tok, "update_spending_limits", map[string]any{"client_id": agent, "max_per_order_amount": 10.5}, "") // schema
	e.refused(tok, "update_spending_limits", map[string]any{"client_id": agent, "expires_at": "next tuesday"}, "") // format
	e.refused(tok, "update_spending_limits", map[string]any{"client_id": "nobody", "daily_cap_amount": 1}, account.CodeNotFound)
	// An agent that may not spend has nothing to lower.
	reader := e.addAgent("reader", "Reader")
	reader.Scopes = []string{"orders:read"}
	e.token(reader, nil)
	e.refused(tok, "update_spending_limits", map[string]any{"client_id": "reader", "daily_cap_amount": 1}, account.CodeNoAllowance)
}

// TestRevokeAgentAuthorization: revoking another agent ends its tokens
// at once and drops it from the list; revoking it again is harmless;
// revoking oneself ends one's own bearer, whose next call is a 401 with
// the challenge.
func TestRevokeAgentAuthorization(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tok := e.ada("purchase:complete orders:read")
	other := e.token(e.addAgent("other-agent", "Other agent"), &authservertest.Consent{})
	auths := ok[account.AgentAuthorizations](e, tok, "list_my_agent_authorizations", nil).Authorizations
	i := slices.IndexFunc(auths, func(a account.AgentAuthorization) bool { return a.ClientID == "other-agent" })
	j := slices.IndexFunc(auths, func(a account.AgentAuthorization) bool { return a.ClientID == e.p.AgentClientID })
	if len(auths) != 2 || i < 0 || j < 0 || auths[i].ClientName != "Other agent" || auths[i].IsCaller || !auths[j].IsCaller ||
		auths[j].SpendingCaps == nil || !slices.Contains(auths[j].Scopes, "purchase:complete") {
		t.Fatalf("authorizations: %+v", auths)
	}

	rv := ok[account.Revocation](e, tok, "revoke_agent_authorization", map[string]any{"client_id": "other-agent"})
	if !rv.Revoked || rv.GrantsRevoked != 1 || rv.CallerRevoked {
		t.Fatalf("revoke: %+v", rv)
	}
	if res, _, b := e.post(toolCall("get_buyer_context", nil), "Authorization", other); res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("the revoked agent's token still works: HTTP %d %s", res.StatusCode, b)
	}
	auths = ok[account.AgentAuthorizations](e, tok, "list_my_agent_authorizations", nil).Authorizations
	if len(auths) != 1 || auths[0].ClientID != e.p.AgentClientID {
		t.Fatalf("after revoking: %+v", auths)
	}
	// Again: nothing left to end, not an error.
	if rv := ok[account.Revocation](e, tok, "revoke_agent_authorization", map[string]any{"client_id": "other-agent"}); rv.GrantsRevoked != 0 {
		t.Fatalf("second revoke: %+v", rv)
	}
	e.refused(tok, "revoke_agent_authorization", map[string]any{"client_id": "never-authorized"}, account.CodeNotFound)

	rv = ok[account.Revocation](e, tok, "revoke_agent_authorization", map[string]any{"client_id": e.p.AgentClientID})
	if !rv.CallerRevoked || rv.GrantsRevoked != 1 {
		t.Fatalf("self-revoke: %+v", rv)
	}
	res, out, b := e.post(toolCall("get_buyer_context", nil), "Authorization", tok)
	if res.StatusCode != http.StatusUnauthorized || !strings.Contains(res.Header.Get("WWW-Authenticate"), `resource_metadata="`+e.p.URL+account.PathResourceMetadata+`"`) ||
		out == nil || out.Error == nil || out.Error.Data.Code != "invalid_token" {
		t.Fatalf("the revoked bearer: HTTP %d %q %s", res.StatusCode, res.Header.Get("WWW-Authenticate"), b)
	}
}

// TestRevokeScriptApp: a script app signed in with the password grant
// holds tokens without any consent record; the buyer still ends them by
// client id.
func TestRevokeScriptApp(t *testing.T) {
	t.Parallel()
	p := authservertest.Start(t, &authservertest.Options{Config: func(c *authserver.Config) { c.OAuth.AllowPasswordGrant = true }})
	e := &env{t: t, p: p, endpoint: p.URL + account.Path}
	const secret = "ucpb_cs_script-secret-for-tests-only"
	if err := p.Store.CreateClient(e.ctx(), &store.Client{ID: "ada-script", Type: store.ClientScript, Name: "Ada's script",
		SecretHash: oauth.HashClientSecret(secret), GrantTypes: []string{"password"}, Developers: []string{p.BuyerID},
		CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	conf := &oauth2.Config{ClientID: "ada-script", ClientSecret: secret, Endpoint: oauth2.Endpoint{TokenURL: p.TokenURL}, Scopes: []string{"orders:read"}}
	script, err := conf.PasswordCredentialsToken(e.ctx(), p.BuyerEmail, p.BuyerPassword)
	if err != nil {
		t.Fatal(err)
	}
	ok[account.OrderList](e, script.AccessToken, "list_my_orders", nil)
	tok := e.ada("purchase:complete")
	if rv := ok[account.Revocation](e, tok, "revoke_agent_authorization", map[string]any{"client_id": "ada-script"}); rv.GrantsRevoked != 1 {
		t.Fatalf("%+v", rv)
	}
	if res, _, b := e.post(toolCall("list_my_orders", nil), "Authorization", script.AccessToken); res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("the script's token survived: HTTP %d %s", res.StatusCode, b)
	}
	e.refused(tok, "revoke_agent_authorization", map[string]any{"client_id": "ada-script"}, account.CodeNotFound)
}
