package ucpclient

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/ucpbridge/ucpbridge/mandate"
	"github.com/ucpbridge/ucpbridge/ucpclient/httpsig"
	"github.com/ucpbridge/ucpbridge/ucpclient/ucp"
)

// ResponseVerification says whether the client asks stores for RFC 9421
// signed responses and what it does with them (ucp.md §8: "for responses,
// use the business profile the client already discovered").
type ResponseVerification uint8

const (
	// VerifyResponsesOff (the zero value) neither asks for nor checks
	// response signatures.
	VerifyResponsesOff ResponseVerification = iota
	// VerifyResponsesIfKeys sends Accept-Signature on every store call
	// and, when the store's profile publishes keys (signing_keys or
	// keys), requires a valid signature on the response. A store that
	// publishes no key is answered unverified. A profile that cannot be
	// read is an error: the client cannot tell that no key is published.
	VerifyResponsesIfKeys
	// VerifyResponsesRequired sends Accept-Signature on every store call
	// and refuses any response without a valid signature, including
	// from a store that publishes no key.
	VerifyResponsesRequired
)

// ResponseSignatureError is a store response the client refused because
// its RFC 9421 signature is missing or does not verify against the keys
// the store's profile publishes. The response is never returned.
type ResponseSignatureError struct {
	// Op names the operation, e.g. "store.create_checkout".
	Op string
	// Store is the store slug whose keys were used.
	Store string
	// StatusCode and RequestID describe the refused response.
	StatusCode int
	RequestID  string
	// Code is the UCP signature error code (signature_missing,
	// signature_invalid, key_not_found, digest_mismatch, …); empty when
	// the keys could not be obtained.
	Code httpsig.Code
	// Reason says what failed, in words.
	Reason string
	// Err is the underlying error (an *httpsig.Error, or the profile
	// fetch error).
	Err error
}

func (e *ResponseSignatureError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "ucpclient: %s: response from store %q refused", e.Op, e.Store)
	if e.Code != "" {
		b.WriteString(" [" + string(e.Code) + "]")
	}
	if e.Reason != "" {
		b.WriteString(": " + e.Reason)
	}
	if e.Err != nil {
		b.WriteString(": " + e.Err.Error())
	}
	return b.String()
}

func (e *ResponseSignatureError) Unwrap() error { return e.Err }

// Key cache bounds: keys are kept for storeKeysTTL; an unknown keyid (a
// rotation) refetches the profile at most once per storeKeysRefetch.
const (
	storeKeysTTL     = 10 * time.Minute
	storeKeysRefetch = 30 * time.Second
)

// storeKeys is one store's cached key set.
type storeKeys struct {
	keys    *mandate.KeySet
	fetched time.Time
}

// respVerifier holds the per-store key cache. It is safe for concurrent
// use.
type respVerifier struct {
	mode    ResponseVerification
	mu      sync.Mutex
	byID    map[string]*storeKeys
	flights map[string]*keyFlight
	now     func() time.Time
}

func newRespVerifier(mode ResponseVerification) *respVerifier {
	if mode == VerifyResponsesOff {
		return nil
	}
	return &respVerifier{mode: mode, byID: map[string]*storeKeys{}, flights: map[string]*keyFlight{}, now: time.Now}
}

// respCheck is the response-signature check of one call attempt.
type respCheck struct {
	c     *Client
	slug  string // the store, or the business's label
	nonce string
	// keys, when set, supplies the keys (a business outside the platform,
	// whose profile the caller already holds); nil means the store's
	// profile through the cache.
	keys func(context.Context) (*mandate.KeySet, error)
}

// businessKeys is how a call to a business outside the platform (the REST
// transport) names the keys its responses are verified with
// (call.respKeys): Label names the business in a *ResponseSignatureError
// (Store), Keys returns its published keys, e.g. ProfileKeys of the
// profile the Business was built from.
type businessKeys struct {
	Label string
	Keys  func(context.Context) (*mandate.KeySet, error)
}

// ProfileKeys returns the verification keys a profile publishes
// (signing_keys or keys); an empty set when it publishes none.
func ProfileKeys(p *ucp.Profile) (*mandate.KeySet, error) {
	if p == nil || len(p.SigningKeys) == 0 {
		return &mandate.KeySet{}, nil
	}
	raw, err := json.Marshal(p.SigningKeys)
	if err != nil {
		return nil, err
	}
	return mandate.ParseKeySet(raw)
}

// responseCheck returns the check for a call, or nil when responses are
// not verified for it: verification off, or not a call to one of the
// platform's stores ({base}/s/{slug}/…, MCP or REST). The platform's
// global and account endpoints have no business keys, the store profile
// is what the keys come from; a business outside the platform
// (Client.Business) names its profile's keys on the call (respKeys).
func (c *Client) responseCheck(cl *call) *respCheck {
	if c.respSig == nil || cl.route.Surface != SurfaceStore {
		return nil
	}
	if bk := cl.respKeys; bk != nil {
		return &respCheck{c: c, slug: bk.Label, nonce: freshNonce(), keys: bk.Keys}
	}
	rest, ok := strings.CutPrefix(cl.url, c.base+"/s/")
	if !ok {
		return nil
	}
	esc, _, _ := strings.Cut(rest, "/")
	slug, err := url.PathUnescape(esc)
	if err != nil {
		slug = esc // fails closed: no profile has this name
	}
	return &respCheck{c: c, slug: slug, nonce: freshNonce()}
}

func freshNonce() string {
	var b [18]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// request asks for a signed response (RFC 9421 §5.1), over UCP's response
// components, with a nonce the signature must echo: it binds the response
// to this call, so an old signed response cannot be replayed. Compression
// is refused: the digest covers the bytes as sent, and Go's transport
// would decompress them out of sight.
func (rc *respCheck) request(h http.Header) {
	if rc == nil {
		return
	}
	h.Set("Accept-Signature", `sig1=("@status" "content-digest" "content-type");nonce="`+rc.nonce+`"`)
	h.Set("Accept-Encoding", "identity")
}

// verify checks res; a nil error means the response may be used. A 401
// is not checked: it is never returned as a result.
func (rc *respCheck) verify(ctx context.Context, op string, res *response) error {
	if rc == nil || res.status == http.StatusUnauthorized {
		return nil
	}
	rv := rc.c.respSig
	fail := func(err error, reason string) error {
		e := &ResponseSignatureError{Op: op, Store: rc.slug, StatusCode: res.status, RequestID: res.requestID, Reason: reason, Err: err}
		var he *httpsig.Error
		if errors.As(err, &he) {
			e.Code = he.Code
		}
		return e
	}
	var keys *mandate.KeySet
	var err error
	if rc.keys != nil {
		keys, err = rc.keys(ctx)
	} else {
		keys, err = rv.keys(ctx, rc.c, rc.slug, false)
	}
	if err != nil {
		return fail(err, "business keys unavailable")
	}
	if keys == nil {
		keys = &mandate.KeySet{}
	}
	if keys.Len() == 0 {
		if rv.mode == VerifyResponsesRequired {
			return fail(nil, "the store publishes no signing key")
		}
		return nil
	}
	check := func(ks *mandate.KeySet) error {
		v := &httpsig.Verifier{
			Keys: ks,
			Nonce: func(_ context.Context, n string) error {
				if n != rc.nonce {
					return errors.New("nonce does not match the request's")
				}
				return nil
			},
		}
		hr := &http.Response{StatusCode: res.status, Header: res.header, Body: http.NoBody}
		_, err := v.VerifyResponse(ctx, hr, res.body)
		return err
	}
	err = check(keys)
	if errors.Is(err, httpsig.ErrKeyNotFound) && rc.keys == nil {
		// Perhaps a rotation: refetch the profile (rate-limited).
		if fresh, ferr := rv.keys(ctx, rc.c, rc.slug, true); ferr == nil && fresh != keys {
			err = check(fresh)
		}
	}
	if err != nil {
		return fail(err, "bad or missing response signature")
	}
	return nil
}

// keys returns the store's published keys, from the cache or its profile.
// refetch asks for a fresh profile unless the cached one is very recent.
// Concurrent callers share one profile fetch per store.
func (rv *respVerifier) keys(ctx context.Context, c *Client, slug string, refetch bool) (*mandate.KeySet, error) {
	rv.mu.Lock()
	e := rv.byID[slug]
	now := rv.now()
	if e != nil && now.Sub(e.fetched) < storeKeysTTL && (!refetch || now.Sub(e.fetched) < storeKeysRefetch) {
		rv.mu.Unlock()
		return e.keys, nil
	}
	if f := rv.flights[slug]; f != nil {
		rv.mu.Unlock()
		select {
		case <-f.done:
			return f.keys, f.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	f := &keyFlight{done: make(chan struct{})}
	rv.flights[slug] = f
	rv.mu.Unlock()

	f.keys, f.err = fetchStoreKeys(ctx, c, slug)
	rv.mu.Lock()
	delete(rv.flights, slug)
	if f.err == nil {
		rv.byID[slug] = &storeKeys{keys: f.keys, fetched: rv.now()}
	}
	rv.mu.Unlock()
	close(f.done)
	return f.keys, f.err
}

// keyFlight is a profile fetch in progress.
type keyFlight struct {
	done chan struct{}
	keys *mandate.KeySet
	err  error
}

func fetchStoreKeys(ctx context.Context, c *Client, slug string) (*mandate.KeySet, error) {
	p, err := c.FetchStoreProfile(ctx, slug)
	if err != nil {
		return nil, err
	}
	return ProfileKeys(p)
}
