package authserver

import (
	"context"
	"time"

	"github.com/ucpbridge/ucpbridge/authserver/oauth"
)

// RegisterBridgeResource records that the platform application
// platformID runs the MCP bridge whose endpoint (its RFC 8707 resource)
// is url, so buyers may authorize agents for it and only that platform
// may exchange their tokens (RFC 8693). `ucpbridge dev` calls it once the
// bridge listens; registering the same URL again is no error. See
// oauth.RegisterResource for what is refused.
func RegisterBridgeResource(ctx context.Context, st Store, platformID, url string) error {
	return oauth.RegisterResource(ctx, st, platformID, url, time.Now())
}
