// Package guard decides who is calling the platform API and what they may
// do with whose money. It is the one place that turns credentials (the
// platform API key in X-API-Key, an OAuth bearer) into a Principal; the
// stores and the account tools receive that Principal and never parse a
// credential themselves.
//
// The per-operation policy (policy.go) and the object rules (which session
// or order a caller may touch) live here too, so every "may this caller
// do this" question has one answer in one package.
package guard

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/ucpbridge/ucpbridge/authserver/oauth"
)

// Kind is what sort of party a caller is.
type Kind string

// The kinds of caller.
const (
	// KindAnonymous presented no credential. A profile URL named in
	// UCP-Agent is a claim, not an identity.
	KindAnonymous Kind = "anonymous"
	// KindPlatform is a platform application: its API key, or an
	// app-only (client_credentials) token. Until stores are bound to
	// merchant tokens, every app-only token is treated as a platform.
	KindPlatform Kind = "platform"
	// KindMerchant is a merchant's app acting for its own store (Store).
	KindMerchant Kind = "merchant"
	// KindBuyer is a buyer acting through an OAuth client (ClientID).
	KindBuyer Kind = "buyer"
)

// Tier is how strongly a caller is identified (Artos trust tiers).
type Tier string

// The trust tiers, weakest first.
const (
	TierAnonymous Tier = "anonymous" // no credential
	TierToken     Tier = "token"     // an API key or a bearer token
	TierSigned    Tier = "signed"    // a verified RFC 9421 request signature
)

// Credential is how a caller authenticated.
type Credential string

// The credentials.
const (
	CredentialNone   Credential = ""
	CredentialAPIKey Credential = "api_key" // X-API-Key: <client_id>.<secret>
	CredentialBearer Credential = "bearer"  // Authorization: Bearer <access token>
)

// Principal is who is calling: the one identity type the platform API's
// parts share.
type Principal struct {
	Kind Kind
	Tier Tier
	// Credential is what the caller presented.
	Credential Credential
	// ClientID is the OAuth client (the platform app, the merchant's app,
	// or the app the buyer acts through); empty when anonymous.
	ClientID string
	// Store is the store a merchant's credential is bound to.
	Store string
	// BuyerID is the buyer a bearer token speaks for; empty otherwise.
	BuyerID string
	// Scopes are the token's scopes; an API key carries none.
	Scopes []string
	// Resource is the RFC 8707 resource the token was issued for, if any.
	Resource string
	// GrantID names the buyer's grant, which holds the spend allowance
	// the buyer set at consent: the reference the allowance is enforced
	// by.
	GrantID string
}

// Anonymous is the principal of a request without credentials.
func Anonymous() *Principal { return &Principal{Kind: KindAnonymous, Tier: TierAnonymous} }

// HasScope reports whether the principal holds scope.
func (p *Principal) HasScope(scope string) bool { return p != nil && slices.Contains(p.Scopes, scope) }

// IsAnonymous reports whether p identifies nobody (nil counts).
func (p *Principal) IsAnonymous() bool {
	return p == nil || p.Kind == KindAnonymous || p.ClientID == ""
}

// Credentials are the checks Identify needs; *oauth.Server has them.
type Credentials interface {
	// ValidateAPIKey returns the client id of a valid platform API key,
	// or oauth.ErrInvalidAPIKey.
	ValidateAPIKey(ctx context.Context, key string) (string, error)
	// ValidateAccessToken returns what a valid access token carries, or
	// oauth.ErrInvalidToken.
	ValidateAccessToken(ctx context.Context, token string) (*oauth.TokenInfo, error)
}

// Config configures a Guard.
type Config struct {
	// Credentials validates keys and tokens (required).
	Credentials Credentials
	// Realm names the protection space in WWW-Authenticate challenges
	// (the issuer).
	Realm string
}

// Guard identifies callers. It is safe for concurrent use.
type Guard struct {
	cfg Config
}

// New returns a Guard.
func New(cfg Config) (*Guard, error) {
	if cfg.Credentials == nil {
		return nil, errors.New("guard: Config.Credentials is required")
	}
	return &Guard{cfg: cfg}, nil
}

// Error is a refused request: the HTTP status, a short machine-readable
// code, a sentence for the caller, and the challenge for 401 and 403.
// Bindings render it in their own shape (REST body, JSON-RPC error).
type Error struct {
	Status     int
	Code       string
	Content    string
	Challenge  string // WWW-Authenticate
	RetryAfter int    // seconds, for 503
	cause      error
}

func (e *Error) Error() string { return "guard: " + e.Code + ": " + e.Content }

func (e *Error) Unwrap() error { return e.cause }

// Identify turns a request's credentials into a Principal: X-API-Key wins
// over a bearer (as at Artos, so a call carrying both is the platform's),
// then Authorization: Bearer; no credential is the anonymous principal.
// Bad credentials are a 401 *Error with a challenge; a failing credential
// store is a 503 *Error.
func (g *Guard) Identify(r *http.Request) (*Principal, error) {
	ctx := r.Context()
	if key := r.Header.Get("X-API-Key"); key != "" {
		id, err := g.cfg.Credentials.ValidateAPIKey(ctx, key)
		if err != nil {
			return nil, g.refuse(err)
		}
		return &Principal{Kind: KindPlatform, Tier: TierToken, Credential: CredentialAPIKey, ClientID: id}, nil
	}
	auth := r.Header.Get("Authorization")
	if auth == "" {
		return Anonymous(), nil
	}
	scheme, tok, ok := strings.Cut(auth, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
		return nil, g.refuse(oauth.ErrInvalidToken)
	}
	info, err := g.cfg.Credentials.ValidateAccessToken(ctx, strings.TrimSpace(tok))
	if err != nil {
		return nil, g.refuse(err)
	}
	p := &Principal{Kind: KindPlatform, Tier: TierToken, Credential: CredentialBearer, ClientID: info.ClientID,
		BuyerID: info.BuyerID, Scopes: strings.Fields(info.Scope), Resource: info.Resource, GrantID: info.GrantID}
	if p.BuyerID != "" {
		p.Kind = KindBuyer
	}
	return p, nil
}

// refuse maps a credential check's error: invalid credentials are 401
// with a Bearer challenge; anything else means the check could not run.
func (g *Guard) refuse(err error) *Error {
	if errors.Is(err, oauth.ErrInvalidAPIKey) || errors.Is(err, oauth.ErrInvalidToken) {
		return &Error{Status: http.StatusUnauthorized, Code: "invalid_token", Content: "the API key or access token is not valid",
			Challenge: fmt.Sprintf("Bearer realm=%q, error=\"invalid_token\"", g.cfg.Realm), cause: err}
	}
	return &Error{Status: http.StatusServiceUnavailable, Code: "unavailable", Content: "authentication is unavailable",
		RetryAfter: 1, cause: err}
}

// IdentifyFunc adapts a function to the Identify method, for tests and
// for callers that identify requests some other way.
type IdentifyFunc func(r *http.Request) (*Principal, error)

// Identify calls f(r).
func (f IdentifyFunc) Identify(r *http.Request) (*Principal, error) { return f(r) }
