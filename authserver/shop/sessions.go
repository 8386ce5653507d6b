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

	"github.com/ucpbridge/ucpbridge/authserver/guard"
	"github.com/ucpbridge/ucpbridge/authserver/store"
	"github.com/ucpbridge/ucpbridge/ucpclient/ucp"
)

func newID(prefix string) string {
	b := make([]byte, 15)
	rand.Read(b)
	return prefix + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
}

// expiresAt renders a session expiry.
func expiresAt(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// session is a stored cart or checkout session with its decoded state.
type session[T any] struct {
	row *store.Session
	st  *T
}

// save stores the state with the session status; store.ErrStale means
// someone saved the session since it was read.
func (ses *session[T]) save(ctx context.Context, s *Service, status string) error {
	doc, err := json.Marshal(ses.st)
	if err != nil {
		return err
	}
	ses.row.Doc, ses.row.Status, ses.row.UpdatedAt = doc, status, s.now()
	return s.cfg.Store.UpdateSession(ctx, ses.row)
}

// sessionKind holds what differs between loading a cart and a checkout.
type sessionKind[T any] struct {
	kind store.SessionKind
	// notFound reports a session the caller may not see. Another
	// owner's session is reported the same way, so ids cannot be probed.
	notFound func(oc *opCtx) ucp.Message
	// hidden: the stored session is not the caller's to see.
	hidden func(s *Service, oc *opCtx, row *store.Session) bool
	// admit checks the decoded session; nil means no further rule.
	admit func(ctx context.Context, s *Service, oc *opCtx, ses *session[T]) *Reply
}

// carts are visible while active and unexpired.
var carts = &sessionKind[cartState]{
	kind: store.KindCart,
	notFound: func(oc *opCtx) ucp.Message {
		m := notFound("cart")
		m.Path = "$.id"
		if oc.Op == OpCreateCheckout {
			m.Path = "$.cart_id"
		}
		return m
	},
	hidden: func(s *Service, oc *opCtx, row *store.Session) bool {
		return !oc.mayUse(row) || row.Status != cartActive || !s.now().Before(row.ExpiresAt)
	},
}

// checkouts stay visible to their owner once completed, canceled or
// expired (a platform may still read them), and are bound to the
// platform profile they were created under.
var checkouts = &sessionKind[checkoutState]{
	kind: store.KindCheckout,
	notFound: func(*opCtx) ucp.Message {
		m := notFound("checkout session")
		m.Path = "$.id"
		return m
	},
	hidden: func(_ *Service, oc *opCtx, row *store.Session) bool { return !oc.mayUse(row) },
	admit: func(ctx context.Context, s *Service, oc *opCtx, ses *session[checkoutState]) *Reply {
		st := ses.st
		// A buyer who claimed the platform's checkout is who pays for it
		// from now on, on the hosted page too (kept on the next save).
		if p := oc.Principal; oc.ownerOverride == "" && p != nil && p.Kind == guard.KindBuyer && ses.row.Owner == p.Owner() {
			st.ClientID, st.BuyerID = p.ClientID, p.BuyerID
		}
		if oc.ownerOverride == "" && st.Agent != "" && oc.Agent != st.Agent {
			return protoErr(http.StatusForbidden, rpcAuth, "profile_not_trusted",
				"this checkout session belongs to another platform profile (UCP-Agent)")
		}
		if !terminal(st.Checkout.Status) && !s.now().Before(ses.row.ExpiresAt) {
			st.Checkout.Status = ucp.CheckoutCanceled
			st.Checkout.ContinueURL = ""
			st.Checkout.Messages = []ucp.Message{{Type: "info", Code: "expired", Content: "the checkout session expired"}}
			// A lost race here is someone else's write of the same
			// session; the caller sees it canceled either way.
			if err := ses.save(ctx, s, st.Checkout.Status); err != nil && !errors.Is(err, store.ErrStale) {
				return s.storeFailure(ctx, err)
			}
		}
		return nil
	},
}

// mayUse applies the guard's session rule to a stored session. When the
// caller claims it (a platform's checkout its buyer takes over), the row
// is refiled under the caller; the next save stores that.
func (oc *opCtx) mayUse(row *store.Session) bool {
	ok, owner := oc.maySession(row.Owner)
	if ok && oc.Op != OpGetCheckout && oc.Op != OpGetCart {
		row.Owner = owner // reads never claim
	}
	return ok
}

// load reads session id of the store oc names and applies the kind's
// rules: a session the caller may not see is reported not found (an
// error envelope); an expired checkout is canceled on the way.
func (k *sessionKind[T]) load(ctx context.Context, s *Service, oc *opCtx, id string) (*session[T], *Reply) {
	row, err := s.cfg.Store.Session(ctx, k.kind, oc.shop.Slug, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && k.hidden(s, oc, row)) {
		return nil, oc.errorEnvelope(http.StatusOK, k.notFound(oc))
	}
	if err != nil {
		return nil, s.storeFailure(ctx, err)
	}
	ses := &session[T]{row: row, st: new(T)}
	if err := json.Unmarshal(row.Doc, ses.st); err != nil {
		s.log.ErrorContext(ctx, "shop: corrupt session document", "kind", k.kind, "id", row.ID, "err", err)
		return nil, internalError()
	}
	if k.admit != nil {
		if rep := k.admit(ctx, s, oc, ses); rep != nil {
			return nil, rep
		}
	}
	return ses, nil
}

// sessionAttempts bounds how often update runs a change that keeps losing
// races to concurrent writers of the same session.
const sessionAttempts = 4

// update runs change on the session oc.ID names, freshly loaded, until it
// settles. change returns the reply, or an error: a lost race
// (store.ErrStale from a save, or stock another order took first) runs it
// again on a reload, up to sessionAttempts runs, after which lostRace
// makes the reply (nil: the last error as a storage failure); any other
// error is a storage failure (503).
func (k *sessionKind[T]) update(ctx context.Context, s *Service, oc *opCtx, lostRace func() *Reply, change func(ses *session[T]) (*Reply, error)) *Reply {
	for attempt := 1; ; attempt++ {
		ses, rep := k.load(ctx, s, oc, oc.ID)
		if rep != nil {
			return rep
		}
		rep, err := change(ses)
		switch {
		case err == nil:
			return rep
		case isLostRace(err) && attempt < sessionAttempts:
			continue
		case isLostRace(err) && lostRace != nil:
			return lostRace()
		default:
			return s.storeFailure(ctx, err)
		}
	}
}

func isLostRace(err error) bool {
	var oos *store.OutOfStockError
	return errors.Is(err, store.ErrStale) || errors.As(err, &oos)
}
