package oauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/ucpbridge/ucpbridge/authserver/store"
	"github.com/ucpbridge/ucpbridge/ucpclient/netguard"
)

// ResourceError is a protected resource a platform may not register:
// why, in a sentence.
type ResourceError struct {
	Resource string
	Reason   string
}

func (e *ResourceError) Error() string {
	return fmt.Sprintf("oauth: resource %q: %s", e.Resource, e.Reason)
}

// CheckResourceURL applies the rules for a resource a platform runs (an
// MCP bridge's endpoint): an absolute https URL, or plain http on a
// loopback host (127.0.0.1, [::1], localhost); no user information, no
// fragment, no query. It is compared as an exact string afterwards, so
// it is also refused when it does not read back the same (a different
// spelling would be another resource). A *ResourceError says why.
func CheckResourceURL(resource string) error {
	bad := func(reason string) error { return &ResourceError{Resource: resource, Reason: reason} }
	if len(resource) > maxParamLen || !store.ValidText(resource) {
		return bad(fmt.Sprintf("must be UTF-8 text of at most %d bytes", maxParamLen))
	}
	u, err := url.Parse(resource)
	switch {
	case err != nil || !u.IsAbs() || u.Host == "" || u.Opaque != "":
		return bad("must be an absolute http(s) URL")
	case strings.ContainsAny(resource, "#\\ \t\r\n") || u.Fragment != "":
		return bad("must not carry a fragment, backslashes or spaces")
	case u.User != nil:
		return bad("must not carry user information")
	case u.RawQuery != "" || u.ForceQuery:
		return bad("must not carry a query")
	case u.Scheme == "https":
	case u.Scheme == "http" && netguard.IsLoopbackHost(u.Hostname()):
	default:
		return bad("must be https, or plain http on a loopback host")
	}
	if u.String() != resource {
		return bad("is not in its canonical form (" + u.String() + ")")
	}
	return nil
}

// platformAPIResource reports whether resource names the platform API
// itself (the issuer, its MCP and catalog endpoints, a store, the buyer
// account): those are never a platform application's own resource,
// since a token for them is good at the platform API.
func (s *Server) platformAPIResource(resource string) bool {
	r := strings.TrimSuffix(resource, "/")
	if r == s.cfg.Issuer {
		return true
	}
	rest, ok := strings.CutPrefix(r, s.cfg.Issuer+"/")
	if !ok {
		return false
	}
	return rest == "mcp" || rest == "catalog" || rest == "account/mcp" || rest == "s" || strings.HasPrefix(rest, "s/")
}

// RegisterResource records that the platform application platformID runs
// the protected resource resource (an MCP bridge's endpoint URL, RFC
// 8707): buyers may then authorize agents for it, and only that platform
// may exchange the tokens issued for it (RFC 8693). Registering it again
// for the same platform is no error. Refused: a malformed URL
// (*ResourceError), one naming the platform API itself, a client that is
// not a platform application, and a resource another platform owns
// (store.ErrConflict).
func (s *Server) RegisterResource(ctx context.Context, platformID, resource string) error {
	if err := CheckResourceURL(resource); err != nil {
		return err
	}
	if s.platformAPIResource(resource) {
		return &ResourceError{Resource: resource, Reason: "names the platform API itself, which no platform application owns"}
	}
	return RegisterResource(ctx, s.cfg.Store, platformID, resource, s.now())
}

// RegisterResource is Server.RegisterResource for tools that hold only
// the store (`ucpbridge client add --resource`); it cannot tell the
// platform API's own URLs, so it checks all else.
func RegisterResource(ctx context.Context, st store.Store, platformID, resource string, now time.Time) error {
	if err := CheckResourceURL(resource); err != nil {
		return err
	}
	c, err := st.Client(ctx, platformID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && c.Role != store.RolePlatform) {
		return fmt.Errorf("oauth: resource %q: %q is not a registered platform application", resource, platformID)
	}
	if err != nil {
		return err
	}
	return st.AddResource(ctx, platformID, resource, now)
}

// resourceOwner checks an authorization request's resource: the platform
// API's own URLs (the issuer's origin and path), the resources of
// Config.ResourceClients and those a platform application registered are
// known; anything else is invalid_target. It returns the owning platform
// application of a registered resource ("" for the others).
func (s *Server) resourceOwner(ctx context.Context, resource string) (string, *oauthError) {
	target := func(desc string) *oauthError {
		return &oauthError{Code: "invalid_target", Description: desc, Status: http.StatusBadRequest}
	}
	if u, err := url.Parse(resource); err != nil || !u.IsAbs() || u.Fragment != "" || strings.Contains(resource, "#") {
		return "", target("resource must be an absolute URI without fragment")
	}
	if s.platformAPIResource(resource) {
		// The platform API's own, whatever a store-only registration
		// recorded: no platform application runs it.
		return "", nil
	}
	owner, err := s.cfg.Store.ResourceOwner(ctx, resource)
	switch {
	case err == nil:
		return owner, nil
	case !errors.Is(err, store.ErrNotFound):
		return "", errServer(err)
	}
	if _, ok := s.resourceClients[resource]; ok || resource == s.cfg.Issuer || strings.HasPrefix(resource, s.cfg.Issuer+"/") {
		return "", nil
	}
	return "", target("resource " + quoteShort(resource) + " is not served by this platform")
}
