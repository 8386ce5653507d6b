package bridge

import (
	"context"

	"github.com/ucpbridge/ucpbridge/ucpclient"
)

// buyerKey is the context key for the per-request buyer credential.
type buyerKey struct{}

// ContextWithBuyer returns ctx carrying the buyer's platform token source.
// The HTTP front calls it per request with the token it obtained by RFC
// 8693 exchange, so the bridge never sees (nor forwards) the bearer the
// MCP client sent. A nil t leaves ctx without a buyer.
func ContextWithBuyer(ctx context.Context, t ucpclient.BuyerTokens) context.Context {
	if t == nil {
		return ctx
	}
	return context.WithValue(ctx, buyerKey{}, t)
}

// buyerFromContext returns the buyer put there by ContextWithBuyer, or nil.
func buyerFromContext(ctx context.Context) ucpclient.BuyerTokens {
	t, _ := ctx.Value(buyerKey{}).(ucpclient.BuyerTokens)
	return t
}
