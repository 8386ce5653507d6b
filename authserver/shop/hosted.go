package shop

import (
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"

	"github.com/ucpbridge/ucpbridge/authserver/store"
	"github.com/ucpbridge/ucpbridge/ucpclient/ucp"
)

// The hosted continue page is where a checkout escalates to (continue_url):
// the buyer reviews the order and pays with the sandbox card. The URL's
// token is the capability; it is unguessable and bound to one session.
var continuePage = template.Must(template.New("continue").Funcs(template.FuncMap{
	"money": func(amount int64, currency string) string { return formatMoney(amount, currency) },
}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>{{.Shop}} checkout</title>
<style>body{font-family:system-ui,sans-serif;max-width:36rem;margin:2rem auto;padding:0 1rem}table{width:100%;border-collapse:collapse}td{padding:.3rem 0}td:last-child{text-align:right}.total td{font-weight:bold;border-top:1px solid #999}</style>
</head><body>
<h1>{{.Shop}}</h1>
<p>Checkout <code>{{.C.ID}}</code>: <strong>{{.C.Status}}</strong></p>
<table>{{range .C.LineItems}}<tr><td>{{.Quantity}} × {{.Item.Title}}</td><td>{{money (index .Totals 0).Amount $.C.Currency}}</td></tr>{{end}}
{{range .C.Totals}}<tr{{if eq .Type "total"}} class="total"{{end}}><td>{{if .DisplayText}}{{.DisplayText}}{{else}}{{.Type}}{{end}}</td><td>{{money .Amount $.C.Currency}}</td></tr>{{end}}</table>
{{range .C.Messages}}<p>{{.Content}}</p>{{end}}
{{if .Payable}}<form method="post"><input type="hidden" name="token" value="{{.Token}}"><input type="hidden" name="terms" value="{{.Terms}}">
<p>Sandbox: no real card is charged.</p><button type="submit">Pay {{money .Total .C.Currency}} with the test card</button></form>{{end}}
{{if .C.Order}}<p>Order placed: <code>{{.C.Order.ID}}</code></p>{{end}}
</body></html>`))

// formatMoney renders minor units for the page: "12.50 EUR", "1620 JPY",
// with the exponent from the project's one ISO 4217 table.
func formatMoney(amount int64, currency string) string {
	return ucp.FormatMinor(amount, currency) + " " + currency
}

func (s *Service) serveContinue(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer") // the URL holds the token
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'")
	ctx := r.Context()
	token := r.URL.Query().Get("token")
	if r.Method == http.MethodPost {
		r.Body = http.MaxBytesReader(w, r.Body, 4096)
		token = r.PostFormValue("token")
	}
	slug, id := r.PathValue("slug"), r.PathValue("id")
	if !store.ValidText(slug) || !store.ValidText(id) {
		http.NotFound(w, r)
		return
	}
	sh, err := s.shop(ctx, slug)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	sess, err := s.cfg.Store.Session(ctx, store.KindCheckout, sh.Slug, id)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	st := &checkoutState{}
	if json.Unmarshal(sess.Doc, st) != nil || token == "" || subtle.ConstantTimeCompare([]byte(token), []byte(st.Token)) != 1 {
		http.NotFound(w, r)
		return
	}
	if !terminal(st.Checkout.Status) && !s.now().Before(sess.ExpiresAt) {
		st.Checkout.Status = ucp.CheckoutCanceled
		st.Checkout.Messages = []ucp.Message{{Type: "info", Code: "expired", Content: "the checkout session expired"}}
	}
	// Only a checkout the store escalated to the buyer is paid here: the
	// platform's own steps (and its AP2 mandate) came first. A checkout
	// merely ready for completion is the platform's to complete.
	payable := st.Checkout.Status == ucp.CheckoutRequiresEscalation
	if r.Method == http.MethodPost && payable {
		if err := s.payHosted(r, sh, sess, r.PostFormValue("terms")); err != nil {
			s.failure(ctx, "shop: hosted payment", err)
			http.Error(w, "the payment could not be completed; reload and try again", http.StatusServiceUnavailable)
			return
		}
		// Paid, or not (the terms changed, a second click, the platform
		// moved on): the page shows where the checkout stands.
		http.Redirect(w, r, s.continueURL(sh.Slug, sess.ID, st.Token), http.StatusSeeOther)
		return
	}
	c := st.Checkout
	total := c.Totals[len(c.Totals)-1].Amount
	terms, err := termsHash(&c)
	if err != nil {
		s.failure(ctx, "shop: hosted page", err)
		http.Error(w, "the checkout cannot be shown", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	continuePage.Execute(w, map[string]any{"Shop": sh.Name, "C": c, "Token": st.Token, "Total": total, "Terms": terms,
		"Payable": payable && !hasBlockingError(c.Messages)})
}

// hasBlockingError ignores the escalation's own request for the buyer.
func hasBlockingError(msgs []ucp.Message) bool {
	for _, m := range msgs {
		if m.Type == "error" && m.Severity != ucp.SeverityRequiresBuyerInput {
			return true
		}
	}
	return false
}

// payHosted completes the checkout as the human buyer with the sandbox
// card, through the same path as the API (re-pricing, stock, order), for
// exactly the terms the page showed (shown). Only a failure of the
// platform is an error: a checkout that did not complete for the buyer's
// or the platform's reasons is shown by the page.
func (s *Service) payHosted(r *http.Request, sh *shopInfo, sess *store.Session, shown string) error {
	body, _ := json.Marshal(map[string]any{"payment": map[string]any{"instruments": []any{map[string]any{
		"handler_id": HandlerCardID, "selected": true, "credential": map[string]any{"type": "token", "token": TokenSuccess}}}}})
	bp, err := s.businessProfile(r.Context(), sh)
	if err != nil {
		return err
	}
	// The hosted page speaks for the store itself: the session owner is
	// kept, and the store's own capabilities apply (no platform profile).
	own := &negotiation{version: bp.profile.UCP.Version, caps: map[string]string{ucp.CapCheckout: ucp.Version}, business: bp}
	req := &Request{Op: OpCompleteCheckout, Shop: sh.Slug, ID: sess.ID, Body: body, BuyerType: "human"}
	oc := &opCtx{Request: req, info: ops[OpCompleteCheckout], shop: sh, neg: own, ownerOverride: sess.Owner}
	rep := s.complete(r.Context(), oc, shown)
	if rep.Err != nil && rep.Err.Status >= 500 {
		return rep.Err
	}
	return nil
}

var policies = map[string]string{
	"privacy": "This is a sandbox store run by ucpbridge. It keeps the order data you send for as long as the operator's database keeps it and shares it with no one.",
	"terms":   "Sandbox store: prices, stock and payments are simulated. No goods are shipped and no card is charged.",
	"refunds": "Sandbox store: nothing is charged, so there is nothing to refund.",
}

func (s *Service) servePolicy(w http.ResponseWriter, r *http.Request) {
	text, ok := policies[r.PathValue("doc")]
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	fmt.Fprintln(w, text)
}
