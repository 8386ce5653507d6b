package oauth

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ucpbridge/ucpbridge/authserver/store"
	"github.com/ucpbridge/ucpbridge/ucpclient/ucp"
)

// Allowance is the agent spend allowance a buyer grants a client with
// purchase:complete on the consent page: one per (buyer, client), kept
// with the consent. Amounts are minor units of Currency.
type Allowance struct {
	// ID is the allowance's UUID: the payment_mandate_id an AP2 mandate
	// may name (Artos), which must then be this one. A new consent gives
	// a new id; lowering keeps it.
	ID          string    `json:"id,omitempty"`
	MaxPerOrder int64     `json:"max_per_order"`
	DailyCap    int64     `json:"daily_cap"`
	Currency    string    `json:"currency"`
	ExpiresAt   time.Time `json:"expires_at"`
}

// ParseAllowance reads a stored allowance; nil or JSON null is no
// allowance (nil, nil).
func ParseAllowance(raw []byte) (*Allowance, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var a Allowance
	if err := json.Unmarshal(raw, &a); err != nil {
		return nil, fmt.Errorf("oauth: stored allowance: %w", err)
	}
	return &a, nil
}

// SpendDay is the daily cap's window around now: the calendar day in
// UTC, [00:00, 24:00). A calendar day (not a rolling 24 h) is what a
// buyer reads "daily" as and what spentTodayAmount reports; the price is
// that a full cap may be spent at 23:59 and again at 00:00.
func SpendDay(now time.Time) (from, to time.Time) {
	from = now.UTC().Truncate(24 * time.Hour)
	return from, from.Add(24 * time.Hour)
}

// Spend refusal codes (UCP message codes).
const (
	CodeAllowanceRequired = "allowance_required"
	CodeAllowanceExpired  = "allowance_expired"
	CodeCurrencyMismatch  = "allowance_currency_mismatch"
	CodeSpendCapExceeded  = "spend_cap_exceeded"
	CodeMandateMismatch   = "mandate_scope_mismatch"
)

// SpendError is a payment the allowance does not cover: which limit, and
// what remains.
type SpendError struct {
	Code    string
	Content string
	// Limit names the limit hit: "allowance", "expiry", "currency",
	// "max_per_order", "daily_cap" or "payment_mandate_id".
	Limit string
	// Remaining is what may still be spent today (minor units of
	// Currency), when the limit is the daily cap or the per-order one.
	Remaining int64
	Currency  string
}

func (e *SpendError) Error() string { return "oauth: " + e.Code + ": " + e.Content }

// Spend is one payment an allowance is asked to cover.
type Spend struct {
	Amount   int64 // minor units of Currency
	Currency string
	// MandateID is the payment_mandate_id an AP2 mandate named, if any.
	MandateID string
}

// Check decides whether a may pay sp, given spent already counted in
// today's window (SpendDay) at now; nil a means no allowance. Currencies
// are never converted: a payment in another currency is refused.
func (a *Allowance) Check(sp Spend, spent int64, now time.Time) error {
	money := func(n int64, cur string) string { return ucp.FormatMinor(n, cur) + " " + cur }
	switch {
	case a == nil:
		return &SpendError{Code: CodeAllowanceRequired, Limit: "allowance",
			Content: "the buyer has not given this agent a spending allowance; the buyer sets one on the consent page"}
	case !now.Before(a.ExpiresAt):
		return &SpendError{Code: CodeAllowanceExpired, Limit: "expiry",
			Content: "the buyer's spending allowance for this agent expired at " + a.ExpiresAt.UTC().Format(time.RFC3339) + "; the buyer renews it on the consent page"}
	case sp.MandateID != "" && sp.MandateID != a.ID:
		return &SpendError{Code: CodeMandateMismatch, Limit: "payment_mandate_id",
			Content: "the mandate's payment_mandate_id is not the buyer's allowance for this agent"}
	case sp.Currency != a.Currency:
		return &SpendError{Code: CodeCurrencyMismatch, Limit: "currency", Currency: a.Currency,
			Content: fmt.Sprintf("the allowance is in %s and this order in %s; amounts are never converted", a.Currency, sp.Currency)}
	}
	remaining := max(a.DailyCap-spent, 0)
	switch {
	case sp.Amount > a.MaxPerOrder:
		return &SpendError{Code: CodeSpendCapExceeded, Limit: "max_per_order", Remaining: min(remaining, a.MaxPerOrder), Currency: a.Currency,
			Content: fmt.Sprintf("this order is %s; the buyer allows at most %s per order", money(sp.Amount, sp.Currency), money(a.MaxPerOrder, a.Currency))}
	case sp.Amount > remaining:
		return &SpendError{Code: CodeSpendCapExceeded, Limit: "daily_cap", Remaining: remaining, Currency: a.Currency,
			Content: fmt.Sprintf("this order is %s; the daily cap is %s and %s remains today (UTC), payments in flight included",
				money(sp.Amount, sp.Currency), money(a.DailyCap, a.Currency), money(remaining, a.Currency))}
	}
	return nil
}

// newUUID is a random (version 4) UUID.
func newUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// Authorization is one agent a buyer authorized: the client, what it may
// do, and its allowance (nil when it may not spend).
type Authorization struct {
	ClientID  string     `json:"clientId"`
	Scope     string     `json:"scope"`
	Allowance *Allowance `json:"allowance,omitempty"`
	UpdatedAt time.Time  `json:"updatedAt"`
}

// Authorizations lists the agents a buyer authorized, by client id.
func (s *Server) Authorizations(ctx context.Context, buyerID string) ([]Authorization, error) {
	cs, err := s.cfg.Store.BuyerConsents(ctx, buyerID)
	if err != nil {
		return nil, err
	}
	out := make([]Authorization, 0, len(cs))
	for _, c := range cs {
		al, err := ParseAllowance(c.Allowance)
		if err != nil {
			return nil, err
		}
		out = append(out, Authorization{ClientID: c.ClientID, Scope: c.Scope, Allowance: al, UpdatedAt: c.UpdatedAt})
	}
	return out, nil
}

// ErrNotLower refuses an allowance change that would raise a limit (or
// change the currency, or extend the expiry): raising needs the consent
// page, where the buyer signs in and sees what the agent asks.
var ErrNotLower = errors.New("oauth: only lowering is allowed here; raising an allowance needs the consent page")

// LowerAllowance replaces the allowance of (buyer, client) with a lower
// one: no limit above the current one, the same currency, an expiry no
// later. A zero field keeps the current value. It returns the result.
func (s *Server) LowerAllowance(ctx context.Context, buyerID, clientID string, to Allowance) (*Allowance, error) {
	var out *Allowance
	err := s.cfg.Store.UpdateConsent(ctx, buyerID, clientID, func(c *store.Consent) error {
		cur, err := ParseAllowance(c.Allowance)
		if err != nil {
			return err
		}
		if cur == nil {
			return store.ErrNotFound
		}
		next := *cur
		if to.MaxPerOrder != 0 {
			next.MaxPerOrder = to.MaxPerOrder
		}
		if to.DailyCap != 0 {
			next.DailyCap = to.DailyCap
		}
		if !to.ExpiresAt.IsZero() {
			next.ExpiresAt = to.ExpiresAt.UTC().Truncate(time.Second)
		}
		switch {
		case to.Currency != "" && to.Currency != cur.Currency,
			next.MaxPerOrder > cur.MaxPerOrder, next.DailyCap > cur.DailyCap, next.ExpiresAt.After(cur.ExpiresAt):
			return ErrNotLower
		case next.MaxPerOrder < 0, next.DailyCap < 0:
			return errors.New("oauth: limits cannot be negative")
		case next.MaxPerOrder > next.DailyCap:
			next.MaxPerOrder = next.DailyCap // a per-order limit above the day's is the day's
		}
		b, err := json.Marshal(next)
		if err != nil {
			return err
		}
		c.Allowance, c.UpdatedAt, out = b, s.now(), &next
		return nil
	})
	return out, err
}

// RevokeAuthorization ends an agent's authorization: its allowance is
// removed (the consent is kept without one, so the consent page asks
// again) and every grant the buyer gave the client is revoked with its
// tokens. It returns how many grants were live; revoking nothing is not
// an error.
func (s *Server) RevokeAuthorization(ctx context.Context, buyerID, clientID string) (int64, error) {
	err := s.cfg.Store.UpdateConsent(ctx, buyerID, clientID, func(c *store.Consent) error {
		// An empty scope makes the next authorization ask again.
		c.Allowance, c.Scope, c.UpdatedAt = nil, "", s.now()
		return nil
	})
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return 0, err
	}
	return s.cfg.Store.RevokeClientGrants(ctx, buyerID, clientID, s.now())
}
