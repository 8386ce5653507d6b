package store

import (
	"context"
	"encoding/json"
	"errors"
	"time"
)

// Commerce errors. Methods wrap them; match with errors.Is.
var (
	// ErrStale: an optimistic update lost; the row changed since it was
	// read (its Version moved). The caller re-reads and decides again.
	ErrStale = errors.New("store: stale version")
	// ErrInProgress: an idempotency key is held by a request still running.
	ErrInProgress = errors.New("store: idempotent request in progress")
	// ErrHoldLapsed: CompleteSession was given a spend hold that is no
	// longer held (released, consumed, or past its ExpiresAt). Nothing
	// was changed.
	ErrHoldLapsed = errors.New("store: spend hold lapsed")
)

// Shop is one merchant store on the platform (a UCP business).
type Shop struct {
	Slug     string // URL segment, [a-z0-9-]
	Name     string
	Currency string // ISO 4217; every price in the shop is in it
	// Config is the shop's opaque settings document (rails, policy links,
	// tax rate, shipping options), owned by the caller.
	Config    json.RawMessage
	CreatedAt time.Time
}

// Product is one catalog product; Doc is its UCP product JSON (without
// live availability, which the caller derives from its variants' stock).
type Product struct {
	ShopSlug string
	ID       string
	Title    string
	// Text is the lowercased searchable text (title, description, tags,
	// categories, variant titles).
	Text string
	// MinPrice and MaxPrice bound the variants' prices, in minor units of
	// Currency; search filters on them.
	MinPrice, MaxPrice int64
	Currency           string
	Categories         []string
	Doc                json.RawMessage
	UpdatedAt          time.Time
}

// Variant is a purchasable unit: line items name variant ids.
type Variant struct {
	ShopSlug  string
	ID        string // unique within the shop, across products
	ProductID string
	Title     string
	Price     int64 // minor units of the shop currency, >= 0
	// Stock is the units on hand; a negative value means not tracked
	// (always available).
	Stock    int64
	ImageURL string
}

// ProductQuery selects products for search. Zero fields do not filter.
type ProductQuery struct {
	ShopSlug string // "" searches every shop
	// Terms must all occur in Product.Text (lowercased substrings).
	Terms    []string
	Category string // exact match on one of Product.Categories
	// Categories: an exact match on any of them (with Category: both).
	Categories []string
	MinPrice   *int64 // products with MaxPrice >= *MinPrice
	MaxPrice   *int64 // products with MinPrice <= *MaxPrice
	Currency   string // with a price bound, only products in this currency
	// Order is "" for (ShopSlug, ID), or "price_asc"/"price_desc" on
	// MinPrice (ties by ShopSlug, ID).
	Order string
	// AfterShop/AfterID is the keyset cursor of the default order: start
	// strictly after (AfterShop, AfterID). Offset skips rows of a price
	// order.
	AfterShop string
	AfterID   string
	Offset    int
	Limit     int // at most this many (the caller asks limit+1 to learn has_next)
}

// SessionKind tells checkout sessions and carts apart; they share a table.
type SessionKind string

// Session kinds.
const (
	KindCheckout SessionKind = "checkout"
	KindCart     SessionKind = "cart"
)

// Session is a checkout session or a cart. Doc is the caller's state
// document; Status is copied out of it for queries.
type Session struct {
	Kind     SessionKind
	ShopSlug string
	ID       string
	// Owner is who the session is filed under ("platform:<id>",
	// "platform:<id>|buyer:<id>", …; the guard's Owner); the caller
	// decides who may use it. UpdateSession may refile it.
	Owner  string
	Status string
	// Version starts at 1 and grows by one on every successful update;
	// UpdateSession and CompleteSession take the version the caller read.
	Version   int64
	Doc       json.RawMessage
	CreatedAt time.Time
	UpdatedAt time.Time
	ExpiresAt time.Time
}

// Order is a placed order.
type Order struct {
	ShopSlug   string
	ID         string
	CheckoutID string
	Owner      string // the session owner that placed it
	ClientID   string // OAuth client or API-key client; "" if anonymous
	BuyerID    string // "" when no buyer was identified
	BuyerType  string // "agent" or "human"
	Doc        json.RawMessage
	CreatedAt  time.Time
	// WebhookURLs are where the "order created" event goes (the
	// platform's order webhook, the store's own order events URL):
	// CompleteSession queues one delivery per distinct non-empty URL in
	// the same transaction (an outbox: no order without its events, no
	// event without its order).
	WebhookURLs []string
	// HoldID, when set, names the spend hold CompleteSession consumes in
	// the same transaction: the order and the spending it counts against
	// happen together or not at all.
	HoldID string
	// Redeem, when set, is the buyer's coupon credit the order uses,
	// taken off the coupon in the same transaction (ErrCouponSpent when
	// the balance no longer covers it).
	Redeem *CouponRedemption
}

// OrderCursor is where a page of a buyer's orders ends: the last order's
// CreatedAt, ShopSlug and ID (newest first).
type OrderCursor struct {
	CreatedAt time.Time
	ShopSlug  string
	ID        string
}

// SpendHold reserves part of a buyer's spend allowance for one payment in
// flight. It counts against the daily cap from the moment it is taken:
// while held (until ExpiresAt), and for good once consumed by the order.
type SpendHold struct {
	ID       string
	BuyerID  string
	ClientID string // the agent client the allowance was granted to
	// Ref names what it pays for ("<store>/<checkout id>").
	Ref       string
	Amount    int64 // minor units of Currency
	Currency  string
	CreatedAt time.Time
	// ExpiresAt ends a hold never consumed (its payment died with its
	// instance); a consumed hold counts whatever its ExpiresAt.
	ExpiresAt time.Time
}

// SpendCheck decides whether a hold may be taken: allowance is the
// consent's stored allowance (nil when there is none), spent what the
// window already counts. Its error refuses the hold and is returned to
// HoldSpend's caller unchanged.
type SpendCheck func(allowance json.RawMessage, spent int64) error

// Spending stores spend holds against buyers' allowances.
type Spending interface {
	// HoldSpend takes h atomically with check: in one transaction that
	// serialises with every other HoldSpend of the same (buyer, client),
	// across processes, it reads the consent's allowance, sums the holds
	// of that pair created in [from, to) that are consumed or still held
	// at now, runs check, and stores h only if check returned nil.
	HoldSpend(ctx context.Context, h *SpendHold, from, to, now time.Time, check SpendCheck) error
	// RecheckHold runs check again for a hold already taken (a payment
	// prepared earlier, now completing), under the same lock as
	// HoldSpend: spent is what the window counts without h itself, so
	// check decides exactly as it would for a new hold of h's amount
	// (the allowance may have been lowered since). ErrHoldLapsed when h
	// is no longer held; check's error is returned unchanged.
	RecheckHold(ctx context.Context, h *SpendHold, from, to, now time.Time, check SpendCheck) error
	// ReleaseHold gives a held hold back (its payment failed). Consumed
	// or unknown holds are left alone; it is not an error.
	ReleaseHold(ctx context.Context, id string) error
	// Spent is what the pair's holds created in [from, to) count at now.
	Spent(ctx context.Context, buyerID, clientID string, from, to, now time.Time) (int64, error)
	// SweepHolds deletes holds created before before and returns how many.
	SweepHolds(ctx context.Context, before time.Time) (int64, error)
}

// Webhook is a queued order event delivery.
type Webhook struct {
	ID        string // the Webhook-Id; stable across retries
	ShopSlug  string
	OrderID   string
	URL       string
	Attempts  int
	NextAt    time.Time
	CreatedAt time.Time
}

// Webhooks is the order-event outbox.
type Webhooks interface {
	// ClaimWebhooks returns up to n deliveries due at now, oldest first,
	// and moves their NextAt to now+lease so concurrent workers (other
	// instances) skip them while this one delivers.
	ClaimWebhooks(ctx context.Context, now time.Time, lease time.Duration, n int) ([]*Webhook, error)
	// RetryWebhook records a failed attempt: Attempts+1, next try at next.
	RetryWebhook(ctx context.Context, id string, next time.Time) error
	// DeleteWebhook removes a delivered (or abandoned) delivery.
	DeleteWebhook(ctx context.Context, id string) error
}

// StockTake removes Quantity units of a variant when an order is placed.
type StockTake struct {
	VariantID string
	Quantity  int64
}

// OutOfStockError is returned by CompleteSession when a tracked variant
// has fewer units than asked. Nothing was changed.
type OutOfStockError struct {
	VariantID string
	Available int64
}

func (e *OutOfStockError) Error() string {
	return "store: variant " + e.VariantID + " is out of stock"
}

// IdemKey names one idempotency record: the key a client sent, scoped to
// the client (Scope), so two clients never share keys.
type IdemKey struct {
	Scope string
	Key   string
}

// IdemRecord is a stored idempotent request and, once done, its response.
type IdemRecord struct {
	// RequestHash identifies the request (operation, target, body); the
	// same key with another hash is a conflict.
	RequestHash []byte
	Done        bool
	Status      int    // HTTP status of the stored response (Done only)
	Body        []byte // the stored response body (Done only)
	CreatedAt   time.Time
	// LeaseUntil: while !Done, the claimant owns the key until then; after
	// it a new claim takes over (the claimant died).
	LeaseUntil time.Time
	ExpiresAt  time.Time
}

// Catalog stores shops, products and variants.
type Catalog interface {
	// PutShop inserts or replaces a shop.
	PutShop(ctx context.Context, s *Shop) error
	Shop(ctx context.Context, slug string) (*Shop, error)
	// UpdateShopConfig changes a shop's settings document in one
	// transaction holding the shop's row: update gets the stored Config
	// and returns the one to store. Updates of one shop queue, across
	// processes sharing the database, so each sees the previous one's
	// result and none is lost (PutShop, which replaces the document
	// whole, is for seeding). update's error is returned unchanged and
	// nothing is written; update must not call the store. ErrNotFound
	// when there is no such shop.
	UpdateShopConfig(ctx context.Context, slug string, update func(config json.RawMessage) (json.RawMessage, error)) error
	// Shops lists every shop by slug.
	Shops(ctx context.Context) ([]*Shop, error)
	// PutProduct inserts or replaces a product and replaces its variant
	// set (variants no longer listed are deleted), in one transaction.
	// A variant id used by another product of the shop is ErrConflict.
	PutProduct(ctx context.Context, p *Product, variants []*Variant) error
	Product(ctx context.Context, shop, id string) (*Product, error)
	// ProductVariants lists a product's variants in insertion order.
	ProductVariants(ctx context.Context, shop, productID string) ([]*Variant, error)
	// Variants returns the shop's variants with the given ids; unknown ids
	// are absent from the map, not an error.
	Variants(ctx context.Context, shop string, ids []string) (map[string]*Variant, error)
	// SearchProducts returns matches ordered by (ShopSlug, ID).
	SearchProducts(ctx context.Context, q ProductQuery) ([]*Product, error)
}

// Sessions stores checkout sessions and carts.
type Sessions interface {
	// CreateSession stores s with Version 1; an existing id is ErrConflict.
	CreateSession(ctx context.Context, s *Session) error
	// Session reads one; ErrNotFound if absent (expiry is the caller's).
	Session(ctx context.Context, kind SessionKind, shop, id string) (*Session, error)
	// UpdateSession replaces Owner, Status, Doc, UpdatedAt and ExpiresAt if the
	// stored Version equals s.Version, and sets s.Version to the new one.
	// Otherwise ErrStale and nothing changes.
	UpdateSession(ctx context.Context, s *Session) error
	// CompleteSession places an order in one transaction: the version
	// check of UpdateSession, every StockTake on tracked variants (an
	// *OutOfStockError if any falls short), the order insert and the
	// session update. On any error nothing changes.
	CompleteSession(ctx context.Context, s *Session, o *Order, takes []StockTake) error
	// SweepSessions deletes sessions whose ExpiresAt is before before,
	// except completed checkouts (their orders refer to them), and
	// returns how many.
	SweepSessions(ctx context.Context, before time.Time) (int64, error)
}

// Orders reads placed orders.
type Orders interface {
	Order(ctx context.Context, shop, id string) (*Order, error)
	// BuyerOrders lists a buyer's orders across every store, newest
	// first (ties by store and id), strictly after the cursor when one is
	// given, at most limit.
	BuyerOrders(ctx context.Context, buyerID string, after *OrderCursor, limit int) ([]*Order, error)
}

// Idempotency stores idempotent requests and their responses.
type Idempotency interface {
	// ClaimIdempotency atomically looks the key up:
	//   - absent, expired, or pending with a lapsed lease: stores a pending
	//     record (requestHash, lease until now+lease, expiry now+ttl) and
	//     returns (nil, nil): the caller runs the request;
	//   - present and Done: returns it (the caller compares RequestHash);
	//   - pending with a live lease: returns the record and ErrInProgress.
	ClaimIdempotency(ctx context.Context, k IdemKey, requestHash []byte, now time.Time, lease, ttl time.Duration) (*IdemRecord, error)
	// FinishIdempotency stores the response of a claimed key and marks it
	// Done.
	FinishIdempotency(ctx context.Context, k IdemKey, status int, body []byte) error
	// ReleaseIdempotency drops a pending claim whose request had no effect
	// (so a retry runs it again). A Done record is left alone.
	ReleaseIdempotency(ctx context.Context, k IdemKey) error
	// SweepIdempotency deletes records that expired before now and
	// returns how many.
	SweepIdempotency(ctx context.Context, now time.Time) (int64, error)
}

// Commerce is everything the reference stores persist.
type Commerce interface {
	Catalog
	Sessions
	Orders
	Idempotency
	Webhooks
	Spending
}
