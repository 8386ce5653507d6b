package shop

import (
	"bytes"
	"net/http"
	"strings"
	"sync"

	"github.com/ucpbridge/ucpbridge/authserver/store"
	"github.com/ucpbridge/ucpbridge/mandate"
	"github.com/ucpbridge/ucpbridge/ucpclient/httpsig"
)

// bufferedResponse collects a handler's response so it can be signed or
// rewritten before it is sent.
type bufferedResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func newBuffered() *bufferedResponse { return &bufferedResponse{header: http.Header{}} }

func (b *bufferedResponse) Header() http.Header { return b.header }
func (b *bufferedResponse) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	return b.body.Write(p)
}
func (b *bufferedResponse) WriteHeader(status int) {
	if b.status == 0 {
		b.status = status
	}
}

func (b *bufferedResponse) flush(w http.ResponseWriter) {
	for k, v := range b.header {
		w.Header()[k] = v
	}
	if b.status == 0 {
		b.status = http.StatusOK
	}
	w.WriteHeader(b.status)
	w.Write(b.body.Bytes())
}

// wantsSignature: the platform asks for signed responses by signing its
// request or sending Accept-Signature (RFC 9421 §5).
func wantsSignature(r *http.Request) bool {
	return r.Header.Get("Accept-Signature") != "" || r.Header.Get("Signature-Input") != ""
}

// signResponses signs store responses (RFC 9421, the store's key, label
// sig1, @status plus content-digest and content-type) when asked. Only
// per-store paths are signed: the keys are the stores'.
func (s *Service) signResponses(next http.Handler) http.Handler {
	var signers sync.Map // slug -> *httpsig.Signer
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		slug, ok := storeSlug(r.URL.Path)
		if !ok || !store.ValidText(slug) || !wantsSignature(r) || r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/mcp") {
			next.ServeHTTP(w, r)
			return
		}
		buf := newBuffered()
		next.ServeHTTP(buf, r)
		if buf.status == 0 {
			buf.status = http.StatusOK
		}
		signer, _ := signers.Load(slug)
		if signer == nil {
			// Only stores that exist have keys: asking for signatures on
			// made-up slugs must not mint keys (or fill this map).
			_, err := s.cfg.Store.Shop(r.Context(), slug)
			var key *mandate.SigningKey
			if err == nil {
				key, err = s.cfg.Keys.ShopKey(r.Context(), slug)
			}
			if err == nil {
				signer, err = httpsig.NewSigner(key.PrivateKey(), key.KeyID(), nil)
			}
			if err != nil {
				// Unknown store (the handler answered 404) or no key:
				// send the response unsigned rather than fail it.
				buf.flush(w)
				return
			}
			signers.Store(slug, signer)
		}
		if err := signer.(*httpsig.Signer).SignResponse(buf.status, buf.header, buf.body.Bytes()); err != nil {
			s.log.ErrorContext(r.Context(), "shop: sign response", "err", err)
		}
		buf.flush(w)
	})
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
