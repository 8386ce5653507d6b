package shop

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// The MCP tools publish JSON Schemas for their arguments (inputSchema) and
// results (outputSchema), trimmed from the UCP 2026-04-08 schemas
// (mcp.openrpc.json and the shopping schemas it references) and kept in
// schemas/: defs.json holds the shared definitions, tools.json each
// tool's input and output. The loader below inlines every $ref, so each
// published schema is self-contained (clients that resolve no
// references read it whole), and compiles the input schemas: every call
// is validated against its tool's schema before it runs (toolHandler),
// as the catalog MCP binding asks ("validate tool inputs against UCP
// schemas"), and a violation is the binding's invalid-params error.
//
// What an input schema admits: the operation's request shape in the spec
// (the ucp_request annotations applied: response-only members left out,
// required members required), widened to the shapes the stores accept on
// purpose (the Artos SDK's shipping_address, partial updates, flat
// fulfillment selection, payment_intent, ap2.payment_mandate, sort; no
// object is closed, so members the store ignores, such as the SDK's
// tip_amount, pass too), and narrowed by the stores' bounds (input.go,
// pricing.go, catalog.go; TestToolSchemaBounds holds the two together).
// Members the spec requires but the store fills in itself (an
// instrument's id and type) are optional.

//go:embed schemas/defs.json schemas/tools.json
var schemaFiles embed.FS

// toolSchema is one tool's published schemas and its compiled input.
type toolSchema struct {
	input, output json.RawMessage
	validator     *jsonschema.Schema
	// checked is the schema the validator was compiled from, to name
	// what a violation is about.
	checked map[string]any
}

// toolSchemas holds every tool's schemas, by tool name. The files are
// part of the binary: a malformed one is a build defect, and every test
// of the package would fail on it.
var toolSchemas = mustLoadToolSchemas()

func mustLoadToolSchemas() map[Op]*toolSchema {
	out, err := loadToolSchemas(schemaFiles)
	if err != nil {
		panic("shop: embedded MCP tool schemas: " + err.Error())
	}
	return out
}

// schemaDialect is the JSON Schema dialect of every published schema
// (MCP's default, and UCP's).
const schemaDialect = "https://json-schema.org/draft/2020-12/schema"

func loadToolSchemas(fsys embed.FS) (map[Op]*toolSchema, error) {
	var defs map[string]any
	if err := readJSON(fsys, "schemas/defs.json", &defs); err != nil {
		return nil, err
	}
	var doc struct {
		Tools map[string]struct {
			Input  map[string]any `json:"input"`
			Output map[string]any `json:"output"`
		} `json:"tools"`
	}
	if err := readJSON(fsys, "schemas/tools.json", &doc); err != nil {
		return nil, err
	}
	out := map[Op]*toolSchema{}
	for _, name := range slices.Sorted(maps.Keys(doc.Tools)) {
		t := doc.Tools[name]
		if t.Input == nil || t.Output == nil {
			return nil, fmt.Errorf("tool %s: input and output are required", name)
		}
		ts := &toolSchema{}
		var err error
		for _, s := range []struct {
			schema map[string]any
			dst    *json.RawMessage
		}{{t.Input, &ts.input}, {t.Output, &ts.output}} {
			if *s.dst, err = publishSchema(s.schema, defs); err != nil {
				return nil, fmt.Errorf("tool %s: %w", name, err)
			}
		}
		// The idempotency key is Do's to check (checkIdemKey), on
		// either binding and with its own error codes; the validator
		// checks the rest of the arguments. (It works on a copy: a
		// published schema is never changed.)
		if err := json.Unmarshal(ts.input, &ts.checked); err != nil {
			return nil, fmt.Errorf("tool %s: %w", name, err)
		}
		dropIdempotencyKey(ts.checked)
		check, err := json.Marshal(ts.checked)
		if err != nil {
			return nil, fmt.Errorf("tool %s: %w", name, err)
		}
		if ts.validator, err = compileSchema(name+".input", check); err != nil {
			return nil, fmt.Errorf("tool %s: %w", name, err)
		}
		// The output schema is published, not enforced here (a result
		// is the store's own REST body); it must compile all the same.
		if _, err := compileSchema(name+".output", ts.output); err != nil {
			return nil, fmt.Errorf("tool %s: %w", name, err)
		}
		out[Op(name)] = ts
	}
	return out, nil
}

// publishSchema is schema with every reference inlined and its dialect
// named, as a tool publishes it.
func publishSchema(schema, defs map[string]any) (json.RawMessage, error) {
	v, err := inlineRefs(schema, defs, 0)
	if err != nil {
		return nil, err
	}
	m := v.(map[string]any) // inlineRefs keeps an object an object
	m["$schema"] = schemaDialect
	return json.Marshal(m)
}

// dropIdempotencyKey makes an input schema neither require nor describe
// meta["idempotency-key"].
func dropIdempotencyKey(input map[string]any) {
	props, _ := input["properties"].(map[string]any)
	meta, _ := props["meta"].(map[string]any)
	if metaProps, ok := meta["properties"].(map[string]any); ok {
		delete(metaProps, "idempotency-key")
	}
	if req, ok := meta["required"].([]any); ok {
		meta["required"] = slices.DeleteFunc(req, func(x any) bool { return x == "idempotency-key" })
	}
}

// mustInlineDef is the definition called name in schemas/defs.json,
// inlined.
func mustInlineDef(name string) json.RawMessage {
	var defs map[string]any
	if err := readJSON(schemaFiles, "schemas/defs.json", &defs); err != nil {
		panic("shop: embedded MCP tool schemas: " + err.Error())
	}
	v, err := inlineRefs(map[string]any{"$ref": "#/$defs/" + name}, defs, 0)
	if err != nil {
		panic("shop: embedded MCP tool schemas: " + err.Error())
	}
	b, err := json.Marshal(v)
	if err != nil {
		panic("shop: embedded MCP tool schemas: " + err.Error())
	}
	return b
}

func readJSON(fsys embed.FS, name string, v any) error {
	b, err := fsys.ReadFile(name)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber() // bounds stay the integers they are
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// maxRefDepth bounds reference chains (the definitions have no cycles;
// this turns a mistake into an error instead of a stack overflow).
const maxRefDepth = 32

// inlineRefs returns a copy of v with every "$ref": "#/…" replaced by the
// definition it points to in root (inlined in turn). Sibling keywords of
// a $ref are merged over the definition, objects member by member: the
// definitions use them to add a constraint (a bound, an extra property)
// or replace an annotation (a description), which is also what JSON
// Schema's $ref-with-siblings means. $comment, for maintainers, is
// dropped.
func inlineRefs(v any, root map[string]any, depth int) (any, error) {
	if depth > maxRefDepth {
		return nil, errors.New("$ref chain too deep")
	}
	switch v := v.(type) {
	case map[string]any:
		out := map[string]any{}
		if ref, ok := v["$ref"].(string); ok {
			target, err := resolvePointer(root, ref)
			if err != nil {
				return nil, err
			}
			t, err := inlineRefs(target, root, depth+1)
			if err != nil {
				return nil, err
			}
			tm, ok := t.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("%s is not a schema object", ref)
			}
			out = tm
		}
		for k, x := range v {
			if k == "$ref" || k == "$comment" {
				continue
			}
			y, err := inlineRefs(x, root, depth)
			if err != nil {
				return nil, err
			}
			out[k] = mergeSchema(out[k], y)
		}
		return out, nil
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			y, err := inlineRefs(x, root, depth)
			if err != nil {
				return nil, err
			}
			out[i] = y
		}
		return out, nil
	}
	return v, nil
}

// mergeSchema lays over on base: objects merge member by member, anything
// else replaces. base is a fresh copy (inlineRefs builds new values), so
// it may be changed in place.
func mergeSchema(base, over any) any {
	b, ok1 := base.(map[string]any)
	o, ok2 := over.(map[string]any)
	if !ok1 || !ok2 {
		return over
	}
	for k, v := range o {
		b[k] = mergeSchema(b[k], v)
	}
	return b
}

// resolvePointer follows a local JSON pointer reference ("#/$defs/x/…").
func resolvePointer(root map[string]any, ref string) (any, error) {
	p, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return nil, fmt.Errorf("$ref %q: only local references are used", ref)
	}
	var cur any = root
	for _, tok := range strings.Split(p, "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("$ref %q: no %q", ref, tok)
		}
		if cur, ok = m[tok]; !ok {
			return nil, fmt.Errorf("$ref %q: no %q", ref, tok)
		}
	}
	return cur, nil
}

// compileSchema compiles a published schema. Compiling also checks it
// against the 2020-12 meta-schema. Formats are annotations, as the
// dialect has them: a profile URL that is no URL is negotiation's to
// refuse (invalid_profile_url), not the schema's.
func compileSchema(name string, schema json.RawMessage) (*jsonschema.Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(schema))
	if err != nil {
		return nil, err
	}
	url := "urn:ucpbridge:mcp:" + name
	c := jsonschema.NewCompiler()
	if err := c.AddResource(url, doc); err != nil {
		return nil, err
	}
	return c.Compile(url)
}

// maxSchemaErrors bounds how many violations one refusal lists.
const maxSchemaErrors = 5

var schemaPrinter = message.NewPrinter(language.English)

// validateArgs checks a call's arguments against the tool's input
// schema; the error lists the violations (at most maxSchemaErrors), each
// at its place in the arguments.
func (ts *toolSchema) validateArgs(args any) error {
	err := ts.validator.Validate(args)
	if err == nil {
		return nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return err
	}
	var leaves []string
	ts.collect(ve, ve.InstanceLocation, &leaves)
	slices.Sort(leaves) // stable order: the same call, the same text
	leaves = slices.Compact(leaves)
	more := ""
	if len(leaves) > maxSchemaErrors {
		more = fmt.Sprintf("; and %d more", len(leaves)-maxSchemaErrors)
		leaves = leaves[:maxSchemaErrors]
	}
	return errors.New(strings.Join(leaves, "; ") + more)
}

// collect renders the violations under ve, one per leaf, each where it
// is (the nearest enclosing location when the validator gives none).
// A missing member is named by its own path ("$.line_items[0].quantity
// is required"), down to the member it needs in turn when that is one
// (item → item.id); the alternatives of a failed anyOf or oneOf are one
// violation ("one of: a | b").
func (ts *toolSchema) collect(ve *jsonschema.ValidationError, at []string, out *[]string) {
	loc := ve.InstanceLocation
	if len(loc) < len(at) {
		loc = at
	}
	switch k := ve.ErrorKind.(type) {
	case *kind.Required:
		for _, m := range k.Missing {
			*out = append(*out, argumentPath(ts.requiredPath(ve.SchemaURL, append(slices.Clone(loc), m)))+" is required")
		}
		return
	case *kind.PropertyNames:
		// Reported at the root by the validator; the object whose
		// member name failed is where its schema sits.
		var sub []string
		ts.messages(ve, &sub)
		*out = append(*out, argumentPath(schemaInstancePath(ve.SchemaURL))+": member name "+strconv.Quote(k.Property)+": "+strings.Join(sub, ", "))
		return
	case *kind.AnyOf, *kind.OneOf:
		var alts []string
		for _, c := range ve.Causes {
			var sub []string
			ts.collect(c, loc, &sub)
			alts = append(alts, strings.Join(sub, ", "))
		}
		if len(alts) > 0 {
			*out = append(*out, argumentPath(loc)+": one of: "+strings.Join(alts, " | "))
			return
		}
	}
	if len(ve.Causes) == 0 {
		*out = append(*out, argumentPath(loc)+": "+ve.ErrorKind.LocalizedString(schemaPrinter))
		return
	}
	for _, c := range ve.Causes {
		ts.collect(c, loc, out)
	}
}

// messages is collect without the locations (a member name's failures).
func (ts *toolSchema) messages(ve *jsonschema.ValidationError, out *[]string) {
	if len(ve.Causes) == 0 {
		*out = append(*out, ve.ErrorKind.LocalizedString(schemaPrinter))
		return
	}
	for _, c := range ve.Causes {
		ts.messages(c, out)
	}
}

// requiredPath extends loc, the path of a missing member, through the
// members that member requires when it requires exactly one (a line's
// item needs its id): the path to fill in.
func (ts *toolSchema) requiredPath(schemaURL string, loc []string) []string {
	_, frag, _ := strings.Cut(schemaURL, "#")
	node, err := resolvePointer(ts.checked, "#"+frag)
	for err == nil {
		m, _ := node.(map[string]any)
		props, _ := m["properties"].(map[string]any)
		member, _ := props[loc[len(loc)-1]].(map[string]any)
		req, _ := member["required"].([]any)
		if len(req) != 1 {
			break
		}
		name, _ := req[0].(string)
		loc, node = append(loc, name), member
	}
	return loc
}

// schemaInstancePath is the instance location a schema location
// describes, through properties only (where propertyNames is used).
func schemaInstancePath(schemaURL string) []string {
	_, frag, _ := strings.Cut(schemaURL, "#")
	toks := strings.Split(strings.TrimPrefix(frag, "/"), "/")
	var loc []string
	for i := 0; i+1 < len(toks) && toks[i] == "properties"; i += 2 {
		loc = append(loc, strings.ReplaceAll(strings.ReplaceAll(toks[i+1], "~1", "/"), "~0", "~"))
	}
	return loc
}

// argumentPath names a place in the arguments the way the store's own
// messages do: an argument (meta["ucp-agent"], id), or a member of the
// body argument as a JSONPath into that body (checkout $.line_items[0]).
func argumentPath(loc []string) string {
	if len(loc) == 0 {
		return "arguments"
	}
	jsonPath := func(prefix string, toks []string) string {
		var b strings.Builder
		b.WriteString(prefix)
		for _, t := range toks {
			if _, err := strconv.Atoi(t); err == nil {
				b.WriteString("[" + t + "]")
			} else if isIdent(t) {
				b.WriteString("." + t)
			} else {
				b.WriteString("[" + strconv.Quote(t) + "]")
			}
		}
		return b.String()
	}
	switch arg := loc[0]; arg {
	case "checkout", "cart", "catalog", "payment_intent":
		if len(loc) == 1 {
			return arg
		}
		return arg + " " + jsonPath("$", loc[1:])
	default:
		var b strings.Builder
		b.WriteString(arg)
		for _, t := range loc[1:] {
			b.WriteString("[" + strconv.Quote(t) + "]")
		}
		return b.String()
	}
}

func isIdent(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if r != '_' && !('a' <= r && r <= 'z') && !('A' <= r && r <= 'Z') && (i == 0 || !('0' <= r && r <= '9')) {
			return false
		}
	}
	return true
}
