package httpsig

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"

	"github.com/yaronf/httpsign"
)

// DefaultLabel is the signature label UCP uses.
const DefaultLabel = "sig1"

// SignerOptions tune a Signer. The zero value signs the UCP way.
type SignerOptions struct {
	// Label defaults to DefaultLabel ("sig1").
	Label string
	// Components, when set, replaces the UCP component selection, e.g.
	// for RFC 9421 test vectors or another profile. Listed headers must be
	// present on the message.
	Components []string
	// OmitCreated leaves out the created parameter (UCP makes it
	// optional). By default it is sent; responses always carry it.
	OmitCreated bool
}

// Signer signs HTTP requests and responses (RFC 9421) with one key. The
// algorithm follows from the key (ecdsa-p256-sha256, ecdsa-p384-sha384 or
// ed25519) and is never sent as an alg parameter, as UCP requires. A Signer
// is safe for concurrent use.
type Signer struct {
	priv  crypto.Signer
	keyID string
	opts  SignerOptions
}

// NewSigner returns a signer for an *ecdsa.PrivateKey (P-256 or P-384) or
// an ed25519.PrivateKey. keyID is sent as keyid and must match the kid the
// key is published under.
func NewSigner(key crypto.Signer, keyID string, opts *SignerOptions) (*Signer, error) {
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		if k.Curve != elliptic.P256() && k.Curve != elliptic.P384() {
			return nil, errors.New("httpsig: ECDSA keys must be P-256 or P-384")
		}
	case ed25519.PrivateKey:
	default:
		return nil, fmt.Errorf("httpsig: unsupported key type %T", key)
	}
	if keyID == "" {
		return nil, errors.New("httpsig: keyID is required")
	}
	s := &Signer{priv: key, keyID: keyID}
	if opts != nil {
		s.opts = *opts
	}
	if s.opts.Label == "" {
		s.opts.Label = DefaultLabel
	}
	return s, nil
}

// KeyID returns the keyid the signer sends.
func (s *Signer) KeyID() string { return s.keyID }

// SignRequest adds Content-Digest (when body is not empty), Signature-Input
// and Signature to req. body must be the exact bytes that will be sent; the
// caller keeps ownership of req.Body.
//
// The request is normalised so that what is signed is what a spec-following
// verifier derives: req.Host is set to the lowercased authority without the
// scheme's default port, and an empty path becomes "/". UCP covers
// @method, @authority and @path; @query when there is a query; ucp-agent
// when that header is present; idempotency-key on POST, PUT, PATCH and
// DELETE when present; content-digest and content-type with a body.
// Re-signing (e.g. on retry) replaces the previous signature.
func (s *Signer) SignRequest(req *http.Request, body []byte) error {
	if req == nil || req.URL == nil {
		return errors.New("httpsig: nil request")
	}
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	req.Host = NormalizeAuthority(host, req.URL.Scheme)
	if req.URL.Path == "" && req.URL.Opaque == "" {
		req.URL.Path = "/"
	}
	if err := setDigest(req.Header, body); err != nil {
		return err
	}
	components := s.opts.Components
	if components == nil {
		components = RequestComponents(req, len(body) > 0)
	}
	signer, err := s.httpsignSigner(components)
	if err != nil {
		return err
	}
	// httpsign fills in req.URL's host and scheme while parsing; sign a
	// shallow copy so the caller's URL is left as it was.
	c := *req
	u := *req.URL
	c.URL = &u
	c.Body = http.NoBody
	input, sig, err := httpsign.SignRequest(s.opts.Label, *signer, &c)
	if err != nil {
		return fmt.Errorf("httpsig: sign request: %w", err)
	}
	req.Header.Set("Signature-Input", input)
	req.Header.Set("Signature", sig)
	return nil
}

// SignResponse adds Content-Digest (when body is not empty),
// Signature-Input and Signature to h for a response with status and body.
// UCP covers @status, and content-digest and content-type with a body.
// Call it before WriteHeader.
func (s *Signer) SignResponse(status int, h http.Header, body []byte) error {
	if err := setDigest(h, body); err != nil {
		return err
	}
	components := s.opts.Components
	if components == nil {
		components = ResponseComponents(len(body) > 0)
	}
	signer, err := s.httpsignSigner(components)
	if err != nil {
		return err
	}
	res := &http.Response{StatusCode: status, Header: h, Body: http.NoBody}
	input, sig, err := httpsign.SignResponse(s.opts.Label, *signer, res, nil)
	if err != nil {
		return fmt.Errorf("httpsig: sign response: %w", err)
	}
	h.Set("Signature-Input", input)
	h.Set("Signature", sig)
	return nil
}

func (s *Signer) httpsignSigner(components []string) (*httpsign.Signer, error) {
	cfg := httpsign.NewSignConfig().SignAlg(false).SignCreated(!s.opts.OmitCreated).SetKeyID(s.keyID)
	fields := httpsign.Headers(components...)
	var (
		signer *httpsign.Signer
		err    error
	)
	switch k := s.priv.(type) {
	case *ecdsa.PrivateKey:
		if k.Curve == elliptic.P256() {
			signer, err = httpsign.NewP256Signer(*k, cfg, fields)
		} else {
			signer, err = httpsign.NewP384Signer(*k, cfg, fields)
		}
	case ed25519.PrivateKey:
		signer, err = httpsign.NewEd25519Signer(k, cfg, fields)
	}
	if err != nil {
		return nil, fmt.Errorf("httpsig: signer: %w", err)
	}
	return signer, nil
}

// setDigest sets Content-Digest: sha-256=:…: over body, or removes a stale
// one when there is no body.
func setDigest(h http.Header, body []byte) error {
	if len(body) == 0 {
		h.Del("Content-Digest")
		return nil
	}
	if h.Get("Content-Type") == "" {
		return errors.New("httpsig: a body needs a Content-Type to be signed")
	}
	d, err := contentDigest(body)
	if err != nil {
		return err
	}
	h.Set("Content-Digest", d)
	return nil
}

// contentDigest is the RFC 9530 Content-Digest value for body with
// sha-256: a one-member Dictionary whose value is a Byte Sequence.
func contentDigest(body []byte) (string, error) {
	sum := sha256.Sum256(body)
	return "sha-256=:" + base64.StdEncoding.EncodeToString(sum[:]) + ":", nil
}

// RequestComponents returns the components UCP requires a request
// signature to cover.
func RequestComponents(req *http.Request, hasBody bool) []string {
	c := []string{"@method", "@authority", "@path"}
	if req.URL.RawQuery != "" {
		c = append(c, "@query")
	}
	if req.Header.Get("UCP-Agent") != "" {
		c = append(c, "ucp-agent")
	}
	switch req.Method {
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		if req.Header.Get("Idempotency-Key") != "" {
			c = append(c, "idempotency-key")
		}
	}
	if hasBody {
		c = append(c, "content-digest", "content-type")
	}
	return c
}

// ResponseComponents returns the components UCP requires a response
// signature to cover.
func ResponseComponents(hasBody bool) []string {
	if hasBody {
		return []string{"@status", "content-digest", "content-type"}
	}
	return []string{"@status"}
}

// NormalizeAuthority returns host[:port] as RFC 9421 @authority wants it:
// the host lowercased and the default port of scheme dropped. With an empty
// scheme both 80 and 443 count as default, which is what a server behind a
// TLS-terminating proxy needs.
func NormalizeAuthority(hostport, scheme string) string {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return strings.ToLower(hostport)
	}
	scheme = strings.ToLower(scheme)
	if (port == "80" && scheme != "https") || (port == "443" && scheme != "http") || port == "" {
		port = ""
	}
	host = strings.ToLower(host)
	if port == "" {
		if strings.Contains(host, ":") {
			return "[" + host + "]"
		}
		return host
	}
	return net.JoinHostPort(host, port)
}
