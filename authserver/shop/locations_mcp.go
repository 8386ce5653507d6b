package shop

import (
	"encoding/json"
	"errors"
)

// The location tools over MCP. The UCP draft's binding puts the request
// in a `location` argument beside meta; the Artos SDK (searchLocations,
// lookupLocations) sends its members flat beside meta. Both are read.

// locationArguments is a location tool's request body: the `location`
// argument, or else the arguments other than meta. Both at once is
// refused: one of them would be silently dropped.
func locationArguments(raw []byte, wrapped json.RawMessage) (json.RawMessage, error) {
	var args map[string]json.RawMessage
	if err := json.Unmarshal(raw, &args); err != nil {
		return nil, err
	}
	delete(args, "meta")
	if len(wrapped) > 0 && string(wrapped) != "null" {
		delete(args, "location")
		if len(args) > 0 {
			return nil, errors.New("send the request in the location argument or beside meta, not both")
		}
		return wrapped, nil
	}
	delete(args, "location")
	if len(args) == 0 {
		return nil, nil
	}
	return json.Marshal(args)
}

// locationToolDocs describe the location tools to an agent.
var locationToolDocs = map[Op]string{
	OpSearchLocations: "Find this store's physical shops (for in-store pickup, opening hours, what a shop carries). " +
		"location: {query? (words that must all occur in the name or address), " +
		"distance? {center: {latitude, longitude}, max (metres; WGS 84 geodesic, inclusive)}, " +
		"filters? {hours? {open_at: RFC 3339 instant}, amenities? [reverse-domain ids, all required], inventory? [{id: variant or product id, availability_status?: in_stock}]}, " +
		"pagination? {limit, cursor}}. An empty request lists the shops. Returns {locations: [{id, name, address, geo, amenities, timezone, hours, exception_hours}], pagination}; " +
		"pick up at one by putting its id in the checkout's pickup method (fulfillment.methods: [{type: \"pickup\", selected_destination_id}]).",
	OpLookupLocations: "Get this store's shops by id. location: {ids: [...], distance?, filters?} (as search_locations). " +
		"Returns {locations: [... each with inputs: [{id}] naming the requested ids it answers]}; unknown ids get an info message not_found.",
}

// Schema fragments of the location request (the draft's
// location_search.json and location_lookup.json).
const (
	locGeoSchema = `{"type":"object","description":"WGS 84 coordinates in decimal degrees","properties":{` +
		`"latitude":{"type":"number","minimum":-90,"maximum":90},"longitude":{"type":"number","minimum":-180,"maximum":180}},` +
		`"required":["latitude","longitude"]}`
	locDistanceSchema = `{"type":"object","description":"locations within max metres of center (the WGS 84 geodesic distance, unrounded; equality matches)",` +
		`"properties":{"center":` + locGeoSchema + `,"max":{"type":"number","minimum":0,"description":"radius in metres"}},"required":["center","max"]}`
	locFiltersSchema = `{"type":"object","additionalProperties":false,"description":"every filter given must hold (AND)","properties":{` +
		`"hours":{"type":"object","properties":{"open_at":{"type":"string","format":"date-time","description":"RFC 3339 instant with Z or an offset; matches shops open then, in their own time zone"}},"required":["open_at"]},` +
		`"amenities":{"type":"array","maxItems":20,"items":{"type":"string"},"description":"e.g. dev.ucp.amenity.shopping.in_store_pickup, dev.ucp.amenity.parking, dev.ucp.amenity.wi_fi"},` +
		`"inventory":{"type":"array","maxItems":20,"items":{"type":"object","properties":{"id":{"type":"string","description":"a variant or product id"},` +
		`"availability_status":{"type":"string","description":"in_stock (the default)"}},"required":["id"]}},` +
		`"items":{"type":"array","maxItems":20,"items":{"type":"string"},"description":"the Artos form of inventory: ids that must all be available"}}}`
	locCommon = `"distance":` + locDistanceSchema + `,"filters":` + locFiltersSchema +
		`,"context":{"type":"object","description":"buyer hints; never used in place of distance"},"signals":{"type":"object"}`
	locSearchBody = `{"type":"object","properties":{"query":{"type":"string","maxLength":500},` + locCommon +
		`,"pagination":{"type":"object","properties":{"limit":{"type":"integer","minimum":1,"description":"page size (at most 50 are returned)"},"cursor":{"type":"string"}}}}}`
	locLookupBody = `{"type":"object","properties":{"ids":{"type":"array","minItems":1,"items":{"type":"string"},"description":"location ids (at most 20 are processed per call)"},` +
		locCommon + `},"required":["ids"]}`
)

// locationSchemas are a location tool's input and output schemas. The
// input is meta plus the request under location (the UCP draft's
// binding); the Artos SDK's flat form is accepted too but not described:
// one shape to teach.
func locationSchemas(op Op) (in, out json.RawMessage, ok bool) {
	switch op {
	case OpSearchLocations:
		return json.RawMessage(`{"type":"object","properties":{"meta":` + metaSchema + `,"location":` + locSearchBody + `},"required":["meta"]}`),
			json.RawMessage(locResultSchema(locLocationSchema, `,"pagination":{"type":"object","properties":{"has_next_page":{"type":"boolean"},`+
				`"cursor":{"type":"string","description":"pass as pagination.cursor for the next page"},"total_count":{"type":"integer"}},"required":["has_next_page"]}`)), true
	case OpLookupLocations:
		return json.RawMessage(`{"type":"object","properties":{"meta":` + metaSchema + `,"location":` + locLookupBody + `},"required":["meta"]}`),
			json.RawMessage(locResultSchema(`{"allOf":[`+locLocationSchema+`,{"type":"object","properties":{"inputs":{"type":"array","items":{"type":"object",`+
				`"properties":{"id":{"type":"string"}},"required":["id"]},"description":"the requested ids this location answers"}},"required":["inputs"]}]}`, "")), true
	}
	return nil, nil, false
}

// locLocationSchema is a location (the draft's location.json).
const locLocationSchema = `{"type":"object","properties":{"id":{"type":"string"},"name":{"type":"string"},"address":{"type":"object"},` +
	`"geo":` + locGeoSchema + `,"amenities":{"type":"array","items":{"type":"string"}},` +
	`"hours":{"type":"array","items":{"type":"object","properties":{"day":{"type":"string"},"opens":{"type":"string"},"closes":{"type":"string"}}},"description":"weekly hours, local time in timezone"},` +
	`"exception_hours":{"type":"array","items":{"type":"object"},"description":"dated exceptions; without opens and closes, closed"},` +
	`"timezone":{"type":"string","description":"IANA time zone of the hours"}},"required":["id","name"]}`

// locResultSchema is a location response: ucp, the locations, messages,
// and extra members.
func locResultSchema(location, extra string) string {
	return `{"type":"object","description":"the UCP response payload (the REST body)","properties":{` +
		`"ucp":{"type":"object","properties":{"version":{"type":"string"},"status":{"type":"string","enum":["success","error"]}},"required":["version"]},` +
		`"locations":{"type":"array","items":` + location + `},` +
		`"messages":{"type":"array","items":{"type":"object","properties":{"type":{"type":"string"},"code":{"type":"string"},"content":{"type":"string"}}}}` +
		extra + `},"required":["ucp","locations"]}`
}

// locationToolSchema compiles a location tool's input schema into the
// validator every tool call goes through: the published schema is the
// one enforced, as for the UCP tools.
func locationToolSchema(op Op) *toolSchema {
	in, out, ok := locationSchemas(op)
	if !ok {
		return nil
	}
	ts := &toolSchema{input: in, output: out}
	if err := json.Unmarshal(in, &ts.checked); err != nil {
		panic("shop: location tool schema: " + err.Error())
	}
	v, err := compileSchema(string(op)+".input", in)
	if err != nil {
		panic("shop: location tool schema: " + err.Error())
	}
	ts.validator = v
	return ts
}
