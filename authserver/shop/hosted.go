package shop

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"

	"github.com/ucpbridge/ucpbridge/authserver/store"
	"github.com/ucpbridge/ucpbridge/ucpclient/ucp"
)

// The hosted continue page is where a checkout escalates to (continue_url)
// when the store needs the buyer: the buyer reviews the order and pays
// with a sandbox card, in three steps, each a server-rendered form.
//
//  1. Card: number, expiry (MM/YY), CVC, optional cardholder name. The
//     number passes the Luhn check and is one of the sandbox cards
//     (SandboxCardSuccess, SandboxCardDeclined, SandboxCard3DS); any
//     other valid number is declined as an unknown sandbox card.
//  2. 3-D Secure, for SandboxCard3DS only: the buyer completes or fails
//     the authentication.
//  3. Confirmation: "Pay 25.90 EUR". Only this step charges, through the
//     card rail, with the sandbox token the card maps to (TokenSuccess;
//     TokenFail for the declined card, which the rail declines).
//
// The URL's token is the capability: unguessable and bound to one
// session. Every POST also carries a CSRF token bound to that token and
// to a cookie nonce, and the checkout it showed (session version,
// currency, amount, terms hash): when the checkout changed since, nothing
// is charged and the buyer confirms the new total.

// maxContinueForm bounds a POSTed form; the largest, the card step, is
// well under 2 KiB.
const maxContinueForm = 8 << 10

// hostedPage is one request to a checkout's continue page whose token was
// checked.
type hostedPage struct {
	s    *Service
	w    http.ResponseWriter
	r    *http.Request
	sh   *shopInfo
	sess *store.Session
	st   *checkoutState
	key  pageKey
}

func (s *Service) serveContinue(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer") // the URL holds the token
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	ctx := r.Context()
	token := r.URL.Query().Get("token")
	if r.Method == http.MethodPost {
		r.Body = http.MaxBytesReader(w, r.Body, maxContinueForm)
		if err := r.ParseForm(); err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				http.Error(w, "the form is too large", http.StatusRequestEntityTooLarge)
			} else {
				http.Error(w, "the form could not be read", http.StatusBadRequest)
			}
			return
		}
		token = r.PostForm.Get("token")
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
	p := &hostedPage{s: s, w: w, r: r, sh: sh, sess: sess, st: st}
	if p.key, err = s.pageKey(ctx, sh.Slug); err != nil {
		p.unavailable(err)
		return
	}
	if r.Method != http.MethodPost {
		v := &pageView{}
		if p.payable() {
			v.Step = stepCard
		}
		p.render(http.StatusOK, v)
		return
	}
	if !p.checkCSRF() {
		p.render(http.StatusForbidden, &pageView{Error: "This form was not accepted: it did not come from this checkout's page " +
			"in this browser, or it is too old. Open the checkout page again; nothing was charged."})
		return
	}
	if !p.payable() {
		// Paid already (a second click), canceled, or taken back by the
		// platform: the page shows where the checkout stands.
		p.seeCheckout()
		return
	}
	switch r.PostForm.Get("step") {
	case stepCard:
		p.enterCard()
	case step3DS:
		p.authenticate()
	case stepPay:
		p.pay(ctx)
	default:
		p.render(http.StatusBadRequest, &pageView{Step: stepCard, Error: "This form is not one this page draws. Enter your card again."})
	}
}

// The page's steps, as each form's "step" field names them.
const (
	stepCard = "card"
	step3DS  = "3ds"
	stepPay  = "pay"
)

// payable: only a checkout the store escalated to the buyer is paid here,
// and only while it stands as it is: the platform's own steps (and its AP2
// mandate) came first, and a checkout merely ready for completion is the
// platform's to complete.
func (p *hostedPage) payable() bool {
	c := &p.st.Checkout
	return c.Status == ucp.CheckoutRequiresEscalation && p.s.now().Before(p.sess.ExpiresAt) && !hasBlockingError(c.Messages)
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

// seeCheckout answers a POST with a redirect to the page (Post/Redirect/Get).
func (p *hostedPage) seeCheckout() {
	http.Redirect(p.w, p.r, p.s.continueURL(p.sh.Slug, p.sess.ID, p.st.Token), http.StatusSeeOther)
}

// enterCard is the card step: a card with problems is shown again with
// them; an accepted card goes to 3-D Secure or to the confirmation.
func (p *hostedPage) enterCard() {
	f := p.r.PostForm
	v := &pageView{Step: stepCard, Name: f.Get("name"), Expiry: f.Get("expiry")}
	c, err := parseCard(cardInput{Number: f.Get("number"), Expiry: f.Get("expiry"), CVC: f.Get("cvc"), Name: f.Get("name")}, p.s.now())
	var ce *cardError
	switch {
	case errors.As(err, &ce) && ce.Declined != "":
		v.Error = ce.Declined
		p.render(http.StatusPaymentRequired, v)
		return
	case errors.As(err, &ce):
		v.Error, v.Fields = "Check the card details.", map[string]string{}
		for _, fe := range ce.Fields {
			v.Fields[fe.Field] = fe.Reason
		}
		p.render(http.StatusUnprocessableEntity, v)
		return
	case err != nil:
		p.unavailable(err)
		return
	}
	v = &pageView{Step: stepPay, Card: c, Notice: p.changedNotice()}
	if c.State == cardNeeds3DS {
		v.Step = step3DS
	}
	p.render(http.StatusOK, v)
}

// authenticate is the sandbox issuer's 3-D Secure step.
func (p *hostedPage) authenticate() {
	c, ok := p.openCard(p.r.PostForm.Get("card"))
	if !ok || c.State != cardNeeds3DS {
		p.cardAgain()
		return
	}
	switch p.r.PostForm.Get("decision") {
	case "complete":
		c.State = cardAuthenticated
		p.render(http.StatusOK, &pageView{Step: stepPay, Card: c, Notice: p.changedNotice()})
	case "fail":
		p.render(http.StatusPaymentRequired, &pageView{Step: stepCard,
			Error: "Authentication failed: your card issuer could not confirm the payment. Nothing was charged; try again or use another card."})
	default:
		p.render(http.StatusUnprocessableEntity, &pageView{Step: step3DS, Card: c, Error: "Choose Complete authentication or Fail authentication."})
	}
}

// cardAgain: the form's card is not one this page accepted for this
// checkout, or it has been waiting too long.
func (p *hostedPage) cardAgain() {
	p.render(http.StatusUnprocessableEntity, &pageView{Step: stepCard, Error: "Enter your card again: the card details on that page have expired."})
}

// pay is the confirmation step: it charges, for exactly the checkout the
// page showed, or shows why it did not.
func (p *hostedPage) pay(ctx context.Context) {
	c, ok := p.openCard(p.r.PostForm.Get("card"))
	if !ok {
		p.cardAgain()
		return
	}
	token := c.State.railToken()
	if token == "" {
		p.render(http.StatusUnprocessableEntity, &pageView{Step: step3DS, Card: c, Error: "Your card issuer asks you to authenticate first."})
		return
	}
	shown, changed := p.shown()
	if changed {
		p.render(http.StatusConflict, &pageView{Step: stepPay, Card: c, Notice: p.changedNotice() + " Nothing was charged."})
		return
	}
	rep, err := p.s.payHosted(ctx, p.sh, p.sess, shown, token)
	if err == nil && rep.Err != nil && rep.Err.Status >= 500 {
		err = rep.Err
	}
	if err != nil {
		p.unavailable(err)
		return
	}
	// Where the checkout stands now decides the page.
	if err := p.reload(ctx); err != nil {
		p.unavailable(err)
		return
	}
	if !p.payable() {
		p.seeCheckout() // paid (or no longer the buyer's to pay)
		return
	}
	v := &pageView{Step: stepPay, Card: c}
	if rep.Err != nil {
		if rep.Err.Code == "terms_changed" {
			v.Notice = cmpOr(p.changedNotice(), "The order changed while it was being paid; review it before you pay.") + " Nothing was charged."
		} else {
			v.Error = "The payment did not go through: " + rep.Err.Content + ". Nothing was charged."
		}
		p.render(http.StatusConflict, v)
		return
	}
	var out ucp.Checkout
	if json.Unmarshal(rep.Body, &out) != nil {
		p.unavailable(errors.New("shop: hosted payment: undecodable checkout reply"))
		return
	}
	if slices.ContainsFunc(out.Messages, func(m ucp.Message) bool { return m.Code == "payment_failed" }) {
		p.render(http.StatusPaymentRequired, &pageView{Step: stepCard,
			Error: "Your card was declined. Nothing was charged; use another card."})
		return
	}
	v.Error = "The order cannot be paid as it stands. Nothing was charged."
	for _, m := range out.Messages {
		if m.Type == "error" {
			v.Error += " " + m.Content + "."
		}
	}
	p.render(http.StatusConflict, v)
}

// reload reads the session again, after a payment attempt changed it or
// not.
func (p *hostedPage) reload(ctx context.Context) error {
	sess, err := p.s.cfg.Store.Session(ctx, store.KindCheckout, p.sh.Slug, p.sess.ID)
	if err != nil {
		return err
	}
	st := &checkoutState{}
	if err := json.Unmarshal(sess.Doc, st); err != nil {
		return err
	}
	p.sess, p.st = sess, st
	return nil
}

// binding is what a form says it showed: the checkout version, currency,
// amount and terms hash.
type binding struct {
	version  int64
	currency string
	amount   int64
	terms    string
}

// current is the binding of the checkout as stored now; ok is false when
// its terms cannot be hashed (a corrupt document).
func (p *hostedPage) current() (binding, bool) {
	c := &p.st.Checkout
	terms, err := termsHash(c)
	return binding{version: p.sess.Version, currency: c.Currency, amount: checkoutTotal(c), terms: terms}, err == nil
}

// checkoutTotal is the amount due (the "total" entry, which pricing puts
// last).
func checkoutTotal(c *ucp.Checkout) int64 {
	if len(c.Totals) == 0 {
		return 0
	}
	return c.Totals[len(c.Totals)-1].Amount
}

// posted is the binding the POSTed form carries.
func (p *hostedPage) posted() binding {
	f := p.r.PostForm
	b := binding{currency: f.Get("currency"), terms: f.Get("terms")}
	b.version, _ = strconv.ParseInt(f.Get("version"), 10, 64)
	b.amount, _ = strconv.ParseInt(f.Get("amount"), 10, 64)
	return b
}

// shown returns what the POSTed form showed the buyer, and whether the
// checkout has changed since (any of version, currency, amount or terms).
func (p *hostedPage) shown() (*shownCheckout, bool) {
	b := p.posted()
	cur, ok := p.current()
	return &shownCheckout{terms: b.terms, version: b.version}, !ok || b != cur
}

// changedNotice tells the buyer the checkout changed since the POSTed
// form was drawn; "" when it did not.
func (p *hostedPage) changedNotice() string {
	b := p.posted()
	cur, ok := p.current()
	if ok && b == cur {
		return ""
	}
	was := ""
	if b.currency != "" && b.amount > 0 && (b.amount != cur.amount || b.currency != cur.currency) {
		was = " (it was " + formatMoney(b.amount, b.currency) + ")"
	}
	return "The order changed after this page was shown: the total is now " + formatMoney(cur.amount, cur.currency) + was + ". Review it before you pay."
}

// unavailable answers a failure of the platform (storage, keys): nothing
// was charged, or a charge without an order was voided.
func (p *hostedPage) unavailable(err error) {
	p.s.failure(p.r.Context(), "shop: hosted page", err)
	p.w.Header().Set("Retry-After", "1")
	http.Error(p.w, "The store is unavailable right now and nothing was charged; reload the page and try again.", http.StatusServiceUnavailable)
}

// shownCheckout is the checkout as the hosted page showed it: the session
// version it read and the terms hash (mandate.CheckoutHash) it drew.
type shownCheckout struct {
	terms   string
	version int64
}

// payHosted completes the checkout as the human buyer with the card rail
// and the sandbox token of the card the buyer confirmed, through the same
// path as the API (re-pricing, stock, order), for exactly the checkout
// the page showed. It returns the completion's reply; the error is a
// failure to start it.
func (s *Service) payHosted(ctx context.Context, sh *shopInfo, sess *store.Session, shown *shownCheckout, token string) (*Reply, error) {
	body, _ := json.Marshal(map[string]any{"payment": map[string]any{"instruments": []any{map[string]any{
		"handler_id": HandlerCardID, "type": "card", "selected": true, "credential": map[string]any{"type": "token", "token": token}}}}})
	bp, err := s.businessProfile(ctx, sh)
	if err != nil {
		return nil, err
	}
	// The hosted page speaks for the store itself: the session owner is
	// kept, and the store's own capabilities apply (no platform profile).
	own := &negotiation{version: bp.profile.UCP.Version, caps: map[string]string{ucp.CapCheckout: ucp.Version}, business: bp}
	req := &Request{Op: OpCompleteCheckout, Shop: sh.Slug, ID: sess.ID, Body: body, BuyerType: "human"}
	oc := &opCtx{Request: req, info: ops[OpCompleteCheckout], shop: sh, neg: own, ownerOverride: sess.Owner}
	return s.complete(ctx, oc, shown), nil
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
