package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/ucpbridge/ucpbridge/authserver/store"
)

// CreateClient implements store.Clients.
func (s *Store) CreateClient(ctx context.Context, c *store.Client) error {
	_, err := s.db.ExecContext(ctx, s.q(`INSERT INTO clients
		(id, secret_hash, type, name, redirect_uris, grant_types, scopes, developers, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		c.ID, c.SecretHash, string(c.Type), c.Name, jsonList(c.RedirectURIs), jsonList(c.GrantTypes),
		jsonList(c.Scopes), jsonList(c.Developers), ms(c.CreatedAt))
	if isUnique(err) {
		return fmt.Errorf("sqlstore: client %q: %w", c.ID, store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("sqlstore: create client: %w", err)
	}
	return nil
}

// Client implements store.Clients.
func (s *Store) Client(ctx context.Context, id string) (*store.Client, error) {
	var (
		c                                    store.Client
		typ, redirects, grants, scopes, devs string
		created                              int64
	)
	err := s.rdb.QueryRowContext(ctx, s.q(`SELECT id, secret_hash, type, name, redirect_uris, grant_types, scopes, developers, created_at
		FROM clients WHERE id = ?`), id).
		Scan(&c.ID, &c.SecretHash, &typ, &c.Name, &redirects, &grants, &scopes, &devs, &created)
	if err != nil {
		return nil, notFound(err, "client")
	}
	c.Type = store.ClientType(typ)
	c.CreatedAt = time.UnixMilli(created)
	for _, f := range []struct {
		src string
		dst *[]string
	}{{redirects, &c.RedirectURIs}, {grants, &c.GrantTypes}, {scopes, &c.Scopes}, {devs, &c.Developers}} {
		if err := json.Unmarshal([]byte(f.src), f.dst); err != nil {
			return nil, fmt.Errorf("sqlstore: client %q: %w", id, err)
		}
	}
	return &c, nil
}

// CreateBuyer implements store.Buyers.
func (s *Store) CreateBuyer(ctx context.Context, b *store.Buyer) error {
	_, err := s.db.ExecContext(ctx, s.q(`INSERT INTO buyers (id, email, password_hash, created_at) VALUES (?, ?, ?, ?)`),
		b.ID, strings.ToLower(b.Email), b.PasswordHash, ms(b.CreatedAt))
	if isUnique(err) {
		return fmt.Errorf("sqlstore: buyer %q: %w", b.Email, store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("sqlstore: create buyer: %w", err)
	}
	return nil
}

// Buyer implements store.Buyers.
func (s *Store) Buyer(ctx context.Context, id string) (*store.Buyer, error) {
	return s.buyer(ctx, `id = ?`, id)
}

// BuyerByEmail implements store.Buyers.
func (s *Store) BuyerByEmail(ctx context.Context, email string) (*store.Buyer, error) {
	return s.buyer(ctx, `email = ?`, strings.ToLower(email))
}

func (s *Store) buyer(ctx context.Context, where string, arg string) (*store.Buyer, error) {
	var b store.Buyer
	var created int64
	err := s.rdb.QueryRowContext(ctx, s.q(`SELECT id, email, password_hash, created_at FROM buyers WHERE `+where), arg).
		Scan(&b.ID, &b.Email, &b.PasswordHash, &created)
	if err != nil {
		return nil, notFound(err, "buyer")
	}
	b.CreatedAt = time.UnixMilli(created)
	return &b, nil
}

// SaveConsent implements store.Consents.
func (s *Store) SaveConsent(ctx context.Context, c *store.Consent) error {
	_, err := s.db.ExecContext(ctx, s.q(`INSERT INTO consents (buyer_id, client_id, scope, allowance, updated_at)
		VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (buyer_id, client_id) DO UPDATE SET scope = excluded.scope, allowance = excluded.allowance,
		updated_at = excluded.updated_at`),
		c.BuyerID, c.ClientID, c.Scope, nullJSON(c.Allowance), ms(c.UpdatedAt))
	if err != nil {
		return fmt.Errorf("sqlstore: save consent: %w", err)
	}
	return nil
}

// Consent implements store.Consents.
func (s *Store) Consent(ctx context.Context, buyerID, clientID string) (*store.Consent, error) {
	var (
		c         store.Consent
		allowance sql.NullString
		updated   int64
	)
	err := s.rdb.QueryRowContext(ctx, s.q(`SELECT buyer_id, client_id, scope, allowance, updated_at
		FROM consents WHERE buyer_id = ? AND client_id = ?`), buyerID, clientID).
		Scan(&c.BuyerID, &c.ClientID, &c.Scope, &allowance, &updated)
	if err != nil {
		return nil, notFound(err, "consent")
	}
	if allowance.Valid {
		c.Allowance = json.RawMessage(allowance.String)
	}
	c.UpdatedAt = time.UnixMilli(updated)
	return &c, nil
}
