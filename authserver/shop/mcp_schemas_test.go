package shop

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// schemaAt is the member of a tool's published schema (which: "input" or
// "output") at the JSON pointer ptr.
func schemaAt(t *testing.T, tool Op, which, ptr string) any {
	t.Helper()
	ts := toolSchemas[tool]
	if ts == nil {
		t.Fatalf("no schema for %s", tool)
	}
	raw := ts.input
	if which == "output" {
		raw = ts.output
	}
	var doc map[string]any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		t.Fatal(err)
	}
	v, err := resolvePointer(doc, "#"+ptr)
	if err != nil {
		t.Fatalf("%s %s: %v", tool, which, err)
	}
	return v
}

func schemaInt(t *testing.T, tool Op, ptr string) int {
	t.Helper()
	n, ok := schemaAt(t, tool, "input", ptr).(json.Number)
	if !ok {
		t.Fatalf("%s %s is not a number", tool, ptr)
	}
	i, err := n.Int64()
	if err != nil {
		t.Fatal(err)
	}
	return int(i)
}

// TestToolSchemaBounds: the limits the input schemas publish are the
// stores' own (input.go, pricing.go, catalog.go), so a schema never
// refuses what a store takes nor promises what it refuses.
func TestToolSchemaBounds(t *testing.T) {
	t.Parallel()
	const chk = "/properties/checkout/properties"
	for _, tc := range []struct {
		tool Op
		ptr  string
		want int
	}{
		{OpCreateCheckout, chk + "/line_items/maxItems", maxLines},
		{OpUpdateCheckout, chk + "/line_items/maxItems", maxLines},
		{OpCreateCart, "/properties/cart/properties/line_items/maxItems", maxLines},
		{OpUpdateCart, "/properties/cart/properties/line_items/maxItems", maxLines},
		{OpCreateCheckout, chk + "/line_items/items/properties/quantity/maximum", maxQuantity},
		{OpCreateCheckout, chk + "/line_items/items/properties/quantity/minimum", 1},
		{OpUpdateCart, "/properties/cart/properties/line_items/items/properties/quantity/maximum", maxQuantity},
		{OpCreateCheckout, chk + "/line_items/items/properties/item/properties/id/maxLength", maxIDLen},
		{OpUpdateCheckout, chk + "/line_items/items/properties/id/maxLength", maxIDLen},
		{OpCreateCheckout, chk + "/cart_id/maxLength", maxIDLen},
		{OpGetCheckout, "/properties/id/maxLength", maxIDLen},
		{OpCreateCheckout, chk + "/discounts/properties/codes/maxItems", maxCodes},
		{OpCreateCart, "/properties/cart/properties/discounts/properties/codes/items/maxLength", maxShortLen},
		{OpCompleteCheckout, chk + "/payment/properties/instruments/maxItems", maxInstruments},
		{OpCreateCheckout, chk + "/payment/properties/instruments/maxItems", maxInstruments},
		{OpCompleteCheckout, chk + "/payment/properties/instruments/items/properties/handler_id/maxLength", maxIDLen},
		{OpCompleteCheckout, chk + "/payment/properties/instruments/items/properties/type/maxLength", maxShortLen},
		{OpCreateCheckout, chk + "/buyer/properties/email/maxLength", maxTextLen},
		{OpCreateCheckout, chk + "/buyer/properties/phone_number/maxLength", maxShortLen},
		{OpCreateCheckout, chk + "/context/properties/intent/maxLength", maxTextLen},
		{OpCreateCheckout, chk + "/context/properties/address_country/maxLength", maxShortLen},
		{OpCreateCheckout, chk + "/context/properties/eligibility/maxItems", maxEligibility},
		{OpCreateCheckout, chk + "/context/properties/eligibility/items/maxLength", maxShortLen},
		{OpCreateCheckout, chk + "/signals/maxProperties", maxFreeFormKeys},
		{OpCreateCheckout, chk + "/signals/propertyNames/maxLength", maxFreeFormKey},
		{OpCompleteCheckout, chk + "/attribution/maxProperties", maxFreeFormKeys},
		{OpCreateCart, "/properties/cart/properties/attribution/propertyNames/maxLength", maxFreeFormKey},
		// A value of at most maxFreeFormValue bytes as JSON: the quotes.
		{OpCreateCart, "/properties/cart/properties/attribution/additionalProperties/maxLength", maxFreeFormValue - 2},
		{OpCreateCheckout, chk + "/fulfillment/properties/methods/items/properties/groups/maxItems", maxGroups},
		{OpCreateCheckout, chk + "/fulfillment/properties/methods/items/properties/destinations/items/properties/street_address/maxLength", maxTextLen},
		{OpCreateCheckout, chk + "/fulfillment/properties/methods/items/properties/destinations/items/properties/postal_code/maxLength", maxShortLen},
		{OpCreateCheckout, chk + "/fulfillment/properties/methods/items/properties/destinations/items/properties/id/maxLength", maxIDLen},
		// fulfillment.go: at most 10 destinations, one method.
		{OpCreateCheckout, chk + "/fulfillment/properties/methods/items/properties/destinations/maxItems", 10},
		{OpCreateCheckout, chk + "/fulfillment/properties/methods/maxItems", 1},
		{OpCreateCheckout, chk + "/shipping_address/properties/country/maxLength", maxShortLen},
		{OpUpdateCheckout, chk + "/shipping_address/properties/address_region/maxLength", maxTextLen},
		{OpLookupCatalog, "/properties/catalog/properties/ids/maxItems", maxLookupIDs},
		{OpSearchCatalog, "/properties/catalog/properties/filters/properties/categories/maxItems", maxFilterCategories},
		{OpGetProduct, "/properties/catalog/properties/selected/maxItems", maxSelections},
		{OpGetProduct, "/properties/catalog/properties/preferences/maxItems", maxSelections},
		// catalog.go: a query of at most 500 bytes.
		{OpSearchCatalog, "/properties/catalog/properties/query/maxLength", 500},
	} {
		if got := schemaInt(t, tc.tool, tc.ptr); got != tc.want {
			t.Errorf("%s %s = %d, want %d", tc.tool, tc.ptr, got, tc.want)
		}
	}
	// The idempotency key's form is validIdemKey's.
	key := schemaAt(t, OpCompleteCheckout, "input", "/properties/meta/properties/idempotency-key")
	b, _ := json.Marshal(key)
	sch, err := compileSchema("idempotency-key", b)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"", strings.Repeat("k", 15), strings.Repeat("k", 16), strings.Repeat("~", 255), strings.Repeat("k", 256),
		"550e8400-e29b-41d4-a716-446655440000", "550e8400 e29b 41d4 a716 446655440000", "550e8400-e29b-41d4-a716-44665544000é"} {
		if got, want := sch.Validate(k) == nil, validIdemKey(k); got != want {
			t.Errorf("key %q: schema accepts %v, store %v", k, got, want)
		}
	}
}

// TestToolSchemasCoverUCPTools: every UCP operation served over MCP has
// its schemas, a title and a description, and a key-requiring operation
// says so in its schema.
func TestToolSchemasCoverUCPTools(t *testing.T) {
	t.Parallel()
	n := 0
	for op, info := range ops {
		if info.settings || info.capability == "" {
			continue // REST only, or not a UCP 2026-04-08 tool
		}
		n++
		ts, ti := toolSchemas[op], toolInfos[op]
		if ts == nil || ti.title == "" || ti.doc == "" {
			t.Errorf("%s: schemas %v, info %+v", op, ts != nil, ti)
			continue
		}
		if info.global && ti.global == "" {
			t.Errorf("%s: no description for the cross-store catalog", op)
		}
		req, _ := schemaAt(t, op, "input", "/properties/meta/required").([]any)
		if hasKey := fmt.Sprint(req) == "[ucp-agent idempotency-key]"; hasKey != info.needsKey {
			t.Errorf("%s: meta.required %v, needsKey %v", op, req, info.needsKey)
		}
		if info.needsKey != strings.Contains(ti.doc, keyRequired) {
			t.Errorf("%s: the description does not say whether the key is required", op)
		}
		if ti.readOnly == info.mutates {
			t.Errorf("%s: readOnly %v but mutates %v", op, ti.readOnly, info.mutates)
		}
	}
	if n != len(toolSchemas) {
		t.Errorf("%d UCP tools, %d schemas", n, len(toolSchemas))
	}
}

// validateToolArgs runs the tool's input validation on args (JSON).
func validateToolArgs(t *testing.T, tool Op, args string) error {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(strings.NewReader(args))
	if err != nil {
		t.Fatalf("%s: %v", args, err)
	}
	return toolSchemas[tool].validateArgs(doc)
}

const toolTestMeta = `"meta":{"ucp-agent":{"profile":"https://platform.example/.well-known/ucp"},"idempotency-key":"550e8400-e29b-41d4-a716-446655440000"}`

// TestToolSchemasAcceptStoreShapes: what the stores take passes, the
// Artos SDK's shapes included (handlers.js: its line customisations,
// shipping_address with country, tip_amount and metadata it sends and
// the store ignores, the flat fulfillment selection, a coupon claim in a
// partial update, a card completion with no credential, a crypto one with
// a credential of only a token, the payment mandate, payment_intent),
// and so do response-only members sent back (the store ignores them).
func TestToolSchemasAcceptStoreShapes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		tool Op
		args string
	}{
		{OpSearchCatalog, `{` + toolTestMeta + `,"catalog":{"query":"roses","filters":{"price":{"max":10000}},"sort":"price_asc","pagination":{"limit":50},"context":{"currency":"EUR","intent":"` + strings.Repeat("x", 600) + `"}}}`},
		{OpSearchCatalog, `{` + toolTestMeta + `,"catalog":{"filters":{"categories":["flowers"],"price":{"min":0}},"pagination":{"cursor":"abc"}}}`},
		{OpLookupCatalog, `{` + toolTestMeta + `,"catalog":{"ids":["bouquet_roses","nope"],"context":{"address_country":"US"}}}`},
		{OpGetProduct, `{` + toolTestMeta + `,"catalog":{"id":"runner","selected":[{"name":"Size","label":"10"}],"preferences":["Color","Size"]}}`},
		{OpCreateCart, `{` + toolTestMeta + `,"cart":{"line_items":[{"item":{"id":"tulip_bunch"},"quantity":1,"selected_modifiers":[{"group_id":"g","option_id":"o"}]}]}}`},
		{OpUpdateCart, `{` + toolTestMeta + `,"id":"cart_1","cart":{"line_items":[{"id":"li_1","item":{"id":"tulip_bunch","title":"Tulips","price":1200},"quantity":2,"totals":[]}]}}`},
		{OpCreateCheckout, `{` + toolTestMeta + `,"checkout":{"line_items":[{"item":{"id":"bouquet_roses"},"quantity":1}],"shipping_address":{"country":"US","postal_code":"94016"},"tip_amount":250,"metadata":{"artos_food":{"notes":"no card"}},"fulfillment":{"selected_option_id":"std","selected_destination_id":"d1","fulfillable_on":"2026-12-01"}}}`},
		{OpCreateCheckout, `{` + toolTestMeta + `,"checkout":{"cart_id":"cart_1"}}`},
		{OpCreateCheckout, `{` + toolTestMeta + `,"checkout":{"line_items":[{"item":{"id":"x"},"quantity":2.0}],"buyer":{"email":"ada@example.com","consent":{"marketing":false}},"context":{"eligibility":["sh.artos.coupon"]},"signals":{"dev.ucp.buyer_ip":"192.0.2.1"},"attribution":{"utm_source":"mail"},"discounts":{"codes":["SPRING15"]},"payment":{"instruments":[{"handler_id":"artos.card","type":"card"}]},"fulfillment":{"methods":[{"type":"shipping","destinations":[{"id":"d1","street_address":"1 rue de Rivoli","address_country":"FR"}],"selected_destination_id":"d1","groups":[{"id":"g1","selected_option_id":null}]}]}}}`},
		{OpUpdateCheckout, `{` + toolTestMeta + `,"id":"chk_1","checkout":{"context":{"eligibility":["sh.artos.coupon"]}}}`},
		{OpUpdateCheckout, `{` + toolTestMeta + `,"id":"chk_1","checkout":{"buyer":{"first_name":"Ada"},"shipping_address":{"country":"FR"},"shipping_method_id":"std","tip_amount":0}}`},
		{OpCompleteCheckout, `{` + toolTestMeta + `,"id":"chk_1","checkout":{"payment":{"instruments":[{"handler_id":"artos.card","selected":true}]},"ap2":{"checkout_mandate":"a.b.c","payment_mandate":"d.e.f"}}}`},
		{OpCompleteCheckout, `{` + toolTestMeta + `,"id":"chk_1","checkout":{"payment":{"instruments":[{"handler_id":"artos.crypto","selected":true,"credential":{"token":"sim_ab12"}}]}}}`},
		{OpCompleteCheckout, `{` + toolTestMeta + `,"id":"chk_1","checkout":{"payment":{"instruments":[{"handler_id":"artos.card","selected":true,"credential":{"type":"token","token":"success_token"}}]}}}`},
		{OpCompleteCheckout, `{` + toolTestMeta + `,"id":"chk_1","checkout":{"ap2":{"checkout_mandate":"a.b.c~d~"}}}`},
		{OpCancelCheckout, `{` + toolTestMeta + `,"id":"chk_1"}`},
		{OpPrepareCheckoutPayment, `{` + toolTestMeta + `,"id":"chk_1","payment_intent":{"buyer_address":"0x00","input_coin_type":"0x2::sui::SUI"}}`},
		{OpPrepareCheckoutPayment, `{` + toolTestMeta + `,"id":"chk_1"}`},
		// The key is Do's to check (with its own codes), not the schema's.
		{OpCancelCart, `{"meta":{"ucp-agent":{"profile":"https://p.example/"}},"id":"cart_1"}`},
		{OpCancelCart, `{"meta":{"ucp-agent":{"profile":"https://p.example/"},"idempotency-key":"short"},"id":"cart_1"}`},
		// Other arguments beside the tool's are ignored.
		{OpGetOrder, `{` + toolTestMeta + `,"id":"ord_1","note":"x"}`},
	} {
		if err := validateToolArgs(t, tc.tool, tc.args); err != nil {
			t.Errorf("%s refused %s: %v", tc.tool, tc.args, err)
		}
	}
}

// TestToolSchemaRefusals: calls outside the schema are refused, each
// violation named where it is in the arguments.
func TestToolSchemaRefusals(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		tool Op
		args string
		want []string
	}{
		{OpCreateCheckout, `{` + toolTestMeta + `}`, []string{"checkout is required"}},
		{OpCreateCheckout, `{` + toolTestMeta + `,"checkout":{}}`, []string{"checkout: one of: checkout $.line_items is required | checkout $.cart_id is required"}},
		{OpCreateCart, `{` + toolTestMeta + `,"cart":{"line_items":[{"quantity":1}]}}`, []string{"cart $.line_items[0].item.id is required"}},
		{OpCreateCart, `{` + toolTestMeta + `,"cart":{"line_items":[{"item":{"id":"x"},"quantity":0}]}}`, []string{"cart $.line_items[0].quantity: minimum: got 0, want 1"}},
		{OpCreateCheckout, `{` + toolTestMeta + `,"checkout":{"line_items":[{"item":{"id":"x"},"quantity":1}],"fulfillment":{"methods":[{"type":"drone"}]}}}`,
			[]string{"checkout $.fulfillment.methods[0].type: value must be one of 'shipping', 'pickup'"}},
		{OpCreateCheckout, `{` + toolTestMeta + `,"checkout":{"line_items":[{"item":{"id":"x"},"quantity":1}],"context":{"eligibility":["gold member"]}}}`,
			[]string{"checkout $.context.eligibility[0]: 'gold member' does not match pattern"}},
		{OpCreateCheckout, `{` + toolTestMeta + `,"checkout":{"line_items":[{"item":{"id":"x"},"quantity":1}],"signals":{"ip":"192.0.2.1"}}}`,
			[]string{`checkout $.signals: member name "ip": 'ip' does not match pattern`}},
		{OpCompleteCheckout, `{` + toolTestMeta + `,"id":"chk_1","checkout":{"payment":{"instruments":[{"selected":true}]}}}`,
			[]string{"checkout $.payment.instruments[0].handler_id is required"}},
		{OpSearchCatalog, `{` + toolTestMeta + `,"catalog":{"query":"x","sort":"cheapest"}}`, []string{"catalog $.sort: value must be one of"}},
		{OpSearchCatalog, `{` + toolTestMeta + `,"catalog":{"query":"x","pagination":{"limit":0}}}`, []string{"catalog $.pagination.limit: minimum: got 0, want 1"}},
		{OpGetProduct, `{` + toolTestMeta + `,"catalog":{"selected":[{"name":"Size"}]}}`, []string{"catalog $.id is required", "catalog $.selected[0].label is required"}},
		{OpLookupCatalog, `{` + toolTestMeta + `,"catalog":{"ids":[]}}`, []string{"catalog $.ids: minItems: got 0, want 1"}},
		{OpGetCheckout, `{` + toolTestMeta + `,"id":7}`, []string{"id: got number, want string"}},
		{OpGetCheckout, `{` + toolTestMeta + `}`, []string{"id is required"}},
		{OpGetOrder, `{"meta":{"ucp-agent":{"profile":7}},"id":"x"}`, []string{`meta["ucp-agent"]["profile"]: got number, want string`}},
	} {
		err := validateToolArgs(t, tc.tool, tc.args)
		if err == nil {
			t.Errorf("%s accepted %s", tc.tool, tc.args)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s %s:\n got %v\nwant %q", tc.tool, tc.args, err, w)
			}
		}
	}
	// A flood of violations is summed up.
	ids := `"` + strings.Repeat(`x","`, 40) + `x"`
	err := validateToolArgs(t, OpCreateCheckout, `{`+toolTestMeta+`,"checkout":{"line_items":[{"item":{"id":"x"},"quantity":1}],"context":{"eligibility":[`+ids+`]}}}`)
	if err == nil || !strings.Contains(err.Error(), "; and ") || strings.Count(err.Error(), ";") > maxSchemaErrors {
		t.Errorf("flood: %v", err)
	}
}

// TestPublishedSchemasSelfContained: no published schema refers anywhere
// (clients that resolve no references read it whole), each names its
// dialect and compiles (the compiler checks it against the 2020-12
// meta-schema).
func TestPublishedSchemasSelfContained(t *testing.T) {
	t.Parallel()
	for op, ts := range toolSchemas {
		for which, raw := range map[string]json.RawMessage{"input": ts.input, "output": ts.output} {
			if bytes.Contains(raw, []byte(`"$ref"`)) || bytes.Contains(raw, []byte(`"$comment"`)) {
				t.Errorf("%s %s keeps a reference or a comment", op, which)
			}
			var root struct {
				Schema string `json:"$schema"`
				Type   string `json:"type"`
			}
			if json.Unmarshal(raw, &root) != nil || root.Schema != schemaDialect || root.Type != "object" {
				t.Errorf("%s %s: root %+v", op, which, root)
			}
			if _, err := compileSchema(string(op)+"."+which, raw); err != nil {
				t.Errorf("%s %s: %v", op, which, err)
			}
		}
	}
}

// TestInlineRefs: a reference is its target with the siblings merged over
// it, member by member; a bad reference is an error, not a panic.
func TestInlineRefs(t *testing.T) {
	t.Parallel()
	defs := map[string]any{"$defs": map[string]any{
		"a":    map[string]any{"type": "object", "description": "A", "properties": map[string]any{"x": map[string]any{"type": "string"}}},
		"loop": map[string]any{"$ref": "#/$defs/loop"},
	}}
	got, err := inlineRefs(map[string]any{"$ref": "#/$defs/a", "description": "B", "$comment": "dropped",
		"properties": map[string]any{"x": map[string]any{"maxLength": 3}, "y": map[string]any{"type": "integer"}}}, defs, 0)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(got)
	if want := `{"description":"B","properties":{"x":{"maxLength":3,"type":"string"},"y":{"type":"integer"}},"type":"object"}`; string(b) != want {
		t.Errorf("got  %s\nwant %s", b, want)
	}
	// The definition itself is untouched.
	if d, _ := json.Marshal(defs["$defs"].(map[string]any)["a"]); !strings.Contains(string(d), `"description":"A"`) || strings.Contains(string(d), "maxLength") {
		t.Errorf("definition changed: %s", d)
	}
	for _, ref := range []string{"#/$defs/loop", "#/$defs/none", "other.json#/x"} {
		if _, err := inlineRefs(map[string]any{"$ref": ref}, defs, 0); err == nil {
			t.Errorf("%s: no error", ref)
		}
	}
}

// TestMetaSchema: the meta schema tools outside tools.json publish is the
// one the UCP tools publish.
func TestMetaSchema(t *testing.T) {
	t.Parallel()
	var want, got any
	b, _ := json.Marshal(schemaAt(t, OpGetOrder, "input", "/properties/meta"))
	if json.Unmarshal(b, &want) != nil || json.Unmarshal([]byte(metaSchema), &got) != nil || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("metaSchema %s\nget_order's meta %s", metaSchema, b)
	}
}
