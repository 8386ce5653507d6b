package oauth

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"unicode"

	"github.com/ucpbridge/ucpbridge/authserver/store"
)

// Dynamic client registration (RFC 7591) with the management endpoint's
// read and delete (RFC 7592), for what mcp-remote and desktop agents
// register: public native clients that sign buyers in through a loopback
// redirect. Anything else (a confidential client, a web redirect, another
// grant) is registered by an operator. Off unless
// Config.DynamicRegistration.

// Bounds on what a client may register.
const (
	maxRegisterBody   = 16 << 10
	maxClientName     = 100
	maxRedirectURIs   = 10
	maxRedirectURILen = 512
	// registeredPrefix starts every self-registered client id, so logs
	// and the buyer's page tell them apart at a glance.
	registeredPrefix = "ucpb_dcr_"
	prefixRegToken   = "ucpb_rat_"
)

// registration is the client metadata RFC 7591 §2 defines that this
// server reads; other members are ignored (§2: "MUST ignore any client
// metadata sent by the client that it does not understand").
type registration struct {
	RedirectURIs            []string `json:"redirect_uris"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
	GrantTypes              []string `json:"grant_types"`
	ResponseTypes           []string `json:"response_types"`
	ClientName              string   `json:"client_name"`
	Scope                   string   `json:"scope"`
}

// registrationResponse is the client information response (RFC 7591
// §3.2.1, RFC 7592 §3): the accepted metadata and the management
// credentials. A public client gets no secret.
type registrationResponse struct {
	ClientID                string   `json:"client_id"`
	ClientIDIssuedAt        int64    `json:"client_id_issued_at"`
	RegistrationAccessToken string   `json:"registration_access_token,omitempty"`
	RegistrationClientURI   string   `json:"registration_client_uri"`
	RedirectURIs            []string `json:"redirect_uris"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
	GrantTypes              []string `json:"grant_types"`
	ResponseTypes           []string `json:"response_types"`
	ClientName              string   `json:"client_name,omitempty"`
	Scope                   string   `json:"scope,omitempty"`
}

func errClientMetadata(desc string) *oauthError {
	return &oauthError{Code: "invalid_client_metadata", Description: desc, Status: http.StatusBadRequest}
}

func errRedirectURI(desc string) *oauthError {
	return &oauthError{Code: "invalid_redirect_uri", Description: desc, Status: http.StatusBadRequest}
}

// handleRegister registers a client (RFC 7591 §3).
func (s *Server) handleRegister(w http.ResponseWriter, r *http.Request) {
	// Each network registers a bounded number of clients: every one is a
	// row that stays until deleted.
	if ok, wait := s.regLim.allow(s.clientKey(r)); !ok {
		e := errSlowDown(wait)
		// The MCP SDK recognises this code as a rate limit.
		e.Code = "too_many_requests"
		s.writeError(w, r, e)
		return
	}
	if mt := r.Header.Get("Content-Type"); !strings.HasPrefix(mt, "application/json") {
		s.writeError(w, r, errInvalidRequest("registration takes application/json (RFC 7591)"))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxRegisterBody))
	if err != nil {
		s.writeError(w, r, errClientMetadata(fmt.Sprintf("the registration request must be JSON of at most %d bytes", maxRegisterBody)))
		return
	}
	var m registration
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&m); err != nil || dec.More() {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			s.writeError(w, r, errClientMetadata("client metadata "+quoteShort(te.Field)+" has the wrong type"))
			return
		}
		s.writeError(w, r, errClientMetadata("the registration request must be one JSON object"))
		return
	}
	c, oe := s.checkRegistration(&m)
	if oe != nil {
		s.writeError(w, r, oe)
		return
	}
	tok := newToken(prefixRegToken)
	c.RegistrationHash, c.CreatedAt = hashToken(tok), s.now()
	c.ID = randomID(registeredPrefix)
	if err := s.cfg.Store.CreateClient(r.Context(), c); err != nil {
		s.writeError(w, r, errServer(err))
		return
	}
	s.log.InfoContext(r.Context(), "client registered itself", "client_id", c.ID, "client_name", c.Name)
	resp := s.clientInformation(c)
	resp.RegistrationAccessToken = tok
	writeJSON(w, http.StatusCreated, resp)
}

// checkRegistration applies the rules to m and returns the client to
// store (without id, token or time).
func (s *Server) checkRegistration(m *registration) (*store.Client, *oauthError) {
	switch m.TokenEndpointAuthMethod {
	case "", "none":
	default:
		return nil, errClientMetadata("token_endpoint_auth_method must be none: only public clients register themselves")
	}
	if len(m.RedirectURIs) == 0 {
		return nil, errRedirectURI("redirect_uris is required")
	}
	if len(m.RedirectURIs) > maxRedirectURIs {
		return nil, errRedirectURI(fmt.Sprintf("at most %d redirect_uris", maxRedirectURIs))
	}
	var redirects []string
	for _, u := range m.RedirectURIs {
		if err := checkLoopbackRedirect(u); err != nil {
			return nil, errRedirectURI(fmt.Sprintf("redirect_uri %s: %v", quoteShort(u), err))
		}
		if !slices.Contains(redirects, u) {
			redirects = append(redirects, u)
		}
	}
	grants := m.GrantTypes
	if len(grants) == 0 {
		grants = []string{"authorization_code"} // RFC 7591 §2's default
	}
	for _, g := range grants {
		if g != "authorization_code" && g != "refresh_token" {
			return nil, errClientMetadata("grant_types may list only authorization_code and refresh_token, not " + quoteShort(g))
		}
	}
	if !slices.Contains(grants, "authorization_code") {
		return nil, errClientMetadata("grant_types must include authorization_code (response_types code needs it)")
	}
	responses := m.ResponseTypes
	if len(responses) == 0 {
		responses = []string{"code"}
	}
	for _, rt := range responses {
		if rt != "code" {
			return nil, errClientMetadata("response_types may list only code, not " + quoteShort(rt))
		}
	}
	name := strings.TrimSpace(m.ClientName)
	// Printable means letters, marks, numbers, punctuation, symbols and
	// the ASCII space: no control, format (bidi overrides, zero-width),
	// separator or private-use characters, which could make the name the
	// consent page shows read as another app's.
	if len([]rune(name)) > maxClientName || !store.ValidText(name) || strings.IndexFunc(name, notPrintable) >= 0 {
		return nil, errClientMetadata(fmt.Sprintf("client_name must be at most %d printable characters", maxClientName))
	}
	if name == "" {
		name = "Unnamed app" // the consent page names every client
	}
	// Scopes this server does not know (openid, profile, …) are dropped,
	// not refused: clients send them by habit. What is kept bounds what
	// the client may ask buyers for.
	var scopes []string
	for _, sc := range strings.Fields(m.Scope) {
		if _, ok := scopeByName(sc); ok && !slices.Contains(scopes, sc) {
			scopes = append(scopes, sc)
		}
	}
	return &store.Client{Type: store.ClientInstalled, Name: name, Role: store.RoleApp, RedirectURIs: redirects,
		GrantTypes: slices.Compact(slices.Sorted(slices.Values(grants))), Scopes: scopes}, nil
}

func notPrintable(r rune) bool { return !unicode.IsPrint(r) }

// checkLoopbackRedirect accepts http://localhost, http://127.0.0.1 and
// http://[::1], with any real port or none, spelled exactly so (lower
// case, no user information, no fragment, no other spelling of a
// loopback address): what a native app listening on the buyer's machine
// registers (RFC 8252 §7.3), and nothing a browser could resolve
// elsewhere.
func checkLoopbackRedirect(raw string) error {
	if len(raw) > maxRedirectURILen || !store.ValidText(raw) {
		return fmt.Errorf("must be at most %d bytes of UTF-8", maxRedirectURILen)
	}
	if strings.ContainsAny(raw, "#\\@ \t\r\n") {
		return errors.New("must not contain a fragment, user information, backslashes or spaces")
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "http" || u.Opaque != "" || u.User != nil || u.Fragment != "" {
		return errors.New("must be an http URL on a loopback host")
	}
	host := u.Hostname()
	if host != "localhost" && host != "127.0.0.1" && host != "::1" {
		return errors.New("the host must be localhost, 127.0.0.1 or [::1]")
	}
	if !loopbackPort(u) {
		return errors.New("the port must be 1-65535")
	}
	// The URL must read exactly as written up to its path: no escapes or
	// odd forms in the authority that another parser could read apart.
	if rest, ok := strings.CutPrefix(raw, "http://"+u.Host); !ok || (rest != "" && rest[0] != '/' && rest[0] != '?') {
		return errors.New("must be spelled http://host[:port]/path")
	}
	return nil
}

// clientInformation is the metadata of a self-registered client as the
// registration and read responses show it.
func (s *Server) clientInformation(c *store.Client) *registrationResponse {
	return &registrationResponse{ClientID: c.ID, ClientIDIssuedAt: c.CreatedAt.Unix(),
		RegistrationClientURI: s.cfg.Issuer + PathRegister + "/" + url.PathEscape(c.ID),
		RedirectURIs:          c.RedirectURIs, TokenEndpointAuthMethod: "none", GrantTypes: c.GrantTypes,
		ResponseTypes: []string{"code"}, ClientName: c.Name, Scope: strings.Join(c.Scopes, " ")}
}

// managedClient authenticates an RFC 7592 request: the registration
// access token as a bearer, for the client named in the path. An
// unknown client, one that did not register itself and a wrong token
// are all 401 invalid_token (RFC 7592 §2), with the same work done.
func (s *Server) managedClient(w http.ResponseWriter, r *http.Request) (*store.Client, bool) {
	refuse := func(desc string) (*store.Client, bool) {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token", error_description="`+desc+`"`)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_token", "error_description": desc})
		return nil, false
	}
	scheme, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return refuse("the registration access token is required as a Bearer token")
	}
	got := hashToken(strings.TrimSpace(tok))
	c, err := s.cfg.Store.Client(r.Context(), r.PathValue("client_id"))
	switch {
	case errors.Is(err, store.ErrNotFound):
		return refuse("the registration access token is not valid for this client")
	case err != nil:
		s.writeError(w, r, errServer(err))
		return nil, false
	case !c.SelfRegistered() || !equalHash(got, c.RegistrationHash):
		return refuse("the registration access token is not valid for this client")
	}
	return c, true
}

// handleRegisteredRead returns a self-registered client's metadata (RFC
// 7592 §2.1).
func (s *Server) handleRegisteredRead(w http.ResponseWriter, r *http.Request) {
	c, ok := s.managedClient(w, r)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, s.clientInformation(c))
}

// handleRegisteredDelete deletes a self-registered client and revokes
// everything issued to it (RFC 7592 §2.3).
func (s *Server) handleRegisteredDelete(w http.ResponseWriter, r *http.Request) {
	c, ok := s.managedClient(w, r)
	if !ok {
		return
	}
	if err := s.cfg.Store.DeleteClient(r.Context(), c.ID, s.now()); err != nil && !errors.Is(err, store.ErrNotFound) {
		s.writeError(w, r, errServer(err))
		return
	}
	s.log.InfoContext(r.Context(), "self-registered client deleted", "client_id", c.ID)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}
