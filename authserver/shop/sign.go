package shop

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dunglas/httpsfv"
	"github.com/yaronf/httpsign"

	"github.com/ucpbridge/ucpbridge/authserver/rpcwire"
	"github.com/ucpbridge/ucpbridge/authserver/store"
	"github.com/ucpbridge/ucpbridge/mandate"
	"github.com/ucpbridge/ucpbridge/ucpclient/httpsig"
)

// wantsSignature: the platform asks for signed responses by signing its
// request or sending Accept-Signature (RFC 9421 §5).
func wantsSignature(r *http.Request) bool {
	return r.Header.Get("Accept-Signature") != "" || r.Header.Get("Signature-Input") != ""
}

// signResponses signs store responses with the store's key when asked
// (wantsSignature): RFC 9421, covering UCP's response set and whatever of
// it Accept-Signature adds (acceptSignature). Only per-store paths are
// signed: the keys are the stores'.
func (s *Service) signResponses(next http.Handler) http.Handler {
	var keys sync.Map // slug -> *mandate.SigningKey
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		slug, ok := storeSlug(r.URL.Path)
		if !ok || !store.ValidText(slug) || !wantsSignature(r) || r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/mcp") {
			next.ServeHTTP(w, r)
			return
		}
		var res rpcwire.Response
		next.ServeHTTP(&res, r)
		key, _ := keys.Load(slug)
		if key == nil {
			// Only stores that exist have keys: asking for signatures on
			// made-up slugs must not mint keys (or fill this map).
			_, err := s.cfg.Store.Shop(r.Context(), slug)
			var k *mandate.SigningKey
			if err == nil {
				k, err = s.cfg.Keys.ShopKey(r.Context(), slug)
			}
			if err != nil {
				// Unknown store (the handler answered 404) or no key:
				// send the response unsigned rather than fail it.
				res.Send(w)
				return
			}
			key, _ = keys.LoadOrStore(slug, k)
		}
		want := acceptSignature(r.Header.Values("Accept-Signature"))
		if err := signResponse(key.(*mandate.SigningKey), want, res.Status(), res.Header(), res.Body()); err != nil {
			s.log.ErrorContext(r.Context(), "shop: sign response", "err", err)
		}
		res.Send(w)
	})
}

// Bounds on what a platform may ask a store to sign.
const (
	// maxSignatureParam bounds a requested nonce or tag: they are echoed
	// into a response header, and a real nonce is a few dozen bytes.
	maxSignatureParam = 256
	// responseSignatureTTL is how long a response signature lasts when
	// the platform asks for an expires parameter.
	responseSignatureTTL = 5 * time.Minute
)

// signatureRequest is what a platform asked for in Accept-Signature,
// reduced to what a store honours.
type signatureRequest struct {
	label string
	// components are the asked-for components that belong to UCP's
	// response set.
	components []string
	nonce, tag string
	expires    bool
}

// acceptSignature reads an Accept-Signature field (RFC 9421 §5.1: a
// Dictionary of label = inner list of component ids with signature
// parameters) into what the store signs. Without a usable request the
// store signs the UCP default: label sig1, the mandatory components.
//
// What is honoured, and why:
//
//   - The label, so the platform finds the signature it asked for.
//   - Components in UCP's response set (@status, content-digest,
//     content-type), on top of the mandatory ones. Others (other headers,
//     req-bound request components, derived components of requests) are
//     ignored: UCP verifiers do not ask for them, and a store does not
//     sign whatever a caller names.
//   - nonce and tag are put in the signature parameters as asked, so the
//     platform can bind the response to its request; expires (any value)
//     gets responseSignatureTTL after signing.
//   - keyid and alg are not: a store has one key, which its profile
//     publishes, and UCP forbids the alg parameter.
//
// Only the first member is honoured: UCP uses one signature, and each one
// costs the store an ECDSA signing that any caller could multiply. A
// member whose nonce or tag is not a short string cannot be honoured, and
// the default is signed instead; the platform, not finding its nonce,
// treats the response as unsigned.
func acceptSignature(values []string) signatureRequest {
	def := signatureRequest{label: httpsig.DefaultLabel}
	if len(values) == 0 {
		return def
	}
	dict, err := httpsfv.UnmarshalDictionary(values)
	if err != nil {
		return def
	}
	for _, label := range dict.Names() {
		m, _ := dict.Get(label)
		list, ok := m.(httpsfv.InnerList)
		if !ok {
			continue
		}
		want := signatureRequest{label: label}
		for _, item := range list.Items {
			name, ok := item.Value.(string)
			if !ok || (item.Params != nil && len(item.Params.Names()) > 0) || !inUCPResponseSet(name) || slices.Contains(want.components, name) {
				continue
			}
			want.components = append(want.components, name)
		}
		if list.Params != nil {
			for _, p := range []struct {
				name string
				dst  *string
			}{{"nonce", &want.nonce}, {"tag", &want.tag}} {
				v, ok := list.Params.Get(p.name)
				if !ok {
					continue
				}
				str, isString := v.(string)
				if !isString || str == "" || len(str) > maxSignatureParam {
					return def
				}
				*p.dst = str
			}
			_, want.expires = list.Params.Get("expires")
		}
		return want
	}
	return def
}

// inUCPResponseSet reports whether c is a component UCP signs responses
// with (signatures.md).
func inUCPResponseSet(c string) bool {
	switch c {
	case "@status", "content-digest", "content-type":
		return true
	}
	return false
}

// covered returns the components to sign, in UCP's order: @status always;
// content-digest and content-type when there is a body (UCP's rule) or
// when asked for (a digest of empty content proves the content empty);
// content-type only when the response has one.
func (want signatureRequest) covered(h http.Header, hasBody bool) []string {
	c := []string{"@status"}
	if hasBody || slices.Contains(want.components, "content-digest") {
		c = append(c, "content-digest")
	}
	if (hasBody || slices.Contains(want.components, "content-type")) && h.Get("Content-Type") != "" {
		c = append(c, "content-type")
	}
	return c
}

// signResponse adds Content-Digest (when covered), Signature-Input and
// Signature to h for a response with status and body. It signs with
// httpsign directly because httpsig.Signer has no nonce, tag or expires;
// the profile is the same (no alg parameter, created always, raw r‖s).
func signResponse(key *mandate.SigningKey, want signatureRequest, status int, h http.Header, body []byte) error {
	components := want.covered(h, len(body) > 0)
	if slices.Contains(components, "content-digest") {
		sum := sha256.Sum256(body)
		h.Set("Content-Digest", "sha-256=:"+base64.StdEncoding.EncodeToString(sum[:])+":")
	} else {
		h.Del("Content-Digest")
	}
	cfg := httpsign.NewSignConfig().SignAlg(false).SignCreated(true).SetKeyID(key.KeyID())
	if want.nonce != "" {
		cfg = cfg.SetNonce(want.nonce)
	}
	if want.tag != "" {
		cfg = cfg.SetTag(want.tag)
	}
	if want.expires {
		// httpsign stamps created from the wall clock, so expires is
		// reckoned from it too rather than from the service's clock.
		cfg = cfg.SetExpires(time.Now().Add(responseSignatureTTL).Unix())
	}
	signer, err := httpsign.NewP256Signer(*key.PrivateKey(), cfg, httpsign.Headers(components...))
	if err != nil {
		return fmt.Errorf("signer: %w", err)
	}
	res := &http.Response{StatusCode: status, Header: h, Body: http.NoBody}
	input, sig, err := httpsign.SignResponse(want.label, *signer, res, nil)
	if err != nil {
		return fmt.Errorf("sign: %w", err)
	}
	h.Set("Signature-Input", input)
	h.Set("Signature", sig)
	return nil
}

// storeSlug extracts the slug of a /s/{slug}/… path.
func storeSlug(path string) (string, bool) {
	rest, ok := strings.CutPrefix(path, "/s/")
	if !ok {
		return "", false
	}
	slug, _, _ := strings.Cut(rest, "/")
	return slug, slug != ""
}
