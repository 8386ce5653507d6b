package oauth

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"

	"github.com/ucpbridge/ucpbridge/authserver/oauth/cimd"
	"github.com/ucpbridge/ucpbridge/authserver/store"
)

// maxFormBytes bounds OAuth form bodies.
const maxFormBytes = 64 << 10

func parseForm(r *http.Request) error {
	if r.PostForm != nil {
		return nil
	}
	r.Body = http.MaxBytesReader(nil, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		return err
	}
	return cleanValues(r.Form)
}

// cleanValues refuses parameters that are not valid UTF-8 or contain NUL:
// no OAuth value has them, and PostgreSQL would turn them into a 500.
func cleanValues(v url.Values) error {
	for k, vals := range v {
		for _, s := range append(vals, k) {
			if !store.ValidText(s) {
				return errors.New("parameters must be UTF-8 without NUL")
			}
		}
	}
	return nil
}

// client is a resolved client, registered or CIMD.
type client struct {
	ID           string
	Name         string
	Type         store.ClientType
	SecretHash   []byte
	RedirectURIs []string
	GrantTypes   []string
	Scopes       []string // empty: any catalogue scope
	Developers   []string
	CIMD         bool
	// SelfRegistered: the client registered itself (RFC 7591); its name
	// is unverified.
	SelfRegistered bool
	Role           store.ClientRole
	Store          string // a merchant client's store
}

func (c *client) confidential() bool { return len(c.SecretHash) > 0 }

// allows reports whether the client may use grant. Without a registered
// list, a client gets the buyer flow: authorization_code and refresh_token.
func (c *client) allows(grant string) bool {
	if len(c.GrantTypes) == 0 {
		return grant == "authorization_code" || grant == "refresh_token"
	}
	return slices.Contains(c.GrantTypes, grant)
}

// resolveClient finds a registered client or fetches a CIMD document for
// a request from ip.
func (s *Server) resolveClient(ctx context.Context, ip, id string) (*client, error) {
	if id == "" {
		return nil, errInvalidClient("client_id is required")
	}
	if s.cfg.CIMD != nil && s.cfg.CIMD.IsClientID(id) {
		// Fetch slots are shared by everyone: one network naming slow
		// documents must not hold them all.
		if !s.cimdSlots.take(ip) {
			return nil, &oauthError{Code: "temporarily_unavailable", Description: "too many client metadata fetches from your network; retry shortly",
				Status: http.StatusServiceUnavailable}
		}
		defer s.cimdSlots.give(ip)
		doc, err := s.cfg.CIMD.Fetch(ctx, id)
		if err != nil {
			var ce *cimd.Error
			if errors.As(err, &ce) {
				return nil, &oauthError{Code: "invalid_client", Description: "client metadata document refused: " + ce.Reason, Status: http.StatusUnauthorized, cause: err}
			}
			return nil, errServer(err)
		}
		if doc.TokenEndpointAuthMethod != "none" {
			// An asymmetric client must authenticate; until private_key_jwt
			// is implemented, treating it as public would let a stolen
			// refresh token work without the client's key.
			return nil, errInvalidClient("token_endpoint_auth_method " + quoteShort(doc.TokenEndpointAuthMethod) + " is not supported; use none")
		}
		name := doc.ClientName
		if name == "" {
			name = id
		}
		return &client{ID: id, Name: name, Type: store.ClientInstalled, RedirectURIs: doc.RedirectURIs,
			GrantTypes: doc.GrantTypes, Scopes: strings.Fields(doc.Scope), CIMD: true}, nil
	}
	c, err := s.cfg.Store.Client(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errInvalidClient("unknown client")
	}
	if err != nil {
		return nil, errServer(err)
	}
	return &client{ID: c.ID, Name: c.Name, Type: c.Type, SecretHash: c.SecretHash, RedirectURIs: c.RedirectURIs,
		GrantTypes: c.GrantTypes, Scopes: c.Scopes, Developers: c.Developers, Role: c.Role, Store: c.Store,
		SelfRegistered: c.SelfRegistered()}, nil
}

// formClient parses a form POST and authenticates its client, writing
// the OAuth error itself when either fails.
func (s *Server) formClient(w http.ResponseWriter, r *http.Request) (*client, bool) {
	if err := parseForm(r); err != nil {
		s.writeError(w, r, errInvalidRequest("malformed form body"))
		return nil, false
	}
	c, oe := s.authenticateClient(r)
	if oe != nil {
		s.writeError(w, r, oe)
		return nil, false
	}
	// A public client "authenticates" by naming its id, which anyone can
	// do: charging its bucket now would let a stranger empty it and deny
	// the real client its tokens. Its grants charge it once the caller
	// has proved something (chargeClient); until then only the per-IP
	// limit applies.
	if c.confidential() {
		if oe := s.chargeClient(c); oe != nil {
			s.writeError(w, r, oe)
			return nil, false
		}
	}
	return c, true
}

// chargeClient takes a token from c's own bucket: for a confidential
// client once its secret checked out (formClient), for a public client
// once the caller proved it acts for the client with a valid code and
// verifier (grantCode) or a valid refresh token (grantRefresh). Charged
// before the code or token is used, so a refused caller can retry with it.
func (s *Server) chargeClient(c *client) *oauthError {
	if ok, wait := s.cliLim.allow(c.ID); !ok {
		return errSlowDown(wait)
	}
	return nil
}

// authenticateClient applies the token-endpoint client authentication:
// client_secret_basic, client_secret_post or none (public clients). Only
// one method per request.
func (s *Server) authenticateClient(r *http.Request) (*client, *oauthError) {
	id, secret, basic := r.BasicAuth()
	if basic {
		if r.PostForm.Has("client_secret") {
			return nil, errInvalidRequest("use one client authentication method")
		}
		var err1, err2 error
		id, err1 = url.QueryUnescape(id)
		secret, err2 = url.QueryUnescape(secret)
		if err1 != nil || err2 != nil {
			return nil, errInvalidClient("malformed Basic credentials")
		}
		// The form was checked by parseForm; the header was not.
		if !store.ValidText(id) || !store.ValidText(secret) {
			return nil, errInvalidRequest("parameters must be UTF-8 without NUL")
		}
		if f := r.PostForm.Get("client_id"); f != "" && f != id {
			return nil, errInvalidRequest("client_id differs from the authenticated client")
		}
	} else {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	c, err := s.resolveClient(r.Context(), s.clientKey(r), id)
	if err != nil {
		var oe *oauthError
		if errors.As(err, &oe) {
			return nil, oe
		}
		return nil, errServer(err)
	}
	switch {
	case c.confidential() && !equalHash(hashToken(secret), c.SecretHash):
		return nil, errInvalidClient("client authentication failed")
	case !c.confidential() && secret != "":
		return nil, errInvalidClient("public clients have no secret")
	}
	return c, nil
}

// ErrInvalidAPIKey is returned by ValidateAPIKey for malformed keys,
// unknown clients and wrong secrets alike.
var ErrInvalidAPIKey = errors.New("oauth: invalid API key")

// ErrNotPlatformKey is returned by ValidateAPIKey for a correct secret of
// a client that is not a platform application (a merchant's or a script
// app's): those authenticate at the token endpoint, never as X-API-Key.
var ErrNotPlatformKey = errors.New("oauth: the API key's client is not a platform application")

// ValidateAPIKey checks a platform API key, "<client_id>.<client_secret>"
// (the Artos format), against the confidential client's stored secret
// hash. It returns the client id.
func (s *Server) ValidateAPIKey(ctx context.Context, key string) (string, error) {
	i := strings.LastIndexByte(key, '.')
	if i <= 0 || i == len(key)-1 || len(key) > 512 || !store.ValidText(key) {
		return "", ErrInvalidAPIKey
	}
	id, secret := key[:i], key[i+1:]
	c, err := s.cfg.Store.Client(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		hashToken(secret) // same work as a known client
		return "", ErrInvalidAPIKey
	}
	if err != nil {
		return "", err
	}
	if !equalHash(c.SecretHash, hashToken(secret)) {
		return "", ErrInvalidAPIKey
	}
	if c.Role != store.RolePlatform {
		return "", ErrNotPlatformKey
	}
	return c.ID, nil
}

// slots bounds concurrent work per key (a client network).
type slots struct {
	max  int
	mu   sync.Mutex
	used map[string]int
}

func newSlots(max int) *slots { return &slots{max: max, used: map[string]int{}} }

func (s *slots) take(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.used[key] >= s.max {
		return false
	}
	s.used[key]++
	return true
}

func (s *slots) give(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.used[key]--; s.used[key] <= 0 {
		delete(s.used, key)
	}
}
