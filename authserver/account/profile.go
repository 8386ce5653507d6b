package account

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/ucpbridge/ucpbridge/authserver/guard"
	"github.com/ucpbridge/ucpbridge/authserver/oauth"
	"github.com/ucpbridge/ucpbridge/authserver/store"
)

type empty struct{}

// account reads the buyer and their account document. A buyer whose
// token is valid but whose account is gone is a platform fault, not the
// agent's: it is reported as a failure.
func (s *Server) account(ctx context.Context, buyerID string) (*store.Buyer, *store.AccountDoc, error) {
	b, err := s.cfg.Store.Buyer(ctx, buyerID)
	if err != nil {
		return nil, nil, fmt.Errorf("buyer %s: %w", buyerID, err)
	}
	doc, err := store.ParseAccount(b.Account)
	if err != nil {
		return nil, nil, fmt.Errorf("buyer %s: account document: %w", buyerID, err)
	}
	return b, doc, nil
}

func (s *Server) buyerContext(ctx context.Context, p *guard.Principal, _ *empty) (*BuyerContext, error) {
	b, doc, err := s.account(ctx, p.BuyerID)
	if err != nil {
		return nil, err
	}
	out := &BuyerContext{
		Profile:            Profile{ID: b.ID, Email: b.Email, Name: doc.Name, Phone: doc.Phone, SuiAddress: doc.SuiAddress},
		OtherAddressLabels: []string{},
		AgentClientID:      p.ClientID,
	}
	book := addressBook(doc)
	for i, a := range book {
		if a.Default {
			out.DefaultAddress = &book[i]
		} else {
			out.OtherAddressLabels = append(out.OtherAddressLabels, a.Label)
		}
	}
	if c := doc.Card; c != nil {
		out.SavedCard = &SavedCard{Brand: c.Brand, Last4: c.Last4}
	}
	auths, err := s.cfg.Agents.Authorizations(ctx, p.BuyerID)
	if err != nil {
		return nil, err
	}
	for _, a := range auths {
		if a.ClientID != p.ClientID || a.Allowance == nil {
			continue
		}
		caps, err := s.caps(ctx, p.BuyerID, a.ClientID, a.Allowance)
		if err != nil {
			return nil, err
		}
		out.SpendingCaps = caps
		out.HasAgentAuthorization = s.cfg.Now().Before(a.Allowance.ExpiresAt)
	}
	return out, nil
}

func (s *Server) listAddresses(ctx context.Context, p *guard.Principal, _ *empty) (*Addresses, error) {
	_, doc, err := s.account(ctx, p.BuyerID)
	if err != nil {
		return nil, err
	}
	return &Addresses{Addresses: addressBook(doc)}, nil
}

// addressBook is the account's addresses with exactly one default when
// there are any: the first marked default, else the first. Entries whose
// stored address is not a JSON object are left out rather than shown as
// something a checkout would refuse.
func addressBook(doc *store.AccountDoc) []Address {
	out := []Address{}
	def := -1
	for _, a := range doc.Addresses {
		var obj map[string]json.RawMessage
		if json.Unmarshal(a.Address, &obj) != nil || obj == nil {
			continue
		}
		if a.Default && def < 0 {
			def = len(out)
		}
		out = append(out, Address{Label: a.Label, Address: a.Address})
	}
	if def < 0 && len(out) > 0 {
		def = 0
	}
	if def >= 0 {
		out[def].Default = true
	}
	return out
}

// caps is an allowance with today's spend (the calendar day in UTC, the
// window the stores enforce the daily cap over; holds in flight count).
func (s *Server) caps(ctx context.Context, buyerID, clientID string, al *oauth.Allowance) (*SpendingCaps, error) {
	now := s.cfg.Now()
	from, to := oauth.SpendDay(now)
	spent, err := s.cfg.Store.Spent(ctx, buyerID, clientID, from, to, now)
	if err != nil {
		return nil, err
	}
	return &SpendingCaps{MaxPerOrderAmount: al.MaxPerOrder, DailyCapAmount: al.DailyCap, SpentTodayAmount: spent,
		RemainingTodayAmount: max(al.DailyCap-spent, 0), Currency: al.Currency, ExpiresAt: al.ExpiresAt.UTC(), AllowanceID: al.ID}, nil
}
