package shop

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/ucpbridge/ucpbridge/authserver/store"
	"github.com/ucpbridge/ucpbridge/ucpclient/ucp"
)

func newID(prefix string) string {
	b := make([]byte, 15)
	rand.Read(b)
	return prefix + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
}

// loadCheckout reads a session the caller owns. Another owner's session
// is reported as not found, so ids cannot be probed. An expired session
// is canceled on the way.
func (s *Service) loadCheckout(ctx context.Context, oc *opCtx) (*store.Session, *checkoutState, *Reply) {
	sess, err := s.cfg.Store.Session(ctx, store.KindCheckout, oc.shop.Slug, oc.ID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && sess.Owner != oc.owner()) {
		m := notFound("checkout session")
		m.Path = "$.id"
		return nil, nil, oc.errorEnvelope(http.StatusOK, m)
	}
	if err != nil {
		return nil, nil, s.storeFailure(ctx, err)
	}
	st := &checkoutState{}
	if err := json.Unmarshal(sess.Doc, st); err != nil {
		s.log.ErrorContext(ctx, "shop: corrupt checkout document", "id", sess.ID, "err", err)
		return nil, nil, internalError()
	}
	if oc.ownerOverride == "" && st.Agent != "" && oc.Agent != st.Agent {
		return nil, nil, protoErr(http.StatusForbidden, rpcAuth, "profile_not_trusted",
			"this checkout session belongs to another platform profile (UCP-Agent)")
	}
	if !terminal(st.Checkout.Status) && !s.now().Before(sess.ExpiresAt) {
		st.Checkout.Status = ucp.CheckoutCanceled
		st.Checkout.ContinueURL = ""
		st.Checkout.Messages = []ucp.Message{{Type: "info", Code: "expired", Content: "the checkout session expired"}}
		if err := s.saveCheckout(ctx, sess, st); err != nil && !errors.Is(err, store.ErrStale) {
			return nil, nil, s.storeFailure(ctx, err)
		}
	}
	return sess, st, nil
}

func (s *Service) saveCheckout(ctx context.Context, sess *store.Session, st *checkoutState) error {
	doc, err := json.Marshal(st)
	if err != nil {
		return err
	}
	sess.Doc, sess.Status, sess.UpdatedAt = doc, st.Checkout.Status, s.now()
	return s.cfg.Store.UpdateSession(ctx, sess)
}

// expiresAt renders a session expiry.
func expiresAt(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// loadCart reads an active, unexpired cart the caller owns; anything else
// is not found.
func (s *Service) loadCart(ctx context.Context, oc *opCtx, id string) (*store.Session, *cartState, *Reply) {
	sess, err := s.cfg.Store.Session(ctx, store.KindCart, oc.shop.Slug, id)
	if err == nil && (sess.Owner != oc.owner() || sess.Status != cartActive || !s.now().Before(sess.ExpiresAt)) {
		err = store.ErrNotFound
	}
	if errors.Is(err, store.ErrNotFound) {
		m := notFound("cart")
		m.Path = "$.id"
		if oc.Op == OpCreateCheckout {
			m.Path = "$.cart_id"
		}
		return nil, nil, oc.errorEnvelope(http.StatusOK, m)
	}
	if err != nil {
		return nil, nil, s.storeFailure(ctx, err)
	}
	st := &cartState{}
	if err := json.Unmarshal(sess.Doc, st); err != nil {
		return nil, nil, internalError()
	}
	return sess, st, nil
}

func (s *Service) saveCart(ctx context.Context, sess *store.Session, st *cartState, status string) error {
	doc, err := json.Marshal(st)
	if err != nil {
		return err
	}
	sess.Doc, sess.Status, sess.UpdatedAt = doc, status, s.now()
	return s.cfg.Store.UpdateSession(ctx, sess)
}
