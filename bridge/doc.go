// Package bridge is the MCP tool server agents shop through.
//
// A Bridge holds the platform API key and exposes the Artos tool catalog
// (search_products, create_cart, create_checkout, confirm_purchase,
// get_order, ...) plus the buyer's account tools discovered from the
// platform's /account/mcp endpoint, as an mcp-go server. Every tool is a
// thin adapter over ucpclient: the SDK decides which credential a call
// carries (the platform key on catalog, cart and checkout calls; the
// buyer's token only on buyer-bound calls), the bridge never decides it.
//
// The buyer is per request: the HTTP front (bridge/http*.go) exchanges the
// caller's bearer for a platform token (RFC 8693) and puts it in the
// request context with ContextWithBuyer; over stdio (ServeStdio) the buyer
// comes from Config.TokenFile and the connect_account tool. A tool that
// needs the buyer and has none is a tool error that says how to connect,
// never a silent platform-key call.
//
// ProfileHandler serves the agent's UCP platform profile with its signing
// keys so stores can verify the agent's mandates and request signatures.
package bridge
