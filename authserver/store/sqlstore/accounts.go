package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ucpbridge/ucpbridge/authserver/store"
)

// CreateClient implements store.Clients. The client and its ownership
// rows (itself under its platform, the CIMD URLs a platform declares) go
// in one transaction, so a URL another platform holds fails it whole.
func (s *Store) CreateClient(ctx context.Context, c *store.Client) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, s.q(`INSERT INTO clients
		(id, secret_hash, type, name, redirect_uris, grant_types, scopes, developers, role, store, platform, profile, registration_hash, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
			c.ID, c.SecretHash, string(c.Type), c.Name, jsonList(c.RedirectURIs), jsonList(c.GrantTypes),
			jsonList(c.Scopes), jsonList(c.Developers), string(c.Role), c.Store, c.Platform, c.Profile, c.RegistrationHash, ms(c.CreatedAt))
		if isUnique(err) {
			return fmt.Errorf("sqlstore: client %q: %w", c.ID, store.ErrConflict)
		}
		if err != nil {
			return fmt.Errorf("sqlstore: create client: %w", err)
		}
		return s.ownClient(ctx, tx, c)
	})
}

// UpdateClient implements store.Clients.
func (s *Store) UpdateClient(ctx context.Context, c *store.Client) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.q(`UPDATE clients SET secret_hash = ?, type = ?, name = ?, redirect_uris = ?, grant_types = ?,
			scopes = ?, developers = ?, role = ?, store = ?, platform = ?, profile = ?, registration_hash = ? WHERE id = ?`),
			c.SecretHash, string(c.Type), c.Name, jsonList(c.RedirectURIs), jsonList(c.GrantTypes), jsonList(c.Scopes),
			jsonList(c.Developers), string(c.Role), c.Store, c.Platform, c.Profile, c.RegistrationHash, c.ID)
		if err != nil {
			return fmt.Errorf("sqlstore: update client: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("sqlstore: client %q: %w", c.ID, store.ErrNotFound)
		}
		// Its own row, and the CIMD URLs it declared (rows of ids that
		// are no registered client); the rows of apps it owns stay.
		if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM platform_clients WHERE client_id = ?
			OR (platform_id = ? AND client_id NOT IN (SELECT id FROM clients))`), c.ID, c.ID); err != nil {
			return fmt.Errorf("sqlstore: update client: %w", err)
		}
		return s.ownClient(ctx, tx, c)
	})
}

// ownClient stores a client's ownership rows: itself under its platform,
// and the CIMD URLs a platform declares.
func (s *Store) ownClient(ctx context.Context, tx *sql.Tx, c *store.Client) error {
	owned := map[string]string{}
	if c.Platform != "" {
		owned[c.ID] = c.Platform
	}
	for _, u := range c.CIMD {
		owned[u] = c.ID
	}
	for id, platform := range owned {
		_, err := tx.ExecContext(ctx, s.q(`INSERT INTO platform_clients (client_id, platform_id) VALUES (?, ?)`), id, platform)
		if isUnique(err) {
			return fmt.Errorf("sqlstore: client %q: %q already belongs to a platform: %w", c.ID, id, store.ErrConflict)
		}
		if err != nil {
			return fmt.Errorf("sqlstore: client ownership: %w", err)
		}
	}
	return nil
}

// ClientPlatform implements store.Clients.
func (s *Store) ClientPlatform(ctx context.Context, clientID string) (string, error) {
	var p string
	err := s.rdb.QueryRowContext(ctx, s.q(`SELECT platform_id FROM platform_clients WHERE client_id = ?`), clientID).Scan(&p)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("sqlstore: client platform: %w", err)
	}
	return p, nil
}

const (
	qClient = `SELECT id, secret_hash, type, name, redirect_uris, grant_types, scopes, developers,
	role, store, platform, profile, registration_hash, created_at FROM clients WHERE id = ?`
	qClientCIMD = `SELECT client_id FROM platform_clients WHERE platform_id = ? AND client_id <> ? ORDER BY client_id`
)

// Client implements store.Clients.
func (s *Store) Client(ctx context.Context, id string) (*store.Client, error) {
	var (
		c                                          store.Client
		typ, role, redirects, grants, scopes, devs string
		created                                    int64
	)
	err := s.queryRow(ctx, s.rdb, qClient, id).
		Scan(&c.ID, &c.SecretHash, &typ, &c.Name, &redirects, &grants, &scopes, &devs, &role, &c.Store, &c.Platform, &c.Profile,
			&c.RegistrationHash, &created)
	if err != nil {
		return nil, notFound(err, "client")
	}
	if c.Role = store.ClientRole(role); c.Role == store.RolePlatform {
		rows, err := s.query(ctx, s.rdb, qClientCIMD, c.ID, c.ID)
		if err != nil {
			return nil, fmt.Errorf("sqlstore: client %q: %w", id, err)
		}
		defer rows.Close()
		for rows.Next() {
			var u string
			if err := rows.Scan(&u); err != nil {
				return nil, fmt.Errorf("sqlstore: client %q: %w", id, err)
			}
			if strings.HasPrefix(u, "https://") || strings.HasPrefix(u, "http://") {
				c.CIMD = append(c.CIMD, u)
			}
		}
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("sqlstore: client %q: %w", id, err)
		}
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
	_, err := s.db.ExecContext(ctx, s.q(`INSERT INTO buyers (id, email, password_hash, account, created_at) VALUES (?, ?, ?, ?, ?)`),
		b.ID, strings.ToLower(b.Email), b.PasswordHash, nullJSON(b.Account), ms(b.CreatedAt))
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
	var (
		b       store.Buyer
		account sql.NullString
		created int64
	)
	err := s.rdb.QueryRowContext(ctx, s.q(`SELECT id, email, password_hash, account, created_at FROM buyers WHERE `+where), arg).
		Scan(&b.ID, &b.Email, &b.PasswordHash, &account, &created)
	if err != nil {
		return nil, notFound(err, "buyer")
	}
	b.Account, b.CreatedAt = rawJSON(account), time.UnixMilli(created)
	return &b, nil
}

// SetBuyerAccount implements store.Buyers.
func (s *Store) SetBuyerAccount(ctx context.Context, id string, account json.RawMessage) error {
	res, err := s.db.ExecContext(ctx, s.q(`UPDATE buyers SET account = ? WHERE id = ?`), nullJSON(account), id)
	if err != nil {
		return fmt.Errorf("sqlstore: set buyer account: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("sqlstore: buyer %q: %w", id, store.ErrNotFound)
	}
	return nil
}

// SaveConsent implements store.Consents.
func (s *Store) SaveConsent(ctx context.Context, c *store.Consent) error {
	return s.saveConsent(ctx, s.db, c)
}

func (s *Store) saveConsent(ctx context.Context, q queryer, c *store.Consent) error {
	var err error
	if s.d.postgres {
		// The client's row is locked (FOR KEY SHARE, when it exists) for
		// the insert: consents has no foreign key to clients, so
		// otherwise nothing stops the retention sweep from deleting an
		// unused self-registered client while its first consent is being
		// saved (the sweep's NOT EXISTS reads a snapshot from before the
		// consent commits), leaving a consent of a deleted client and the
		// buyer's sign-in broken. Locked, the sweep's pick (SKIP LOCKED)
		// passes it over, and its delete re-checks consents. SQLite's
		// single writer already serializes the two.
		_, err = q.ExecContext(ctx, s.q(`INSERT INTO consents (buyer_id, client_id, scope, allowance, updated_at)
			SELECT ?, ?, ?, CAST(? AS TEXT), CAST(? AS BIGINT)
			FROM (SELECT 1) one LEFT JOIN (SELECT id FROM clients WHERE id = ? FOR KEY SHARE) c ON true
			ON CONFLICT (buyer_id, client_id) DO UPDATE SET scope = excluded.scope, allowance = excluded.allowance,
			updated_at = excluded.updated_at`),
			c.BuyerID, c.ClientID, c.Scope, nullJSON(c.Allowance), ms(c.UpdatedAt), c.ClientID)
	} else {
		_, err = q.ExecContext(ctx, s.q(`INSERT INTO consents (buyer_id, client_id, scope, allowance, updated_at)
			VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (buyer_id, client_id) DO UPDATE SET scope = excluded.scope, allowance = excluded.allowance,
			updated_at = excluded.updated_at`),
			c.BuyerID, c.ClientID, c.Scope, nullJSON(c.Allowance), ms(c.UpdatedAt))
	}
	if err != nil {
		return fmt.Errorf("sqlstore: save consent: %w", err)
	}
	return nil
}

// Consent implements store.Consents.
func (s *Store) Consent(ctx context.Context, buyerID, clientID string) (*store.Consent, error) {
	return s.consent(ctx, s.rdb, buyerID, clientID, "")
}

func (s *Store) consent(ctx context.Context, q queryer, buyerID, clientID, lock string) (*store.Consent, error) {
	return scanConsent(q.QueryRowContext(ctx, s.q(`SELECT buyer_id, client_id, scope, allowance, updated_at
		FROM consents WHERE buyer_id = ? AND client_id = ?`+lock), buyerID, clientID))
}

func scanConsent(r scanner) (*store.Consent, error) {
	var (
		c         store.Consent
		allowance sql.NullString
		updated   int64
	)
	if err := r.Scan(&c.BuyerID, &c.ClientID, &c.Scope, &allowance, &updated); err != nil {
		return nil, notFound(err, "consent")
	}
	c.Allowance, c.UpdatedAt = rawJSON(allowance), time.UnixMilli(updated)
	return &c, nil
}

// BuyerConsents implements store.Consents.
func (s *Store) BuyerConsents(ctx context.Context, buyerID string) ([]*store.Consent, error) {
	rows, err := s.rdb.QueryContext(ctx, s.q(`SELECT buyer_id, client_id, scope, allowance, updated_at
		FROM consents WHERE buyer_id = ? ORDER BY client_id`), buyerID)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: buyer consents: %w", err)
	}
	defer rows.Close()
	var out []*store.Consent
	for rows.Next() {
		c, err := scanConsent(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: buyer consents: %w", err)
	}
	return out, nil
}

// UpdateConsent implements store.Consents. The row lock (FOR UPDATE;
// SQLite's immediate transaction) also queues it behind HoldSpend, which
// locks the same row: a lowered allowance is never raced by a hold that
// read the old one.
func (s *Store) UpdateConsent(ctx context.Context, buyerID, clientID string, fn func(c *store.Consent) error) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		c, err := s.consent(ctx, tx, buyerID, clientID, s.d.forUpdate)
		if err != nil {
			return err
		}
		if err := fn(c); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, s.q(`UPDATE consents SET scope = ?, allowance = ?, updated_at = ? WHERE buyer_id = ? AND client_id = ?`),
			c.Scope, nullJSON(c.Allowance), ms(c.UpdatedAt), buyerID, clientID)
		if err != nil {
			return fmt.Errorf("sqlstore: update consent: %w", err)
		}
		return nil
	})
}

// RevokeClientGrants implements store.Consents.
func (s *Store) RevokeClientGrants(ctx context.Context, buyerID, clientID string, now time.Time) (int64, error) {
	var n int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, s.q(`SELECT id FROM grants WHERE buyer_id = ? AND client_id = ? AND revoked_at IS NULL`), buyerID, clientID)
		if err != nil {
			return fmt.Errorf("sqlstore: revoke client grants: %w", err)
		}
		var ids []string
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return fmt.Errorf("sqlstore: revoke client grants: %w", err)
			}
			ids = append(ids, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("sqlstore: revoke client grants: %w", err)
		}
		for _, id := range ids {
			if err := s.revokeFamily(ctx, tx, id, now); err != nil {
				return err
			}
		}
		// Codes issued and not yet redeemed would mint a new family after
		// the revocation: they are spent now (redeeming one is then a
		// reuse, refused).
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE codes SET used_at = ? WHERE buyer_id = ? AND client_id = ? AND used_at IS NULL`),
			ms(now), buyerID, clientID); err != nil {
			return fmt.Errorf("sqlstore: revoke client grants: %w", err)
		}
		n = int64(len(ids))
		return nil
	})
	return n, err
}
