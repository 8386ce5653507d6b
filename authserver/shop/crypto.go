package shop

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"slices"
	"time"

	"github.com/ucpbridge/ucpbridge/authserver/store"
	"github.com/ucpbridge/ucpbridge/ucpclient/ucp"
)

// The crypto rail is a deterministic sandbox of the Artos flow (§5.5):
// prepare_checkout_payment builds a payment intent bound to the checkout,
// its version and its amount, and takes the buyer's spend hold; the agent
// "submits" the intent's unsigned transaction, which in the sandbox
// settles at once under a digest anyone can compute (SHA-256 of the
// unsigned transaction bytes, hex, "sim_" prefixed; the intent also
// states it); complete_checkout with that digest as the instrument's
// credential token pays exactly once. No network is involved.

// intentTTL is how long a prepared crypto payment stays payable, and so
// how long its spend hold counts.
const intentTTL = 30 * time.Minute

// cryptoIntent is a prepared crypto payment, kept in the checkout state.
type cryptoIntent struct {
	ID       string `json:"id"`
	Version  int64  `json:"version"` // the session version it was prepared at
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
	// Held is the hold's amount: Amount plus the coupon credit used.
	Held   int64  `json:"held"`
	Digest string `json:"digest"`
	HoldID string `json:"hold_id,omitempty"`
	// Buyer and client the hold was taken for.
	BuyerID   string    `json:"buyer_id"`
	ClientID  string    `json:"client_id"`
	ExpiresAt time.Time `json:"expires_at"`
}

// PaymentIntent is prepare_checkout_payment's answer (Artos shape:
// payment_intent.unsigned_tx is what the agent signs and submits).
type PaymentIntent struct {
	ID         string `json:"id"`
	CheckoutID string `json:"checkout_id"`
	Version    int64  `json:"checkout_version"`
	Amount     int64  `json:"amount"`
	Currency   string `json:"currency"`
	Network    string `json:"network"`
	Asset      string `json:"asset"`
	Recipient  string `json:"recipient"`
	UnsignedTx string `json:"unsigned_tx"` // base64 of the transaction bytes
	ExpiresAt  string `json:"expires_at"`
	// SettlementReference is the digest the sandbox chain gives the
	// submitted transaction: complete with it as the credential token.
	SettlementReference string `json:"settlement_reference"`
}

// prepareInput is Artos's payment_intent argument. The buyer address is
// a placeholder there (the server takes the payer from the buyer's
// authorization), so it is read and ignored.
type prepareInput struct {
	BuyerAddress  string `json:"buyer_address,omitempty"`
	InputCoinType string `json:"input_coin_type,omitempty"`
}

// settlementDigest is what the sandbox chain names a transaction.
func settlementDigest(tx []byte) string {
	sum := sha256.Sum256(tx)
	return "sim_" + hex.EncodeToString(sum[:])
}

// prepareCheckoutPayment builds the crypto payment intent for the
// buyer's checkout: repriced against the live catalog, on a store that
// offers the crypto rail, for a non-zero total, within the buyer's
// allowance (the hold is taken here, before any money can move: on a real
// chain the transfer happens before complete_checkout).
func (s *Service) prepareCheckoutPayment(ctx context.Context, oc *opCtx) *Reply {
	var in prepareInput
	if len(oc.Body) > 0 {
		if rep := decodeBody(oc.Body, &in); rep != nil { // read, never stored
			return rep
		}
	}
	cp := &completion{s: s, oc: oc}
	rep := checkouts.update(ctx, s, oc, concurrentModification, func(ses *session[checkoutState]) (*Reply, error) {
		st := ses.st
		if terminal(st.Checkout.Status) {
			return oc.notModifiable(&st.Checkout), nil
		}
		c, _, rep := cp.reprice(ctx, st)
		if rep != nil {
			return rep, nil
		}
		total := c.Totals[len(c.Totals)-1].Amount
		// Preparing a crypto payment is the choice of rail: the reminder
		// to choose one goes, so a refusal below is the message an agent
		// reads first (Artos clients show the first message).
		c.Messages = slices.DeleteFunc(c.Messages, func(m ucp.Message) bool { return m.Code == "payment_selection_required" })
		if c.Status == ucp.CheckoutIncomplete && !hasError(c.Messages) {
			c.Status = ucp.CheckoutReadyForComplete
		}
		switch {
		case !containsString(oc.shop.cfg.Rails, HandlerCryptoID):
			return cp.paymentFailed(ctx, c, oc.shop.Name+" does not offer "+HandlerCryptoID), nil
		case total == 0:
			return cp.paymentFailed(ctx, c, "nothing to pay: complete a fully discounted checkout without a payment"), nil
		}
		// A new intent replaces the old one, whose hold goes back first
		// (it would lapse before the new intent does). The old intent
		// can no longer be paid: this save moves the version on.
		if old := st.Intent; old != nil && old.HoldID != "" && cp.hold == nil {
			if err := s.cfg.Store.ReleaseHold(ctx, old.HoldID); err != nil {
				return nil, err
			}
		}
		cp.holdLife = intentTTL + time.Minute
		if rep := cp.holdSpend(ctx, c, couponCredit(st)); rep != nil {
			return rep, nil
		}
		now := s.now()
		intent := &cryptoIntent{ID: newID("pi_"), Amount: total, Currency: c.Currency, BuyerID: oc.Principal.BuyerID,
			ClientID: oc.Principal.ClientID, ExpiresAt: now.Add(intentTTL).UTC().Truncate(time.Second)}
		if cp.hold != nil {
			intent.HoldID, intent.Held = cp.hold.ID, cp.hold.Amount
		}
		// The transaction names what it pays for, so its digest does.
		tx, err := json.Marshal(map[string]any{"intent": intent.ID, "checkout": c.ID, "store": oc.shop.Slug,
			"amount": total, "currency": c.Currency, "asset": "USDsui", "recipient": merchantAddress(oc.shop.Slug)})
		if err != nil {
			return internalError(), nil
		}
		intent.Digest = settlementDigest(tx)
		// Saving bumps the version: the intent is bound to the version
		// this save produces, so any later change of the checkout voids it.
		intent.Version = ses.row.Version + 1
		st.Intent = intent
		st.Checkout = *c
		if err := ses.save(ctx, s, c.Status); err != nil {
			return nil, err
		}
		cp.placed = true // the hold now belongs to the intent
		return payload(http.StatusOK, struct {
			UCP           ucp.Envelope   `json:"ucp"`
			PaymentIntent *PaymentIntent `json:"payment_intent"`
			Checkout      *ucp.Checkout  `json:"checkout"`
		}{*oc.neg.envelope(ucp.CapCheckout), &PaymentIntent{ID: intent.ID, CheckoutID: c.ID, Version: intent.Version, Amount: total,
			Currency: c.Currency, Network: "sui-sandbox", Asset: "USDsui", Recipient: merchantAddress(oc.shop.Slug),
			UnsignedTx: base64.StdEncoding.EncodeToString(tx), ExpiresAt: intent.ExpiresAt.Format(time.RFC3339),
			SettlementReference: intent.Digest}, c}), nil
	})
	if !cp.placed {
		cp.releaseHold(ctx)
	}
	return rep
}

// merchantAddress is the store's sandbox receiving address.
func merchantAddress(slug string) string {
	sum := sha256.Sum256([]byte("ucpbridge-sandbox-merchant/" + slug))
	return "0x" + hex.EncodeToString(sum[:])
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// checkIntent holds a crypto completion to its prepared intent: the
// buyer's bearer alone (the platform key is never the buyer's wallet),
// the settlement reference of this checkout's live intent, the checkout
// unchanged since prepare, the same amount and currency. On success the
// intent's hold is the completion's.
func (cp *completion) checkIntent(ctx context.Context, ses *session[checkoutState], c *ucp.Checkout, inst *ucp.PaymentInstrument) *Reply {
	oc := cp.oc
	if !oc.buyerBound() {
		// The buyer's wallet pays: refused without the checkout
		// (completion.refused says why).
		return cp.refused(ucp.Message{Type: "error", Code: "authentication_required", Path: "$.payment.instruments",
			Severity: ucp.SeverityRequiresBuyerInput,
			Content:  "crypto payments are the buyer's: complete with the buyer's bearer token alone (prepare_checkout_payment first)"})
	}
	it := ses.st.Intent
	token := ""
	if inst != nil && inst.Credential != nil {
		token = inst.Credential.Token
	}
	total := c.Totals[len(c.Totals)-1].Amount
	var why string
	switch {
	case it == nil:
		why = "no crypto payment was prepared for this checkout; call prepare_checkout_payment first"
	case it.BuyerID != oc.Principal.BuyerID || it.ClientID != oc.Principal.ClientID:
		why = "the crypto payment was prepared for another buyer or agent"
	case !cp.s.now().Before(it.ExpiresAt):
		why = "the prepared crypto payment expired; prepare it again"
	case token == "" || token != it.Digest:
		why = "the credential token is not the settlement reference of the prepared payment"
	case it.Version != ses.row.Version:
		why = "the checkout changed after the payment was prepared; prepare it again"
	case it.Amount != total || it.Currency != c.Currency:
		why = "the price changed after the payment was prepared; prepare it again"
	}
	if why != "" {
		return cp.paymentFailed(ctx, c, why)
	}
	if it.HoldID != "" && cp.hold == nil {
		cp.hold = &store.SpendHold{ID: it.HoldID, BuyerID: it.BuyerID, ClientID: it.ClientID, Amount: cmp.Or(it.Held, it.Amount), Currency: it.Currency}
		oc.holdID = it.HoldID
	}
	return nil
}
