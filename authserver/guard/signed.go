package guard

// The signed trust tier: an RFC 9421 request signature that verifies with a
// key published in the platform profile the request names (UCP 2026-04-08
// signatures.md, ucp.md §8). A platform reaches it with no shared secret:
// the profile URL is its identity, and its keys prove it.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/ucpbridge/ucpbridge/mandate"
	"github.com/ucpbridge/ucpbridge/ucpclient/discovery"
	"github.com/ucpbridge/ucpbridge/ucpclient/httpsig"
	"github.com/ucpbridge/ucpbridge/ucpclient/ucp"
)

// Signature error codes. The first six are UCP's (signatures.md); the
// statuses are the ones UCP assigns: 400 for digest_mismatch and
// algorithm_unsupported, 401 for the others. signature_expired is ours:
// UCP leaves freshness to the verifier, and a platform whose clock or
// signer is off should be told so rather than "invalid".
const (
	CodeSignatureMissing     = string(httpsig.CodeSignatureMissing)
	CodeSignatureInvalid     = string(httpsig.CodeSignatureInvalid)
	CodeKeyNotFound          = string(httpsig.CodeKeyNotFound)
	CodeDigestMismatch       = string(httpsig.CodeDigestMismatch)
	CodeAlgorithmUnsupported = string(httpsig.CodeAlgorithmUnsupported)
	CodeCoverageInsufficient = string(httpsig.CodeCoverageInsufficient)
	CodeSignatureExpired     = "signature_expired"
)

// Defaults for SignatureConfig.
const (
	// DefaultSignatureMaxAge is how old a signature's created may be.
	// Five minutes is what common signers (the npm http-message-signatures
	// package) put in expires by default.
	DefaultSignatureMaxAge = 5 * time.Minute
	// DefaultSignatureMaxBody bounds the body read to check its digest;
	// the stores' own request limit.
	DefaultSignatureMaxBody = 1 << 20
)

// ProfileFetcher fetches a UCP profile by URL; *discovery.Fetcher is the
// one to use (its AllowInsecureLoopback is the dev allowance for plain-http
// loopback profiles). Errors that are *discovery.Error keep their UCP code
// and status; any other error counts as profile_unreachable.
type ProfileFetcher interface {
	Fetch(ctx context.Context, url string) (*ucp.Profile, error)
}

// SignatureConfig configures a SignatureVerifier. Profiles is required;
// every zero field means its default.
type SignatureConfig struct {
	// Profiles fetches (and caches) platform profiles. The verifier caches
	// nothing itself, so profile caching, negative caching and fetch
	// bounds are the fetcher's.
	Profiles ProfileFetcher
	// MaxBody bounds the request body read to check Content-Digest;
	// default DefaultSignatureMaxBody. A longer body is refused with 413.
	MaxBody int64
	// MaxAge is how old a signature's created may be; default
	// DefaultSignatureMaxAge. A positive MaxAge makes created mandatory.
	// Negative accepts any age and signatures without created, which is
	// all UCP itself demands: use it only where a signature is never the
	// sole defence against replay.
	MaxAge time.Duration
	// MaxSkew is the clock skew allowed on created (in the future) and
	// expires (in the past); default httpsig.DefaultMaxSkew (60 s).
	MaxSkew time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// SignatureVerifier verifies UCP request signatures against the keys of
// the platform profile the request names. It holds no state beyond its
// configuration and is safe for concurrent use.
//
// Replay: UCP gets replay protection from the signed Idempotency-Key of
// state-changing calls (a replayed complete returns the first result), not
// from nonces, so no nonce store is kept and a nonce, if sent, is only
// part of what is signed. What a replay can still do is repeat a read
// (GET has no idempotency key); the created window bounds that to MaxAge.
type SignatureVerifier struct {
	cfg SignatureConfig
}

// NewSignatureVerifier checks cfg and returns a verifier.
func NewSignatureVerifier(cfg SignatureConfig) (*SignatureVerifier, error) {
	if cfg.Profiles == nil {
		return nil, errors.New("guard: SignatureConfig.Profiles is required")
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = DefaultSignatureMaxBody
	}
	if cfg.MaxAge == 0 {
		cfg.MaxAge = DefaultSignatureMaxAge
	}
	if cfg.MaxSkew <= 0 {
		cfg.MaxSkew = httpsig.DefaultMaxSkew
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &SignatureVerifier{cfg: cfg}, nil
}

// SignedCaller is what a verified request signature establishes.
type SignedCaller struct {
	// Profile is the platform profile URL whose key verified the
	// signature: the platform's identity.
	Profile string
	// KeyID is the kid of that key, Label the signature's label.
	KeyID string
	Label string
	// Components are the covered components, as signed.
	Components []string
	// Created is the signature's creation time (zero only when MaxAge is
	// negative and the signer sent none).
	Created time.Time
}

// HasSignature reports whether r carries a request signature, complete or
// not: either Signature-Input or Signature.
func HasSignature(r *http.Request) bool {
	return r.Header.Get("Signature-Input") != "" || r.Header.Get("Signature") != ""
}

// Verify checks r's RFC 9421 signature against the keys of the platform
// profile at profileURL.
//
// A request with neither Signature-Input nor Signature is not signed:
// Verify returns (nil, nil) without touching the body, and the caller
// judges the request by its other credentials. Otherwise the result is
// either the verified caller or a refusal; a signature that does not
// verify is never a reason to treat the request as unsigned.
//
// profileURL must come from the request itself, so that the signature
// binds it: the UCP-Agent header (discovery.ParseUCPAgent), which the
// signature must then cover, or on MCP the JSON-RPC meta "ucp-agent",
// which the signed Content-Digest covers. The profile is fetched with
// cfg.Profiles and the key picked by keyid from its signing_keys (or
// keys).
//
// The signature must cover UCP's request set (httpsig.RequestComponents:
// @method, @authority, @path; @query with a query; ucp-agent when that
// header is sent; idempotency-key on POST, PUT, PATCH and DELETE when
// sent; content-digest and content-type with a body), and Content-Digest
// must match the body. The body is read (at most cfg.MaxBody bytes) and
// put back on r.Body, so the handler reads it as sent.
//
// Every refusal is a *Error that unwraps to the *httpsig.Error or
// *discovery.Error behind it:
//
//   - 401 signature_missing (Signature-Input or Signature alone),
//     signature_invalid (bad signature, bad or missing created, created in
//     the future), key_not_found (no such kid in the profile, or no
//     profile named), coverage_insufficient, signature_expired (created
//     older than MaxAge, or expires passed);
//   - 400 digest_mismatch, algorithm_unsupported, invalid_profile_url,
//     invalid_request (unreadable body);
//   - 413 payload_too_large;
//   - the discovery status for a profile that cannot be used: 424
//     profile_unreachable, 422 profile_malformed or version_unsupported.
//
// Challenge is left empty: the caller owns its WWW-Authenticate challenge
// (realm, resource metadata) and adds it to the 401s.
func (v *SignatureVerifier) Verify(ctx context.Context, r *http.Request, profileURL string) (*SignedCaller, error) {
	if !HasSignature(r) {
		return nil, nil
	}
	if profileURL == "" {
		return nil, &Error{Status: http.StatusUnauthorized, Code: CodeKeyNotFound,
			Content: "a signed request must name its platform profile (UCP-Agent profile=\"…\"), whose keys verify the signature"}
	}
	body, err := v.readBody(r)
	if err != nil {
		return nil, err
	}
	profile, err := v.cfg.Profiles.Fetch(ctx, profileURL)
	if err != nil {
		return nil, profileError(err)
	}
	keys, err := profileKeys(profile)
	if err != nil {
		return nil, &Error{Status: http.StatusUnprocessableEntity, Code: discovery.CodeProfileMalformed,
			Content: "the platform profile's signing keys cannot be read", cause: err}
	}
	hv := &httpsig.Verifier{
		Keys: keys,
		Now:  v.cfg.Now,
		// The time policy is checked below, on the signature that
		// verified, so that it gets its own code (signature_expired);
		// httpsig's, which would report signature_invalid, is disabled
		// by a skew no clock reaches.
		MaxSkew: 100 * 365 * 24 * time.Hour,
	}
	res, err := hv.VerifyRequest(ctx, r, body)
	if err != nil {
		return nil, signatureError(err)
	}
	if err := v.checkTime(res); err != nil {
		return nil, err
	}
	return &SignedCaller{Profile: profileURL, KeyID: res.KeyID, Label: res.Label, Components: res.Components, Created: res.Created}, nil
}

// readBody reads r's body within MaxBody and puts the bytes back, so the
// digest is checked over exactly what the handler will read.
func (v *SignatureVerifier) readBody(r *http.Request) ([]byte, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	if r.ContentLength > v.cfg.MaxBody {
		return nil, tooLarge(v.cfg.MaxBody)
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, v.cfg.MaxBody+1))
	// Put back what was read even on failure: the request is refused, but
	// a caller that logs it should not find the body half consumed.
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	if err != nil {
		return nil, &Error{Status: http.StatusBadRequest, Code: "invalid_request", Content: "the request body could not be read", cause: err}
	}
	if int64(len(body)) > v.cfg.MaxBody {
		return nil, tooLarge(v.cfg.MaxBody)
	}
	r.ContentLength = int64(len(body))
	return body, nil
}

func tooLarge(limit int64) *Error {
	return &Error{Status: http.StatusRequestEntityTooLarge, Code: "payload_too_large",
		Content: "the request body is larger than " + strconv.FormatInt(limit, 10) + " bytes"}
}

// checkTime applies the freshness policy to the signature that verified.
func (v *SignatureVerifier) checkTime(res *httpsig.Result) *Error {
	now := v.cfg.Now()
	skew := v.cfg.MaxSkew
	switch {
	case res.Created.IsZero() && v.cfg.MaxAge > 0:
		return &Error{Status: http.StatusUnauthorized, Code: CodeSignatureInvalid,
			Content: fmt.Sprintf("the request signature has no created parameter; signatures must be at most %s old", v.cfg.MaxAge)}
	case res.Created.After(now.Add(skew)):
		return &Error{Status: http.StatusUnauthorized, Code: CodeSignatureInvalid,
			Content: "the request signature's created time is in the future; check the signer's clock"}
	case v.cfg.MaxAge > 0 && now.Sub(res.Created) > v.cfg.MaxAge+skew:
		return &Error{Status: http.StatusUnauthorized, Code: CodeSignatureExpired,
			Content: fmt.Sprintf("the request signature was created %s ago; signatures must be at most %s old", now.Sub(res.Created).Truncate(time.Second), v.cfg.MaxAge)}
	case !res.Expires.IsZero() && now.After(res.Expires.Add(skew)):
		return &Error{Status: http.StatusUnauthorized, Code: CodeSignatureExpired,
			Content: "the request signature has expired (its expires parameter has passed)"}
	}
	return nil
}

// profileKeys returns the verification keys the profile publishes. The
// profile parser has already merged signing_keys and the draft's keys;
// mandate applies UCP's key rules (enc keys, key_ops without verify and
// unsupported curves are skipped).
func profileKeys(p *ucp.Profile) (*mandate.KeySet, error) {
	raw, err := json.Marshal(p.SigningKeys)
	if err != nil {
		return nil, err
	}
	if len(p.SigningKeys) == 0 {
		raw = []byte("[]")
	}
	return mandate.ParseKeySet(raw)
}

// profileError turns a failed profile fetch into a refusal, keeping the
// UCP code and status discovery assigned.
func profileError(err error) *Error {
	var de *discovery.Error
	if errors.As(err, &de) {
		status := de.Status()
		if status < 400 || status >= 500 {
			status = http.StatusFailedDependency
		}
		content := de.Content
		if content == "" {
			content = "the platform profile could not be used"
		}
		return &Error{Status: status, Code: de.Code,
			Content: "the signature cannot be verified: " + content, cause: err}
	}
	return &Error{Status: http.StatusFailedDependency, Code: discovery.CodeProfileUnreachable,
		Content: "the signature cannot be verified: the platform profile could not be fetched", cause: err}
}

// signatureError turns httpsig's verdict into a refusal.
func signatureError(err error) *Error {
	var he *httpsig.Error
	if !errors.As(err, &he) {
		// Not a verdict on the signature (httpsig found no key resolver,
		// say): the check could not run.
		return &Error{Status: http.StatusServiceUnavailable, Code: "unavailable", Content: "signature verification is unavailable",
			RetryAfter: 1, cause: err}
	}
	var content string
	switch he.Code {
	case httpsig.CodeSignatureMissing:
		content = "the request is signed only in part: Signature-Input and Signature must both be sent"
	case httpsig.CodeKeyNotFound:
		content = "the signature's keyid is not among the platform profile's signing keys"
	case httpsig.CodeDigestMismatch:
		content = "Content-Digest does not match the request body"
	case httpsig.CodeAlgorithmUnsupported:
		content = "the signing key's algorithm is not supported (ES256, ES384 or Ed25519)"
	case httpsig.CodeCoverageInsufficient:
		content = "the signature does not cover every component UCP requires"
	default:
		content = "the request signature does not verify"
	}
	if he.Reason != "" {
		content += " (" + he.Reason + ")"
	}
	return &Error{Status: he.Status(), Code: string(he.Code), Content: content, cause: err}
}
