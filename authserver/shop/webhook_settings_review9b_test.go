package shop_test

// Second security review of issue 9: the merchant's webhook settings.

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"testing"

	"github.com/ucpbridge/ucpbridge/authserver/shop"
)

// TestReview9bWebhookOwnAPIPortSpelling: the order events URL is refused
// when it "points at this platform's own API" (a delivery there is a
// self-addressed request carrying the store's RFC 9421 signature and
// UCP-Agent naming the store's profile, i.e. the signed tier as the
// store), "whatever the spelling" (TestWebhookSettingsBadInput).
// checkWebhookURL compares host:port as strings, so a port written with
// leading zeros passes, yet the transport dials it as the same port
// (net.LookupPort("tcp", "0443") is 443): the deliveries reach the API.
func TestReview9bWebhookOwnAPIPortSpelling(t *testing.T) {
	t.Parallel()
	if p, err := net.DefaultResolver.LookupPort(context.Background(), "tcp", "0443"); err != nil || p != 443 {
		t.Fatalf("precondition: port 0443 dials as %d (%v)", p, err)
	}
	api := newEnv(t, &envOptions{cfg: func(c *shop.Config) { c.BaseURL = "https://api.ucpbridge.example" }})
	var accepted []string
	for _, u := range []string{"https://api.ucpbridge.example:0443/s/flower-shop/carts", "https://api.ucpbridge.example:000443/x"} {
		res, b := api.putWebhookSettings(orderEvents(u), flowerMerchant...)
		if res.StatusCode == http.StatusOK {
			pu, _ := url.Parse(u)
			accepted = append(accepted, u+" (port "+pu.Port()+" dials 443)")
		} else {
			wantStatus(t, res, b, http.StatusBadRequest)
		}
	}
	if len(accepted) > 0 {
		t.Errorf("the platform's own API host was accepted as the order events URL: %v", accepted)
	}
}
