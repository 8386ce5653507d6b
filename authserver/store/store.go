// Package store defines the authorization server's persistence: clients,
// buyers, authorization codes, grants (refresh-token families), refresh and
// access tokens, and consents, as small interfaces with the atomicity each
// method guarantees. Secrets never reach storage: codes, tokens and client
// secrets are stored as SHA-256 hashes, buyer passwords as KDF hashes, and
// the one plaintext kept for a refresh grace window is sealed by the caller.
//
// sqlstore implements it on SQLite and PostgreSQL; storetest is the
// conformance suite both pass.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"
	"unicode/utf8"
)

// ValidText reports whether s may be stored as text: valid UTF-8 without
// NUL. PostgreSQL refuses anything else (SQLSTATE 22021), so callers
// check what they got from outside before passing it to a store, and
// answer a bad request instead of a storage failure.
func ValidText(s string) bool { return utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 }

// Errors. Methods wrap them; match with errors.Is.
var (
	ErrNotFound = errors.New("store: not found")
	ErrConflict = errors.New("store: already exists")
	// ErrExpired: the code, token or grant exists but its time is up.
	ErrExpired = errors.New("store: expired")
	// ErrRevoked: the token or its grant was revoked.
	ErrRevoked = errors.New("store: revoked")
	// ErrCodeUsed: the code was redeemed before. RedeemCode has revoked the
	// grant the first redemption created.
	ErrCodeUsed = errors.New("store: authorization code already used")
	// ErrTokenReused: a rotated refresh token came back outside the grace
	// window (or after its successor was used). Rotate has revoked the
	// whole grant: every refresh and access token of the family.
	ErrTokenReused = errors.New("store: refresh token reused")
)

// ClientType is the registered app type.
type ClientType string

// App types, as the seed providers define them.
const (
	ClientWeb       ClientType = "web"       // confidential, server-side
	ClientInstalled ClientType = "installed" // public (native, CLI, agent)
	ClientScript    ClientType = "script"    // confidential, the developer's own account
)

// ClientRole is what a registered client is on the platform, which
// decides the credentials it may use (guard).
type ClientRole string

// Client roles.
const (
	// RoleApp is an app buyers sign in through (an agent, a CLI): its
	// tokens act for a buyer, never as a platform.
	RoleApp ClientRole = ""
	// RolePlatform is a platform application: "<id>.<secret>" is its
	// X-API-Key, and it owns the OAuth clients that name it as Platform
	// and the CIMD client ids it declares.
	RolePlatform ClientRole = "platform"
	// RoleMerchant is a merchant's app (client_credentials), bound to
	// Store: its tokens are useless at any other store.
	RoleMerchant ClientRole = "merchant"
)

// Client is a registered OAuth client. CIMD clients are not stored; their
// metadata comes from their URL (a platform may declare them, CIMD).
type Client struct {
	ID           string
	SecretHash   []byte // SHA-256 of the secret; nil for public clients
	Type         ClientType
	Name         string
	RedirectURIs []string
	GrantTypes   []string
	Scopes       []string // what the client may ask for
	Developers   []string // buyer ids that may use the password grant (script apps)
	Role         ClientRole
	// Store is the store slug a merchant client is bound to.
	Store string
	// Platform is the platform application that owns this client; a
	// platform application owns itself. Empty: no platform.
	Platform string
	// CIMD lists the client-id metadata document URLs a platform
	// application declares as its own (RolePlatform only). A URL belongs
	// to at most one platform.
	CIMD []string
	// Profile is a platform application's registered UCP profile URL:
	// the verified destination of its order webhooks.
	Profile string
	// RegistrationHash is the SHA-256 of the RFC 7592 registration access
	// token of a client that registered itself (RFC 7591 dynamic client
	// registration); nil for clients an operator registered. Such a
	// client is unverified: its name is whatever it said.
	RegistrationHash []byte
	CreatedAt        time.Time
}

// SelfRegistered reports whether the client registered itself (RFC 7591).
func (c *Client) SelfRegistered() bool { return len(c.RegistrationHash) > 0 }

// Buyer is a local buyer account.
type Buyer struct {
	ID           string
	Email        string // unique, compared case-insensitively
	PasswordHash string // PHC string of a memory-hard KDF
	// Account is the buyer's account document (name, phone, address
	// book, saved sandbox card), owned by the caller.
	Account   json.RawMessage
	CreatedAt time.Time
}

// Code is an authorization code awaiting redemption.
type Code struct {
	Hash          []byte
	ClientID      string
	BuyerID       string
	RedirectURI   string
	Scope         string
	Resource      string
	CodeChallenge string // S256
	Allowance     json.RawMessage
	ExpiresAt     time.Time
}

// Grant is what a buyer (or, for client_credentials, nobody) granted a
// client; refresh tokens are its family and revoking it ends them all.
type Grant struct {
	ID        string
	ClientID  string
	BuyerID   string // empty for client_credentials
	Scope     string
	Resource  string
	Allowance json.RawMessage
	CreatedAt time.Time
	ExpiresAt time.Time // absolute lifetime of the family
	RevokedAt time.Time // zero while active
}

// RefreshToken is one member of a grant's family.
type RefreshToken struct {
	Hash      []byte
	GrantID   string
	ExpiresAt time.Time
}

// AccessToken is an opaque access token. GrantID is empty for
// client_credentials tokens.
type AccessToken struct {
	Hash     []byte
	GrantID  string
	ClientID string
	BuyerID  string
	Scope    string
	Resource string
	// Store is the store a merchant token is bound to, recorded when it
	// is issued.
	Store string
	// Platform is the platform application the token acts for: its
	// ActingPlatform when set, else the application owning ClientID, as
	// the registrations say when the token is read.
	Platform string
	// ActingPlatform is stored on a token issued by RFC 8693 token
	// exchange: the platform application that requested the exchange,
	// for which the token acts (its checkouts are that platform's).
	ActingPlatform string
	// Subject is the hash of the access token an exchanged token was
	// issued for (RFC 8693 subject_token); nil otherwise. An exchanged
	// token is good only while its subject is: AccessToken refuses it
	// once the subject is revoked (or gone).
	Subject   []byte
	ExpiresAt time.Time
}

// Exchanged reports whether the token was issued by token exchange.
func (t *AccessToken) Exchanged() bool { return len(t.Subject) > 0 }

// Issue is what one token response creates.
type Issue struct {
	Grant   *Grant        // RedeemCode only: the new grant
	Refresh *RefreshToken // nil when offline_access was not granted
	Access  *AccessToken
	// Sealed is the token response encrypted by the caller, kept with a
	// rotated refresh token so a retry inside the grace window gets the
	// same pair back.
	Sealed []byte
}

// Rotation is the outcome of Rotate.
type Rotation struct {
	Grant *Grant
	// Replayed is true when the presented token had already been rotated
	// inside the grace window: nothing new was issued, Sealed is the
	// response the first rotation stored.
	Replayed bool
	Sealed   []byte
}

// Consent remembers what a buyer approved for a client.
type Consent struct {
	BuyerID   string
	ClientID  string
	Scope     string
	Allowance json.RawMessage
	UpdatedAt time.Time
}

// Clients stores registered clients.
type Clients interface {
	// CreateClient fails with ErrConflict if the id exists, or if a CIMD
	// URL it declares belongs to another platform.
	CreateClient(ctx context.Context, c *Client) error
	Client(ctx context.Context, id string) (*Client, error)
	// UpdateClient replaces a registered client's registration (all but
	// ID and CreatedAt) and its ownership rows, in one transaction:
	// ErrNotFound when there is no such client, ErrConflict when a CIMD
	// URL it declares belongs to another platform (nothing changes).
	UpdateClient(ctx context.Context, c *Client) error
	// ClientPlatform returns the platform application owning a client id
	// (a registered client's Platform, or the platform declaring a CIMD
	// URL), or "" when none does.
	ClientPlatform(ctx context.Context, clientID string) (string, error)
	// DeleteClient removes a registered client (RFC 7592 delete) in one
	// transaction: every grant it holds is revoked with its tokens (and
	// the tokens exchanged for them), its access tokens are revoked, its
	// unredeemed codes spent, and its consents and ownership row
	// removed. ErrNotFound when there is no such client.
	DeleteClient(ctx context.Context, id string, now time.Time) error
}

// Resources records the protected resources (RFC 8707 resource
// indicators, e.g. an MCP bridge's endpoint URL) that platform
// applications run. Tokens may be issued for a registered resource, and
// only its owner may exchange them (RFC 8693). URLs are compared as exact
// strings; callers validate them first.
type Resources interface {
	// AddResource records that platformID owns resource. Adding a
	// resource its owner already has is no error; ErrConflict when
	// another platform owns it.
	AddResource(ctx context.Context, platformID, resource string, now time.Time) error
	// ResourceOwner returns the platform owning resource, or ErrNotFound.
	ResourceOwner(ctx context.Context, resource string) (string, error)
	// PlatformResources lists a platform's resources, sorted.
	PlatformResources(ctx context.Context, platformID string) ([]string, error)
}

// Buyers stores buyer accounts.
type Buyers interface {
	// CreateBuyer fails with ErrConflict if the id or email exists.
	CreateBuyer(ctx context.Context, b *Buyer) error
	Buyer(ctx context.Context, id string) (*Buyer, error)
	BuyerByEmail(ctx context.Context, email string) (*Buyer, error)
	// SetBuyerAccount replaces a buyer's account document.
	SetBuyerAccount(ctx context.Context, id string, account json.RawMessage) error
}

// Codes stores authorization codes.
type Codes interface {
	SaveCode(ctx context.Context, c *Code) error
	// Code reads a code without consuming it, so the caller can check the
	// client, redirect URI and PKCE verifier first: a replay with a wrong
	// verifier must not revoke anything.
	Code(ctx context.Context, hash []byte) (*Code, error)
	// RedeemCode atomically marks the code used and stores iss (grant and
	// tokens). A code already used returns ErrCodeUsed after revoking the
	// grant its first redemption created; an expired one ErrExpired.
	RedeemCode(ctx context.Context, hash []byte, iss Issue, now time.Time) error
}

// Grants reads and revokes grants.
type Grants interface {
	Grant(ctx context.Context, id string) (*Grant, error)
	// IssueGrant stores a new grant with its first tokens in one
	// transaction (grants not born from a code, e.g. the password grant).
	IssueGrant(ctx context.Context, iss Issue) error
	// RevokeGrant revokes the grant and every token of its family.
	RevokeGrant(ctx context.Context, id string, now time.Time) error
}

// RefreshTokens rotates refresh tokens.
type RefreshTokens interface {
	// RefreshToken returns an active refresh token and its grant, or
	// ErrNotFound, ErrExpired or ErrRevoked. A rotated token is reported
	// as found (the grace rules are Rotate's).
	RefreshToken(ctx context.Context, hash []byte, now time.Time) (*RefreshToken, *Grant, error)
	// Rotate exchanges the token for next in one transaction:
	//   - active: marks it rotated, stores next (refresh, access, sealed);
	//   - rotated less than grace ago, successor never used: Replayed with
	//     the first rotation's Sealed, next is discarded;
	//   - otherwise: revokes the whole grant and returns ErrTokenReused.
	// Concurrent calls with one token yield exactly one rotation.
	Rotate(ctx context.Context, hash []byte, next Issue, now time.Time, grace time.Duration) (*Rotation, error)
}

// AccessTokens stores access tokens.
type AccessTokens interface {
	// SaveAccessToken stores a token that belongs to no family
	// (client_credentials).
	SaveAccessToken(ctx context.Context, t *AccessToken) error
	// AccessToken returns a live token, or ErrNotFound, ErrExpired or
	// ErrRevoked. It is one indexed read.
	AccessToken(ctx context.Context, hash []byte, now time.Time) (*AccessToken, error)
	// RevokeToken revokes by hash: an access token alone, or a refresh
	// token's whole grant. Unknown hashes are not an error (RFC 7009).
	RevokeToken(ctx context.Context, hash []byte, now time.Time) error
}

// Consents stores consents.
type Consents interface {
	// SaveConsent inserts or replaces the consent for (buyer, client).
	SaveConsent(ctx context.Context, c *Consent) error
	Consent(ctx context.Context, buyerID, clientID string) (*Consent, error)
	// BuyerConsents lists a buyer's consents, by client id.
	BuyerConsents(ctx context.Context, buyerID string) ([]*Consent, error)
	// UpdateConsent changes a consent under a row lock: fn gets the
	// stored consent and edits it in place; its error aborts, unchanged.
	// ErrNotFound when there is none.
	UpdateConsent(ctx context.Context, buyerID, clientID string, fn func(c *Consent) error) error
	// RevokeClientGrants revokes every grant (with its tokens) a buyer
	// gave a client, spends the codes issued to it for the buyer and not
	// yet redeemed, and returns how many grants were live.
	RevokeClientGrants(ctx context.Context, buyerID, clientID string, now time.Time) (int64, error)
}

// Store is everything the authorization server persists.
type Store interface {
	Clients
	Buyers
	Codes
	Grants
	RefreshTokens
	AccessTokens
	Consents
	Resources
	Close() error
}
