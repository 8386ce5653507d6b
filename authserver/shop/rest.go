package shop

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/netip"
	"strconv"
	"strings"

	"github.com/ucpbridge/ucpbridge/authserver/guard"
	"github.com/ucpbridge/ucpbridge/authserver/store"
	"github.com/ucpbridge/ucpbridge/ucpclient/discovery"
	"github.com/ucpbridge/ucpbridge/ucpclient/ucp"
)

func isNotFound(err error) bool { return errors.Is(err, store.ErrNotFound) }

func (s *Service) routes() http.Handler {
	mux := http.NewServeMux()
	profile := s.limitNetwork(s.serveProfile, writeProtocolError)
	mux.HandleFunc("GET /.well-known/ucp", profile)
	mux.HandleFunc("GET /s/{slug}/.well-known/ucp", profile)
	mux.HandleFunc("GET "+PathResourceMetadata+"/{path...}", s.limitNetwork(s.serveResourceMetadata, writeProtocolError))
	for _, prefix := range []string{"", "/s/{slug}"} {
		mux.Handle("POST "+prefix+"/catalog/search", s.rest(OpSearchCatalog))
		mux.Handle("POST "+prefix+"/catalog/lookup", s.rest(OpLookupCatalog))
		mux.Handle("POST "+prefix+"/catalog/product", s.rest(OpGetProduct))
	}
	mux.Handle("POST /s/{slug}/carts", s.rest(OpCreateCart))
	mux.Handle("GET /s/{slug}/carts/{id}", s.rest(OpGetCart))
	mux.Handle("PUT /s/{slug}/carts/{id}", s.rest(OpUpdateCart))
	mux.Handle("POST /s/{slug}/carts/{id}/cancel", s.rest(OpCancelCart))
	mux.Handle("POST /s/{slug}/checkout-sessions", s.rest(OpCreateCheckout))
	mux.Handle("GET /s/{slug}/checkout-sessions/{id}", s.rest(OpGetCheckout))
	mux.Handle("PUT /s/{slug}/checkout-sessions/{id}", s.rest(OpUpdateCheckout))
	mux.Handle("POST /s/{slug}/checkout-sessions/{id}/complete", s.rest(OpCompleteCheckout))
	mux.Handle("POST /s/{slug}/checkout-sessions/{id}/cancel", s.rest(OpCancelCheckout))
	mux.Handle("POST /s/{slug}/checkout-sessions/{id}/prepare-payment", s.rest(OpPrepareCheckoutPayment))
	mux.Handle("GET /s/{slug}/orders/{id}", s.rest(OpGetOrder))
	mux.Handle("POST /s/{slug}/locations/search", s.rest(OpSearchLocations))
	mux.Handle("POST /s/{slug}/locations/lookup", s.rest(OpLookupLocations))
	mux.Handle("GET /s/{slug}/settings/webhooks", s.rest(OpGetWebhookSettings))
	mux.Handle("PUT /s/{slug}/settings/webhooks", s.rest(OpUpdateWebhookSettings))
	hosted := s.limitNetwork(s.serveContinue, refusePage)
	mux.HandleFunc("GET /s/{slug}/checkout-sessions/{id}/continue", hosted)
	mux.HandleFunc("POST /s/{slug}/checkout-sessions/{id}/continue", hosted)
	mux.HandleFunc("GET /s/{slug}/policies/{doc}", s.servePolicy)
	mux.Handle("/s/{slug}/mcp", s.mcpHandler(false))
	mux.Handle("/mcp", s.mcpHandler(true))
	return s.signResponses(mux)
}

// serveProfile serves a business profile: public, cacheable, no
// per-session data (ucp.md §1.1).
func (s *Service) serveProfile(w http.ResponseWriter, r *http.Request) {
	var sh *shopInfo
	if slug := r.PathValue("slug"); slug != "" {
		var err error
		if !store.ValidText(slug) {
			err = store.ErrNotFound
		} else {
			sh, err = s.shop(r.Context(), slug)
		}
		if isNotFound(err) {
			writeProtocolError(w, &ProtocolError{Status: http.StatusNotFound, Code: "store_not_found", Content: "no store " + slug})
			return
		} else if err != nil {
			s.failure(r.Context(), "shop: load store", err, "store", slug)
			writeProtocolError(w, unavailable("the store is unavailable").Err)
			return
		}
	}
	bp, err := s.businessProfile(r.Context(), sh)
	if err != nil {
		s.failure(r.Context(), "shop: profile", err)
		writeProtocolError(w, unavailable("the store is unavailable").Err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Write(bp.body)
}

// rest adapts one operation to REST.
func (s *Service) rest(op Op) http.Handler {
	info := ops[op]
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rid := r.Header.Get("Request-Id"); rid != "" && len(rid) <= 200 {
			w.Header().Set("Request-Id", rid)
		}
		var body []byte
		if r.Method == http.MethodPost || r.Method == http.MethodPut {
			var err error
			body, err = io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBody))
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				writeProtocolError(w, &ProtocolError{Status: http.StatusRequestEntityTooLarge, Code: "payload_too_large",
					Content: "the request body is larger than " + strconv.FormatInt(s.cfg.MaxBody, 10) + " bytes"})
				return
			} else if err != nil {
				return
			}
			// The guard reads the body again to check a request
			// signature's Content-Digest: hand it the bytes as they came.
			r.Body = io.NopCloser(bytes.NewReader(body))
			if len(bytes.TrimSpace(body)) == 0 {
				body = nil
			} else if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(strings.ToLower(ct), "application/json") {
				writeProtocolError(w, &ProtocolError{Status: http.StatusUnsupportedMediaType, Code: "unsupported_media_type",
					Content: "send application/json"})
				return
			}
		}
		if info.bodyKey == "" {
			body = nil // e.g. cancel: the spec sends an empty body
		}
		addr := s.clientAddr(r)
		// Several Idempotency-Key lines join into one value that no key
		// matches (it holds a space): refused, never one of them picked.
		keys := r.Header.Values("Idempotency-Key")
		key := strings.Join(keys, ", ")
		req := &Request{Op: op, Shop: r.PathValue("slug"), ID: r.PathValue("id"), Body: body,
			IdempotencyKey: key, IdempotencyKeyEmpty: len(keys) > 0 && key == "", BuyerType: "agent", ClientAddr: addr}
		if req.Shop == "" {
			req.Resource = s.cfg.BaseURL + "/catalog"
		}
		if h := r.Header.Get("UCP-Agent"); h != "" {
			profile, _, err := discovery.ParseUCPAgent(h)
			if err != nil {
				writeProtocolError(w, &ProtocolError{Status: http.StatusBadRequest, Code: discovery.CodeInvalidProfileURL,
					Content: "UCP-Agent must be a structured-field dictionary with a profile string"})
				return
			}
			req.Agent = profile
		}
		p, perr := s.authenticate(r, addr)
		if perr != nil {
			writeProtocolError(w, perr)
			return
		}
		req.Principal = p
		rep := s.Do(r.Context(), req)
		if rep.Err != nil {
			writeProtocolError(w, rep.Err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(rep.Status)
		w.Write(rep.Body)
	})
}

// authenticate identifies the caller; addr is its network, charged for
// refused credentials.
func (s *Service) authenticate(r *http.Request, addr netip.Addr) (*guard.Principal, *ProtocolError) {
	if s.cfg.Guard == nil {
		return guard.Anonymous(), nil
	}
	if e := s.credentialsBlocked(r.Context(), addr); e != nil {
		return nil, e
	}
	p, err := s.cfg.Guard.Identify(r)
	if err != nil {
		s.credentialFailed(addr, err)
		resource := s.cfg.BaseURL + strings.TrimSuffix(r.URL.Path, "/")
		if slug := r.PathValue("slug"); slug != "" && !strings.HasSuffix(r.URL.Path, "/mcp") {
			resource = s.storeURL(slug)
		}
		return nil, s.guardError(err, resource)
	}
	if p == nil {
		p = guard.Anonymous()
	}
	return p, nil
}

// guardError renders the guard's refusal in the stores' terms: the HTTP
// status it chose, its challenge pointing at resource's protected-resource
// metadata, the UCP authentication JSON-RPC code.
func (s *Service) guardError(err error, resource string) *ProtocolError {
	var ge *guard.Error
	if errors.As(err, &ge) {
		return &ProtocolError{Status: ge.Status, RPCCode: rpcAuth, Code: ge.Code, Content: ge.Content,
			WWWAuthenticate: ge.Challenge(s.cfg.BaseURL, s.resourceMetadata(cmpOr(resource, s.cfg.BaseURL+"/mcp"))), RetryAfter: ge.RetryAfter}
	}
	return &ProtocolError{Status: http.StatusUnauthorized, RPCCode: rpcAuth, Code: "unauthorized",
		Content: "the credentials are not valid", WWWAuthenticate: `Bearer error="invalid_token"`}
}

// writeProtocolError writes the flat {code, content} body (ucp.md §7).
func writeProtocolError(w http.ResponseWriter, e *ProtocolError) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	if e.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(e.RetryAfter))
	}
	if e.WWWAuthenticate != "" {
		h.Set("WWW-Authenticate", e.WWWAuthenticate)
	}
	w.WriteHeader(e.Status)
	// UCP's protocol-error body is flat {code, content}; its identity
	// linking examples answer 401 and 403 with messages instead. Both
	// shapes ride along for those, so either reading finds the code.
	var msgs []ucp.Message
	if e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden {
		msgs = []ucp.Message{{Type: "error", Code: e.Code, Content: e.Content, Severity: ucp.SeverityUnrecoverable}}
	}
	json.NewEncoder(w).Encode(struct {
		Code        string        `json:"code"`
		Content     string        `json:"content"`
		ContinueURL string        `json:"continue_url,omitempty"`
		Messages    []ucp.Message `json:"messages,omitempty"`
	}{e.Code, e.Content, e.ContinueURL, msgs})
}
