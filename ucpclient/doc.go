// Package ucpclient is the Go SDK a platform imports to shop at UCP
// businesses for its buyers: it routes every call to the right
// credential (the platform's X-API-Key, or the buyer's OAuth bearer alone
// on buyer-bound calls, never both), relays 401 challenges, refreshes
// buyer tokens, retries only what is safe, signs requests (RFC 9421) and
// runs the Artos-style purchase flow.
//
// It speaks UCP 2026-04-08 over MCP JSON-RPC (the global /mcp, each
// store's /s/:slug/mcp, the buyer's /account/mcp) and REST where a
// business profile offers it, to any business found by its profile URL.
package ucpclient
