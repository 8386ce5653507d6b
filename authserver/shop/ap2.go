package shop

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"time"

	"github.com/ucpbridge/ucpbridge/authserver/store"
	"github.com/ucpbridge/ucpbridge/mandate"
)

// ProfileMandateVerifier verifies checkout mandates with the keys the
// platform profile publishes: Artos compact ES256 JWS or AP2 SD-JWT.
type ProfileMandateVerifier struct {
	Replay mandate.ReplayCache
	Now    func() time.Time
}

// VerifyMandate implements MandateVerifier.
func (v *ProfileMandateVerifier) VerifyMandate(ctx context.Context, token string, in MandateInput) (*mandate.CheckoutAuthorization, error) {
	if in.Agent == nil {
		return nil, &mandate.Error{Code: mandate.CodeAgentMissingKey, Reason: "no platform profile to take keys from"}
	}
	raw := in.Agent.Raw
	if raw == nil {
		var err error
		if raw, err = json.Marshal(in.Agent); err != nil {
			return nil, err
		}
	}
	keys, err := mandate.ParseKeySet(raw)
	if err != nil || keys.Len() == 0 {
		return nil, &mandate.Error{Code: mandate.CodeAgentMissingKey, Reason: "the platform profile publishes no usable signing key"}
	}
	replay := v.Replay
	if in.Consumed {
		replay = nil
	}
	av := &mandate.AnyVerifier{
		Compact: &mandate.CompactVerifier{Options: mandate.VerifyOptions{AgentKeys: keys, Merchant: in.Shop,
			MerchantKeys: in.MerchantKeys, HandlerID: in.HandlerID, Replay: replay, Now: v.Now}},
		SDJWT: &mandate.SDJWTVerifier{Options: mandate.SDJWTVerifyOptions{RootKeys: keys, MerchantKeys: in.MerchantKeys,
			Audience: in.Shop, MerchantID: in.Shop, Replay: replay, Now: v.Now}},
	}
	return av.VerifyCheckoutMandate(ctx, token, in.Live)
}

// StoreReplayCache is a mandate.ReplayCache on the shared idempotency
// table: every instance of a multi-instance deployment sees every used
// mandate, and the records expire with the mandates (swept with the
// idempotency records).
type StoreReplayCache struct {
	Store store.Idempotency
	Now   func() time.Time
}

var _ mandate.ReplayCache = (*StoreReplayCache)(nil)

// Use implements mandate.ReplayCache: the first claim of id wins; a live
// claim means replay.
func (c *StoreReplayCache) Use(ctx context.Context, id string, expires time.Time) error {
	now := time.Now()
	if c.Now != nil {
		now = c.Now()
	}
	// Held (pending) until the mandate expires, plus a minute of the
	// verifier's leeway: a claim that lapses can only be re-claimed by a
	// mandate the verifier already refuses as expired.
	life := max(expires.Sub(now), 0) + time.Minute
	// The id is the mandate's kid|jti, both chosen by whoever signs the
	// mandate: store a fixed-length digest, never their text (a NUL or an
	// 8 KB jti would fail the insert, or the index).
	sum := sha256.Sum256([]byte(id))
	key := store.IdemKey{Scope: "ap2-mandate", Key: hex.EncodeToString(sum[:])}
	rec, err := c.Store.ClaimIdempotency(ctx, key, []byte("used"), now, life, life)
	switch {
	case err == nil && rec == nil:
		return nil
	case err == nil, errors.Is(err, store.ErrInProgress):
		return mandate.ErrReplayed
	default:
		return err
	}
}
