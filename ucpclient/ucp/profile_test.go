package ucp

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

const profileTestKey = `{"kid":"k1","kty":"EC","crv":"P-256","x":"WbbXwVYGdJoP4Xm3qCkGvBRcRvKtEfXDbWvPzpPS8LA","y":"sP4jHHxYqC89HBo8TjrtVOAGHfJDflYxw7MFMxuFMPY"}`

// profileTestUCP is the body of a 2026-04-08 business profile's ucp member.
const profileTestUCP = `{
  "version": "2026-04-08",
  "supported_versions": {"2026-01-23": "https://shop.example/.well-known/ucp/2026-01-23"},
  "services": {"dev.ucp.shopping": [
    {"version": "2026-04-08", "spec": "https://ucp.dev/2026-04-08/specification/overview", "transport": "rest",
     "endpoint": "https://shop.example/ucp/v1", "schema": "https://ucp.dev/2026-04-08/services/shopping/rest.openapi.json"}
  ]},
  "capabilities": {
    "dev.ucp.shopping.checkout": [{"version": "2026-04-08", "spec": "https://ucp.dev/s/checkout", "schema": "https://ucp.dev/s/checkout.json"}],
    "dev.ucp.shopping.discount": [{"version": "2026-04-08", "extends": ["dev.ucp.shopping.checkout", "dev.ucp.shopping.cart"]}],
    "dev.ucp.shopping.fulfillment": [{"version": "2026-04-08", "extends": "dev.ucp.shopping.checkout", "config": {"supports_multi_group": true}}]
  },
  "payment_handlers": {"com.example.tokenizer": [
    {"id": "tok", "version": "2026-04-08", "available_instruments": [{"type": "card"}], "config": {"a": 1}}
  ]}
}`

func profileTestWant() ProfileUCP {
	return ProfileUCP{
		Version:           "2026-04-08",
		SupportedVersions: map[string]string{"2026-01-23": "https://shop.example/.well-known/ucp/2026-01-23"},
		Services: map[string][]Service{"dev.ucp.shopping": {{
			Entity: Entity{
				Version: "2026-04-08",
				Spec:    "https://ucp.dev/2026-04-08/specification/overview",
				Schema:  "https://ucp.dev/2026-04-08/services/shopping/rest.openapi.json",
			},
			Transport: "rest",
			Endpoint:  "https://shop.example/ucp/v1",
		}}},
		Capabilities: map[string][]Capability{
			"dev.ucp.shopping.checkout":    {{Entity: Entity{Version: "2026-04-08", Spec: "https://ucp.dev/s/checkout", Schema: "https://ucp.dev/s/checkout.json"}}},
			"dev.ucp.shopping.discount":    {{Entity: Entity{Version: "2026-04-08"}, Extends: Extends{"dev.ucp.shopping.checkout", "dev.ucp.shopping.cart"}}},
			"dev.ucp.shopping.fulfillment": {{Entity: Entity{Version: "2026-04-08", Config: json.RawMessage(`{"supports_multi_group": true}`)}, Extends: Extends{"dev.ucp.shopping.checkout"}}},
		},
		PaymentHandlers: map[string][]PaymentHandler{"com.example.tokenizer": {{
			Entity:               Entity{ID: "tok", Version: "2026-04-08", Config: json.RawMessage(`{"a": 1}`)},
			AvailableInstruments: []json.RawMessage{json.RawMessage(`{"type": "card"}`)},
		}}},
	}
}

// profileTestFlat is profileTestUCP with its members moved to the top level
// and the key array added as extra.
func profileTestFlat(extra string) string {
	return strings.TrimSuffix(strings.TrimSpace(profileTestUCP), "}") + "," + extra + "}"
}

func TestParseProfileShapes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		doc  string
	}{
		{"wrapper with signing_keys", `{"ucp":` + profileTestUCP + `,"signing_keys":[` + profileTestKey + `]}`},
		{"wrapper with draft keys", `{"ucp":` + profileTestUCP + `,"keys":[` + profileTestKey + `]}`},
		{"keys inside ucp", `{"ucp":` + profileTestFlat(`"signing_keys":[`+profileTestKey+`]`) + `}`},
		{"draft keys inside ucp", `{"ucp":` + profileTestFlat(`"keys":[`+profileTestKey+`]`) + `}`},
		{"flat with signing_keys", profileTestFlat(`"signing_keys":[` + profileTestKey + `]`)},
		{"flat with keys", profileTestFlat(`"keys":[` + profileTestKey + `]`)},
		{"same key under both names", `{"ucp":` + profileTestUCP + `,"keys":[` + profileTestKey + `],"signing_keys":[` + profileTestKey + `]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ParseProfile([]byte(tc.doc))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(profileTestNorm(t, p.UCP), profileTestNorm(t, profileTestWant())) {
				t.Errorf("ucp =\n%+v\nwant\n%+v", p.UCP, profileTestWant())
			}
			if len(p.SigningKeys) != 1 || !profileTestJSONEqual(p.SigningKeys[0], []byte(profileTestKey)) {
				t.Errorf("signing keys = %s, want [%s]", p.SigningKeys, profileTestKey)
			}
			if string(p.Raw) != tc.doc {
				t.Error("Raw is not the input")
			}
		})
	}
}

// profileTestNorm compares ucp members by their JSON so RawMessage spacing
// does not matter.
func profileTestNorm(t *testing.T, u ProfileUCP) any {
	t.Helper()
	b, err := json.Marshal(u)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func profileTestJSONEqual(a, b []byte) bool {
	var x, y any
	return json.Unmarshal(a, &x) == nil && json.Unmarshal(b, &y) == nil && reflect.DeepEqual(x, y)
}

func TestParseProfileMergesKeySets(t *testing.T) {
	t.Parallel()
	k2 := strings.Replace(profileTestKey, `"k1"`, `"k2"`, 1)
	k3 := strings.Replace(profileTestKey, `"k1"`, `"k3"`, 1)
	doc := `{"ucp":` + profileTestFlat(`"keys":[`+k3+`]`) + `,"signing_keys":[` + profileTestKey + `],"keys":[` + k2 + `, ` + profileTestKey + `]}`
	p, err := ParseProfile([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	var kids []string
	for _, k := range p.SigningKeys {
		var v struct{ Kid string }
		json.Unmarshal(k, &v)
		kids = append(kids, v.Kid)
	}
	if want := []string{"k1", "k2", "k3"}; !reflect.DeepEqual(kids, want) {
		t.Errorf("kids = %v, want %v", kids, want)
	}
}

func TestParseProfile20260111(t *testing.T) {
	t.Parallel()
	doc := `{
	  "ucp": {
	    "version": "2026-01-11",
	    "services": {"dev.ucp.shopping": {
	      "version": "2026-01-11", "spec": "https://ucp.dev/specs/shopping",
	      "rest": {"schema": "https://ucp.dev/services/shopping/openapi.json", "endpoint": "https://shop.example/ucp"},
	      "mcp": {"schema": "https://ucp.dev/services/shopping/openrpc.json", "endpoint": "https://shop.example/mcp"}
	    }},
	    "capabilities": [
	      {"name": "dev.ucp.shopping.checkout", "version": "2026-01-11", "spec": "https://ucp.dev/specs/checkout", "schema": "https://ucp.dev/schemas/checkout.json"},
	      {"name": "dev.ucp.shopping.fulfillment", "version": "2026-01-11", "extends": "dev.ucp.shopping.checkout"}
	    ]
	  },
	  "payment": {"handlers": [{"id": "gpay", "name": "com.google.pay", "version": "2026-01-11", "spec": "https://pay.google.com/spec",
	    "config_schema": "https://pay.google.com/config.json", "instrument_schemas": [], "config": {"merchant": "m"}}]},
	  "signing_keys": [` + profileTestKey + `]
	}`
	p, err := ParseProfile([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	want := ProfileUCP{
		Version: "2026-01-11",
		Services: map[string][]Service{"dev.ucp.shopping": {
			{Entity: Entity{Version: "2026-01-11", Spec: "https://ucp.dev/specs/shopping", Schema: "https://ucp.dev/services/shopping/openapi.json"}, Transport: "rest", Endpoint: "https://shop.example/ucp"},
			{Entity: Entity{Version: "2026-01-11", Spec: "https://ucp.dev/specs/shopping", Schema: "https://ucp.dev/services/shopping/openrpc.json"}, Transport: "mcp", Endpoint: "https://shop.example/mcp"},
		}},
		Capabilities: map[string][]Capability{
			"dev.ucp.shopping.checkout":    {{Entity: Entity{Version: "2026-01-11", Spec: "https://ucp.dev/specs/checkout", Schema: "https://ucp.dev/schemas/checkout.json"}}},
			"dev.ucp.shopping.fulfillment": {{Entity: Entity{Version: "2026-01-11"}, Extends: Extends{"dev.ucp.shopping.checkout"}}},
		},
		PaymentHandlers: map[string][]PaymentHandler{"com.google.pay": {{Entity: Entity{
			ID: "gpay", Version: "2026-01-11", Spec: "https://pay.google.com/spec", Schema: "https://pay.google.com/config.json",
			Config: json.RawMessage(`{"merchant":"m"}`),
		}}}},
	}
	if !reflect.DeepEqual(profileTestNorm(t, p.UCP), profileTestNorm(t, want)) {
		t.Errorf("ucp =\n%+v\nwant\n%+v", p.UCP, want)
	}
}

func TestExtendsJSON(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want Extends
		out  string // marshalled Capability; "" means same as in
	}{
		{`{"version":"2026-04-08","extends":"a.b"}`, Extends{"a.b"}, ""},
		{`{"version":"2026-04-08","extends":["a.b","c.d"]}`, Extends{"a.b", "c.d"}, ""},
		{`{"version":"2026-04-08","extends":["a.b"]}`, Extends{"a.b"}, `{"version":"2026-04-08","extends":"a.b"}`},
		{`{"version":"2026-04-08"}`, nil, ""},
		{`{"version":"2026-04-08","extends":null}`, nil, `{"version":"2026-04-08"}`},
		{`{"version":"2026-04-08","extends":[]}`, nil, `{"version":"2026-04-08"}`},
		{`{"version":"2026-04-08","extends":""}`, nil, `{"version":"2026-04-08"}`},
	} {
		var c Capability
		if err := json.Unmarshal([]byte(tc.in), &c); err != nil {
			t.Errorf("%s: %v", tc.in, err)
			continue
		}
		if !reflect.DeepEqual(c.Extends, tc.want) {
			t.Errorf("%s: extends = %#v, want %#v", tc.in, c.Extends, tc.want)
		}
		b, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		want := tc.out
		if want == "" {
			want = tc.in
		}
		if string(b) != want {
			t.Errorf("%s: marshalled %s, want %s", tc.in, b, want)
		}
	}
	for _, bad := range []string{`{"extends":5}`, `{"extends":{}}`, `{"extends":[1]}`, `{"extends":true}`} {
		var c Capability
		if err := json.Unmarshal([]byte(bad), &c); err == nil {
			t.Errorf("%s: accepted", bad)
		}
	}
}

func TestProfileMarshalStrictShape(t *testing.T) {
	t.Parallel()
	// Flat, draft keys, no payment handlers: the least strict input.
	doc := `{"version":"2026-04-08","capabilities":{"dev.ucp.shopping.checkout":[{"version":"2026-04-08","config":null}]},"keys":[` + profileTestKey + `]}`
	p, err := ParseProfile([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"ucp":{"version":"2026-04-08","capabilities":{"dev.ucp.shopping.checkout":[{"version":"2026-04-08"}]},"payment_handlers":{}},"signing_keys":[` + profileTestKey + `]}`
	if string(b) != want {
		t.Errorf("marshalled\n%s\nwant\n%s", b, want)
	}

	// A Profile built in code, with nil maps, still has payment_handlers.
	b, err = json.Marshal(Profile{UCP: ProfileUCP{Version: "2026-04-08"}})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"ucp":{"version":"2026-04-08","payment_handlers":{}}}`; string(b) != want {
		t.Errorf("marshalled %s, want %s", b, want)
	}

	// Round trip: the marshalled form parses back to the same profile.
	full := `{"ucp":` + profileTestUCP + `,"signing_keys":[` + profileTestKey + `]}`
	p, err = ParseProfile([]byte(full))
	if err != nil {
		t.Fatal(err)
	}
	b, err = json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	q, err := ParseProfile(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(profileTestNorm(t, q.UCP), profileTestNorm(t, p.UCP)) || len(q.SigningKeys) != 1 {
		t.Errorf("round trip changed the profile:\n%s", b)
	}
	if !profileTestJSONEqual(b, []byte(full)) {
		t.Errorf("a strict 2026-04-08 profile did not survive unchanged:\n%s", b)
	}
}

func TestProfileUnmarshalJSONIsTolerant(t *testing.T) {
	t.Parallel()
	var wrapper struct {
		Profile *Profile `json:"profile"`
		Missing *Profile `json:"missing"`
		Value   Profile  `json:"value"` // json hands UnmarshalJSON the null
	}
	doc := `{"profile":` + profileTestFlat(`"keys":[`+profileTestKey+`]`) + `,"missing":null,"value":null}`
	if err := json.Unmarshal([]byte(doc), &wrapper); err != nil {
		t.Fatal(err)
	}
	if wrapper.Profile == nil || wrapper.Profile.UCP.Version != "2026-04-08" || len(wrapper.Profile.SigningKeys) != 1 {
		t.Fatalf("profile = %+v", wrapper.Profile)
	}
	if wrapper.Missing != nil {
		t.Errorf("null profile = %+v", wrapper.Missing)
	}
	// Unmarshal reuses its buffer; Raw must not alias it.
	buf := []byte(profileTestFlat(`"keys":[]`))
	var p Profile
	if err := json.Unmarshal(buf, &p); err != nil {
		t.Fatal(err)
	}
	buf[0] = ' '
	if p.Raw[0] != '{' {
		t.Error("Raw aliases the caller's buffer")
	}
}

func TestParseProfileRefuses(t *testing.T) {
	t.Parallel()
	ok := `{"ucp":{"version":"2026-04-08"}}`
	if _, err := ParseProfile([]byte(ok)); err != nil {
		t.Fatalf("control document refused: %v", err)
	}
	for _, tc := range []struct {
		name, doc, want string
	}{
		{"not JSON", `{"ucp":`, ""},
		{"array", `[{"ucp":{"version":"2026-04-08"}}]`, "not a JSON object"},
		{"string", `"2026-04-08"`, "not a JSON object"},
		{"null", `null`, "not a JSON object"},
		{"trailing data", ok + ` {}`, "after"},
		{"duplicate top-level member", `{"ucp":{"version":"2026-04-08"},"ucp":{"version":"2026-01-11"}}`, "duplicate"},
		{"duplicate nested member", `{"ucp":{"version":"2026-04-08","version":"2026-01-11"}}`, "duplicate"},
		{"duplicate deep in config", `{"ucp":{"version":"2026-04-08","capabilities":{"a.b":[{"version":"2026-04-08","config":{"x":[{"k":1,"k":2}]}}]}}}`, "duplicate"},
		{"nested too deeply", `{"ucp":{"version":"2026-04-08"},"x":` + strings.Repeat("[", 200) + strings.Repeat("]", 200) + `}`, "nested"},
		{"ucp not an object", `{"ucp":"2026-04-08"}`, "not a JSON object"},
		{"no version", `{"ucp":{"services":{}}}`, "required"},
		{"version not a string", `{"ucp":{"version":20260408}}`, "not a string"},
		{"draft version", `{"ucp":{"version":"draft"}}`, "YYYY-MM-DD"},
		{"version with suffix", `{"ucp":{"version":"2026-04-08-rc1"}}`, "YYYY-MM-DD"},
		{"supported_versions key not a date", `{"ucp":{"version":"2026-04-08","supported_versions":{"draft":"https://x.example/"}}}`, "supported_versions"},
		{"capability version not a date", `{"ucp":{"version":"2026-04-08","capabilities":{"a.b":[{"version":"latest"}]}}}`, "a.b"},
		{"capability without version", `{"ucp":{"version":"2026-04-08","capabilities":{"a.b":[{}]}}}`, "a.b"},
		{"capability registry value not an array", `{"ucp":{"version":"2026-04-08","capabilities":{"a.b":{"version":"2026-04-08"}}}}`, "not an array"},
		{"01-11 capability without name", `{"ucp":{"version":"2026-01-11","capabilities":[{"version":"2026-01-11"}]}}`, "no name"},
		{"config not an object", `{"ucp":{"version":"2026-04-08","capabilities":{"a.b":[{"version":"2026-04-08","config":[1]}]}}}`, "config"},
		{"services not an object", `{"ucp":{"version":"2026-04-08","services":[]}}`, "services"},
		{"payment_handlers not an object", `{"ucp":{"version":"2026-04-08","payment_handlers":[]}}`, "payment_handlers"},
		{"signing_keys not an array", `{"ucp":{"version":"2026-04-08"},"signing_keys":{"kid":"k1"}}`, "signing_keys"},
		{"keys entry not an object", `{"ucp":{"version":"2026-04-08"},"keys":["k1"]}`, "keys[0]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ParseProfile([]byte(tc.doc))
			if err == nil {
				t.Fatalf("accepted: %+v", p)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}

func TestParseProfileDoesNotKeepNullRegistries(t *testing.T) {
	t.Parallel()
	p, err := ParseProfile([]byte(`{"ucp":{"version":"2026-04-08","services":null,"capabilities":{"a.b":null},"payment_handlers":null}}`))
	if err != nil {
		t.Fatal(err)
	}
	if p.UCP.PaymentHandlers == nil {
		t.Error("PaymentHandlers is nil")
	}
	if _, ok := p.UCP.Capabilities["a.b"]; ok {
		t.Error("null capability list kept")
	}
	b, _ := json.Marshal(p)
	if bytes.Contains(b, []byte("null")) {
		t.Errorf("marshalled form has a null: %s", b)
	}
}
