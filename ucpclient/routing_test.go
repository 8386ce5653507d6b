package ucpclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
)

type rowKey struct {
	s  Surface
	op string
	v  Variant
}

// TestCredentialRouting calls every operation the client has and asserts
// exactly which credential headers went on the wire, and that buyer-bound
// calls never carry X-API-Key. Together the cases cover every row of the
// routing table.
func TestCredentialRouting(t *testing.T) {
	coupon := map[string]any{"id": "c1", "checkout": map[string]any{"context": map[string]any{"eligibility": []string{"sh.artos.coupon"}}}}
	noCoupon := map[string]any{"id": "c1", "checkout": map[string]any{"context": map[string]any{"eligibility": []string{}}}}
	store := func(name string, args any, opts ...CallOption) func(*Client) error {
		return func(c *Client) error {
			_, err := c.CallStoreTool(context.Background(), "tea", name, args, opts...)
			return err
		}
	}
	global := func(name string) func(*Client) error {
		return func(c *Client) error {
			_, err := c.CallGlobalTool(context.Background(), name, map[string]string{"query": "tea"})
			return err
		}
	}
	id := map[string]string{"id": "x"}
	type tc struct {
		name     string
		buyer    bool
		call     func(*Client) error
		row      rowKey
		key      bool // X-API-Key sent
		bearer   bool // Authorization sent
		idem     bool // idempotency key sent
		path     string
		httpVerb string
	}
	const P, B = true, true
	cases := []tc{
		{name: "rest search", call: func(c *Client) error { _, err := c.GlobalSearch(context.Background(), nil); return err },
			row: rowKey{SurfaceREST, "catalog/search", ""}, key: P, path: "/catalog/search", httpVerb: "POST"},
		{name: "store profile", call: func(c *Client) error { _, err := c.FetchStoreProfile(context.Background(), "tea"); return err },
			row: rowKey{SurfaceREST, "store_profile", ""}, key: P, path: "/s/tea/.well-known/ucp", httpVerb: "GET"},
		{name: "global search_catalog", call: global("search_catalog"), row: rowKey{SurfaceGlobal, "search_catalog", ""}, key: P, path: "/mcp"},
		{name: "global lookup_catalog", call: global("lookup_catalog"), row: rowKey{SurfaceGlobal, "lookup_catalog", ""}, key: P, path: "/mcp"},
		{name: "global get_product", call: global("get_product"), row: rowKey{SurfaceGlobal, "get_product", ""}, key: P, path: "/mcp"},
		{name: "global unknown tool", call: global("future_tool"), row: rowKey{SurfaceGlobal, anyTool, ""}, key: P, path: "/mcp"},
	}
	for _, op := range []struct {
		name string
		idem bool
	}{
		{"search_catalog", false}, {"lookup_catalog", false}, {"get_product", false},
		{"search_locations", false}, {"lookup_locations", false},
		{"create_cart", true}, {"update_cart", true}, {"get_cart", false}, {"cancel_cart", true},
		{"create_checkout", true}, {"get_checkout", false}, {"update_checkout", true}, {"cancel_checkout", true},
		{"get_order", false},
	} {
		args := any(id)
		if op.name == "update_checkout" {
			args = noCoupon
		}
		for _, buyer := range []bool{false, true} {
			cases = append(cases, tc{name: fmt.Sprintf("store %s buyer=%v", op.name, buyer), buyer: buyer,
				call: store(op.name, args), row: rowKey{SurfaceStore, op.name, ""}, key: P, idem: op.idem, path: "/s/tea/mcp"})
		}
	}
	cases = append(cases,
		tc{name: "store unknown tool", call: store("future_tool", id), row: rowKey{SurfaceStore, anyTool, ""}, key: P, path: "/s/tea/mcp"},
		tc{name: "card complete, no buyer", call: store("complete_checkout", id), row: rowKey{SurfaceStore, "complete_checkout", ""}, key: P, idem: true, path: "/s/tea/mcp"},
		tc{name: "complete with buyer present", buyer: true, call: store("complete_checkout", id), row: rowKey{SurfaceStore, "complete_checkout", VariantBuyerPresent}, bearer: B, idem: true, path: "/s/tea/mcp"},
		tc{name: "crypto complete", buyer: true, call: store("complete_checkout", id, WithCrypto()), row: rowKey{SurfaceStore, "complete_checkout", VariantCrypto}, bearer: B, idem: true, path: "/s/tea/mcp"},
		tc{name: "crypto prepare", buyer: true, call: store("prepare_checkout_payment", id, WithCrypto()), row: rowKey{SurfaceStore, "prepare_checkout_payment", VariantCrypto}, bearer: B, idem: true, path: "/s/tea/mcp"},
		tc{name: "prepare (always crypto)", buyer: true, call: store("prepare_checkout_payment", id), row: rowKey{SurfaceStore, "prepare_checkout_payment", ""}, bearer: B, idem: true, path: "/s/tea/mcp"},
		tc{name: "coupon attach by claim", buyer: true, call: store("update_checkout", coupon), row: rowKey{SurfaceStore, "update_checkout", VariantCoupon}, key: P, bearer: B, idem: true, path: "/s/tea/mcp"},
		tc{name: "coupon attach by option", buyer: true, call: store("update_checkout", id, WithCoupon()), row: rowKey{SurfaceStore, "update_checkout", VariantCoupon}, key: P, bearer: B, idem: true, path: "/s/tea/mcp"},
		tc{name: "account tools/list", buyer: true, call: func(c *Client) error { _, err := c.ListAccountTools(context.Background()); return err },
			row: rowKey{SurfaceAccount, "tools/list", ""}, bearer: B, path: "/account/mcp"},
	)
	for _, name := range []string{"get_buyer_context", "list_my_orders", "get_my_order", "list_my_addresses", "list_my_agent_authorizations", "revoke_agent_authorization", "update_spending_limits"} {
		cases = append(cases, tc{name: "account " + name, buyer: true,
			call: func(c *Client) error { _, err := c.CallAccountTool(context.Background(), name, nil); return err },
			row:  rowKey{SurfaceAccount, anyTool, ""}, bearer: B, path: "/account/mcp"})
	}

	covered := map[rowKey]bool{}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakePlatform(t)
			c := newTestClient(t, f, func(cfg *Config) {
				if tc.buyer {
					cfg.Buyer = staticBuyer{"buyer-token"}
				}
			})
			if err := tc.call(c); err != nil {
				t.Fatal(err)
			}
			covered[tc.row] = true
			if _, ok := lookup(tc.row.s, tc.row.op, tc.row.v); !ok {
				t.Fatalf("no table row %+v", tc.row)
			}
			reqs := f.requests()
			if len(reqs) != 1 {
				t.Fatalf("%d requests", len(reqs))
			}
			r := reqs[0]
			if r.Path != tc.path {
				t.Errorf("path %s, want %s", r.Path, tc.path)
			}
			verb := tc.httpVerb
			if verb == "" {
				verb = "POST"
			}
			if r.Method != verb {
				t.Errorf("method %s", r.Method)
			}
			gotKey, gotAuth := r.Header.Values("X-API-Key"), r.Header.Values("Authorization")
			if tc.key && (len(gotKey) != 1 || gotKey[0] != "plat.secret") {
				t.Errorf("X-API-Key = %q, want the platform key", gotKey)
			}
			if !tc.key && len(gotKey) != 0 {
				t.Errorf("X-API-Key = %q on a call that must not carry it", gotKey)
			}
			if tc.bearer && (len(gotAuth) != 1 || gotAuth[0] != "Bearer buyer-token") {
				t.Errorf("Authorization = %q, want the buyer bearer", gotAuth)
			}
			if !tc.bearer && len(gotAuth) != 0 {
				t.Errorf("Authorization = %q on a platform call", gotAuth)
			}
			// The rule the product exists for: bearer-only calls never
			// carry the key.
			row, _ := lookup(tc.row.s, tc.row.op, tc.row.v)
			if row.Credential == CredentialBuyer && len(gotKey) != 0 {
				t.Errorf("buyer-bound call carried X-API-Key")
			}
			var env struct {
				Params struct {
					Arguments struct {
						Meta map[string]any `json:"meta"`
					} `json:"arguments"`
				} `json:"params"`
			}
			json.Unmarshal(r.Body, &env)
			mk, _ := env.Params.Arguments.Meta["idempotency-key"].(string)
			hk := r.Header.Get("Idempotency-Key")
			if tc.idem && (len(mk) != 36 || hk != mk) {
				t.Errorf("idempotency key meta=%q header=%q", mk, hk)
			}
			if !tc.idem && (mk != "" || hk != "") {
				t.Errorf("unexpected idempotency key meta=%q header=%q", mk, hk)
			}
			if r.Path != "/account/mcp" && r.Method == "POST" && r.Path != "/catalog/search" {
				if env.Params.Arguments.Meta["ucp-agent"] == nil {
					t.Errorf("no meta ucp-agent")
				}
			}
			if r.Path == "/account/mcp" && env.Params.Arguments.Meta != nil {
				t.Errorf("account tools carry no meta: %s", r.Body)
			}
		})
	}
	for _, r := range routes {
		if !covered[rowKey{r.Surface, r.Op, r.Variant}] {
			t.Errorf("routing row %+v is not tested", r)
		}
	}
}

// TestBuyerRequiredBeforeIO: buyer-bound calls without a Buyer fail
// locally, typed, and nothing reaches the network.
func TestBuyerRequiredBeforeIO(t *testing.T) {
	f := newFakePlatform(t)
	c := newTestClient(t, f, nil)
	ctx := context.Background()
	id := map[string]string{"id": "c1"}
	calls := map[string]func() error{
		"account tools/list": func() error { _, err := c.ListAccountTools(ctx); return err },
		"account tool":       func() error { _, err := c.CallAccountTool(ctx, "get_buyer_context", nil); return err },
		"prepare": func() error {
			_, err := c.CallStoreTool(ctx, "tea", "prepare_checkout_payment", id, WithCrypto())
			return err
		},
		"crypto complete": func() error { _, err := c.CallStoreTool(ctx, "tea", "complete_checkout", id, WithCrypto()); return err },
		"coupon attach":   func() error { _, err := c.CallStoreTool(ctx, "tea", "update_checkout", id, WithCoupon()); return err },
	}
	for name, call := range calls {
		err := call()
		var be *BuyerRequiredError
		if !errors.As(err, &be) || be.Op == "" {
			t.Errorf("%s: err = %v, want *BuyerRequiredError", name, err)
		}
	}
	if n := len(f.requests()); n != 0 {
		t.Fatalf("%d requests reached the server", n)
	}
	if c.HasBuyerToken() {
		t.Error("HasBuyerToken without a Buyer")
	}
}

func TestRouteTableWellFormed(t *testing.T) {
	seen := map[rowKey]bool{}
	for _, r := range Routes() {
		k := rowKey{r.Surface, r.Op, r.Variant}
		if seen[k] {
			t.Errorf("duplicate row %+v", k)
		}
		seen[k] = true
		if r.Credential < CredentialPlatform || r.Credential > CredentialPlatformBuyer {
			t.Errorf("row %+v has no credential", k)
		}
		if r.Surface == SurfaceAccount && r.Credential != CredentialBuyer {
			t.Errorf("account row %+v is not bearer-only", k)
		}
	}
	for _, s := range []Surface{SurfaceGlobal, SurfaceStore, SurfaceAccount} {
		if !seen[rowKey{s, anyTool, ""}] {
			t.Errorf("surface %s has no default row", s)
		}
	}
}
