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
	"github.com/ucpbridge/ucpbridge/ucpclient/discovery"
)

// Kind is what sort of party a caller is.
type Kind string

// The kinds of caller.
const (
	// KindAnonymous presented no credential. A profile URL named in
	// UCP-Agent is a claim, not an identity.
	KindAnonymous Kind = "anonymous"
	// KindPlatform is a platform application: its API key, an app-only
	// token of a platform application, or a caller known by a verified
	// request signature (Profile, no ClientID).
	KindPlatform Kind = "platform"
	// KindMerchant is a merchant's app acting for its own store (Store).
	KindMerchant Kind = "merchant"
	// KindBuyer is a buyer acting through an OAuth client (ClientID).
	KindBuyer Kind = "buyer"
	// KindApp is an app-only token of a client that is neither a
	// platform application nor a merchant's: it acts for nobody, so it
	// may browse and nothing else.
	KindApp Kind = "app"
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
	CredentialNone      Credential = ""
	CredentialAPIKey    Credential = "api_key"   // X-API-Key: <client_id>.<secret>
	CredentialBearer    Credential = "bearer"    // Authorization: Bearer <access token>
	CredentialSignature Credential = "signature" // an RFC 9421 signature alone
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
	// GrantID names the buyer's grant.
	GrantID string
	// Platform is the platform application the caller belongs to: the
	// key's own client, or the application owning the token's client
	// ("" when none does).
	Platform string
	// Profile is the platform profile URL a verified request signature
	// proved (Tier signed); "" otherwise.
	Profile string
	// Dual: the platform key came with a buyer's bearer (Artos
	// platform+buyer mode). The key authorizes, the bearer names the
	// buyer (BuyerID) with its Scopes and Resource; buyer-bound
	// operations refuse it.
	Dual bool
}

// Anonymous is the principal of a request without credentials.
func Anonymous() *Principal { return &Principal{Kind: KindAnonymous, Tier: TierAnonymous} }

// HasScope reports whether the principal holds scope.
func (p *Principal) HasScope(scope string) bool { return p != nil && slices.Contains(p.Scopes, scope) }

// IsAnonymous reports whether p identifies nobody (nil counts).
func (p *Principal) IsAnonymous() bool { return p == nil || p.Kind == KindAnonymous }

// Credentials are the checks Identify needs; *oauth.Server has them.
// ValidateAPIKey may also return oauth.ErrNotPlatformKey.
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
	// Signatures verifies RFC 9421 request signatures (the signed tier);
	// nil refuses every signed request, since a signature that cannot be
	// checked must not be ignored.
	Signatures *SignatureVerifier
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
// code, a sentence for the caller, and for 401 and 403 what the challenge
// needs. Bindings render it in their own shape (REST body, JSON-RPC error)
// with Challenge.
type Error struct {
	Status  int
	Code    string
	Content string
	// Scope is the scope set that would do, for insufficient_scope.
	Scope      string
	RetryAfter int // seconds, for 503
	cause      error
}

func (e *Error) Error() string { return "guard: " + e.Code + ": " + e.Content }

func (e *Error) Unwrap() error { return e.cause }

// Challenge is the WWW-Authenticate value for a 401 or 403 (RFC 6750
// §3, RFC 9728 §5.1): the realm, the error, the scope set for
// insufficient_scope, and the resource's protected-resource metadata URL
// so a client can find the authorization server. "" for other statuses.
func (e *Error) Challenge(realm, resourceMetadata string) string {
	if e.Status != http.StatusUnauthorized && e.Status != http.StatusForbidden {
		return ""
	}
	code := "invalid_token"
	switch {
	case e.Status == http.StatusForbidden && e.Code == "insufficient_scope":
		code = "insufficient_scope"
	case e.Status == http.StatusForbidden:
		return "" // a refusal no token fixes has no challenge
	case e.Code == "identity_required":
		code = "" // no credential was sent: RFC 6750 §3.1 and UCP send no error code
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Bearer realm=%q", realm)
	if code != "" {
		fmt.Fprintf(&b, ", error=%q, error_description=%q", code, quoteSafe(e.Content))
	}
	if e.Scope != "" {
		fmt.Fprintf(&b, ", scope=%q", e.Scope)
	}
	if resourceMetadata != "" {
		fmt.Fprintf(&b, ", resource_metadata=%q", resourceMetadata)
	}
	return b.String()
}

// quoteSafe keeps a description inside a quoted-string: RFC 6750 allows
// %x20-21 / %x23-5B / %x5D-7E there.
func quoteSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e || r == '"' || r == '\\' {
			return '\''
		}
		return r
	}, s)
}

// Identify turns a request's credentials into a Principal, naming the
// platform profile from UCP-Agent; see IdentifyProfile.
func (g *Guard) Identify(r *http.Request) (*Principal, error) {
	profile := ""
	if h := r.Header.Get("UCP-Agent"); h != "" {
		profile, _, _ = discovery.ParseUCPAgent(h)
	}
	return g.IdentifyProfile(r, profile)
}

// IdentifyProfile turns a request's credentials into a Principal; profile
// is the platform profile the request names (UCP-Agent, or an MCP call's
// meta), used to check a request signature.
//
//   - X-API-Key: a platform application's key. With a bearer as well
//     (Artos platform+buyer), the bearer must be a token of the same
//     platform's clients; the key authorizes and the bearer names the
//     buyer (Dual).
//   - Authorization: Bearer: a buyer's token (KindBuyer), a merchant's
//     store-bound token (KindMerchant), a platform application's app-only
//     token (KindPlatform), or another app's (KindApp).
//   - A request signature (Signature-Input) must verify with a key of the
//     named profile: it raises the tier to signed, and alone it
//     identifies the platform by that profile. A signature that does not
//     verify refuses the request; it is never ignored.
//   - Nothing: the anonymous principal.
//
// Bad credentials are a 401 *Error; a failing credential store is a 503
// *Error.
func (g *Guard) IdentifyProfile(r *http.Request, profile string) (*Principal, error) {
	ctx := r.Context()
	var p *Principal
	key, auth := r.Header.Get("X-API-Key"), r.Header.Get("Authorization")
	if key != "" {
		id, err := g.cfg.Credentials.ValidateAPIKey(ctx, key)
		if err != nil {
			return nil, g.refuse(err)
		}
		p = &Principal{Kind: KindPlatform, Tier: TierToken, Credential: CredentialAPIKey, ClientID: id, Platform: id}
	}
	if auth != "" {
		info, err := g.bearer(ctx, auth)
		if err != nil {
			return nil, err
		}
		switch {
		case p != nil:
			// The key decides; the bearer only names its buyer, and
			// only a buyer of this very platform.
			if info.BuyerID == "" || info.Platform != p.Platform {
				return nil, &Error{Status: http.StatusUnauthorized, Code: "credential_conflict",
					Content: "the bearer token sent with X-API-Key must be a buyer token of the same platform application"}
			}
			// The bearer keeps its limits: its resource binding is
			// checked like a bearer's (CheckResource), and its scopes
			// say what the buyer let it do (a coupon is the buyer's
			// to spend only with purchase:complete).
			p.Dual, p.BuyerID, p.GrantID = true, info.BuyerID, info.GrantID
			p.Resource, p.Scopes = info.Resource, strings.Fields(info.Scope)
		default:
			p = &Principal{Tier: TierToken, Credential: CredentialBearer, ClientID: info.ClientID, BuyerID: info.BuyerID,
				Scopes: strings.Fields(info.Scope), Resource: info.Resource, GrantID: info.GrantID, Platform: info.Platform, Store: info.Store}
			switch {
			case info.BuyerID != "":
				p.Kind = KindBuyer
			case info.Store != "":
				p.Kind = KindMerchant
			case info.Platform != "" && info.Platform == info.ClientID:
				p.Kind = KindPlatform
			default:
				p.Kind = KindApp
			}
		}
	}
	if HasSignature(r) {
		if g.cfg.Signatures == nil {
			return nil, &Error{Status: http.StatusUnauthorized, Code: "signature_invalid",
				Content: "this server does not verify request signatures; send the request unsigned"}
		}
		sc, err := g.cfg.Signatures.Verify(ctx, r, profile)
		if err != nil {
			return nil, err
		}
		if p == nil {
			p = &Principal{Kind: KindPlatform, Credential: CredentialSignature}
		}
		p.Tier, p.Profile = TierSigned, sc.Profile
	}
	if p == nil {
		return Anonymous(), nil
	}
	return p, nil
}

func (g *Guard) bearer(ctx context.Context, auth string) (*oauth.TokenInfo, error) {
	scheme, tok, ok := strings.Cut(auth, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
		return nil, g.refuse(oauth.ErrInvalidToken)
	}
	info, err := g.cfg.Credentials.ValidateAccessToken(ctx, strings.TrimSpace(tok))
	if err != nil {
		return nil, g.refuse(err)
	}
	return info, nil
}

// CheckResource refuses a token issued for another resource (RFC 8707):
// a token bound to a resource is good only where the called resource is
// one of accepted (the caller lists the names it answers to: its URL, its
// MCP endpoint, the API root for API-wide tokens). Tokens without a
// resource are good everywhere.
func (p *Principal) CheckResource(accepted ...string) error {
	if p == nil || p.Resource == "" || (p.Credential != CredentialBearer && !p.Dual) {
		return nil
	}
	got := strings.TrimSuffix(p.Resource, "/")
	for _, a := range accepted {
		if got == strings.TrimSuffix(a, "/") {
			return nil
		}
	}
	return &Error{Status: http.StatusUnauthorized, Code: "invalid_token",
		Content: "the access token was issued for another resource (" + p.Resource + ")"}
}

// refuse maps a credential check's error: invalid credentials are 401;
// anything else means the check could not run.
func (g *Guard) refuse(err error) *Error {
	switch {
	case errors.Is(err, oauth.ErrNotPlatformKey):
		return &Error{Status: http.StatusUnauthorized, Code: "invalid_token", cause: err,
			Content: "X-API-Key takes a platform application's key; a merchant's or a script app's client secret is not one (use client_credentials at the token endpoint)"}
	case errors.Is(err, oauth.ErrInvalidAPIKey) || errors.Is(err, oauth.ErrInvalidToken):
		return &Error{Status: http.StatusUnauthorized, Code: "invalid_token", Content: "the API key or access token is not valid", cause: err}
	}
	return &Error{Status: http.StatusServiceUnavailable, Code: "unavailable", Content: "authentication is unavailable",
		RetryAfter: 1, cause: err}
}

// IdentifyFunc adapts a function to the Identify method, for tests and
// for callers that identify requests some other way.
type IdentifyFunc func(r *http.Request) (*Principal, error)

// Identify calls f(r).
func (f IdentifyFunc) Identify(r *http.Request) (*Principal, error) { return f(r) }
