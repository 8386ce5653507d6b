package shop_test

import (
	"encoding/json"
	"net/http"
	"testing"
)

// TestReview10LocationToolInputSchemaEnforced: 3033dd1 says every MCP
// call is validated against the tool's published inputSchema before it
// runs (-32602 naming the violation). search_locations publishes
// location.context as {"type":"object"}, yet a string passes: the
// location tools have no entry in schemas/tools.json, so toolHandler's
// ts is nil and no validation runs.
func TestReview10LocationToolInputSchemaEnforced(t *testing.T) {
	t.Parallel()
	e := newEnv(t, &envOptions{cfg: beforeNewYear})
	meta := map[string]any{"ucp-agent": map[string]any{"profile": e.agent.URL()}}
	for _, tc := range []struct {
		tool string
		loc  map[string]any
	}{
		{"search_locations", map[string]any{"context": "paris"}},
		{"search_locations", map[string]any{"signals": 5}},
		{"lookup_locations", map[string]any{"ids": []string{"kt-gion"}, "context": []int{1}}},
	} {
		res, out, b := e.mcpCallRaw("/s/kyoto-tea/mcp", tc.tool, map[string]any{"meta": meta, "location": tc.loc}, "X-Test-Client", "")
		if out.Error == nil || out.Error.Code != -32602 {
			t.Errorf("%s %v: HTTP %d, want -32602 (the published inputSchema refuses it): %.160s", tc.tool, tc.loc, res.StatusCode, b)
		}
	}
}

// TestReview10AntipodalSmallRadius: a search from the far side of the
// Earth with a 1 km radius is a valid request whose outcome is certain
// (nothing lies within 1 km of a point ~20 000 km away), yet the store
// refuses it as "uncomputable" because Vincenty's iteration does not
// converge there. The draft (search.md, Distance) lets a business use
// any algorithm whose match outcome agrees with the geodesic; rejection
// is for a radius it cannot honour, not for one it can trivially
// decide. Any lower bound (e.g. the spherical distance minus 0.5 %)
// settles it.
func TestReview10AntipodalSmallRadius(t *testing.T) {
	t.Parallel()
	e := newEnv(t, &envOptions{cfg: beforeNewYear})
	// The antipode of kt-gion (35.0037, 135.7750).
	body := map[string]any{"distance": map[string]any{"center": map[string]any{"latitude": -35.0037, "longitude": -44.2250}, "max": 1000}}
	res, b := e.req("POST", ktSearch, body, "X-Test-Client", "", "UCP-Agent", "", "Idempotency-Key", "")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("HTTP %d, want 200 with no locations: %s", res.StatusCode, b)
	}
	var got locationsBody
	if err := json.Unmarshal(b, &got); err != nil || len(got.Locations) != 0 {
		t.Fatalf("want no locations: %s", b)
	}
}
