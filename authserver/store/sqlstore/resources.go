package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/ucpbridge/ucpbridge/authserver/store"
)

// AddResource implements store.Resources.
func (s *Store) AddResource(ctx context.Context, platformID, resource string, now time.Time) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		var owner string
		err := tx.QueryRowContext(ctx, s.q(`SELECT platform_id FROM platform_resources WHERE resource = ?`+s.d.forUpdate), resource).Scan(&owner)
		switch {
		case err == nil && owner == platformID:
			return nil
		case err == nil:
			return fmt.Errorf("sqlstore: resource %q belongs to another platform: %w", resource, store.ErrConflict)
		case !errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("sqlstore: add resource: %w", err)
		}
		_, err = tx.ExecContext(ctx, s.q(`INSERT INTO platform_resources (resource, platform_id, created_at) VALUES (?, ?, ?)`),
			resource, platformID, ms(now))
		if isUnique(err) {
			// Another platform's insert won the race.
			return fmt.Errorf("sqlstore: resource %q belongs to another platform: %w", resource, store.ErrConflict)
		}
		if err != nil {
			return fmt.Errorf("sqlstore: add resource: %w", err)
		}
		return nil
	})
}

// ResourceOwner implements store.Resources.
func (s *Store) ResourceOwner(ctx context.Context, resource string) (string, error) {
	var p string
	err := s.rdb.QueryRowContext(ctx, s.q(`SELECT platform_id FROM platform_resources WHERE resource = ?`), resource).Scan(&p)
	if err != nil {
		return "", notFound(err, "resource")
	}
	return p, nil
}

// PlatformResources implements store.Resources.
func (s *Store) PlatformResources(ctx context.Context, platformID string) ([]string, error) {
	rows, err := s.rdb.QueryContext(ctx, s.q(`SELECT resource FROM platform_resources WHERE platform_id = ? ORDER BY resource`), platformID)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: platform resources: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var r string
		if err := rows.Scan(&r); err != nil {
			return nil, fmt.Errorf("sqlstore: platform resources: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: platform resources: %w", err)
	}
	return out, nil
}

// DeleteClient implements store.Clients.
func (s *Store) DeleteClient(ctx context.Context, id string, now time.Time) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.q(`DELETE FROM clients WHERE id = ?`), id)
		if err != nil {
			return fmt.Errorf("sqlstore: delete client: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("sqlstore: client %q: %w", id, store.ErrNotFound)
		}
		// The grants first (each with its family), then any token of the
		// client outside a grant; exchanged tokens carry the client id
		// and their grant, and die with their subject anyway.
		for _, stmt := range []struct {
			query string
			args  []any
		}{
			{`UPDATE grants SET revoked_at = ? WHERE client_id = ? AND revoked_at IS NULL`, []any{ms(now), id}},
			{`UPDATE refresh_tokens SET state = ?, sealed = NULL WHERE grant_id IN (SELECT id FROM grants WHERE client_id = ?)`,
				[]any{stateRevoked, id}},
			{`UPDATE access_tokens SET revoked_at = ? WHERE client_id = ? AND revoked_at IS NULL`, []any{ms(now), id}},
			{`UPDATE codes SET used_at = ? WHERE client_id = ? AND used_at IS NULL`, []any{ms(now), id}},
			{`DELETE FROM consents WHERE client_id = ?`, []any{id}},
			{`DELETE FROM platform_clients WHERE client_id = ?`, []any{id}},
		} {
			if _, err := tx.ExecContext(ctx, s.q(stmt.query), stmt.args...); err != nil {
				return fmt.Errorf("sqlstore: delete client: %w", err)
			}
		}
		return nil
	})
}
