package account

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/ucpbridge/ucpbridge/authserver/guard"
	"github.com/ucpbridge/ucpbridge/authserver/oauth"
	"github.com/ucpbridge/ucpbridge/authserver/store"
	"github.com/ucpbridge/ucpbridge/ucpclient/ucp"
)

type clientArgs struct {
	ClientID string `json:"client_id"`
}

type updateLimitsArgs struct {
	ClientID          string `json:"client_id"`
	MaxPerOrderAmount *int64 `json:"max_per_order_amount"`
	DailyCapAmount    *int64 `json:"daily_cap_amount"`
	ExpiresAt         string `json:"expires_at"`
}

// live reports whether an authorization is in force: a revoked one keeps
// its consent record with no scope and no allowance, so the consent page
// asks again.
func live(a *oauth.Authorization) bool { return a.Scope != "" || a.Allowance != nil }

func (s *Server) listAuthorizations(ctx context.Context, p *guard.Principal, _ *empty) (*AgentAuthorizations, error) {
	auths, err := s.cfg.Agents.Authorizations(ctx, p.BuyerID)
	if err != nil {
		return nil, err
	}
	out := &AgentAuthorizations{Authorizations: []AgentAuthorization{}}
	for i := range auths {
		a := &auths[i]
		if !live(a) {
			continue
		}
		name, err := s.clientName(ctx, a.ClientID)
		if err != nil {
			return nil, err
		}
		aa := AgentAuthorization{ClientID: a.ClientID, ClientName: name, Scopes: strings.Fields(a.Scope),
			UpdatedAt: a.UpdatedAt.UTC(), IsCaller: a.ClientID == p.ClientID}
		if a.Allowance != nil {
			if aa.SpendingCaps, err = s.caps(ctx, p.BuyerID, a.ClientID, a.Allowance); err != nil {
				return nil, err
			}
		}
		out.Authorizations = append(out.Authorizations, aa)
	}
	return out, nil
}

// clientName is what the buyer knows an agent by: its registered name,
// or for a client identified by its metadata document URL (CIMD), that
// URL's host, as the consent page shows it.
func (s *Server) clientName(ctx context.Context, id string) (string, error) {
	c, err := s.cfg.Store.Client(ctx, id)
	switch {
	case err == nil && c.Name != "":
		return c.Name, nil
	case err != nil && !errors.Is(err, store.ErrNotFound):
		return "", err
	}
	if u, perr := url.Parse(id); perr == nil && u.Scheme == "https" && u.Host != "" {
		return u.Host, nil
	}
	return id, nil
}

// authorization finds the buyer's authorization of clientID.
func (s *Server) authorization(ctx context.Context, buyerID, clientID string) (*oauth.Authorization, error) {
	auths, err := s.cfg.Agents.Authorizations(ctx, buyerID)
	if err != nil {
		return nil, err
	}
	i := slices.IndexFunc(auths, func(a oauth.Authorization) bool { return a.ClientID == clientID })
	if i < 0 {
		return nil, nil
	}
	return &auths[i], nil
}

func unknownAgent(clientID string) *ToolError {
	return &ToolError{Code: CodeNotFound,
		Message: fmt.Sprintf("the buyer has not authorized an agent %q (list_my_agent_authorizations lists them)", clientID)}
}

func (s *Server) revoke(ctx context.Context, p *guard.Principal, in *clientArgs) (*Revocation, error) {
	a, err := s.authorization(ctx, p.BuyerID, in.ClientID)
	if err != nil {
		return nil, err
	}
	// Revoke even without a consent record: a script app's password
	// grant has none, and its tokens must end too. "Unknown" is the
	// answer only when there was nothing at all.
	n, err := s.cfg.Agents.RevokeAuthorization(ctx, p.BuyerID, in.ClientID)
	if err != nil {
		return nil, err
	}
	if a == nil && n == 0 {
		return nil, unknownAgent(in.ClientID)
	}
	s.log.InfoContext(ctx, "account: agent authorization revoked", "buyer", p.BuyerID, "client", in.ClientID,
		"by", p.ClientID, "grants", n)
	return &Revocation{ClientID: in.ClientID, Revoked: true, GrantsRevoked: n, CallerRevoked: in.ClientID == p.ClientID}, nil
}

func (s *Server) updateLimits(ctx context.Context, p *guard.Principal, in *updateLimitsArgs) (*SpendingLimits, error) {
	var to oauth.Allowance
	if in.MaxPerOrderAmount != nil {
		if *in.MaxPerOrderAmount < 1 {
			return nil, invalidArgument("max_per_order_amount must be at least 1 (minor units); to stop the agent spending, revoke it")
		}
		to.MaxPerOrder = *in.MaxPerOrderAmount
	}
	if in.DailyCapAmount != nil {
		if *in.DailyCapAmount < 1 {
			return nil, invalidArgument("daily_cap_amount must be at least 1 (minor units); to stop the agent spending, revoke it")
		}
		to.DailyCap = *in.DailyCapAmount
	}
	if in.ExpiresAt != "" {
		t, err := time.Parse(time.RFC3339, in.ExpiresAt)
		if err != nil {
			return nil, invalidArgument("expires_at must be an RFC 3339 date-time, e.g. 2026-07-01T00:00:00Z")
		}
		to.ExpiresAt = t
	}
	if to == (oauth.Allowance{}) {
		return nil, invalidArgument("name at least one of max_per_order_amount, daily_cap_amount and expires_at")
	}
	a, err := s.authorization(ctx, p.BuyerID, in.ClientID)
	if err != nil {
		return nil, err
	}
	if a == nil || !live(a) {
		return nil, unknownAgent(in.ClientID)
	}
	cur := a.Allowance
	if cur == nil {
		return nil, noAllowance(in.ClientID)
	}
	// Say which limit would go up, against the allowance just read;
	// LowerAllowance decides again under its lock, so a change in
	// between is still refused (ErrNotLower below).
	if raise := raises(cur, &to); raise != "" {
		return nil, &ToolError{Code: CodeRaiseNeedsConsent, Message: raise +
			"; limits only go down here: to raise one, the buyer authorizes the agent again on the consent page, signed in"}
	}
	next, err := s.cfg.Agents.LowerAllowance(ctx, p.BuyerID, in.ClientID, to)
	switch {
	case errors.Is(err, oauth.ErrNotLower):
		return nil, &ToolError{Code: CodeRaiseNeedsConsent, Message: "the allowance changed meanwhile and this would raise it; " +
			"read it again (list_my_agent_authorizations); raising needs the consent page"}
	case errors.Is(err, store.ErrNotFound):
		return nil, noAllowance(in.ClientID)
	case err != nil:
		return nil, err
	}
	s.log.InfoContext(ctx, "account: spending limits lowered", "buyer", p.BuyerID, "client", in.ClientID, "by", p.ClientID)
	caps, err := s.caps(ctx, p.BuyerID, in.ClientID, next)
	if err != nil {
		return nil, err
	}
	return &SpendingLimits{ClientID: in.ClientID, SpendingCaps: *caps}, nil
}

func noAllowance(clientID string) *ToolError {
	return &ToolError{Code: CodeNoAllowance, Message: fmt.Sprintf("the agent %q has no spending allowance to lower", clientID)}
}

// raises describes the first limit in to that is above cur ("" when none
// is). Zero fields of to keep the current value.
func raises(cur, to *oauth.Allowance) string {
	money := func(n int64) string { return ucp.FormatMinor(n, cur.Currency) + " " + cur.Currency }
	switch {
	case to.MaxPerOrder > cur.MaxPerOrder:
		return fmt.Sprintf("max_per_order_amount %d (%s) is above the current %d (%s)", to.MaxPerOrder, money(to.MaxPerOrder),
			cur.MaxPerOrder, money(cur.MaxPerOrder))
	case to.DailyCap > cur.DailyCap:
		return fmt.Sprintf("daily_cap_amount %d (%s) is above the current %d (%s)", to.DailyCap, money(to.DailyCap),
			cur.DailyCap, money(cur.DailyCap))
	case !to.ExpiresAt.IsZero() && to.ExpiresAt.Truncate(time.Second).After(cur.ExpiresAt):
		return "expires_at " + to.ExpiresAt.UTC().Format(time.RFC3339) + " is later than the current " +
			cur.ExpiresAt.UTC().Format(time.RFC3339)
	}
	return ""
}
