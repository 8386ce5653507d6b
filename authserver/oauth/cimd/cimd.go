// Package cimd resolves OAuth Client ID Metadata Documents
// (draft-ietf-oauth-client-id-metadata-document, as profiled by MCP): a
// public client's client_id is an https URL, and the document served there
// describes the client. Fetching an attacker-chosen URL from inside our
// network is the classic SSRF setup, so every fetch goes through
// netguard's client, which refuses non-public addresses at connect time,
// and refusals never tell the caller which address class a host resolves
// to.
package cimd

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/ucpbridge/ucpbridge/ucpclient/netguard"
)

const (
	defaultTimeout  = 5 * time.Second
	defaultMaxBytes = 5120 // the draft recommends 5 KB
	defaultTTL      = 600 * time.Second
	maxURLLen       = 2048
	// Documents are small (at most MaxBytes, 5 KB by default), so the
	// entry count bounds the cache's memory: about 10 MB at the defaults,
	// parsed form included.
	defaultMaxCache = 1024
)

// Options configures a Fetcher. Zero values mean the defaults.
type Options struct {
	// AllowLoopback permits http:// client ids on loopback hosts (127.0.0.0/8,
	// [::1], localhost) and lets the fetcher dial loopback addresses. For local
	// development only; off in production.
	AllowLoopback bool
	Timeout       time.Duration    // whole fetch; default 5s
	MaxBytes      int64            // body cap; default 5120 (5 KB)
	TTL           time.Duration    // cache lifetime of a good document; default 600s
	Now           func() time.Time // default time.Now
}

// Client is the part of a client metadata document the server uses.
// TokenEndpointAuthMethod is "none" when the document leaves it out.
type Client struct {
	ClientID                string   `json:"client_id"`
	ClientName              string   `json:"client_name"`
	ClientURI               string   `json:"client_uri"`
	LogoURI                 string   `json:"logo_uri"`
	RedirectURIs            []string `json:"redirect_uris"`
	GrantTypes              []string `json:"grant_types"`
	ResponseTypes           []string `json:"response_types"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
	Scope                   string   `json:"scope"`
}

// Error says why a client id URL was refused. Reason is safe to show to
// the user; Err carries detail for logs only (it may name internal addresses).
type Error struct {
	Reason string
	Err    error
}

func (e *Error) Error() string {
	if e.Err == nil {
		return e.Reason
	}
	return e.Reason + ": " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// Fetcher fetches, validates and caches client metadata documents. It is
// safe for concurrent use.
type Fetcher struct {
	allowLoopback bool
	timeout       time.Duration
	maxBytes      int64
	ttl           time.Duration
	now           func() time.Time
	client        *http.Client
	// cache shares one fetch per URL among concurrent authorize requests,
	// so a burst costs the client's host one request, and keeps
	// successes for ttl (errors are never cached).
	cache netguard.Cache[*Client]
}

// NewFetcher returns a fetcher; nil opts means the defaults.
func NewFetcher(opts *Options) *Fetcher {
	var o Options
	if opts != nil {
		o = *opts
	}
	f := &Fetcher{
		allowLoopback: o.AllowLoopback,
		timeout:       o.Timeout,
		maxBytes:      o.MaxBytes,
		ttl:           o.TTL,
		now:           o.Now,
	}
	// Client ids are attacker-chosen URLs: bound the fetches they start.
	f.cache.MaxEntries, f.cache.MaxInFlight, f.cache.MaxInFlightPerHost = defaultMaxCache, 32, 4
	if f.timeout <= 0 {
		f.timeout = defaultTimeout
	}
	if f.maxBytes <= 0 {
		f.maxBytes = defaultMaxBytes
	}
	if f.ttl <= 0 {
		f.ttl = defaultTTL
	}
	if f.now == nil {
		f.now = time.Now
	}
	f.cache.Now = f.now

	// The document must come from the URL that is the client's identity:
	// the guarded client never follows redirects (the draft forbids it).
	f.client = netguard.NewClient(&netguard.ClientOptions{AllowLoopback: f.allowLoopback, Timeout: f.timeout})
	return f
}

// IsClientID reports whether id has the shape of a URL client id this
// fetcher would try (https URL with a path; or, with AllowLoopback, http on a
// loopback host). Registered client ids (plain strings) return false.
func (f *Fetcher) IsClientID(id string) bool { return f.checkURL(id) == nil }

// Fetch returns the validated document for clientID, from cache when fresh.
// Errors are *Error (use errors.As) and are never cached.
func (f *Fetcher) Fetch(ctx context.Context, clientID string) (*Client, error) {
	if err := f.checkURL(clientID); err != nil {
		return nil, err
	}

	doc, err := f.cache.Get(ctx, clientID, func(ctx context.Context) (*Client, time.Duration, error) {
		doc, e := f.get(ctx, clientID)
		if e != nil {
			return nil, 0, e
		}
		return doc, f.ttl, nil
	})
	var ce *Error
	switch {
	case err == nil:
		return cloneClient(doc), nil
	case errors.As(err, &ce):
		e := *ce // callers get their own copy of the shared error
		return nil, &e
	case errors.Is(err, netguard.ErrBusy):
		return nil, &Error{Reason: "too many client metadata fetches in progress; retry shortly", Err: err}
	default:
		return nil, &Error{Reason: "client metadata fetch was canceled", Err: err}
	}
}

func (f *Fetcher) get(ctx context.Context, clientID string) (*Client, *Error) {
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, clientID, nil)
	if err != nil {
		return nil, &Error{Reason: "client id is not a valid URL", Err: err}
	}
	req.Header.Set("Accept", "application/json")
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, transportError(err)
	}
	switch {
	case resp.StatusCode >= 300 && resp.StatusCode < 400 && resp.Header.Get("Location") != "":
		resp.Body.Close()
		return nil, &Error{Reason: "client id URL answered with a redirect; redirects are not followed"}
	case resp.StatusCode != http.StatusOK:
		resp.Body.Close()
		return nil, &Error{Reason: fmt.Sprintf("client metadata document request returned HTTP status %d, want 200", resp.StatusCode)}
	}
	body, err := netguard.ReadBody(resp, f.maxBytes)
	var tl *netguard.TooLargeError
	switch {
	case errors.As(err, &tl):
		return nil, f.tooLarge()
	case err != nil:
		return nil, transportError(err)
	}
	return parseDocument(clientID, body)
}

func (f *Fetcher) tooLarge() *Error {
	return &Error{Reason: fmt.Sprintf("client metadata document too large (limit %d bytes)", f.maxBytes)}
}

func transportError(err error) *Error {
	var blocked *netguard.BlockedError
	switch {
	case errors.As(err, &blocked):
		// The same words as any other failed fetch: naming the address
		// class would tell whoever picks the URL which of their names
		// resolve inside our network. Err keeps the detail for the logs.
		return &Error{Reason: "could not fetch the client metadata document", Err: err}
	case netguard.IsTimeout(err):
		return &Error{Reason: "client metadata fetch timed out", Err: err}
	default:
		return &Error{Reason: "could not fetch the client metadata document", Err: err}
	}
}

// checkURL applies the draft's client_id shape rules before any network
// traffic, so a malformed id costs nothing.
func (f *Fetcher) checkURL(id string) *Error {
	refuse := func(reason string) *Error { return &Error{Reason: reason} }
	u, err := netguard.CheckURL(id, maxURLLen, f.allowLoopback)
	if err != nil {
		// The document's client_id must equal this string byte for byte,
		// which the wire-form rule guarantees.
		var ue *netguard.URLError
		if errors.As(err, &ue) {
			return refuse("client id URL " + ue.Problem)
		}
		return refuse("client id URL is not acceptable")
	}
	if u.Path == "" || u.Path == "/" {
		return refuse("client id URL must have a path, such as /oauth/client.json")
	}
	// u.Path is decoded, so %2e%2e is caught here too.
	for seg := range strings.SplitSeq(u.Path, "/") {
		if seg == "." || seg == ".." {
			return refuse(`client id URL must not contain "." or ".." path segments`)
		}
	}
	return nil
}

// parseDocument validates a fetched document against the draft's rules
// for documents.
func parseDocument(clientID string, body []byte) (*Client, *Error) {
	members, err := objectMembers(body)
	if err != nil {
		return nil, &Error{Reason: "client metadata document is not a valid JSON object", Err: err}
	}
	// A URL client id is public by construction: anyone can read the
	// document, so a secret in it is no secret.
	for _, k := range []string{"client_secret", "client_secret_expires_at"} {
		if _, ok := members[k]; ok {
			return nil, &Error{Reason: fmt.Sprintf("client metadata document must not contain %q", k)}
		}
	}

	// Decoding member by member with exact names avoids encoding/json's
	// case-insensitive matching, under which "Client_ID" would silently
	// override "client_id".
	var c Client
	fields := []struct {
		name string
		dst  any
	}{
		{"client_id", &c.ClientID},
		{"client_name", &c.ClientName},
		{"client_uri", &c.ClientURI},
		{"logo_uri", &c.LogoURI},
		{"redirect_uris", &c.RedirectURIs},
		{"grant_types", &c.GrantTypes},
		{"response_types", &c.ResponseTypes},
		{"token_endpoint_auth_method", &c.TokenEndpointAuthMethod},
		{"scope", &c.Scope},
	}
	for _, fd := range fields {
		raw, ok := members[fd.name]
		if !ok {
			continue
		}
		if err := json.Unmarshal(raw, fd.dst); err != nil {
			return nil, &Error{Reason: fmt.Sprintf("client metadata member %q has the wrong type", fd.name), Err: err}
		}
	}

	if c.ClientID != clientID {
		return nil, &Error{Reason: "client_id in the metadata document does not match the client id URL"}
	}
	if len(c.RedirectURIs) == 0 {
		return nil, &Error{Reason: "client metadata document must list redirect_uris"}
	}
	// Reasons name entries by position, never by content: they are shown
	// on the platform's own page, and the document's author chose the
	// text.
	for i, r := range c.RedirectURIs {
		if !isAbsoluteURI(r) {
			return nil, &Error{Reason: fmt.Sprintf("redirect_uris[%d] is not an absolute URI without a fragment", i)}
		}
		// Private-use schemes must be reverse-DNS (OAuth 2.1): that keeps
		// out javascript:, data: and other schemes browsers act on.
		if u, err := url.Parse(r); err == nil && u.Scheme != "http" && u.Scheme != "https" && !strings.Contains(u.Scheme, ".") {
			return nil, &Error{Reason: fmt.Sprintf("redirect_uris[%d]: private-use schemes must be reverse-DNS names", i)}
		}
	}
	switch c.TokenEndpointAuthMethod {
	case "":
		c.TokenEndpointAuthMethod = "none"
	case "none", "private_key_jwt":
	case "client_secret_post", "client_secret_basic", "client_secret_jwt":
		return nil, &Error{Reason: fmt.Sprintf("token_endpoint_auth_method %s uses a shared secret, which URL client ids cannot have", c.TokenEndpointAuthMethod)}
	default:
		return nil, &Error{Reason: "token_endpoint_auth_method is not supported (use none or private_key_jwt)"}
	}
	return &c, nil
}

// objectMembers splits a JSON object into its members, refusing anything
// else, trailing data and duplicate member names (which different parsers
// resolve differently).
func objectMembers(body []byte) (map[string]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, errors.New("document is not a JSON object")
	}
	members := make(map[string]json.RawMessage)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, ok := tok.(string)
		if !ok {
			return nil, errors.New("object member name is not a string")
		}
		if _, dup := members[key]; dup {
			return nil, fmt.Errorf("duplicate member %q", key)
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, err
		}
		members[key] = raw
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("data after the JSON object")
	}
	return members, nil
}

func isAbsoluteURI(s string) bool {
	if s == "" || strings.Contains(s, "#") {
		return false
	}
	u, err := url.Parse(s)
	if err != nil || !u.IsAbs() {
		return false
	}
	if (u.Scheme == "http" || u.Scheme == "https") && u.Host == "" {
		return false
	}
	return true
}

func cloneClient(c *Client) *Client {
	d := *c
	d.RedirectURIs = slices.Clone(c.RedirectURIs)
	d.GrantTypes = slices.Clone(c.GrantTypes)
	d.ResponseTypes = slices.Clone(c.ResponseTypes)
	return &d
}
