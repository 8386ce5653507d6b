package oauth

import (
	"context"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ucpbridge/ucpbridge/authserver/store"
	"github.com/ucpbridge/ucpbridge/ucpclient/ucp"
)

// accountPage is the buyer's own page. Like the consent page it needs no
// JavaScript: every change is a small form that posts the CSRF token.
// Raising a limit is deliberately not offered: it needs the consent page,
// reached from the agent's own sign-in, where the buyer sees what the
// agent asks for.
var accountPage = template.Must(template.New("account").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Your connected agents</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;color:#111}
.box{border:1px solid #ccc;border-radius:8px;padding:1rem 1.25rem;margin:1rem 0}.ok{background:#e8f6ec}
.err{background:#fde8e8;color:#7a1010}.muted{color:#555}label{display:block;margin:.5rem 0}input{font:inherit}
button{font:inherit;padding:.4rem .9rem;margin-right:.5rem}.host{font-family:monospace}
table{border-collapse:collapse}th{text-align:left;font-weight:normal;color:#555;padding-right:1rem}
header{display:flex;justify-content:space-between;align-items:baseline;gap:1rem}header form{margin:0}</style></head>
<body>
<header><h1>Your connected agents</h1>
{{if .SignedIn}}<form method="post" action="{{.Action}}"><input type="hidden" name="csrf" value="{{.CSRF}}">
<span class="muted">{{.Email}}</span> <button type="submit" name="action" value="signout">Sign out</button></form>{{end}}</header>
{{if .Notice}}<div class="box ok" role="status">{{.Notice}}</div>{{end}}
{{if .Error}}<div class="box err" role="alert">{{.Error}}</div>{{end}}
{{if .Broken}}{{else if not .SignedIn}}
<form method="post" action="{{.Action}}" class="box"><input type="hidden" name="csrf" value="{{.CSRF}}">
<p>Sign in to see the agents you connected to your account and what they may spend.</p>
<label>Email <input type="email" name="email" value="{{.FormEmail}}" autocomplete="username" required></label>
<label>Password <input type="password" name="password" autocomplete="current-password" required></label>
<button type="submit" name="action" value="signin">Sign in</button></form>
{{else}}
<p class="muted">You can lower an agent's limits, end its authorization sooner, or revoke it here.
Raising a limit needs a new consent: start the agent's sign-in again and set the new limits on the page it opens.
A day is a calendar day in UTC (00:00 to 24:00 UTC); it is now {{.Now}}.</p>
{{if not .Agents}}<p class="box">No agent is connected to your account.</p>{{end}}
{{range .Agents}}<section class="box" id="agent-{{.ClientID}}">
<h2>{{.Name}}</h2>
<p class="muted">Client: <span class="host">{{.Host}}</span>{{if .CIMD}} (identified by its metadata document){{end}}{{if .SelfRegistered}} (unverified, self-registered){{end}}<br>Authorized {{.Since}}</p>
{{if .Error}}<div class="box err" role="alert">{{.Error}}</div>{{end}}
<strong>It can:</strong><ul>{{range .Scopes}}<li>{{.Description}} <small>({{.Name}})</small></li>{{end}}</ul>
{{if .Allowance}}<table>
<tr><th>Most per order</th><td>{{.MaxPerOrder}}</td></tr>
<tr><th>Most per day (UTC)</th><td>{{.DailyCap}}</td></tr>
<tr><th>Spent today (UTC)</th><td>{{if .SpentKnown}}{{.Spent}} ({{.Left}} left; payments in progress count){{else}}not available here{{end}}</td></tr>
<tr><th>Currency</th><td>{{.Currency}}</td></tr>
<tr><th>{{if .Expired}}Expired{{else}}Expires{{end}}</th><td>{{.Expires}}</td></tr>
</table>
{{if .Expired}}<p>This allowance has expired: the agent cannot spend until you approve new limits from its sign-in.</p>{{end}}
<form method="post" action="{{$.Action}}#agent-{{.ClientID}}"><fieldset><legend>Lower the limits</legend>
<input type="hidden" name="csrf" value="{{$.CSRF}}"><input type="hidden" name="client_id" value="{{.ClientID}}">
<input type="hidden" name="allowance_id" value="{{.AllowanceID}}">
<label>Most per order ({{.Currency}}) <input name="max_per_order" value="{{.FormMax}}" inputmode="decimal" size="12" required></label>
<label>Most per day ({{.Currency}}) <input name="daily_cap" value="{{.FormDaily}}" inputmode="decimal" size="12" required></label>
<label>Expires (UTC) <input type="datetime-local" name="expires_at" value="{{.FormExpires}}" required></label>
<p class="muted">Only lower amounts and an earlier expiry are accepted. A per-order limit above the daily one is lowered to it.</p>
<button type="submit" name="action" value="lower">Save lower limits</button></fieldset></form>
{{else}}<p>This agent cannot spend: none of what you allowed lets it pay.</p>{{end}}
<form method="post" action="{{$.Action}}"><input type="hidden" name="csrf" value="{{$.CSRF}}">
<input type="hidden" name="client_id" value="{{.ClientID}}">
<p class="muted">Revoking ends this authorization at once: the agent's tokens stop working{{if .Allowance}} and its spending limit is removed{{end}}.
To use it again you approve it anew from its sign-in.</p>
<button type="submit" name="action" value="revoke">Revoke {{.Name}}</button></form>
</section>{{end}}
{{end}}
</body></html>`))

// accountView is what the account page shows.
type accountView struct {
	Action, CSRF    string
	Broken          bool // a store failure: only the error is shown
	SignedIn        bool
	Email           string
	FormEmail       string // kept on a failed sign-in
	Notice, Error   string
	Now             string
	Agents          []agentView
	status          int
	retryAfter      int    // seconds, for a throttled sign-in
	failedClient    string // the agent whose form was refused
	failedForm      url.Values
	failedClientErr string
}

// agentView is one authorized agent. Amounts are formatted for reading
// (Max, Daily, Spent, Left: "125.50 EUR") and for editing (Form*: major
// units, as the consent page takes them).
type agentView struct {
	ClientID, Name, Host string
	CIMD                 bool
	// SelfRegistered: the client registered itself (RFC 7591), so its
	// name is unverified.
	SelfRegistered bool
	Since          string
	Scopes         []Scope
	Error          string

	Allowance                          bool
	AllowanceID                        string
	MaxPerOrder, DailyCap, Spent, Left string
	SpentKnown                         bool
	Currency, Expires                  string
	Expired                            bool
	FormMax, FormDaily, FormExpires    string
}

// Time formats: the page shows UTC throughout, because the daily cap's
// window is the calendar day in UTC (SpendDay).
const (
	displayTime = "2 Jan 2006, 15:04 UTC"
	// formTime is an HTML datetime-local value, read as UTC.
	formTime = "2006-01-02T15:04"
)

// spentReader is the part of store.Spending the account page reads.
// Config.Store is a store.Store, which leaves out the commerce tables;
// the platform's store (sqlstore) has both, so the page shows what was
// spent today when the configured store can tell, and says so when not.
type spentReader interface {
	Spent(ctx context.Context, buyerID, clientID string, from, to, now time.Time) (int64, error)
}

// renderAccount fills v with the buyer's agents (when signed in) and
// writes the page.
func (s *Server) renderAccount(w http.ResponseWriter, r *http.Request, buyer *store.Buyer, v *accountView) {
	v.Action = s.cfg.Issuer + PathAccount
	v.CSRF = s.cookies.issueCSRF(w, r)
	if buyer != nil {
		v.SignedIn, v.Email = true, buyer.Email
		now := s.now()
		v.Now = now.UTC().Format(displayTime)
		agents, err := s.agentViews(r.Context(), buyer.ID, now)
		if err != nil {
			s.accountFailed(w, r, err)
			return
		}
		shown := false
		for i := range agents {
			if v.failedClientErr != "" && agents[i].ClientID == v.failedClient {
				shown = true
				agents[i].Error = v.failedClientErr
				// Show what the buyer typed, so a refused edit can be
				// corrected rather than retyped.
				if f := v.failedForm; f != nil {
					agents[i].FormMax, agents[i].FormDaily, agents[i].FormExpires = f.Get("max_per_order"), f.Get("daily_cap"), f.Get("expires_at")
				}
			}
		}
		if v.failedClientErr != "" && !shown {
			v.Error = v.failedClientErr
		}
		v.Agents = agents
	}
	pageHeaders(w)
	if v.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(v.retryAfter))
	}
	if v.status == 0 {
		v.status = http.StatusOK
	}
	w.WriteHeader(v.status)
	if err := accountPage.Execute(w, v); err != nil {
		// The template is fixed and its data escaped: a failure here is
		// the connection going away.
		s.log.DebugContext(r.Context(), "account page", "error", err)
	}
}

// agentViews lists the agents the buyer authorized. A consent whose scope
// was emptied by a revocation is no authorization and is left out.
func (s *Server) agentViews(ctx context.Context, buyerID string, now time.Time) ([]agentView, error) {
	auths, err := s.Authorizations(ctx, buyerID)
	if err != nil {
		return nil, err
	}
	spent, canSpend := s.cfg.Store.(spentReader)
	from, to := SpendDay(now)
	var out []agentView
	for _, a := range auths {
		if a.Scope == "" {
			continue
		}
		v := agentView{ClientID: a.ClientID, Name: a.ClientID, Host: a.ClientID, Since: a.UpdatedAt.UTC().Format(displayTime)}
		if err := s.describeClient(ctx, &v); err != nil {
			return nil, err
		}
		for _, name := range strings.Fields(a.Scope) {
			sc, ok := scopeByName(name)
			if !ok {
				// A scope the catalogue no longer has is still shown, by name.
				sc = Scope{Name: name, Description: name}
			}
			v.Scopes = append(v.Scopes, sc)
		}
		if al := a.Allowance; al != nil {
			money := func(n int64) string { return ucp.FormatMinor(n, al.Currency) + " " + al.Currency }
			v.Allowance, v.AllowanceID, v.Currency = true, al.ID, al.Currency
			v.MaxPerOrder, v.DailyCap = money(al.MaxPerOrder), money(al.DailyCap)
			v.Expires, v.Expired = al.ExpiresAt.UTC().Format(displayTime), !now.Before(al.ExpiresAt)
			v.FormMax, v.FormDaily = ucp.FormatMinor(al.MaxPerOrder, al.Currency), ucp.FormatMinor(al.DailyCap, al.Currency)
			v.FormExpires = al.ExpiresAt.UTC().Format(formTime)
			if canSpend {
				n, err := spent.Spent(ctx, buyerID, a.ClientID, from, to, now)
				if err != nil {
					return nil, err
				}
				v.SpentKnown, v.Spent, v.Left = true, money(n), money(max(al.DailyCap-n, 0))
			}
		}
		out = append(out, v)
	}
	return out, nil
}

// describeClient names the agent as the buyer should recognise it: a
// registered client's name, or a CIMD client's host. A metadata document
// is not fetched for this page: its client_name is whatever the
// document's host chose, and the host is what identifies it (as on the
// consent page).
func (s *Server) describeClient(ctx context.Context, v *agentView) error {
	if s.cfg.CIMD != nil && s.cfg.CIMD.IsClientID(v.ClientID) {
		v.CIMD = true
		if u, err := url.Parse(v.ClientID); err == nil {
			v.Name, v.Host = u.Host, u.Host
		}
		return nil
	}
	c, err := s.cfg.Store.Client(ctx, v.ClientID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil // a client since deleted: its id is all there is
	case err != nil:
		return err
	}
	if c.Name != "" {
		v.Name = c.Name
	}
	v.SelfRegistered = c.SelfRegistered()
	return nil
}

// accountFailed answers a store failure: logged, and a page that says
// nothing was changed (every change is one store call, so a failure
// leaves none half done).
func (s *Server) accountFailed(w http.ResponseWriter, r *http.Request, err error) {
	s.logError(r, "account page failed", errServer(err))
	pageHeaders(w)
	w.WriteHeader(http.StatusInternalServerError)
	accountPage.Execute(w, &accountView{Broken: true,
		Error: "Something went wrong on our side and nothing was changed. Reload the page to try again."})
}
