package sqlstore

import (
	"cmp"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ucpbridge/ucpbridge/authserver/store"
)

var _ store.Commerce = (*Store)(nil)

// Search page sizes: a zero limit gets the default, and no caller gets
// more than the cap in one query.
const (
	defaultSearchLimit = 50
	maxSearchLimit     = 1000
)

// variantsChunk bounds the ids bound in one IN list, well under both
// engines' parameter limits.
const variantsChunk = 500

// scanner is what both *sql.Row and *sql.Rows offer.
type scanner interface {
	Scan(dest ...any) error
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

func rawJSON(v sql.NullString) json.RawMessage {
	if !v.Valid {
		return nil
	}
	return json.RawMessage(v.String)
}

// PutShop implements store.Catalog.
func (s *Store) PutShop(ctx context.Context, sh *store.Shop) error {
	_, err := s.db.ExecContext(ctx, s.q(`INSERT INTO shops (slug, name, currency, config, created_at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (slug) DO UPDATE SET name = excluded.name, currency = excluded.currency, config = excluded.config,
		created_at = excluded.created_at`),
		sh.Slug, sh.Name, sh.Currency, nullJSON(sh.Config), ms(sh.CreatedAt))
	if err != nil {
		return fmt.Errorf("sqlstore: put shop: %w", err)
	}
	return nil
}

const shopCols = `slug, name, currency, config, created_at`

func scanShop(r scanner) (*store.Shop, error) {
	var (
		sh      store.Shop
		config  sql.NullString
		created int64
	)
	if err := r.Scan(&sh.Slug, &sh.Name, &sh.Currency, &config, &created); err != nil {
		return nil, err
	}
	sh.Config, sh.CreatedAt = rawJSON(config), time.UnixMilli(created)
	return &sh, nil
}

const qShop = `SELECT ` + shopCols + ` FROM shops WHERE slug = ?`

// Shop implements store.Catalog.
func (s *Store) Shop(ctx context.Context, slug string) (*store.Shop, error) {
	sh, err := scanShop(s.queryRow(ctx, s.rdb, qShop, slug))
	if err != nil {
		return nil, notFound(err, "shop")
	}
	return sh, nil
}

// UpdateShopConfig implements store.Catalog. The read locks the row on
// PostgreSQL (FOR UPDATE); SQLite's immediate transactions on the one
// writer connection serialise the whole read-modify-write.
func (s *Store) UpdateShopConfig(ctx context.Context, slug string, update func(config json.RawMessage) (json.RawMessage, error)) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		var config sql.NullString
		err := tx.QueryRowContext(ctx, s.q(`SELECT config FROM shops WHERE slug = ?`+s.d.forUpdate), slug).Scan(&config)
		if err != nil {
			return notFound(err, "shop")
		}
		next, err := update(rawJSON(config))
		if err != nil {
			return err
		}
		if len(next) > 0 && !json.Valid(next) {
			return fmt.Errorf("sqlstore: update shop config %q: the new document is not JSON", slug)
		}
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE shops SET config = ? WHERE slug = ?`), nullJSON(next), slug); err != nil {
			return fmt.Errorf("sqlstore: update shop config: %w", err)
		}
		return nil
	})
}

// Shops implements store.Catalog.
func (s *Store) Shops(ctx context.Context) ([]*store.Shop, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT `+shopCols+` FROM shops ORDER BY slug`)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: shops: %w", err)
	}
	defer rows.Close()
	var out []*store.Shop
	for rows.Next() {
		sh, err := scanShop(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlstore: shops: %w", err)
		}
		out = append(out, sh)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: shops: %w", err)
	}
	return out, nil
}

// PutProduct implements store.Catalog. Variants are upserted rather than
// deleted and re-inserted so that a concurrent CompleteSession waiting on
// a variant row lock re-checks the new row instead of finding it gone.
func (s *Store) PutProduct(ctx context.Context, p *store.Product, variants []*store.Variant) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO products
			(shop_slug, id, title, text, min_price, max_price, currency, categories, doc, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (shop_slug, id) DO UPDATE SET title = excluded.title, text = excluded.text,
			min_price = excluded.min_price, max_price = excluded.max_price, currency = excluded.currency,
			categories = excluded.categories, doc = excluded.doc, updated_at = excluded.updated_at`),
			p.ShopSlug, p.ID, p.Title, p.Text, p.MinPrice, p.MaxPrice, p.Currency, jsonList(p.Categories),
			nullJSON(p.Doc), ms(p.UpdatedAt)); err != nil {
			return fmt.Errorf("sqlstore: put product: %w", err)
		}
		if err := s.putCategories(ctx, tx, p); err != nil {
			return err
		}
		return s.putVariants(ctx, tx, p, variants)
	})
}

// putCategories mirrors p.Categories into product_categories, where a
// category filter is an exact indexed match instead of a search inside
// the JSON text.
func (s *Store) putCategories(ctx context.Context, tx *sql.Tx, p *store.Product) error {
	if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM product_categories WHERE shop_slug = ? AND product_id = ?`),
		p.ShopSlug, p.ID); err != nil {
		return fmt.Errorf("sqlstore: put product categories: %w", err)
	}
	seen := map[string]bool{}
	for _, c := range p.Categories {
		if seen[c] {
			continue
		}
		seen[c] = true
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO product_categories (shop_slug, product_id, category) VALUES (?, ?, ?)`),
			p.ShopSlug, p.ID, c); err != nil {
			return fmt.Errorf("sqlstore: put product categories: %w", err)
		}
	}
	return nil
}

func (s *Store) putVariants(ctx context.Context, tx *sql.Tx, p *store.Product, variants []*store.Variant) error {
	del := `DELETE FROM variants WHERE shop_slug = ? AND product_id = ?`
	args := []any{p.ShopSlug, p.ID}
	if len(variants) > 0 {
		del += ` AND id NOT IN (` + placeholders(len(variants)) + `)`
		for _, v := range variants {
			args = append(args, v.ID)
		}
	}
	if _, err := tx.ExecContext(ctx, s.q(del), args...); err != nil {
		return fmt.Errorf("sqlstore: put variants: %w", err)
	}
	for i, v := range variants {
		// The WHERE leaves another product's variant untouched, and zero
		// rows affected is how that conflict shows.
		res, err := tx.ExecContext(ctx, s.q(`INSERT INTO variants
			(shop_slug, id, product_id, title, price, stock, image_url, ord) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (shop_slug, id) DO UPDATE SET title = excluded.title, price = excluded.price,
			stock = excluded.stock, image_url = excluded.image_url, ord = excluded.ord
			WHERE variants.product_id = excluded.product_id`),
			p.ShopSlug, v.ID, p.ID, v.Title, v.Price, v.Stock, v.ImageURL, i)
		if err != nil {
			return fmt.Errorf("sqlstore: put variant: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("sqlstore: put variant: %w", err)
		} else if n == 0 {
			return fmt.Errorf("sqlstore: variant %q belongs to another product: %w", v.ID, store.ErrConflict)
		}
	}
	return nil
}

const productCols = `p.shop_slug, p.id, p.title, p.text, p.min_price, p.max_price, p.currency, p.categories, p.doc, p.updated_at`

func scanProduct(r scanner) (*store.Product, error) {
	var (
		p          store.Product
		categories string
		doc        sql.NullString
		updated    int64
	)
	if err := r.Scan(&p.ShopSlug, &p.ID, &p.Title, &p.Text, &p.MinPrice, &p.MaxPrice, &p.Currency,
		&categories, &doc, &updated); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(categories), &p.Categories); err != nil {
		return nil, fmt.Errorf("product %q categories: %w", p.ID, err)
	}
	p.Doc, p.UpdatedAt = rawJSON(doc), time.UnixMilli(updated)
	return &p, nil
}

// Product implements store.Catalog.
func (s *Store) Product(ctx context.Context, shop, id string) (*store.Product, error) {
	p, err := scanProduct(s.rdb.QueryRowContext(ctx, s.q(`SELECT `+productCols+` FROM products p
		WHERE p.shop_slug = ? AND p.id = ?`), shop, id))
	if err != nil {
		return nil, notFound(err, "product")
	}
	return p, nil
}

const variantCols = `shop_slug, id, product_id, title, price, stock, image_url`

func scanVariant(r scanner) (*store.Variant, error) {
	var v store.Variant
	if err := r.Scan(&v.ShopSlug, &v.ID, &v.ProductID, &v.Title, &v.Price, &v.Stock, &v.ImageURL); err != nil {
		return nil, err
	}
	return &v, nil
}

func (s *Store) queryVariants(ctx context.Context, query string, args ...any) ([]*store.Variant, error) {
	rows, err := s.rdb.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: variants: %w", err)
	}
	defer rows.Close()
	var out []*store.Variant
	for rows.Next() {
		v, err := scanVariant(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlstore: variants: %w", err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: variants: %w", err)
	}
	return out, nil
}

// ProductVariants implements store.Catalog.
func (s *Store) ProductVariants(ctx context.Context, shop, productID string) ([]*store.Variant, error) {
	return s.queryVariants(ctx, `SELECT `+variantCols+` FROM variants WHERE shop_slug = ? AND product_id = ? ORDER BY ord`,
		shop, productID)
}

// Variants implements store.Catalog.
func (s *Store) Variants(ctx context.Context, shop string, ids []string) (map[string]*store.Variant, error) {
	out := make(map[string]*store.Variant, len(ids))
	for chunk := range slices.Chunk(ids, variantsChunk) {
		args := []any{shop}
		for _, id := range chunk {
			args = append(args, id)
		}
		vs, err := s.queryVariants(ctx, `SELECT `+variantCols+` FROM variants
			WHERE shop_slug = ? AND id IN (`+placeholders(len(chunk))+`)`, args...)
		if err != nil {
			return nil, err
		}
		for _, v := range vs {
			out[v.ID] = v
		}
	}
	return out, nil
}

// SearchProducts implements store.Catalog.
func (s *Store) SearchProducts(ctx context.Context, q store.ProductQuery) ([]*store.Product, error) {
	where, args := s.productFilter(q)
	limit := q.Limit
	if limit <= 0 {
		limit = defaultSearchLimit
	}
	limit = min(limit, maxSearchLimit)
	query := `SELECT ` + productCols + ` FROM products p`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, ` AND `)
	}
	switch q.Order {
	case "":
		query += ` ORDER BY p.shop_slug, p.id LIMIT ?`
		args = append(args, limit)
	case "price_asc", "price_desc":
		dir := "ASC"
		if q.Order == "price_desc" {
			dir = "DESC"
		}
		query += ` ORDER BY p.min_price ` + dir + `, p.shop_slug, p.id LIMIT ? OFFSET ?`
		args = append(args, limit, max(q.Offset, 0))
	default:
		return nil, fmt.Errorf("sqlstore: search products: unknown order %q", q.Order)
	}
	rows, err := s.rdb.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: search products: %w", err)
	}
	defer rows.Close()
	var out []*store.Product
	for rows.Next() {
		p, err := scanProduct(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlstore: search products: %w", err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: search products: %w", err)
	}
	return out, nil
}

// productFilter turns q into WHERE conditions on products p.
func (s *Store) productFilter(q store.ProductQuery) ([]string, []any) {
	var (
		where []string
		args  []any
	)
	add := func(cond string, a ...any) {
		where = append(where, cond)
		args = append(args, a...)
	}
	if q.ShopSlug != "" {
		add(`p.shop_slug = ?`, q.ShopSlug)
	}
	for _, term := range q.Terms {
		if term != "" {
			add(s.d.instr+`(p.text, ?) > 0`, term)
		}
	}
	if q.Category != "" {
		add(`EXISTS (SELECT 1 FROM product_categories c
			WHERE c.shop_slug = p.shop_slug AND c.product_id = p.id AND c.category = ?)`, q.Category)
	}
	if len(q.Categories) > 0 {
		marks := strings.TrimSuffix(strings.Repeat("?, ", len(q.Categories)), ", ")
		cats := make([]any, len(q.Categories))
		for i, c := range q.Categories {
			cats[i] = c
		}
		add(`EXISTS (SELECT 1 FROM product_categories c
			WHERE c.shop_slug = p.shop_slug AND c.product_id = p.id AND c.category IN (`+marks+`))`, cats...)
	}
	if q.MinPrice != nil {
		add(`p.max_price >= ?`, *q.MinPrice)
	}
	if q.MaxPrice != nil {
		add(`p.min_price <= ?`, *q.MaxPrice)
	}
	// Prices of different currencies do not compare, so a currency only
	// narrows a price bound; without one every currency matches.
	if q.Currency != "" && (q.MinPrice != nil || q.MaxPrice != nil) {
		add(`p.currency = ?`, q.Currency)
	}
	if q.AfterShop != "" || q.AfterID != "" {
		add(`(p.shop_slug, p.id) > (?, ?)`, q.AfterShop, q.AfterID)
	}
	return where, args
}

const qCreateSession = `INSERT INTO sessions
	(kind, shop_slug, id, owner, status, version, doc, created_at, updated_at, expires_at)
	VALUES (?, ?, ?, ?, ?, 1, ?, ?, ?, ?)`

// CreateSession implements store.Sessions.
func (s *Store) CreateSession(ctx context.Context, sess *store.Session) error {
	_, err := s.exec(ctx, s.db, qCreateSession,
		string(sess.Kind), sess.ShopSlug, sess.ID, sess.Owner, sess.Status, nullJSON(sess.Doc),
		ms(sess.CreatedAt), ms(sess.UpdatedAt), ms(sess.ExpiresAt))
	if isUnique(err) {
		return fmt.Errorf("sqlstore: %s %q: %w", sess.Kind, sess.ID, store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("sqlstore: create session: %w", err)
	}
	sess.Version = 1
	return nil
}

const qSession = `SELECT kind, shop_slug, id, owner, status, version, doc, created_at, updated_at, expires_at
	FROM sessions WHERE kind = ? AND shop_slug = ? AND id = ?`

// Session implements store.Sessions.
func (s *Store) Session(ctx context.Context, kind store.SessionKind, shop, id string) (*store.Session, error) {
	var (
		sess                      store.Session
		k                         string
		doc                       sql.NullString
		created, updated, expires int64
	)
	err := s.queryRow(ctx, s.rdb, qSession, string(kind), shop, id).
		Scan(&k, &sess.ShopSlug, &sess.ID, &sess.Owner, &sess.Status, &sess.Version, &doc, &created, &updated, &expires)
	if err != nil {
		return nil, notFound(err, string(kind))
	}
	sess.Kind, sess.Doc = store.SessionKind(k), rawJSON(doc)
	sess.CreatedAt, sess.UpdatedAt, sess.ExpiresAt = time.UnixMilli(created), time.UnixMilli(updated), time.UnixMilli(expires)
	return &sess, nil
}

// UpdateSession implements store.Sessions.
func (s *Store) UpdateSession(ctx context.Context, sess *store.Session) error {
	if err := s.inTx(ctx, func(tx *sql.Tx) error { return s.updateSession(ctx, tx, sess) }); err != nil {
		return err
	}
	sess.Version++
	return nil
}

const (
	qUpdateSession = `UPDATE sessions SET version = version + 1, owner = ?, status = ?, doc = ?, updated_at = ?, expires_at = ?
	WHERE kind = ? AND shop_slug = ? AND id = ? AND version = ?`
	qSessionVersion = `SELECT version FROM sessions WHERE kind = ? AND shop_slug = ? AND id = ?`
)

// updateSession is the version-checked update. On PostgreSQL the UPDATE
// takes the row lock, so a concurrent updater of the same version waits
// for this transaction and then matches no row.
func (s *Store) updateSession(ctx context.Context, tx *sql.Tx, sess *store.Session) error {
	res, err := s.exec(ctx, tx, qUpdateSession,
		sess.Owner, sess.Status, nullJSON(sess.Doc), ms(sess.UpdatedAt), ms(sess.ExpiresAt),
		string(sess.Kind), sess.ShopSlug, sess.ID, sess.Version)
	if err != nil {
		return fmt.Errorf("sqlstore: update session: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("sqlstore: update session: %w", err)
	} else if n == 1 {
		return nil
	}
	var version int64
	err = s.queryRow(ctx, tx, qSessionVersion, string(sess.Kind), sess.ShopSlug, sess.ID).Scan(&version)
	if err != nil {
		return notFound(err, string(sess.Kind))
	}
	return fmt.Errorf("sqlstore: %s %q at version %d, not %d: %w", sess.Kind, sess.ID, version, sess.Version, store.ErrStale)
}

const qInsertWebhook = `INSERT INTO webhooks (id, shop_slug, order_id, url, attempts, next_at, created_at)
	VALUES (?, ?, ?, ?, 0, ?, ?)`

// CompleteSession implements store.Sessions. The session update comes
// first so that concurrent completions of one session queue on its row
// and the losers fail as stale before touching stock; stock is taken in
// variant id order so two orders sharing variants lock them in the same
// order and cannot deadlock.
func (s *Store) CompleteSession(ctx context.Context, sess *store.Session, o *store.Order, takes []store.StockTake) error {
	if o == nil {
		return errors.New("sqlstore: CompleteSession needs an order")
	}
	takes = slices.Clone(takes)
	slices.SortStableFunc(takes, func(a, b store.StockTake) int { return cmp.Compare(a.VariantID, b.VariantID) })
	for _, t := range takes {
		if t.Quantity < 0 {
			return fmt.Errorf("sqlstore: complete session: negative quantity for variant %q", t.VariantID)
		}
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if err := s.updateSession(ctx, tx, sess); err != nil {
			return err
		}
		for _, t := range takes {
			if err := s.takeStock(ctx, tx, sess.ShopSlug, t); err != nil {
				return err
			}
		}
		if err := s.insertOrder(ctx, tx, o); err != nil {
			return err
		}
		if o.HoldID != "" {
			if err := s.consumeHold(ctx, tx, o.HoldID, o.CreatedAt); err != nil {
				return err
			}
		}
		if o.Redeem != nil {
			if err := s.redeemCoupon(ctx, tx, o.Redeem); err != nil {
				return err
			}
		}
		queued := map[string]bool{}
		for _, u := range o.WebhookURLs {
			if u == "" || queued[u] {
				continue
			}
			queued[u] = true
			_, err := s.exec(ctx, tx, qInsertWebhook, newUUID(), o.ShopSlug, o.ID, u, ms(o.CreatedAt), ms(o.CreatedAt))
			if err != nil {
				return fmt.Errorf("sqlstore: queue webhook: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	sess.Version++
	return nil
}

const (
	qTakeStock = `UPDATE variants SET stock = CASE WHEN stock < 0 THEN stock ELSE stock - ? END
	WHERE shop_slug = ? AND id = ? AND (stock < 0 OR stock >= ?)`
	qStock = `SELECT stock FROM variants WHERE shop_slug = ? AND id = ?`
)

// takeStock decrements a tracked variant in one guarded UPDATE, so two
// orders can never both take the last unit; when it matches nothing, a
// read says why.
func (s *Store) takeStock(ctx context.Context, tx *sql.Tx, shop string, t store.StockTake) error {
	// Untracked variants (stock < 0) match too and keep their stock, so
	// the common case is one statement whatever the variant.
	res, err := s.exec(ctx, tx, qTakeStock, t.Quantity, shop, t.VariantID, t.Quantity)
	if err != nil {
		return fmt.Errorf("sqlstore: take stock: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("sqlstore: take stock: %w", err)
	} else if n == 1 {
		return nil
	}
	var stock int64
	err = s.queryRow(ctx, tx, qStock, shop, t.VariantID).Scan(&stock)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		stock = 0
	case err != nil:
		return fmt.Errorf("sqlstore: take stock: %w", err)
	case stock < 0:
		return nil // not tracked
	}
	return fmt.Errorf("sqlstore: take stock: %w", &store.OutOfStockError{VariantID: t.VariantID, Available: stock})
}

const qInsertOrder = `INSERT INTO orders
	(shop_slug, id, checkout_id, owner, client_id, buyer_id, buyer_type, doc, created_at)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`

func (s *Store) insertOrder(ctx context.Context, tx *sql.Tx, o *store.Order) error {
	_, err := s.exec(ctx, tx, qInsertOrder,
		o.ShopSlug, o.ID, o.CheckoutID, o.Owner, o.ClientID, o.BuyerID, o.BuyerType, nullJSON(o.Doc), ms(o.CreatedAt))
	if isUnique(err) {
		return fmt.Errorf("sqlstore: order %q (checkout %q): %w", o.ID, o.CheckoutID, store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("sqlstore: insert order: %w", err)
	}
	return nil
}

const qOrder = `SELECT shop_slug, id, checkout_id, owner, client_id, buyer_id, buyer_type, doc, created_at
	FROM orders WHERE shop_slug = ? AND id = ?`

// Order implements store.Orders.
func (s *Store) Order(ctx context.Context, shop, id string) (*store.Order, error) {
	return scanOrder(s.queryRow(ctx, s.rdb, qOrder, shop, id))
}

func scanOrder(r scanner) (*store.Order, error) {
	var (
		o       store.Order
		doc     sql.NullString
		created int64
	)
	if err := r.Scan(&o.ShopSlug, &o.ID, &o.CheckoutID, &o.Owner, &o.ClientID, &o.BuyerID, &o.BuyerType, &doc, &created); err != nil {
		return nil, notFound(err, "order")
	}
	o.Doc, o.CreatedAt = rawJSON(doc), time.UnixMilli(created)
	return &o, nil
}

// claimAttempts bounds how often a claim retries when the record it found
// taken is deleted (released or swept) before it could lock it.
const claimAttempts = 3

// ClaimIdempotency implements store.Idempotency. The insert that loses to
// an existing key does nothing, and the existing record is then read
// under a row lock (FOR UPDATE on PostgreSQL; SQLite's immediate
// transaction holds the only write lock), so concurrent claims of one
// key, first or take-over, yield exactly one winner.
func (s *Store) ClaimIdempotency(ctx context.Context, k store.IdemKey, requestHash []byte, now time.Time, lease, ttl time.Duration) (*store.IdemRecord, error) {
	// Fast path, the common case: a fresh key is one autocommitted
	// INSERT (one round trip instead of a transaction's three). A key
	// that exists takes the locked path below.
	res, err := s.exec(ctx, s.db, qIdemInsert, k.Scope, k.Key, requestHash, ms(now), ms(now.Add(lease)), ms(now.Add(ttl)))
	if err != nil {
		return nil, fmt.Errorf("sqlstore: claim idempotency key: %w", err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 1 {
		return nil, nil
	}
	var rec *store.IdemRecord
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		rec, err = s.claim(ctx, tx, k, requestHash, now, lease, ttl)
		return err
	})
	return rec, err
}

const qIdemInsert = `INSERT INTO idempotency
	(scope, key, request_hash, done, status, created_at, lease_until, expires_at) VALUES (?, ?, ?, 0, 0, ?, ?, ?)
	ON CONFLICT (scope, key) DO NOTHING`

func (s *Store) claim(ctx context.Context, tx *sql.Tx, k store.IdemKey, requestHash []byte, now time.Time, lease, ttl time.Duration) (*store.IdemRecord, error) {
	claim := []any{requestHash, ms(now), ms(now.Add(lease)), ms(now.Add(ttl))}
	for range claimAttempts {
		res, err := s.exec(ctx, tx, qIdemInsert, append([]any{k.Scope, k.Key}, claim...)...)
		if err != nil {
			return nil, fmt.Errorf("sqlstore: claim idempotency key: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return nil, fmt.Errorf("sqlstore: claim idempotency key: %w", err)
		} else if n == 1 {
			return nil, nil
		}
		rec, err := s.idemRecord(ctx, tx, k, s.d.forUpdate)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		switch {
		case !now.Before(rec.ExpiresAt) || (!rec.Done && !now.Before(rec.LeaseUntil)):
			return nil, s.takeOver(ctx, tx, k, now, claim)
		case rec.Done:
			return rec, nil
		default:
			return rec, fmt.Errorf("sqlstore: idempotency key %q: %w", k.Key, store.ErrInProgress)
		}
	}
	return nil, fmt.Errorf("sqlstore: claim idempotency key %q: record keeps vanishing", k.Key)
}

// takeOver replaces an expired record or a lapsed claim. The WHERE
// repeats the check made under the row lock, so should the lock ever fail
// to hold, two claimants cannot both take the key over.
func (s *Store) takeOver(ctx context.Context, tx *sql.Tx, k store.IdemKey, now time.Time, claim []any) error {
	args := slices.Concat(claim, []any{k.Scope, k.Key, ms(now), ms(now)})
	res, err := tx.ExecContext(ctx, s.q(`UPDATE idempotency SET request_hash = ?, done = 0, status = 0, body = NULL,
		created_at = ?, lease_until = ?, expires_at = ?
		WHERE scope = ? AND key = ? AND (expires_at <= ? OR (done = 0 AND lease_until <= ?))`), args...)
	if err != nil {
		return fmt.Errorf("sqlstore: take over idempotency key: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return fmt.Errorf("sqlstore: take over idempotency key: record changed under the lock (%d rows, %v)", n, err)
	}
	return nil
}

func (s *Store) idemRecord(ctx context.Context, q queryer, k store.IdemKey, lock string) (*store.IdemRecord, error) {
	var (
		rec                     store.IdemRecord
		done                    int
		created, lease, expires int64
	)
	err := q.QueryRowContext(ctx, s.q(`SELECT request_hash, done, status, body, created_at, lease_until, expires_at
		FROM idempotency WHERE scope = ? AND key = ?`+lock), k.Scope, k.Key).
		Scan(&rec.RequestHash, &done, &rec.Status, &rec.Body, &created, &lease, &expires)
	if err != nil {
		return nil, notFound(err, "idempotency key")
	}
	rec.Done = done != 0
	rec.CreatedAt, rec.LeaseUntil, rec.ExpiresAt = time.UnixMilli(created), time.UnixMilli(lease), time.UnixMilli(expires)
	return &rec, nil
}

const qFinishIdem = `UPDATE idempotency SET done = 1, status = ?, body = ? WHERE scope = ? AND key = ?`

// FinishIdempotency implements store.Idempotency. A key that is gone
// (released, or swept after expiry) is ErrNotFound.
func (s *Store) FinishIdempotency(ctx context.Context, k store.IdemKey, status int, body []byte) error {
	res, err := s.exec(ctx, s.db, qFinishIdem, status, body, k.Scope, k.Key)
	if err != nil {
		return fmt.Errorf("sqlstore: finish idempotency key: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("sqlstore: finish idempotency key: %w", err)
	} else if n == 0 {
		return fmt.Errorf("sqlstore: idempotency key %q: %w", k.Key, store.ErrNotFound)
	}
	return nil
}

// ReleaseIdempotency implements store.Idempotency.
func (s *Store) ReleaseIdempotency(ctx context.Context, k store.IdemKey) error {
	if _, err := s.db.ExecContext(ctx, s.q(`DELETE FROM idempotency WHERE scope = ? AND key = ? AND done = 0`),
		k.Scope, k.Key); err != nil {
		return fmt.Errorf("sqlstore: release idempotency key: %w", err)
	}
	return nil
}

// SweepIdempotency implements store.Idempotency.
func (s *Store) SweepIdempotency(ctx context.Context, now time.Time) (int64, error) {
	res, err := s.db.ExecContext(ctx, s.q(`DELETE FROM idempotency WHERE expires_at <= ?`), ms(now))
	if err != nil {
		return 0, fmt.Errorf("sqlstore: sweep idempotency keys: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("sqlstore: sweep idempotency keys: %w", err)
	}
	return n, nil
}

// SweepSessions implements store.Sessions.
func (s *Store) SweepSessions(ctx context.Context, before time.Time) (int64, error) {
	res, err := s.db.ExecContext(ctx, s.q(`DELETE FROM sessions WHERE expires_at < ?
		AND NOT (kind = 'checkout' AND status = 'completed')`), ms(before))
	if err != nil {
		return 0, fmt.Errorf("sqlstore: sweep sessions: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("sqlstore: sweep sessions: %w", err)
	}
	return n, nil
}

// ClaimWebhooks implements store.Webhooks. The claim is one transaction:
// rows are read (locked on PostgreSQL) and pushed past the lease together,
// so two workers never get the same delivery.
func (s *Store) ClaimWebhooks(ctx context.Context, now time.Time, lease time.Duration, n int) ([]*store.Webhook, error) {
	if n <= 0 {
		return nil, nil
	}
	var out []*store.Webhook
	lock := ""
	if s.d.postgres {
		lock = " FOR UPDATE SKIP LOCKED"
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, s.q(`SELECT id, shop_slug, order_id, url, attempts, next_at, created_at
			FROM webhooks WHERE next_at <= ? ORDER BY next_at, id LIMIT ?`+lock), ms(now), n)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var w store.Webhook
			var next, created sql.NullInt64
			if err := rows.Scan(&w.ID, &w.ShopSlug, &w.OrderID, &w.URL, &w.Attempts, &next, &created); err != nil {
				return err
			}
			w.NextAt, w.CreatedAt = fromMS(next), fromMS(created)
			out = append(out, &w)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		rows.Close()
		for _, w := range out {
			if _, err := tx.ExecContext(ctx, s.q(`UPDATE webhooks SET next_at = ? WHERE id = ?`), ms(now.Add(lease)), w.ID); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sqlstore: claim webhooks: %w", err)
	}
	return out, nil
}

// RetryWebhook implements store.Webhooks.
func (s *Store) RetryWebhook(ctx context.Context, id string, next time.Time) error {
	res, err := s.db.ExecContext(ctx, s.q(`UPDATE webhooks SET attempts = attempts + 1, next_at = ? WHERE id = ?`), ms(next), id)
	if err != nil {
		return fmt.Errorf("sqlstore: retry webhook: %w", err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return fmt.Errorf("sqlstore: retry webhook %q: %w", id, store.ErrNotFound)
	}
	return nil
}

// DeleteWebhook implements store.Webhooks.
func (s *Store) DeleteWebhook(ctx context.Context, id string) error {
	if _, err := s.db.ExecContext(ctx, s.q(`DELETE FROM webhooks WHERE id = ?`), id); err != nil {
		return fmt.Errorf("sqlstore: delete webhook: %w", err)
	}
	return nil
}

// newUUID is a random (version 4) UUID: the Webhook-Id UCP asks for.
func newUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
