package oauth

import (
	"slices"
	"strings"
)

// Scope is one scope the server grants, with the sentence the consent page
// shows for it.
type Scope struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	// Buyer scopes carry a buyer's authority; client_credentials tokens
	// never get them.
	Buyer bool `json:"buyer"`
}

// Scopes is the catalogue, in display order.
var Scopes = []Scope{
	// Also a merchant's app-only scope (Artos): completing checkouts at
	// its own store. A buyer's grant of it always carries an allowance.
	{"purchase:complete", "Buy things for you, within the spending limits you set below", false},
	// For a merchant's app-only token this is its own store's orders
	// (Artos: store get_order), so it is not buyer authority.
	{"orders:read", "See the orders placed for you", false},
	{"offline_access", "Stay connected while you are away (up to 30 days) without asking again", true},
	{"dev.ucp.shopping.checkout:manage", "Create and change checkouts in your name (paying needs purchase:complete)", true},
	{"dev.ucp.shopping.cart:manage", "Create and change your shopping carts", true},
	{"dev.ucp.shopping.order:read", "Read your orders", true},
	{"dev.ucp.shopping.order:manage", "Manage your orders (cancel, return)", true},
	{"dev.ucp.shopping.catalog.search:read", "Search store catalogues", false},
	{"dev.ucp.shopping.catalog.lookup:read", "Look up products in store catalogues", false},
}

func scopeByName(name string) (Scope, bool) {
	for _, s := range Scopes {
		if s.Name == name {
			return s, true
		}
	}
	return Scope{}, false
}

// parseScope splits a space-separated scope string, dropping duplicates,
// and refuses unknown scopes.
func parseScope(s string) ([]string, *oauthError) {
	var out []string
	for _, f := range strings.Fields(s) {
		if _, ok := scopeByName(f); !ok {
			return nil, errInvalidScope("unknown scope " + quoteShort(f))
		}
		if !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	return out, nil
}

func hasScope(scope, name string) bool { return slices.Contains(strings.Fields(scope), name) }

func quoteShort(s string) string {
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	return `"` + s + `"`
}
