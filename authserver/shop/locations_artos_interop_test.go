package shop_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/ucpbridge/ucpbridge/authserver/shop"
	"github.com/ucpbridge/ucpbridge/ucpclient/ucp"
)

// TestArtosSDKLocations drives kyoto-tea's shops with the real Artos SDK
// (.ci/interop/locations.mjs): its searchLocations (flat arguments,
// distance and the items filter), lookupLocations, retailLocations and
// selectedDestinationId helpers, and a checkout picking up at a shop
// through its flat fulfillment selection. Then radius parity: the SDK's
// geodesicMetres (Vincenty, as the Artos API computes it) and the
// store's distance filter agree on each shop to a micrometre.
func TestArtosSDKLocations(t *testing.T) {
	t.Parallel()
	dir := needArtos(t)
	e := newEnv(t, &envOptions{cfg: func(c *shop.Config) { c.Guard = artosAuth; beforeNewYear(c) }})
	e.agent.set(func(a *agentServer) { a.version = artosVersion })
	gion := map[string]any{"latitude": 35.0037, "longitude": 135.7750}
	arashiyama := map[string]any{"latitude": 35.0158, "longitude": 135.6737}
	job := map[string]any{"baseUrl": e.srv.URL, "apiKey": artosAPIKey, "profileUrl": e.agent.URL(), "store": "kyoto-tea",
		"center": kyotoStation, "radius": 10000, "item": "chawan-raku", "pickupAt": "kt-gion",
		"ids": []string{"kt-arashiyama", "kt-gion", "kt-arashiyama", "kt-nara"}, "points": []any{gion, arashiyama}}
	in, _ := json.Marshal(job)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	c := exec.CommandContext(ctx, "node", filepath.Join(dir, "locations.mjs"))
	c.Dir, c.Stdin = dir, bytes.NewReader(in)
	var stderr bytes.Buffer
	c.Stderr = &stderr
	out, err := c.Output()
	if err != nil {
		t.Fatalf("node locations.mjs: %v\n%s", err, stderr.String())
	}
	var res struct {
		SDK   struct{ Name, Version string }
		Steps map[string]struct {
			OK          bool            `json:"ok"`
			Error       string          `json:"error"`
			IDs         []string        `json:"ids"`
			Status      string          `json:"status"`
			First       *shop.Location  `json:"first"`
			Pagination  *ucp.Pagination `json:"pagination"`
			Inputs      [][]string      `json:"inputs"`
			Messages    []string        `json:"messages"`
			Selected    string          `json:"selected"`
			Destination []string        `json:"destinations"`
			Totals      []ucp.Total     `json:"totals"`
		}
		Distances []float64
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("locations.mjs output: %v\n%s", err, out)
	}
	t.Logf("SDK %s@%s", res.SDK.Name, res.SDK.Version)
	for name, s := range res.Steps {
		if !s.OK {
			t.Fatalf("SDK step %s threw: %s", name, s.Error)
		}
	}
	if s := res.Steps["searchLocations"]; !slices.Equal(s.IDs, []string{"kt-gion"}) || s.Status != "success" ||
		s.First == nil || s.First.Timezone != "Asia/Tokyo" || len(s.First.Hours) == 0 || s.First.Geo == nil {
		t.Fatalf("searchLocations: %+v", s)
	}
	if s := res.Steps["browseLocations"]; len(s.IDs) != 1 || s.Pagination == nil || !s.Pagination.HasNextPage || s.Pagination.Cursor == "" {
		t.Fatalf("browse: %+v", s)
	}
	if s := res.Steps["lookupLocations"]; !slices.Equal(s.IDs, []string{"kt-arashiyama", "kt-gion"}) ||
		!slices.Equal(s.Inputs[0], []string{"kt-arashiyama"}) || !slices.Equal(s.Messages, []string{"not_found"}) {
		t.Fatalf("lookupLocations: %+v", s)
	}
	if s := res.Steps["pickupCheckout"]; s.Status != ucp.CheckoutReadyForComplete || s.Selected != "kt-gion" ||
		!slices.Equal(s.Destination, []string{"kt-gion"}) || !slices.ContainsFunc(s.Totals, func(x ucp.Total) bool {
		return x.Type == ucp.TotalFulfillment && x.DisplayText == "In-store pickup at Kyoto Tea House Gion"
	}) {
		t.Fatalf("pickup checkout: %+v", s)
	}

	// Radius parity with the SDK's geodesicMetres.
	if len(res.Distances) != 2 {
		t.Fatalf("distances: %v", res.Distances)
	}
	for i, want := range []string{"kt-gion", "kt-arashiyama"} {
		d := res.Distances[i]
		for _, c := range []struct {
			max float64
			in  bool
		}{{d + 1e-6, true}, {d - 1e-6, false}} {
			got := e.locSearch(t, ktSearch, map[string]any{"query": want, "distance": map[string]any{"center": kyotoStation, "max": c.max}})
			if (len(got.Locations) == 1) != c.in {
				t.Errorf("%s, %.7f m from the SDK, radius %.7f m: found %v", want, d, c.max, got.ids())
			}
		}
	}
}
