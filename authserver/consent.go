package authserver

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// consentPage needs no JavaScript: a plain form posts back the request,
// the CSRF token, the sign-in fields and the allowance.
var consentPage = template.Must(template.New("consent").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Connect {{.ClientName}}</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:34rem;margin:2rem auto;padding:0 1rem;color:#111}
.box{border:1px solid #ccc;border-radius:8px;padding:1rem 1.25rem;margin:1rem 0}.warn{background:#fff4e5}
.err{background:#fde8e8;color:#7a1010}label{display:block;margin:.5rem 0}input{font:inherit}
button{font:inherit;padding:.5rem 1rem;margin-right:.5rem}.host{font-family:monospace}</style></head>
<body>
<h1>Connect <em>{{.ClientName}}</em> to your account</h1>
<p>Client: <span class="host">{{.ClientHost}}</span>{{if .CIMD}} (identified by its metadata document){{end}}<br>
After you decide you return to <span class="host">{{.RedirectHost}}</span>.</p>
{{if .LocalOnly}}<div class="box warn">This app runs on your own computer (it returns to a local address). Only continue if you started it yourself.</div>{{end}}
{{if .Error}}<div class="box err" role="alert">{{.Error}}</div>{{end}}
<form method="post" action="{{.Action}}">
{{range .Hidden}}<input type="hidden" name="{{.Name}}" value="{{.Value}}">{{end}}
<input type="hidden" name="csrf" value="{{.CSRF}}">
<div class="box"><strong>It will be able to:</strong><ul>
{{range .Scopes}}<li>{{.Description}} <small>({{.Name}})</small></li>{{end}}</ul></div>
{{if .Purchase}}<fieldset class="box"><legend>Spending limits for this agent</legend>
<label>Most per order <input name="max_per_order" value="{{.MaxPerOrder}}" inputmode="decimal" size="10" required></label>
<label>Most per day <input name="daily_cap" value="{{.DailyCap}}" inputmode="decimal" size="10" required></label>
<label>Currency <input name="currency" value="{{.Currency}}" size="3" maxlength="3" required></label>
<label>Valid for <input name="expires_days" value="{{.Days}}" inputmode="numeric" size="4" required> days</label>
</fieldset>{{end}}
{{if .SignedIn}}<p>Signed in as {{.Email}}.</p>{{else}}<fieldset class="box"><legend>Sign in</legend>
<label>Email <input type="email" name="email" autocomplete="username" required></label>
<label>Password <input type="password" name="password" autocomplete="current-password" required></label></fieldset>{{end}}
<button type="submit" name="action" value="approve">Allow</button>
<button type="submit" name="action" value="deny" formnovalidate>Deny</button>
</form></body></html>`))

var errorPage = template.Must(template.New("error").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Authorization error</title></head>
<body style="font:16px/1.5 system-ui,sans-serif;max-width:34rem;margin:2rem auto">
<h1>This request cannot continue</h1><p><strong>{{.Code}}</strong>: {{.Description}}</p>
<p>Go back to the app and try again. If this keeps happening, the app is misconfigured.</p></body></html>`))

type hiddenField struct{ Name, Value string }

// pageHeaders stop framing (clickjacking), caching and referrer leaks.
func pageHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
}

// renderConsent shows the consent page; prior holds the buyer's previous
// allowance input when it is re-shown with an error.
func (s *Server) renderConsent(w http.ResponseWriter, r *http.Request, a *authRequest, errMsg string, prior url.Values) {
	buyer, err := s.sessionBuyer(r)
	if err != nil {
		s.renderError(w, r, errServer(err))
		return
	}
	var hidden []hiddenField
	for k, vs := range a.params() {
		hidden = append(hidden, hiddenField{k, vs[0]})
	}
	rd, _ := url.Parse(a.RedirectURI)
	data := map[string]any{
		"ClientName": a.client.Name, "ClientHost": clientHost(a.client), "CIMD": a.client.CIMD,
		"RedirectHost": rd.Host, "LocalOnly": isLoopbackHost(rd.Hostname()), "Error": errMsg,
		"Action": s.cfg.Issuer + PathAuthorize, "Hidden": hidden, "CSRF": s.cookies.issueCSRF(w, r),
		"SignedIn": buyer != nil, "Purchase": false,
		"MaxPerOrder": formatMinor(DefaultAllowance.MaxPerOrder), "DailyCap": formatMinor(DefaultAllowance.DailyCap),
		"Currency": DefaultAllowance.Currency, "Days": "30",
	}
	if buyer != nil {
		data["Email"] = buyer.Email
	}
	var scopes []Scope
	for _, name := range a.Scope {
		sc, _ := scopeByName(name)
		scopes = append(scopes, sc)
		if spends(name) {
			data["Purchase"] = true
		}
	}
	data["Scopes"] = scopes
	for _, k := range []string{"max_per_order", "daily_cap", "currency", "expires_days"} {
		if v := prior.Get(k); v != "" {
			data[map[string]string{"max_per_order": "MaxPerOrder", "daily_cap": "DailyCap", "currency": "Currency", "expires_days": "Days"}[k]] = v
		}
	}
	pageHeaders(w)
	status := http.StatusOK
	if errMsg != "" {
		status = http.StatusBadRequest
	}
	w.WriteHeader(status)
	if err := consentPage.Execute(w, data); err != nil {
		s.log.ErrorContext(r.Context(), "consent page", "error", err)
	}
}

// clientHost is what the buyer should recognise: the CIMD URL's host, or
// the registered client's id.
func clientHost(c *client) string {
	if c.CIMD {
		if u, err := url.Parse(c.ID); err == nil {
			return u.Host
		}
	}
	return c.ID
}

func (s *Server) renderError(w http.ResponseWriter, r *http.Request, e *oauthError) {
	if e.cause != nil {
		s.log.ErrorContext(r.Context(), "authorization request failed", "cause", e.cause)
	}
	pageHeaders(w)
	status := e.Status
	if status == 0 || status == http.StatusUnauthorized {
		status = http.StatusBadRequest
	}
	w.WriteHeader(status)
	errorPage.Execute(w, e)
}

// cookieCodec signs session and CSRF cookies with HMAC-SHA256.
type cookieCodec struct {
	key    []byte
	secure bool
	path   string
}

func newCookieCodec(key []byte, secure bool, path string) *cookieCodec {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("ucpbridge cookie key"))
	return &cookieCodec{key: m.Sum(nil), secure: secure, path: path}
}

func (c *cookieCodec) mac(parts ...string) string {
	m := hmac.New(sha256.New, c.key)
	m.Write([]byte(strings.Join(parts, "\x00")))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

const (
	sessionCookie = "ucpb_session"
	csrfCookie    = "ucpb_csrf"
)

func (c *cookieCodec) setSession(w http.ResponseWriter, buyerID string, exp time.Time) {
	v := base64.RawURLEncoding.EncodeToString([]byte(buyerID)) + "." + strconv.FormatInt(exp.Unix(), 10)
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: v + "." + c.mac("session", v), Path: c.path,
		Expires: exp, HttpOnly: true, Secure: c.secure, SameSite: http.SameSiteLaxMode})
}

func (c *cookieCodec) session(r *http.Request, now time.Time) (string, bool) {
	ck, err := r.Cookie(sessionCookie)
	if err != nil {
		return "", false
	}
	parts := strings.Split(ck.Value, ".")
	if len(parts) != 3 || !hmac.Equal([]byte(parts[2]), []byte(c.mac("session", parts[0]+"."+parts[1]))) {
		return "", false
	}
	exp, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil || !now.Before(time.Unix(exp, 0)) {
		return "", false
	}
	id, err := base64.RawURLEncoding.DecodeString(parts[0])
	return string(id), err == nil
}

// issueCSRF sets (or reuses) a random cookie and returns the form token
// bound to it: a cross-site form can send the cookie but cannot read it
// to compute the token.
func (c *cookieCodec) issueCSRF(w http.ResponseWriter, r *http.Request) string {
	v := ""
	if ck, err := r.Cookie(csrfCookie); err == nil && len(ck.Value) >= 22 {
		v = ck.Value
	} else {
		b := make([]byte, 16)
		rand.Read(b)
		v = base64.RawURLEncoding.EncodeToString(b)
		http.SetCookie(w, &http.Cookie{Name: csrfCookie, Value: v, Path: c.path, HttpOnly: true, Secure: c.secure, SameSite: http.SameSiteStrictMode})
	}
	return c.mac("csrf", v)
}

// checkCSRF also refuses posts a browser marks as cross-site, so a cookie
// planted from a sibling subdomain is not enough on its own.
func (c *cookieCodec) checkCSRF(r *http.Request, token string) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		return false
	}
	ck, err := r.Cookie(csrfCookie)
	return err == nil && token != "" && hmac.Equal([]byte(token), []byte(c.mac("csrf", ck.Value)))
}
