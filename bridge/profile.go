package bridge

import (
	"encoding/json"
	"net/http"

	"github.com/ucpbridge/ucpbridge/mandate"
	"github.com/ucpbridge/ucpbridge/ucpclient/ucp"
)

// agentProfileDoc is the agent's UCP platform profile: the shopping
// service over MCP, the capabilities the bridge uses (AP2 mandates
// included), and the signing key whose kid the mandates and request
// signatures name.
func agentProfileDoc(k *mandate.SigningKey) ([]byte, error) {
	jwk, err := json.Marshal(k.PublicJWK())
	if err != nil {
		return nil, err
	}
	caps := map[string][]ucp.Capability{}
	for _, c := range []string{ucp.CapCheckout, ucp.CapCart, ucp.CapOrder, ucp.CapCatalogSearch, ucp.CapCatalogLookup,
		ucp.CapFulfillment, ucp.CapDiscount, ucp.CapAP2Mandate} {
		cp := ucp.Capability{Entity: ucp.Entity{Version: ucp.Version, Spec: "https://ucp.dev/specification/overview", Schema: "https://ucp.dev/schemas/shopping/checkout.json"}}
		switch c {
		case ucp.CapFulfillment, ucp.CapAP2Mandate:
			cp.Extends = ucp.Extends{ucp.CapCheckout}
		case ucp.CapDiscount:
			cp.Extends = ucp.Extends{ucp.CapCheckout, ucp.CapCart}
		}
		caps[c] = []ucp.Capability{cp}
	}
	return json.Marshal(&ucp.Profile{UCP: ucp.ProfileUCP{Version: ucp.Version,
		Services: map[string][]ucp.Service{ucp.ServiceShopping: {{Entity: ucp.Entity{Version: ucp.Version,
			Spec: "https://ucp.dev/specification/overview", Schema: "https://ucp.dev/services/shopping/mcp.openrpc.json"}, Transport: "mcp"}}},
		Capabilities: caps, PaymentHandlers: map[string][]ucp.PaymentHandler{}}, SigningKeys: []json.RawMessage{jwk}})
}

// ProfileHandler serves the agent's UCP platform profile
// (/.well-known/ucp) with its signing key (kid = the mandate kid), so
// stores can verify the bridge's mandates and request signatures. Mount
// it where Config.AgentProfile points.
func (b *Bridge) ProfileHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age=300")
		_, _ = w.Write(b.profile)
	})
}
