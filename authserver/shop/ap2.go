package shop

import (
	"context"
	"encoding/json"
	"time"

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
