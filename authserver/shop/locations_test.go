package shop_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ucpbridge/ucpbridge/authserver/shop"
	"github.com/ucpbridge/ucpbridge/ucpclient/ucp"
)

// locationsBody is a location search or lookup response.
type locationsBody struct {
	UCP       ucp.Envelope `json:"ucp"`
	Locations []struct {
		shop.Location
		Inputs []struct {
			ID string `json:"id"`
		} `json:"inputs"`
	} `json:"locations"`
	Pagination *ucp.Pagination `json:"pagination"`
	Messages   []ucp.Message   `json:"messages"`
}

func (b *locationsBody) ids() []string {
	out := []string{}
	for _, l := range b.Locations {
		out = append(out, l.ID)
	}
	return out
}

// beforeNewYear is a clock for the location tests: the seeded New Year
// exceptions are still ahead, so they are shown.
func beforeNewYear(c *shop.Config) {
	c.Now = func() time.Time { return time.Date(2026, 11, 20, 3, 0, 0, 0, time.UTC) }
}

// locSearch posts a location search to kyoto-tea anonymously, without
// UCP-Agent, as any map or store finder may, and decodes the 200.
func (e *env) locSearch(t *testing.T, path string, body any) *locationsBody {
	t.Helper()
	res, b := e.req("POST", path, body, "X-Test-Client", "", "UCP-Agent", "", "Idempotency-Key", "")
	wantStatus(t, res, b, http.StatusOK)
	return decode[locationsBody](t, b)
}

const (
	ktSearch = "/s/kyoto-tea/locations/search"
	ktLookup = "/s/kyoto-tea/locations/lookup"
)

var kyotoStation = map[string]any{"latitude": 34.9858, "longitude": 135.7588}

// TestLocationSearchREST: kyoto-tea's two shops, found by words, by
// distance from a point (the WGS 84 geodesic, nearest first, the radius
// inclusive and unrounded), by opening hours in the shop's own zone, by
// amenity and by what they carry, every criterion ANDed; anonymous
// callers welcome.
func TestLocationSearchREST(t *testing.T) {
	t.Parallel()
	e := newEnv(t, &envOptions{cfg: beforeNewYear})

	// An empty request browses the shops, with everything a store
	// finder shows.
	all := e.locSearch(t, ktSearch, nil)
	if !slices.Equal(all.ids(), []string{"kt-gion", "kt-arashiyama"}) || all.UCP.Version != ucp.Version || all.UCP.Status != "success" ||
		all.Pagination == nil || all.Pagination.HasNextPage || all.Pagination.TotalCount == nil || *all.Pagination.TotalCount != 2 {
		t.Fatalf("browse: %+v", all)
	}
	if all.UCP.Capabilities != nil {
		t.Fatalf("the location capability is a UCP draft; nothing may be claimed: %+v", all.UCP.Capabilities)
	}
	g := all.Locations[0].Location
	if g.Name != "Kyoto Tea House Gion" || g.Address == nil || g.Address.PostalCode != "605-0074" || g.Address.AddressCountry != "JP" ||
		g.Geo == nil || g.Geo.Latitude != 35.0037 || g.Timezone != "Asia/Tokyo" || len(g.Hours) != 6 ||
		len(g.ExceptionHours) != 2 || !slices.Contains(g.Amenities, "dev.ucp.amenity.shopping.in_store_pickup") {
		t.Fatalf("Gion: %+v", g)
	}
	_, raw := e.req("POST", ktSearch, nil, "X-Test-Client", "")
	if bytes.Contains(raw, []byte(`"items"`)) || bytes.Contains(raw, []byte("chawan-raku")) {
		t.Fatalf("a shop's inventory list is private: %s", raw)
	}
	if e := e.locSearch(t, "/s/flower-shop/locations/search", map[string]any{}); len(e.Locations) != 0 {
		t.Fatalf("flower-shop has no shops: %+v", e)
	}

	type row struct {
		name string
		body map[string]any
		want []string
		msgs []string
	}
	at := func(instant string) map[string]any {
		return map[string]any{"filters": map[string]any{"hours": map[string]any{"open_at": instant}}}
	}
	near := func(max float64) map[string]any {
		return map[string]any{"distance": map[string]any{"center": kyotoStation, "max": max}}
	}
	for _, c := range []row{
		{"query", map[string]any{"query": "Arashiyama"}, []string{"kt-arashiyama"}, nil},
		{"query words all", map[string]any{"query": "kyoto gion"}, []string{"kt-gion"}, nil},
		{"query postal code", map[string]any{"query": "616-8385"}, []string{"kt-arashiyama"}, nil},
		{"query matches nothing", map[string]any{"query": "osaka"}, []string{}, nil},
		// Kyoto Station: Gion is 2476.0593 m away, Arashiyama 8451.4708 m.
		{"radius", near(5000), []string{"kt-gion"}, nil},
		{"radius just over", near(2476.06), []string{"kt-gion"}, nil},
		{"radius just under", near(2476.05), []string{}, nil},
		{"nearest first", near(10000), []string{"kt-gion", "kt-arashiyama"}, nil},
		{"nearest first from the west", map[string]any{"distance": map[string]any{"center": map[string]any{"latitude": 35.0142, "longitude": 135.6780}, "max": 20000}},
			[]string{"kt-arashiyama", "kt-gion"}, nil},
		{"zero radius", near(0), []string{}, nil},
		// Asia/Tokyo is UTC+9. Wednesday noon: Gion closes on Wednesdays.
		{"open Wednesday noon", at("2026-11-25T03:00:00Z"), []string{"kt-arashiyama"}, nil},
		{"open Thursday 17:59:59", at("2026-11-26T17:59:59+09:00"), []string{"kt-gion"}, nil},
		{"closed at closing time", at("2026-11-26T09:00:00Z"), []string{}, nil},
		{"Saturday 18:30 (Gion until 19:00)", at("2026-11-28T09:30:00Z"), []string{"kt-gion"}, nil},
		{"New Year's Eve 14:00 (Gion's short day)", at("2026-12-31T05:00:00Z"), []string{"kt-gion"}, nil},
		{"New Year's Eve 15:30", at("2026-12-31T06:30:00Z"), []string{}, nil},
		{"New Year holidays", at("2027-01-02T03:00:00Z"), []string{}, nil},
		{"lowercase z", at("2026-11-25t03:00:00z"), []string{"kt-arashiyama"}, nil},
		{"amenity", map[string]any{"filters": map[string]any{"amenities": []string{"dev.ucp.amenity.parking"}}}, []string{"kt-arashiyama"}, nil},
		{"amenities AND", map[string]any{"filters": map[string]any{"amenities": []string{"dev.ucp.amenity.parking", "dev.ucp.amenity.wi_fi"}}}, []string{}, nil},
		{"stocks a variant", map[string]any{"filters": map[string]any{"inventory": []any{map[string]any{"id": "chawan-raku"}}}}, []string{"kt-gion"}, nil},
		{"stocks a product", map[string]any{"filters": map[string]any{"inventory": []any{map[string]any{"id": "chawan", "availability_status": "in_stock"}}}}, []string{"kt-gion"}, nil},
		{"stocks matcha", map[string]any{"filters": map[string]any{"inventory": []any{map[string]any{"id": "matcha-uji-40"}}}}, []string{"kt-gion", "kt-arashiyama"}, nil},
		{"Artos items", map[string]any{"filters": map[string]any{"items": []string{"sencha-100", "chawan-raku"}}}, []string{"kt-gion"}, nil},
		{"unknown item", map[string]any{"filters": map[string]any{"inventory": []any{map[string]any{"id": "hojicha"}}}}, []string{}, []string{"item_not_found"}},
		{"another store's item", map[string]any{"filters": map[string]any{"items": []string{"bouquet_roses"}}}, []string{}, []string{"item_not_found"}},
		{"backorder: none here", map[string]any{"filters": map[string]any{"inventory": []any{map[string]any{"id": "sencha-100", "availability_status": "backorder"}}}}, []string{}, nil},
		{"contradictory", map[string]any{"filters": map[string]any{"inventory": []any{map[string]any{"id": "sencha-100"}, map[string]any{"id": "sencha-100", "availability_status": "preorder"}}}},
			[]string{}, []string{"contradictory_filters"}},
		{"everything ANDed", map[string]any{"query": "kyoto", "distance": map[string]any{"center": kyotoStation, "max": 10000},
			"filters": map[string]any{"hours": map[string]any{"open_at": "2026-11-25T03:00:00Z"}, "items": []string{"matcha-uji-40"}}}, []string{"kt-arashiyama"}, nil},
		{"query never widens", map[string]any{"query": "gion", "filters": map[string]any{"amenities": []string{"dev.ucp.amenity.parking"}}}, []string{}, nil},
		{"context is a hint only", map[string]any{"context": map[string]any{"address_country": "JP", "postal_code": "605-0074"}}, []string{"kt-gion", "kt-arashiyama"}, nil},
		{"a radius covering the Earth, from the antipode", map[string]any{"distance": map[string]any{"center": map[string]any{"latitude": -35.0037, "longitude": -44.2250}, "max": 20003932}},
			[]string{"kt-gion", "kt-arashiyama"}, nil},
	} {
		got := e.locSearch(t, ktSearch, c.body)
		if !slices.Equal(got.ids(), c.want) || !slices.Equal(messageCodes(got.Messages), c.msgs) {
			t.Errorf("%s: %v %v, want %v %v", c.name, got.ids(), messageCodes(got.Messages), c.want, c.msgs)
		}
	}

	// What the store cannot evaluate is refused, never ignored.
	for name, body := range map[string]any{
		"serves":                       map[string]any{"serves": map[string]any{"point": kyotoStation}},
		"distance no centre":           map[string]any{"distance": map[string]any{"max": 1000}},
		"distance no max":              map[string]any{"distance": map[string]any{"center": kyotoStation}},
		"negative radius":              map[string]any{"distance": map[string]any{"center": kyotoStation, "max": -1}},
		"latitude 91":                  map[string]any{"distance": map[string]any{"center": map[string]any{"latitude": 91, "longitude": 0}, "max": 1}},
		"antipode, radius in the band": map[string]any{"distance": map[string]any{"center": map[string]any{"latitude": -35.0037, "longitude": -44.2250}, "max": 19_950_000}},
		"unknown filter":               map[string]any{"filters": map[string]any{"price": 1}},
		"open_at local time":           at("2026-11-25T12:00:00"),
		"open_at a date":               at("2026-11-25"),
		"inventory no id":              map[string]any{"filters": map[string]any{"inventory": []any{map[string]any{"availability_status": "in_stock"}}}},
		"limit 0":                      map[string]any{"pagination": map[string]any{"limit": 0}},
		"foreign cursor":               map[string]any{"pagination": map[string]any{"cursor": "eyJvIjoxfQ"}},
		"not an object":                `[1]`,
		"malformed":                    `{"query":`,
	} {
		res, b := e.req("POST", ktSearch, body, "X-Test-Client", "")
		if res.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), `"code":"invalid_request"`) {
			t.Errorf("%s: %d %s", name, res.StatusCode, b)
		}
	}
}

// TestLocationSearchPages: pages of one, walked with the cursor.
func TestLocationSearchPages(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	var seen []string
	body := map[string]any{"pagination": map[string]any{"limit": 1}}
	for page := 0; ; page++ {
		got := e.locSearch(t, ktSearch, body)
		if len(got.Locations) != 1 || got.Pagination == nil || *got.Pagination.TotalCount != 2 {
			t.Fatalf("page %d: %+v", page, got)
		}
		seen = append(seen, got.ids()...)
		if !got.Pagination.HasNextPage {
			if got.Pagination.Cursor != "" {
				t.Fatalf("a last page with a cursor: %+v", got.Pagination)
			}
			break
		}
		if page > 2 || got.Pagination.Cursor == "" {
			t.Fatalf("page %d: %+v", page, got.Pagination)
		}
		body = map[string]any{"pagination": map[string]any{"limit": 1, "cursor": got.Pagination.Cursor}}
	}
	if !slices.Equal(seen, []string{"kt-gion", "kt-arashiyama"}) {
		t.Fatalf("walked %v", seen)
	}
}

// TestLocationLookupREST: ids resolve to locations, each once with the
// ids that named it; unknown ids get an info message; filters refine; a
// batch over the maximum processes its first 20 distinct ids.
func TestLocationLookupREST(t *testing.T) {
	t.Parallel()
	e := newEnv(t, &envOptions{cfg: beforeNewYear})
	got := e.locSearch(t, ktLookup, map[string]any{"ids": []string{"kt-arashiyama", "hq", "kt-gion", "kt-arashiyama"}})
	if !slices.Equal(got.ids(), []string{"kt-arashiyama", "kt-gion"}) || !slices.Equal(messageCodes(got.Messages), []string{"not_found"}) ||
		!strings.Contains(got.Messages[0].Content, "hq") || got.Messages[0].Type != "info" {
		t.Fatalf("lookup: %+v", got)
	}
	for _, l := range got.Locations {
		if len(l.Inputs) != 1 || l.Inputs[0].ID != l.ID || l.Timezone != "Asia/Tokyo" || len(l.Hours) == 0 || l.Address == nil {
			t.Fatalf("lookup location: %+v", l)
		}
	}
	// Refinement: closed at the instant, so left out; the call succeeds.
	got = e.locSearch(t, ktLookup, map[string]any{"ids": []string{"kt-gion", "kt-arashiyama"},
		"filters": map[string]any{"hours": map[string]any{"open_at": "2026-11-25T03:00:00Z"}}})
	if !slices.Equal(got.ids(), []string{"kt-arashiyama"}) {
		t.Fatalf("refined lookup: %+v", got)
	}
	got = e.locSearch(t, ktLookup, map[string]any{"ids": []string{"kt-gion", "kt-arashiyama"},
		"distance": map[string]any{"center": kyotoStation, "max": 3000}, "filters": map[string]any{"items": []string{"sencha-100"}}})
	if !slices.Equal(got.ids(), []string{"kt-gion"}) {
		t.Fatalf("lookup within 3 km: %+v", got)
	}
	// 25 distinct ids, kt-gion the 21st: not processed, not unresolved.
	var ids []string
	for i := range 20 {
		ids = append(ids, "nowhere-"+string(rune('a'+i)))
	}
	ids = append(ids, "nowhere-a", "kt-gion", "x1", "x2", "x3", "x4")
	got = e.locSearch(t, ktLookup, map[string]any{"ids": ids})
	codes := messageCodes(got.Messages)
	if len(got.Locations) != 0 || codes[0] != "batch_limit_applied" || !strings.Contains(got.Messages[0].Content, "first 20 of 25") ||
		!strings.Contains(got.Messages[0].Content, "5 identifiers were not processed") || len(codes) != 21 {
		t.Fatalf("batch: %+v", got)
	}
	for name, body := range map[string]any{
		"no ids":     map[string]any{},
		"empty ids":  map[string]any{"ids": []string{}},
		"no body":    nil,
		"query":      map[string]any{"ids": []string{"kt-gion"}, "query": "gion"},
		"serves":     map[string]any{"ids": []string{"kt-gion"}, "serves": map[string]any{"address": map[string]any{"address_country": "JP"}}},
		"ids string": map[string]any{"ids": "kt-gion"},
	} {
		res, b := e.req("POST", ktLookup, body, "X-Test-Client", "")
		if res.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), `"code":"invalid_request"`) {
			t.Errorf("%s: %d %s", name, res.StatusCode, b)
		}
	}
	// The store's own profile names no location capability: 2026-04-08
	// has none to name.
	_, prof := e.req("GET", "/s/kyoto-tea/.well-known/ucp", nil)
	if bytes.Contains(prof, []byte("location")) {
		t.Fatalf("the profile claims a location capability: %s", prof)
	}
}

// TestLocationToolsMCP: search_locations and lookup_locations on the
// store's MCP endpoint, with the request under `location` (the UCP
// draft's binding) or beside meta (the Artos SDK), anonymous callers
// included; the result is the REST body byte for byte.
func TestLocationToolsMCP(t *testing.T) {
	t.Parallel()
	e := newEnv(t, &envOptions{cfg: beforeNewYear})
	anon := []string{"X-Test-Client", ""}
	search := map[string]any{"distance": map[string]any{"center": kyotoStation, "max": 10000}, "filters": map[string]any{"items": []string{"chawan-raku"}}}
	_, rest := e.req("POST", ktSearch, search, anon...)
	meta := map[string]any{"ucp-agent": map[string]any{"profile": e.agent.URL()}}
	wrapped := e.mcpCall("kyoto-tea", "search_locations", map[string]any{"meta": meta, "location": search}, anon...)
	flat := map[string]any{"meta": meta}
	for k, v := range search {
		flat[k] = v
	}
	artos := e.mcpCall("kyoto-tea", "search_locations", flat, anon...)
	if !bytes.Equal(wrapped, rest) || !bytes.Equal(artos, rest) {
		t.Fatalf("search_locations differs from REST:\nREST %s\nMCP  %s\nflat %s", rest, wrapped, artos)
	}
	if got := decode[locationsBody](t, rest); !slices.Equal(got.ids(), []string{"kt-gion"}) {
		t.Fatalf("search: %+v", got)
	}
	if got := decode[locationsBody](t, e.mcpCall("kyoto-tea", "search_locations", map[string]any{"meta": meta}, anon...)); len(got.Locations) != 2 {
		t.Fatalf("search without a request: %+v", got)
	}

	lookup := map[string]any{"ids": []string{"kt-gion", "nope"}}
	_, rest = e.req("POST", ktLookup, lookup, anon...)
	wrapped = e.mcpCall("kyoto-tea", "lookup_locations", map[string]any{"meta": meta, "location": lookup}, anon...)
	artos = e.mcpCall("kyoto-tea", "lookup_locations", map[string]any{"meta": meta, "ids": lookup["ids"]}, anon...)
	if !bytes.Equal(wrapped, rest) || !bytes.Equal(artos, rest) {
		t.Fatalf("lookup_locations differs from REST:\nREST %s\nMCP  %s\nflat %s", rest, wrapped, artos)
	}
	if got := decode[locationsBody](t, rest); !slices.Equal(got.ids(), []string{"kt-gion"}) || len(got.Locations[0].Inputs) != 1 {
		t.Fatalf("lookup: %+v", got)
	}

	// Refusals are the binding's invalid-params error.
	for name, args := range map[string]map[string]any{
		"both shapes":  {"meta": meta, "location": lookup, "ids": []string{"kt-gion"}},
		"no ids":       {"meta": meta, "location": map[string]any{}},
		"bad distance": {"meta": meta, "location": map[string]any{"ids": []string{"kt-gion"}, "distance": map[string]any{"max": 5}}},
	} {
		res, out, b := e.mcpCallRaw("/s/kyoto-tea/mcp", "lookup_locations", args, anon...)
		wantRPCErrorFor(t, name, res, out, b, -32602, "invalid_request")
	}

	// Listed with a schema for the request and honest annotations.
	tools := e.listTools("/s/kyoto-tea/mcp")
	for _, name := range []string{"search_locations", "lookup_locations"} {
		i := slices.IndexFunc(tools, func(tl rpcTool) bool { return tl.Name == name })
		if i < 0 {
			t.Fatalf("%s not listed", name)
		}
		tl := tools[i]
		a := tl.Annotations
		if tl.InputSchema == nil || tl.InputSchema.Properties["location"] == nil || !slices.Contains(tl.InputSchema.Required, "meta") ||
			a == nil || a.ReadOnlyHint == nil || !*a.ReadOnlyHint || a.DestructiveHint == nil || *a.DestructiveHint || !strings.Contains(tl.Description, "location") {
			t.Fatalf("%s: %+v", name, tl)
		}
		var schema struct {
			Properties struct {
				Location struct {
					Properties map[string]json.RawMessage `json:"properties"`
				} `json:"location"`
			} `json:"properties"`
		}
		raw, _ := json.Marshal(tl.InputSchema)
		if json.Unmarshal(raw, &schema) != nil || schema.Properties.Location.Properties["distance"] == nil || schema.Properties.Location.Properties["filters"] == nil {
			t.Fatalf("%s: the location schema %s", name, raw)
		}
	}
	// The cross-store endpoint has no store, so no locations.
	for _, tl := range e.listTools("/mcp") {
		if strings.Contains(tl.Name, "location") {
			t.Fatalf("/mcp lists %s", tl.Name)
		}
	}
}

func wantRPCErrorFor(t *testing.T, name string, res *http.Response, out *rpcResponse, b []byte, rpcCode int, code string) {
	t.Helper()
	if out.Result != nil || out.Error == nil || out.Error.Code != rpcCode || out.Error.Data.Code != code {
		t.Errorf("%s: want JSON-RPC error %d %s, got HTTP %d %s", name, rpcCode, code, res.StatusCode, b)
	}
}
