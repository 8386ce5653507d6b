package oauth

import (
	"fmt"
	"net/http"
	"time"

	"github.com/ucpbridge/ucpbridge/authserver/store"
)

// throttledError refuses a sign-in attempt without checking the password:
// the account (from this network) or the network has failed too often.
type throttledError struct {
	Wait time.Duration // until the next attempt is allowed
}

func (e *throttledError) Error() string {
	return fmt.Sprintf("oauth: too many failed sign-ins; retry in %d s", retrySeconds(e.Wait))
}

// signIn checks a buyer's email (already normalised) and password under
// the sign-in throttle, for the consent page and the password grant. It
// returns the buyer, nil when the credentials are wrong or accept (when
// given) refuses the buyer, or a *throttledError.
//
// Each attempt reserves its place before the password is checked: a
// token from the bucket of this account on this client network, and one
// from the network's bucket across all accounts. However many attempts
// arrive at once, no more than the budget reach the password check;
// counting failures after the check would let a burst of concurrent
// guesses all through before the first one was counted. A success gives
// its tokens back, so only failures count and an owner who signs in often
// is never throttled.
//
// Keyed by network, a stranger's failures lock only the stranger's
// network out of the account, never its owner elsewhere; the network
// bucket stops one network trying a password against many accounts.
func (s *Server) signIn(r *http.Request, email, password string, accept func(*store.Buyer) bool) (*store.Buyer, error) {
	network := s.clientKey(r)
	// The network key holds no "|", so the pair cannot be confused with
	// another email's.
	account := email + "|" + network
	if ok, wait := s.loginLim.allow(account); !ok {
		return nil, &throttledError{Wait: wait}
	}
	if ok, wait := s.loginNetLim.allow(network); !ok {
		s.loginLim.give(account)
		return nil, &throttledError{Wait: wait}
	}
	refund := func() {
		s.loginLim.give(account)
		s.loginNetLim.give(network)
	}
	b, err := s.checkBuyer(r.Context(), email, password)
	if err != nil {
		// The store failed before any password was checked: the attempt
		// taught the caller nothing, so it does not count.
		refund()
		return nil, err
	}
	if b == nil || (accept != nil && !accept(b)) {
		return nil, nil
	}
	refund()
	return b, nil
}
