package authserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/ucpbridge/ucpbridge/internal/fetchcache"
	"github.com/ucpbridge/ucpbridge/internal/netguard"
)

// Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document,
// as profiled by MCP): a public client's client_id is an https URL, and the
// document served there describes the client. Fetching an attacker-chosen URL
// from inside our network is the classic SSRF setup, so every fetch goes
// through a transport that refuses non-public addresses at connect time.

const (
	defaultCIMDTimeout  = 5 * time.Second
	defaultCIMDMaxBytes = 5120 // the draft recommends 5 KB
	defaultCIMDTTL      = 600 * time.Second
	cimdMaxURLLen       = 2048
	defaultCIMDMaxCache = 10000
)

// CIMDOptions configures a CIMDFetcher. Zero values mean the defaults.
type CIMDOptions struct {
	// AllowLoopback permits http:// client ids on loopback hosts (127.0.0.0/8,
	// [::1], localhost) and lets the fetcher dial loopback addresses. For local
	// development only; off in production.
	AllowLoopback bool
	Timeout       time.Duration    // whole fetch; default 5s
	MaxBytes      int64            // body cap; default 5120 (5 KB)
	TTL           time.Duration    // cache lifetime of a good document; default 600s
	Now           func() time.Time // default time.Now
}

// CIMDClient is the part of a client metadata document the server uses.
// TokenEndpointAuthMethod is "none" when the document leaves it out.
type CIMDClient struct {
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

// CIMDError says why a client id URL was refused. Reason is safe to show to
// the user; Err carries detail for logs only (it may name internal addresses).
type CIMDError struct {
	Reason string
	Err    error
}

func (e *CIMDError) Error() string {
	if e.Err == nil {
		return e.Reason
	}
	return e.Reason + ": " + e.Err.Error()
}

func (e *CIMDError) Unwrap() error { return e.Err }

// CIMDFetcher fetches, validates and caches client metadata documents. It is
// safe for concurrent use.
type CIMDFetcher struct {
	allowLoopback bool
	timeout       time.Duration
	maxBytes      int64
	ttl           time.Duration
	now           func() time.Time
	client        *http.Client
	// cache shares one fetch per URL among concurrent authorize requests,
	// so a burst costs the client's host one request, and keeps
	// successes for ttl (errors are never cached).
	cache fetchcache.Cache[*CIMDClient]
}

var errCIMDRedirect = errors.New("redirect not followed")

// NewCIMDFetcher returns a fetcher; nil opts means the defaults.
func NewCIMDFetcher(opts *CIMDOptions) *CIMDFetcher {
	var o CIMDOptions
	if opts != nil {
		o = *opts
	}
	f := &CIMDFetcher{
		allowLoopback: o.AllowLoopback,
		timeout:       o.Timeout,
		maxBytes:      o.MaxBytes,
		ttl:           o.TTL,
		now:           o.Now,
	}
	// Client ids are attacker-chosen URLs: bound the fetches they start.
	f.cache.MaxEntries, f.cache.MaxInFlight = defaultCIMDMaxCache, 32
	if f.timeout <= 0 {
		f.timeout = defaultCIMDTimeout
	}
	if f.maxBytes <= 0 {
		f.maxBytes = defaultCIMDMaxBytes
	}
	if f.ttl <= 0 {
		f.ttl = defaultCIMDTTL
	}
	if f.now == nil {
		f.now = time.Now
	}
	f.cache.Now = f.now

	// The address check lives in Control, which runs after DNS resolution for
	// each address actually dialled, so a name that resolves to a public
	// address for a pre-check and to 10.0.0.1 for the connection (DNS
	// rebinding) is still refused.
	dialer := &net.Dialer{
		Timeout:   f.timeout,
		KeepAlive: 30 * time.Second,
		Control:   f.dialControl,
	}
	transport := &http.Transport{
		Proxy:                  nil, // an environment proxy would dial for us and bypass the guard
		DialContext:            dialer.DialContext,
		TLSHandshakeTimeout:    f.timeout,
		ResponseHeaderTimeout:  f.timeout,
		MaxIdleConns:           16,
		MaxIdleConnsPerHost:    2,
		IdleConnTimeout:        30 * time.Second,
		MaxResponseHeaderBytes: 16 << 10,
	}
	f.client = &http.Client{
		Transport: transport,
		Timeout:   f.timeout,
		// The draft forbids following redirects: the document must come from
		// the URL that is the client's identity, and a redirect could also
		// point the fetch somewhere the URL check never saw.
		CheckRedirect: func(*http.Request, []*http.Request) error { return errCIMDRedirect },
	}
	return f
}

// IsCIMDClientID reports whether id has the shape of a URL client id this
// fetcher would try (https URL with a path; or, with AllowLoopback, http on a
// loopback host). Registered client ids (plain strings) return false.
func (f *CIMDFetcher) IsCIMDClientID(id string) bool { return f.checkURL(id) == nil }

// Fetch returns the validated document for clientID, from cache when fresh.
// Errors are *CIMDError (use errors.As) and are never cached.
func (f *CIMDFetcher) Fetch(ctx context.Context, clientID string) (*CIMDClient, error) {
	if err := f.checkURL(clientID); err != nil {
		return nil, err
	}

	doc, err := f.cache.Get(ctx, clientID, func(ctx context.Context) (*CIMDClient, error, time.Duration) {
		doc, e := f.get(ctx, clientID)
		if e != nil {
			return nil, e, 0
		}
		return doc, nil, f.ttl
	})
	var ce *CIMDError
	switch {
	case err == nil:
		return cloneCIMDClient(doc), nil
	case errors.As(err, &ce):
		e := *ce // callers get their own copy of the shared error
		return nil, &e
	case errors.Is(err, fetchcache.ErrBusy):
		return nil, &CIMDError{Reason: "too many client metadata fetches in progress; retry shortly", Err: err}
	default:
		return nil, &CIMDError{Reason: "client metadata fetch was canceled", Err: err}
	}
}

func (f *CIMDFetcher) get(ctx context.Context, clientID string) (*CIMDClient, *CIMDError) {
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, clientID, nil)
	if err != nil {
		return nil, &CIMDError{Reason: "client id is not a valid URL", Err: err}
	}
	req.Header.Set("Accept", "application/json")
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, cimdTransportError(err)
	}
	defer resp.Body.Close()

	if resp.StatusCode != http.StatusOK {
		return nil, &CIMDError{Reason: fmt.Sprintf("client metadata document request returned HTTP status %d, want 200", resp.StatusCode)}
	}
	if resp.ContentLength > f.maxBytes {
		return nil, f.tooLarge()
	}
	// One byte over the cap is enough to know the document is too large
	// without reading whatever else the server wants to send.
	body, err := io.ReadAll(io.LimitReader(resp.Body, f.maxBytes+1))
	if err != nil {
		return nil, cimdTransportError(err)
	}
	if int64(len(body)) > f.maxBytes {
		return nil, f.tooLarge()
	}
	return parseCIMDDocument(clientID, body)
}

func (f *CIMDFetcher) tooLarge() *CIMDError {
	return &CIMDError{Reason: fmt.Sprintf("client metadata document too large (limit %d bytes)", f.maxBytes)}
}

func cimdTransportError(err error) *CIMDError {
	var blocked *cimdBlockedAddrError
	switch {
	case errors.As(err, &blocked):
		return &CIMDError{Reason: fmt.Sprintf("client id host resolves to a %s address, which is not allowed", blocked.Class), Err: err}
	case errors.Is(err, errCIMDRedirect):
		return &CIMDError{Reason: "client id URL answered with a redirect; redirects are not followed", Err: err}
	case errors.Is(err, context.DeadlineExceeded) || cimdIsTimeout(err):
		return &CIMDError{Reason: "client metadata fetch timed out", Err: err}
	default:
		return &CIMDError{Reason: "could not fetch the client metadata document", Err: err}
	}
}

func cimdIsTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// checkURL applies the draft's client_id shape rules before any network
// traffic, so a malformed id costs nothing.
func (f *CIMDFetcher) checkURL(id string) *CIMDError {
	refuse := func(reason string) *CIMDError { return &CIMDError{Reason: reason} }
	u, problem := netguard.CheckURL(id, cimdMaxURLLen, f.allowLoopback)
	if problem != "" {
		// The document's client_id must equal this string byte for byte,
		// which the wire-form rule guarantees.
		return refuse("client id URL " + problem)
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

// The address guard is shared with the UCP profile fetcher; these names keep
// the CIMD code and its tests reading in their own terms.
type cimdBlockedAddrError = netguard.BlockedError

func (f *CIMDFetcher) dialControl(network, address string, c syscall.RawConn) error {
	if f.allowLoopback {
		return netguard.LoopbackControl(network, address, c)
	}
	return netguard.Control(network, address, c)
}

// parseCIMDDocument validates a fetched document against the draft's rules
// for documents.
func parseCIMDDocument(clientID string, body []byte) (*CIMDClient, *CIMDError) {
	members, err := cimdObjectMembers(body)
	if err != nil {
		return nil, &CIMDError{Reason: "client metadata document is not a valid JSON object", Err: err}
	}
	// A URL client id is public by construction: anyone can read the
	// document, so a secret in it is no secret.
	for _, k := range []string{"client_secret", "client_secret_expires_at"} {
		if _, ok := members[k]; ok {
			return nil, &CIMDError{Reason: fmt.Sprintf("client metadata document must not contain %q", k)}
		}
	}

	// Decoding member by member with exact names avoids encoding/json's
	// case-insensitive matching, under which "Client_ID" would silently
	// override "client_id".
	var c CIMDClient
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
			return nil, &CIMDError{Reason: fmt.Sprintf("client metadata member %q has the wrong type", fd.name), Err: err}
		}
	}

	if c.ClientID != clientID {
		return nil, &CIMDError{Reason: "client_id in the metadata document does not match the client id URL"}
	}
	if len(c.RedirectURIs) == 0 {
		return nil, &CIMDError{Reason: "client metadata document must list redirect_uris"}
	}
	for _, r := range c.RedirectURIs {
		if !cimdIsAbsoluteURI(r) {
			return nil, &CIMDError{Reason: fmt.Sprintf("redirect_uris entry %q is not an absolute URI without a fragment", r)}
		}
		// Private-use schemes must be reverse-DNS (OAuth 2.1): that keeps
		// out javascript:, data: and other schemes browsers act on.
		if u, err := url.Parse(r); err == nil && u.Scheme != "http" && u.Scheme != "https" && !strings.Contains(u.Scheme, ".") {
			return nil, &CIMDError{Reason: fmt.Sprintf("redirect_uris entry %q: private-use schemes must be reverse-DNS names", r)}
		}
	}
	switch c.TokenEndpointAuthMethod {
	case "":
		c.TokenEndpointAuthMethod = "none"
	case "none", "private_key_jwt":
	case "client_secret_post", "client_secret_basic", "client_secret_jwt":
		return nil, &CIMDError{Reason: fmt.Sprintf("token_endpoint_auth_method %q uses a shared secret, which URL client ids cannot have", c.TokenEndpointAuthMethod)}
	default:
		return nil, &CIMDError{Reason: fmt.Sprintf("token_endpoint_auth_method %q is not supported (use none or private_key_jwt)", c.TokenEndpointAuthMethod)}
	}
	return &c, nil
}

// cimdObjectMembers splits a JSON object into its members, refusing anything
// else, trailing data and duplicate member names (which different parsers
// resolve differently).
func cimdObjectMembers(body []byte) (map[string]json.RawMessage, error) {
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

func cimdIsAbsoluteURI(s string) bool {
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

func cloneCIMDClient(c *CIMDClient) *CIMDClient {
	d := *c
	d.RedirectURIs = slices.Clone(c.RedirectURIs)
	d.GrantTypes = slices.Clone(c.GrantTypes)
	d.ResponseTypes = slices.Clone(c.ResponseTypes)
	return &d
}
