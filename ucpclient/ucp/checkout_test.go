package ucp

import (
	"encoding/json"
	"strings"
	"testing"
)

// A request that names a fulfillment method without its lines (the
// business assigns them) must not send "line_item_ids": null: stores
// validating against the 2026-04-08 schema refuse null where an array
// belongs.
func TestFulfillmentMethodOmitsMissingLines(t *testing.T) {
	b, err := json.Marshal(Fulfillment{Methods: []FulfillmentMethod{{Type: "shipping", Destinations: []Destination{{PostalAddress: PostalAddress{AddressCountry: "US"}}}}}})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "null") {
		t.Fatalf("marshalled %s", b)
	}
	b, _ = json.Marshal(FulfillmentMethod{ID: "fm_1", Type: "shipping", LineItemIDs: []string{"li_1"}})
	if !strings.Contains(string(b), `"line_item_ids":["li_1"]`) {
		t.Fatalf("marshalled %s", b)
	}
}
