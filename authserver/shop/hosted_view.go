package shop

import (
	"bytes"
	"errors"
	"html/template"
	"strconv"

	"github.com/ucpbridge/ucpbridge/ucpclient/ucp"
)

// pageView is what one rendering of the hosted continue page shows. The
// handler sets the step and what happened; render adds the checkout as
// stored now and the fields every form carries.
type pageView struct {
	// Step is the form shown: stepCard, step3DS, stepPay (the
	// confirmation), or "" for none (paid, canceled, not the buyer's).
	Step string
	// Notice says what changed since the buyer's last page; Error why
	// the last form did not go through. Fields holds the card form's
	// problems by field.
	Notice, Error string
	Fields        map[string]string
	// Name and Expiry are echoed into the card form after a problem;
	// the number and CVC never are.
	Name, Expiry string
	// Card is the accepted card (3-D Secure and confirmation steps).
	Card *card

	// Set by render.
	Shop        string
	C           *ucp.Checkout
	Messages    []string
	Total       string
	Sealed      string
	Bind        []hiddenField
	ContinueURL string
	Sandbox     []struct{ Number, Outcome string }
}

type hiddenField struct{ Name, Value string }

// render writes the page with status. Each form carries the continue
// token, the CSRF token and the checkout it shows (version, currency,
// amount, terms hash), read from the session as stored now.
func (p *hostedPage) render(status int, v *pageView) {
	c := &p.st.Checkout
	if !terminal(c.Status) && !p.s.now().Before(p.sess.ExpiresAt) {
		c.Status = ucp.CheckoutCanceled
		c.Messages = []ucp.Message{{Type: "info", Code: "expired", Content: "the checkout session expired"}}
	}
	if v.Step != "" && !p.payable() {
		v.Step = ""
	}
	cur, ok := p.current()
	if !ok {
		p.unavailable(errTermsUnhashable)
		return
	}
	v.Shop, v.C, v.Sandbox = p.sh.Name, c, sandboxCards
	v.Total = formatMoney(cur.amount, cur.currency)
	v.ContinueURL = p.s.continueURL(p.sh.Slug, p.sess.ID, p.st.Token)
	for _, m := range c.Messages {
		// The escalation's own request is addressed to the platform;
		// this page is the answer to it.
		if m.Severity != ucp.SeverityRequiresBuyerInput {
			v.Messages = append(v.Messages, m.Content)
		}
	}
	if v.Step != "" {
		v.Bind = []hiddenField{{"token", p.st.Token}, {"csrf", p.csrfToken(p.nonce())},
			{"version", strconv.FormatInt(cur.version, 10)}, {"currency", cur.currency},
			{"amount", strconv.FormatInt(cur.amount, 10)}, {"terms", cur.terms}}
		if v.Card != nil {
			v.Sealed = p.sealCard(v.Card)
		}
	}
	var buf bytes.Buffer
	if err := continuePage.Execute(&buf, v); err != nil {
		p.unavailable(err)
		return
	}
	p.w.Header().Set("Content-Type", "text/html; charset=utf-8")
	p.w.WriteHeader(status)
	p.w.Write(buf.Bytes())
}

// errTermsUnhashable: the stored checkout cannot be reduced to its terms
// (a corrupt document); the page cannot bind a payment to it.
var errTermsUnhashable = errors.New("shop: hosted page: the checkout's terms cannot be hashed")

// formatMoney renders minor units for the page: "12.50 EUR", "1620 JPY",
// with the exponent from the project's one ISO 4217 table.
func formatMoney(amount int64, currency string) string {
	return ucp.FormatMinor(amount, currency) + " " + currency
}

var continuePage = template.Must(template.New("continue").Funcs(template.FuncMap{
	"money": formatMoney,
}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>{{.Shop}} checkout</title>
<style>body{font-family:system-ui,sans-serif;max-width:36rem;margin:2rem auto;padding:0 1rem}table{width:100%;border-collapse:collapse}td{padding:.3rem 0}td:last-child{text-align:right}.total td{font-weight:bold;border-top:1px solid #999}label{display:block;margin:.6rem 0}input:not([type=hidden]){display:block;width:100%;padding:.4rem;font-size:1rem;box-sizing:border-box}.row{display:flex;gap:1rem}.row label{flex:1}.error{color:#a00}.notice{background:#fff3cd;padding:.6rem}button{font-size:1.05rem;padding:.5rem 1.2rem;margin:.6rem .4rem 0 0}small{color:#555}</style>
</head><body>
<h1>{{.Shop}}</h1>
<p>Checkout <code>{{.C.ID}}</code>: <strong>{{.C.Status}}</strong></p>
<table>{{range .C.LineItems}}<tr><td>{{.Quantity}} × {{.Item.Title}}</td><td>{{money (index .Totals 0).Amount $.C.Currency}}</td></tr>{{end}}
{{range .C.Totals}}<tr{{if eq .Type "total"}} class="total"{{end}}><td>{{if .DisplayText}}{{.DisplayText}}{{else}}{{.Type}}{{end}}</td><td>{{money .Amount $.C.Currency}}</td></tr>{{end}}</table>
{{range .Messages}}<p>{{.}}</p>{{end}}
{{if .Notice}}<p class="notice" role="status">{{.Notice}}</p>{{end}}
{{if .Error}}<p class="error" role="alert">{{.Error}}</p>{{end}}
{{define "bind"}}{{range .Bind}}<input type="hidden" name="{{.Name}}" value="{{.Value}}">{{end}}{{end}}
{{- if eq .Step "card"}}
<h2>Pay by card</h2>
<form method="post" data-step="card">{{template "bind" .}}<input type="hidden" name="step" value="card">
<label>Card number<input name="number" inputmode="numeric" autocomplete="cc-number" maxlength="23" required>{{with index .Fields "number"}}<span class="error">{{.}}</span>{{end}}</label>
<div class="row"><label>Expiry (MM/YY)<input name="expiry" value="{{.Expiry}}" autocomplete="cc-exp" placeholder="MM/YY" maxlength="7" required>{{with index .Fields "expiry"}}<span class="error">{{.}}</span>{{end}}</label>
<label>CVC<input name="cvc" inputmode="numeric" autocomplete="cc-csc" maxlength="4" required>{{with index .Fields "cvc"}}<span class="error">{{.}}</span>{{end}}</label></div>
<label>Cardholder name <small>(optional)</small><input name="name" value="{{.Name}}" autocomplete="cc-name" maxlength="100">{{with index .Fields "name"}}<span class="error">{{.}}</span>{{end}}</label>
<button type="submit">Continue</button>
</form>
<h2>Sandbox test cards</h2>
<p><small>No real card is charged. Use any expiry date not in the past and any 3-digit CVC (4 digits for American Express numbers).</small></p>
<ul>{{range .Sandbox}}<li><code>{{.Number}}</code> {{.Outcome}}</li>{{end}}<li>any other valid number is declined (unknown sandbox card)</li></ul>
{{- else if eq .Step "3ds"}}
<h2>3-D Secure</h2>
<p>Sandbox card issuer: confirm that you are paying <strong>{{.Total}}</strong> to {{.Shop}} with {{.Card.Label}}.</p>
<form method="post" data-step="3ds">{{template "bind" .}}<input type="hidden" name="step" value="3ds"><input type="hidden" name="card" value="{{.Sealed}}">
<button type="submit" name="decision" value="complete">Complete authentication</button><button type="submit" name="decision" value="fail">Fail authentication</button>
</form>
{{- else if eq .Step "pay"}}
<h2>Confirm your payment</h2>
<p>{{.Card.Label}}</p>
<form method="post" data-step="pay">{{template "bind" .}}<input type="hidden" name="step" value="pay"><input type="hidden" name="card" value="{{.Sealed}}">
<button type="submit">Pay {{.Total}}</button>
</form>
<p><a href="{{.ContinueURL}}">Use another card</a></p>
{{- else if not .C.Order}}
<p><a href="{{.ContinueURL}}">Open the checkout page again</a></p>
{{- end}}
{{if .C.Order}}<p>Order placed: <code>{{.C.Order.ID}}</code></p>{{end}}
</body></html>`))
