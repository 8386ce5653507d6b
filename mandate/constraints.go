package mandate

import (
	"encoding/json"
	"fmt"
	"strconv"
)

// evaluateCheckoutConstraints applies an open checkout mandate's
// constraints to the checkout the agent closed it over. AP2 says an
// unknown constraint type MUST fail; it is reported as
// mandate_scope_mismatch with the AP2 reason unresolved_constraint.
func evaluateCheckoutConstraints(constraints any, checkout []byte, merchantID string) error {
	list, ok := constraints.([]any)
	if constraints != nil && !ok {
		return unresolved("constraints is not an array")
	}
	var co struct {
		Merchant *struct {
			ID string `json:"id"`
		} `json:"merchant"`
		LineItems []struct {
			Item struct {
				ID string `json:"id"`
			} `json:"item"`
			Quantity int64 `json:"quantity"`
		} `json:"line_items"`
	}
	if err := json.Unmarshal(checkout, &co); err != nil {
		return unresolved("checkout cannot be read: " + err.Error())
	}
	if co.Merchant != nil && co.Merchant.ID != "" {
		merchantID = co.Merchant.ID
	}
	for _, c := range list {
		m, ok := c.(map[string]any)
		if !ok {
			return unresolved("constraint is not an object")
		}
		switch m["type"] {
		case "checkout.allowed_merchants":
			if !merchantAllowed(m["allowed"], merchantID) {
				return unresolved("merchant is not among the allowed merchants")
			}
		case "checkout.line_items":
			cart := map[string]int64{}
			var order []string
			for _, li := range co.LineItems {
				if li.Quantity <= 0 {
					continue
				}
				if _, seen := cart[li.Item.ID]; !seen {
					order = append(order, li.Item.ID)
				}
				cart[li.Item.ID] += li.Quantity
			}
			if err := matchLineItems(m["items"], cart, order); err != nil {
				return err
			}
		default:
			return unresolved(fmt.Sprintf("unknown constraint type %v", m["type"]))
		}
	}
	return nil
}

// maxMatchedUnits bounds the cart size checkout.line_items is evaluated
// for.
const maxMatchedUnits = 10_000

func unresolved(reason string) error {
	return fail(CodeMandateScopeMismatch, "unresolved_constraint: "+reason, nil)
}

// merchantAllowed matches by a non-empty id only: names and websites are
// attacker-chosen display text. Undisclosed elements are already gone, so
// an empty list allows nobody.
func merchantAllowed(allowed any, id string) bool {
	list, _ := allowed.([]any)
	for _, a := range list {
		if m, ok := a.(map[string]any); ok && id != "" && m["id"] == id {
			return true
		}
	}
	return false
}

// matchLineItems checks that every unit in the cart can be assigned to a
// requirement that accepts its item, within each requirement's quantity
// (a requirement without acceptable_items accepts anything). It is a max
// flow from items to requirements; carts are small, so augmenting paths
// found by DFS are plenty.
func matchLineItems(items any, cart map[string]int64, order []string) error {
	reqs, ok := items.([]any)
	if !ok || len(reqs) == 0 {
		return unresolved("checkout.line_items has no items")
	}
	if len(order) == 0 {
		return unresolved("an empty cart does not satisfy checkout.line_items")
	}
	type req struct {
		capacity   int64
		wildcard   bool
		acceptable map[string]bool
	}
	rs := make([]req, len(reqs))
	for j, r := range reqs {
		m, ok := r.(map[string]any)
		if !ok {
			return unresolved("line item requirement is not an object")
		}
		q, ok := m["quantity"].(json.Number)
		n, err := strconv.ParseInt(string(q), 10, 64)
		if !ok || err != nil || n < 0 {
			return unresolved("line item requirement quantity is not a non-negative integer")
		}
		rs[j] = req{capacity: n, acceptable: map[string]bool{}}
		acc, _ := m["acceptable_items"].([]any)
		rs[j].wildcard = len(acc) == 0
		for _, a := range acc {
			if am, ok := a.(map[string]any); ok {
				if id, ok := am["id"].(string); ok {
					rs[j].acceptable[id] = true
				}
			}
		}
	}
	// flow[i][j]: units of item i assigned to requirement j.
	flow := make([][]int64, len(order))
	load := make([]int64, len(rs))
	for i := range flow {
		flow[i] = make([]int64, len(rs))
	}
	accepts := func(j int, sku string) bool { return rs[j].wildcard || rs[j].acceptable[sku] }
	// augment finds a path from item i to a requirement with spare
	// capacity, possibly moving units of other items between requirements.
	var augment func(i int, seen []bool) bool
	augment = func(i int, seen []bool) bool {
		for j := range rs {
			if seen[j] || !accepts(j, order[i]) {
				continue
			}
			seen[j] = true
			if load[j] < rs[j].capacity {
				flow[i][j]++
				load[j]++
				return true
			}
			for k := range order {
				if flow[k][j] > 0 && augment(k, seen) {
					flow[k][j]--
					flow[i][j]++
					return true
				}
			}
		}
		return false
	}
	// Matching is per unit: bound the work an agent-chosen quantity buys.
	var units int64
	for _, q := range cart {
		units += q
		if q > maxMatchedUnits || units > maxMatchedUnits {
			return unresolved("too many units to evaluate checkout.line_items")
		}
	}
	for i, sku := range order {
		for u := int64(0); u < cart[sku]; u++ {
			if !augment(i, make([]bool, len(rs))) {
				return unresolved(fmt.Sprintf("item %q cannot be assigned to any requirement", sku))
			}
		}
	}
	return nil
}
