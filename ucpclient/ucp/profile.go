package ucp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
)

// Entity is the shape every registry entry shares (ucp.json#/$defs/entity).
// Config stays raw because each capability or handler defines its own.
type Entity struct {
	Version string          `json:"version"`
	Spec    string          `json:"spec,omitempty"`
	Schema  string          `json:"schema,omitempty"`
	ID      string          `json:"id,omitempty"`
	Config  json.RawMessage `json:"config,omitempty"`
}

// Service is one transport binding of a service (service.json).
type Service struct {
	Entity
	Transport string `json:"transport,omitempty"`
	Endpoint  string `json:"endpoint,omitempty"`
}

// Capability is one version of a capability or extension (capability.json).
type Capability struct {
	Entity
	Extends Extends `json:"extends,omitempty"`
}

// Extends names the parent capabilities of an extension. On the wire it is a
// string for one parent and an array for several; nil means a root
// capability and is omitted.
type Extends []string

// MarshalJSON writes one parent as a string, as the spec's examples do, so
// single-parent extensions read the same to 2026-01 peers, whose schema only
// allowed a string.
func (e Extends) MarshalJSON() ([]byte, error) {
	switch len(e) {
	case 0:
		return []byte("null"), nil
	case 1:
		return json.Marshal(e[0])
	}
	return json.Marshal([]string(e))
}

// UnmarshalJSON accepts a string or an array of strings. An empty string or
// array is read as no parent rather than refused: both violate the schema,
// and the only sensible reading of either is a root capability.
func (e *Extends) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case bytes.Equal(b, []byte("null")):
		*e = nil
		return nil
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		if s == "" {
			*e = nil
		} else {
			*e = Extends{s}
		}
		return nil
	case len(b) > 0 && b[0] == '[':
		var list []string
		if err := json.Unmarshal(b, &list); err != nil {
			return fmt.Errorf("extends: %w", err)
		}
		list = slices.DeleteFunc(list, func(s string) bool { return s == "" })
		if len(list) == 0 {
			*e = nil
		} else {
			*e = list
		}
		return nil
	}
	return fmt.Errorf("extends: want a string or an array of strings, got %.20s", b)
}

// PaymentHandler is one handler instance (payment_handler.json). ID is the
// instance id that instruments refer to as handler_id.
type PaymentHandler struct {
	Entity
	AvailableInstruments []json.RawMessage `json:"available_instruments,omitempty"`
}

// ProfileUCP is the `ucp` member of a discovery profile, in the keyed-registry
// form of 2026-04-08.
type ProfileUCP struct {
	Version           string                      `json:"version"`
	SupportedVersions map[string]string           `json:"supported_versions,omitempty"`
	Services          map[string][]Service        `json:"services,omitempty"`
	Capabilities      map[string][]Capability     `json:"capabilities,omitempty"`
	PaymentHandlers   map[string][]PaymentHandler `json:"payment_handlers"`
}

// MarshalJSON writes payment_handlers as {} when there are none: the
// business and platform schemas require the member, and null is not an
// object.
func (u ProfileUCP) MarshalJSON() ([]byte, error) {
	type profileUCPWire ProfileUCP // drops the method, so no recursion
	w := profileUCPWire(u)
	if w.PaymentHandlers == nil {
		w.PaymentHandlers = map[string][]PaymentHandler{}
	}
	return json.Marshal(w)
}

// Profile is a discovery profile (/.well-known/ucp, or the platform profile
// named in UCP-Agent). SigningKeys are JWKs kept raw so the key code decides
// what it accepts. Raw holds the bytes the profile was parsed from.
type Profile struct {
	UCP         ProfileUCP        `json:"ucp"`
	SigningKeys []json.RawMessage `json:"signing_keys,omitempty"`
	Raw         []byte            `json:"-"`
}

// UnmarshalJSON parses with ParseProfile, so a Profile embedded in another
// document gets the same tolerance.
func (p *Profile) UnmarshalJSON(b []byte) error {
	if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		return nil
	}
	q, err := ParseProfile(b)
	if err != nil {
		return err
	}
	*p = *q
	return nil
}

// ParseProfile reads a discovery profile tolerantly and returns it in the
// 2026-04-08 shape. It accepts:
//
//   - the `ucp` wrapper, or the ucp members at the top level (flat);
//   - signing keys under `signing_keys` or the draft's `keys`, at the top
//     level or inside `ucp` (all are merged, exact duplicates dropped);
//   - 2026-01-11 capabilities, an array of {name, version, ...}, and
//     2026-01-11 services, {"<name>": {version, spec, rest: {schema,
//     endpoint}, mcp: {...}, a2a: {...}, embedded: {...}}};
//   - 2026-01-11 payment handlers (top-level payment.handlers) when
//     ucp.payment_handlers is absent.
//
// It refuses what no tolerant reading can fix, or what would make later
// decisions unreliable: input that is not one JSON object, duplicate member
// names at any depth (parsers disagree on which one wins), a ucp.version or
// supported_versions key or capability version that is not YYYY-MM-DD
// (negotiation compares them as dates), a capability without a name, a
// config that is not an object, and members of the wrong JSON type.
// Unknown members are ignored; Raw keeps them.
func ParseProfile(data []byte) (*Profile, error) {
	if err := profileCheckJSON(data); err != nil {
		return nil, profileErr("%w", err)
	}
	top, err := profileObject(data, "profile")
	if err != nil {
		return nil, err
	}
	body := top
	_, wrapped := top["ucp"]
	if wrapped {
		if body, err = profileObject(top["ucp"], "ucp"); err != nil {
			return nil, err
		}
	}

	p := &Profile{Raw: bytes.Clone(data)}
	keySources := []map[string]json.RawMessage{top}
	if wrapped {
		keySources = append(keySources, body)
	}
	for _, src := range keySources {
		for _, name := range []string{"signing_keys", "keys"} {
			if p.SigningKeys, err = profileAppendKeys(p.SigningKeys, src[name], name); err != nil {
				return nil, err
			}
		}
	}

	u := &p.UCP
	if err := profileString(body["version"], "ucp.version", &u.Version); err != nil {
		return nil, err
	}
	if !profileIsVersion(u.Version) {
		return nil, profileErr("ucp.version %q is not a YYYY-MM-DD release version", u.Version)
	}
	if raw, ok := body["supported_versions"]; ok && !profileIsNull(raw) {
		if err := json.Unmarshal(raw, &u.SupportedVersions); err != nil {
			return nil, profileErr("ucp.supported_versions: %w", err)
		}
		for v := range u.SupportedVersions {
			if !profileIsVersion(v) {
				return nil, profileErr("ucp.supported_versions key %q is not a YYYY-MM-DD release version", v)
			}
		}
	}
	if u.Services, err = profileServices(body["services"]); err != nil {
		return nil, err
	}
	if u.Capabilities, err = profileCapabilities(body["capabilities"]); err != nil {
		return nil, err
	}
	if raw, ok := body["payment_handlers"]; ok {
		u.PaymentHandlers, err = profileHandlers(raw)
	} else {
		u.PaymentHandlers, err = profileHandlers0111(top["payment"])
	}
	if err != nil {
		return nil, err
	}
	if u.PaymentHandlers == nil {
		u.PaymentHandlers = map[string][]PaymentHandler{}
	}
	return p, nil
}

func profileErr(format string, args ...any) error {
	return fmt.Errorf("ucp: profile: "+format, args...)
}

// profileMaxDepth bounds nesting well above any real profile, so a hostile
// document cannot make the duplicate check recurse without limit.
const profileMaxDepth = 128

// profileCheckJSON accepts exactly one JSON object with no duplicate member
// names at any depth. encoding/json keeps the last duplicate silently, and
// another implementation reading the same bytes may keep the first.
func profileCheckJSON(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber() // only syntax matters here; 1e400 is valid JSON
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return errors.New("not a JSON object")
	}
	// Data after the object is left for json.Unmarshal, which refuses it.
	return profileWalk(dec, '{', 1)
}

// profileWalk consumes the rest of a container whose opening delimiter has
// been read.
func profileWalk(dec *json.Decoder, open json.Delim, depth int) error {
	if depth > profileMaxDepth {
		return errors.New("JSON nested too deeply")
	}
	var seen map[string]struct{}
	if open == '{' {
		seen = make(map[string]struct{})
	}
	for dec.More() {
		if open == '{' {
			tok, err := dec.Token()
			if err != nil {
				return err
			}
			key, _ := tok.(string)
			if _, dup := seen[key]; dup {
				return fmt.Errorf("duplicate member %q", key)
			}
			seen[key] = struct{}{}
		}
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		if d, ok := tok.(json.Delim); ok {
			if err := profileWalk(dec, d, depth+1); err != nil {
				return err
			}
		}
	}
	_, err := dec.Token() // the closing delimiter
	return err
}

func profileIsNull(raw json.RawMessage) bool {
	return bytes.Equal(bytes.TrimSpace(raw), []byte("null"))
}

// profileKind is the first byte of a JSON value: '{', '[', '"', 'n', ...
func profileKind(raw json.RawMessage) byte {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return 0
	}
	return raw[0]
}

func profileObject(raw json.RawMessage, what string) (map[string]json.RawMessage, error) {
	if profileKind(raw) != '{' {
		return nil, profileErr("%s is not a JSON object", what)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, profileErr("%s: %w", what, err)
	}
	return m, nil
}

func profileString(raw json.RawMessage, what string, dst *string) error {
	if raw == nil {
		return profileErr("%s is required", what)
	}
	if profileKind(raw) != '"' {
		return profileErr("%s is not a string", what)
	}
	return json.Unmarshal(raw, dst)
}

// profileIsVersion matches ^\d{4}-\d{2}-\d{2}$, the schema's version pattern.
func profileIsVersion(v string) bool {
	if len(v) != 10 || v[4] != '-' || v[7] != '-' {
		return false
	}
	for i := range len(v) {
		if i != 4 && i != 7 && (v[i] < '0' || v[i] > '9') {
			return false
		}
	}
	return true
}

// profileAppendKeys adds the JWKs of one key array, skipping byte-identical
// repeats: profiles in transition publish the same keys under both names.
func profileAppendKeys(keys []json.RawMessage, raw json.RawMessage, what string) ([]json.RawMessage, error) {
	if raw == nil || profileIsNull(raw) {
		return keys, nil
	}
	if profileKind(raw) != '[' {
		return nil, profileErr("%s is not an array", what)
	}
	var list []json.RawMessage
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, profileErr("%s: %w", what, err)
	}
	for i, k := range list {
		if profileKind(k) != '{' {
			return nil, profileErr("%s[%d] is not a JSON object", what, i)
		}
		var buf bytes.Buffer
		if err := json.Compact(&buf, k); err != nil {
			return nil, profileErr("%s[%d]: %w", what, i, err)
		}
		k = buf.Bytes()
		if !slices.ContainsFunc(keys, func(have json.RawMessage) bool { return bytes.Equal(have, k) }) {
			keys = append(keys, k)
		}
	}
	return keys, nil
}

// profileEntity normalises the fields every entity shares.
func profileEntity(e *Entity, what string) error {
	if e.Config == nil {
		return nil
	}
	switch profileKind(e.Config) {
	case 'n':
		e.Config = nil
	case '{':
	default:
		return profileErr("%s: config is not a JSON object", what)
	}
	return nil
}

func profileServices(raw json.RawMessage) (map[string][]Service, error) {
	if raw == nil || profileIsNull(raw) {
		return nil, nil
	}
	members, err := profileObject(raw, "ucp.services")
	if err != nil {
		return nil, err
	}
	out := make(map[string][]Service, len(members))
	for name, v := range members {
		what := "ucp.services." + name
		var list []Service
		switch profileKind(v) {
		case 'n':
			continue
		case '[':
			if err := json.Unmarshal(v, &list); err != nil {
				return nil, profileErr("%s: %w", what, err)
			}
		case '{':
			if list, err = profileService0111(v, what); err != nil {
				return nil, err
			}
		default:
			return nil, profileErr("%s is neither an array nor an object", what)
		}
		for i := range list {
			if err := profileEntity(&list[i].Entity, what); err != nil {
				return nil, err
			}
		}
		out[name] = list
	}
	return out, nil
}

// profileService0111 turns a 2026-01-11 service, one object with a member per
// transport, into one binding per transport.
func profileService0111(raw json.RawMessage, what string) ([]Service, error) {
	type binding struct {
		Schema   string          `json:"schema"`
		Endpoint string          `json:"endpoint"`
		Config   json.RawMessage `json:"config"`
	}
	var old struct {
		Version  string   `json:"version"`
		Spec     string   `json:"spec"`
		REST     *binding `json:"rest"`
		MCP      *binding `json:"mcp"`
		A2A      *binding `json:"a2a"`
		Embedded *binding `json:"embedded"`
	}
	if err := json.Unmarshal(raw, &old); err != nil {
		return nil, profileErr("%s: %w", what, err)
	}
	var list []Service
	for _, t := range []struct {
		name string
		b    *binding
	}{{"rest", old.REST}, {"mcp", old.MCP}, {"a2a", old.A2A}, {"embedded", old.Embedded}} {
		if t.b == nil {
			continue
		}
		list = append(list, Service{
			Entity:    Entity{Version: old.Version, Spec: old.Spec, Schema: t.b.Schema, Config: t.b.Config},
			Transport: t.name,
			Endpoint:  t.b.Endpoint,
		})
	}
	return list, nil
}

func profileCapabilities(raw json.RawMessage) (map[string][]Capability, error) {
	if raw == nil || profileIsNull(raw) {
		return nil, nil
	}
	out := make(map[string][]Capability)
	switch profileKind(raw) {
	case '{':
		var m map[string]json.RawMessage
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, profileErr("ucp.capabilities: %w", err)
		}
		for name, v := range m {
			if profileIsNull(v) {
				continue
			}
			if profileKind(v) != '[' {
				return nil, profileErr("ucp.capabilities.%s is not an array", name)
			}
			var list []Capability
			if err := json.Unmarshal(v, &list); err != nil {
				return nil, profileErr("ucp.capabilities.%s: %w", name, err)
			}
			out[name] = list
		}
	case '[': // 2026-01-11: [{name, version, spec, schema, extends?, config?}]
		var list []struct {
			Name string `json:"name"`
			Capability
		}
		if err := json.Unmarshal(raw, &list); err != nil {
			return nil, profileErr("ucp.capabilities: %w", err)
		}
		for i, c := range list {
			if c.Name == "" {
				return nil, profileErr("ucp.capabilities[%d] has no name", i)
			}
			out[c.Name] = append(out[c.Name], c.Capability)
		}
	default:
		return nil, profileErr("ucp.capabilities is neither an object nor an array")
	}
	for name, list := range out {
		what := "ucp.capabilities." + name
		for i := range list {
			if !profileIsVersion(list[i].Version) {
				return nil, profileErr("%s: version %q is not YYYY-MM-DD", what, list[i].Version)
			}
			if err := profileEntity(&list[i].Entity, what); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

func profileHandlers(raw json.RawMessage) (map[string][]PaymentHandler, error) {
	if profileIsNull(raw) {
		return nil, nil
	}
	members, err := profileObject(raw, "ucp.payment_handlers")
	if err != nil {
		return nil, err
	}
	out := make(map[string][]PaymentHandler, len(members))
	for name, v := range members {
		what := "ucp.payment_handlers." + name
		if profileIsNull(v) {
			continue
		}
		if profileKind(v) != '[' {
			return nil, profileErr("%s is not an array", what)
		}
		var list []PaymentHandler
		if err := json.Unmarshal(v, &list); err != nil {
			return nil, profileErr("%s: %w", what, err)
		}
		for i := range list {
			if err := profileEntity(&list[i].Entity, what); err != nil {
				return nil, err
			}
		}
		out[name] = list
	}
	return out, nil
}

// profileHandlers0111 reads the 2026-01-11 top-level payment.handlers array,
// whose entries carry their registry name inline and call the config schema
// config_schema.
func profileHandlers0111(raw json.RawMessage) (map[string][]PaymentHandler, error) {
	if raw == nil || profileIsNull(raw) {
		return nil, nil
	}
	var old struct {
		Handlers []struct {
			Name         string `json:"name"`
			ConfigSchema string `json:"config_schema"`
			PaymentHandler
		} `json:"handlers"`
	}
	if profileKind(raw) != '{' {
		return nil, profileErr("payment is not a JSON object")
	}
	if err := json.Unmarshal(raw, &old); err != nil {
		return nil, profileErr("payment: %w", err)
	}
	out := make(map[string][]PaymentHandler)
	for i, h := range old.Handlers {
		if h.Name == "" {
			return nil, profileErr("payment.handlers[%d] has no name", i)
		}
		ph := h.PaymentHandler
		if ph.Schema == "" {
			ph.Schema = h.ConfigSchema
		}
		if err := profileEntity(&ph.Entity, "payment.handlers."+h.Name); err != nil {
			return nil, err
		}
		out[h.Name] = append(out[h.Name], ph)
	}
	return out, nil
}
