package account

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ucpbridge/ucpbridge/authserver/guard"
	"github.com/ucpbridge/ucpbridge/authserver/store"
	"github.com/ucpbridge/ucpbridge/ucpclient/ucp"
)

// List paging bounds.
const (
	DefaultOrderLimit = 20
	MaxOrderLimit     = 50
)

type listOrdersArgs struct {
	Limit  int    `json:"limit"`
	Cursor string `json:"cursor"`
}

type getOrderArgs struct {
	OrderID string `json:"order_id"`
}

func (s *Server) listOrders(ctx context.Context, p *guard.Principal, in *listOrdersArgs) (*OrderList, error) {
	limit := in.Limit
	switch {
	case limit == 0:
		limit = DefaultOrderLimit
	case limit < 1 || limit > MaxOrderLimit:
		return nil, invalidArgument(fmt.Sprintf("limit must be between 1 and %d", MaxOrderLimit))
	}
	var after *store.OrderCursor
	if in.Cursor != "" {
		c, err := decodeCursor(in.Cursor)
		if err != nil {
			return nil, err
		}
		after = c
	}
	// One more than the page tells whether another page exists, so the
	// last page carries no cursor to a page that would be empty.
	rows, err := s.cfg.Store.BuyerOrders(ctx, p.BuyerID, after, limit+1)
	if err != nil {
		return nil, err
	}
	names, err := s.storeNames(ctx)
	if err != nil {
		return nil, err
	}
	out := &OrderList{Orders: []OrderSummary{}}
	for i, o := range rows {
		if i == limit {
			last := rows[limit-1]
			out.NextCursor = encodeCursor(&store.OrderCursor{CreatedAt: last.CreatedAt, ShopSlug: last.ShopSlug, ID: last.ID})
			break
		}
		// The store filters by buyer; this keeps the promise even if a
		// backend ever did not.
		if o.BuyerID != p.BuyerID {
			continue
		}
		sum, _, err := summarize(o, names)
		if err != nil {
			return nil, err
		}
		out.Orders = append(out.Orders, *sum)
	}
	return out, nil
}

func (s *Server) getOrder(ctx context.Context, p *guard.Principal, in *getOrderArgs) (*OrderDetail, error) {
	ref := strings.TrimSpace(in.OrderID)
	notFound := &ToolError{Code: CodeNotFound, Message: fmt.Sprintf("no order %q in this buyer's account (list_my_orders lists them)", ref)}
	if ref == "" || !store.ValidText(ref) {
		return nil, invalidArgument("order_id must name an order: \"store/order id\" or the order id")
	}
	names, err := s.storeNames(ctx)
	if err != nil {
		return nil, err
	}
	// "store/id" names the store; a bare id is looked for at every
	// store. Order ids are random (ord_ and 120 bits), so a bare id
	// names one order.
	slugs := make([]string, 0, len(names))
	id := ref
	if slug, rest, ok := strings.Cut(ref, "/"); ok {
		if _, known := names[slug]; !known || rest == "" {
			return nil, notFound
		}
		slugs, id = append(slugs, slug), rest
	} else {
		for slug := range names {
			slugs = append(slugs, slug)
		}
	}
	for _, slug := range slugs {
		o, err := s.cfg.Store.Order(ctx, slug, id)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		// Another buyer's order is reported exactly as a missing one:
		// the answer never tells whether an id exists.
		if !p.MayReadOrder(guard.OrderParty{Owner: o.Owner, ClientID: o.ClientID, BuyerID: o.BuyerID, Store: o.ShopSlug}) {
			continue
		}
		sum, doc, err := summarize(o, names)
		if err != nil {
			return nil, err
		}
		return &OrderDetail{OrderSummary: *sum, Order: doc}, nil
	}
	return nil, notFound
}

// storeNames maps every store's slug to its name.
func (s *Server) storeNames(ctx context.Context) (map[string]string, error) {
	shops, err := s.cfg.Store.Shops(ctx)
	if err != nil {
		return nil, err
	}
	names := make(map[string]string, len(shops))
	for _, sh := range shops {
		names[sh.Slug] = sh.Name
	}
	return names, nil
}

// summarize reads a stored order's UCP document into its summary; it
// also returns the document, without the envelope a stored order may
// carry.
func summarize(o *store.Order, names map[string]string) (*OrderSummary, json.RawMessage, error) {
	var doc ucp.Order
	if err := json.Unmarshal(o.Doc, &doc); err != nil {
		return nil, nil, fmt.Errorf("order %s/%s: %w", o.ShopSlug, o.ID, err)
	}
	sum := &OrderSummary{OrderRef: o.ShopSlug + "/" + o.ID, ID: o.ID, Store: o.ShopSlug, StoreName: names[o.ShopSlug],
		PlacedAt: o.CreatedAt.UTC(), Currency: doc.Currency, Items: []OrderItem{}, PermalinkURL: doc.PermalinkURL,
		AgentClientID: o.ClientID}
	if sum.StoreName == "" {
		sum.StoreName = o.ShopSlug
	}
	if o.BuyerType == "agent" || o.BuyerType == "human" {
		sum.PlacedBy = o.BuyerType
	}
	for _, t := range doc.Totals {
		if t.Type == "total" {
			sum.TotalAmount = t.Amount
		}
	}
	for _, l := range doc.LineItems {
		sum.Items = append(sum.Items, OrderItem{ID: l.Item.ID, Title: l.Item.Title, Quantity: l.Quantity.Total})
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(o.Doc, &obj); err != nil {
		return nil, nil, fmt.Errorf("order %s/%s: %w", o.ShopSlug, o.ID, err)
	}
	delete(obj, "ucp")
	raw, err := json.Marshal(obj)
	if err != nil {
		return nil, nil, err
	}
	return sum, raw, nil
}

// cursor is where a page of orders ended. It is opaque to agents and
// carries nothing of value: every page is read for the bearer's buyer
// alone, so a forged cursor can only skip through the caller's own
// orders.
type cursor struct {
	V int    `json:"v"`
	T int64  `json:"t"` // CreatedAt, Unix nanoseconds
	S string `json:"s"`
	I string `json:"i"`
}

const cursorVersion = 1

func encodeCursor(c *store.OrderCursor) string {
	b, _ := json.Marshal(cursor{V: cursorVersion, T: c.CreatedAt.UnixNano(), S: c.ShopSlug, I: c.ID})
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(s string) (*store.OrderCursor, error) {
	bad := invalidArgument("cursor is not a next_cursor this server gave; start again without one")
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, bad
	}
	var c cursor
	if json.Unmarshal(b, &c) != nil || c.V != cursorVersion || c.T <= 0 || c.S == "" || c.I == "" ||
		!store.ValidText(c.S) || !store.ValidText(c.I) || len(c.S) > 128 || len(c.I) > 128 {
		return nil, bad
	}
	return &store.OrderCursor{CreatedAt: time.Unix(0, c.T).UTC(), ShopSlug: c.S, ID: c.I}, nil
}
