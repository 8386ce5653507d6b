package bridge

import (
	"encoding/json"

	"github.com/mark3labs/mcp-go/mcp"
)

// JSON Schema building blocks for the tool definitions. Schemas are
// written out rather than derived from Go structs so that each property
// carries the description, bounds and enums an LLM needs, and output
// schemas stay open (UCP objects grow by extension).

type obj = map[string]any

func object(props obj, required ...string) obj {
	o := obj{"type": "object", "properties": props, "additionalProperties": false}
	if len(required) > 0 {
		o["required"] = required
	}
	return o
}

// openObject is an output object that may carry more members.
func openObject(props obj, required ...string) obj {
	o := obj{"type": "object", "properties": props}
	if len(required) > 0 {
		o["required"] = required
	}
	return o
}

func str(desc string) obj {
	return obj{"type": "string", "minLength": 1, "maxLength": 512, "description": desc}
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // static schemas: a programming error
	}
	return b
}

var (
	storeSlugProp = obj{"type": "string", "minLength": 1, "maxLength": 100, "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]*$",
		"description": "The store's slug on the platform (search results name it under product.store.slug)."}
	businessURLProp = obj{"type": "string", "minLength": 8, "maxLength": 2048, "pattern": "^https?://",
		"description": "Instead of store_slug: the UCP profile URL (https://…/.well-known/ucp) of any UCP 2026-04-08 business, reached over its REST API."}
	itemsProp = obj{"type": "array", "minItems": 1, "maxItems": 100, "description": "The lines: product variant ids (variants[].id from the catalog) and quantities.",
		"items": object(obj{
			"id":       obj{"type": "string", "minLength": 1, "maxLength": 256, "description": "Variant id."},
			"quantity": obj{"type": "integer", "minimum": 1, "maximum": 10000},
		}, "id", "quantity")}
	amountProp = obj{"type": []string{"number", "string"},
		"description": "Amount in major units of the currency (12.50 dollars, 1500 yen): a number or a decimal string; never more decimals than the currency has."}
	selectedProp = obj{"type": "array", "maxItems": 20, "description": "Chosen option values (e.g. Size: M) to pick a variant.",
		"items": object(obj{"name": str("Option name, e.g. Size."), "label": str("Option value, e.g. M."), "id": str("Option value id, if known.")}, "name", "label")}
	messagesOut = obj{"type": "array", "items": obj{"type": "object"}}
	totalsOut   = obj{"type": "array", "description": "Amounts in minor units.", "items": obj{"type": "object"}}
)

// annotations sets all four hints explicitly (mcp-go's defaults are
// pessimistic: destructive, not idempotent).
func annotations(title string, readOnly, destructive, idempotent, openWorld bool) mcp.ToolOption {
	return mcp.WithToolAnnotation(mcp.ToolAnnotation{Title: title, ReadOnlyHint: &readOnly,
		DestructiveHint: &destructive, IdempotentHint: &idempotent, OpenWorldHint: &openWorld})
}

// newTool builds a tool from its parts.
func newTool(name, title, desc string, in, out obj, ann mcp.ToolOption) mcp.Tool {
	t := mcp.NewTool(name, mcp.WithToolTitle(title), mcp.WithDescription(desc),
		mcp.WithRawInputSchema(mustJSON(in)), mcp.WithRawOutputSchema(mustJSON(out)), ann)
	t.InputSchema = mcp.ToolInputSchema{} // NewTool's default; a tool carries one schema or the other
	return t
}
