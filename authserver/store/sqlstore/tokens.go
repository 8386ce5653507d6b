package sqlstore

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ucpbridge/ucpbridge/authserver/store"
)

// Refresh token states.
const (
	stateActive  = "active"
	stateRotated = "rotated"
	stateRevoked = "revoked"
)

// SaveCode implements store.Codes.
func (s *Store) SaveCode(ctx context.Context, c *store.Code) error {
	_, err := s.db.ExecContext(ctx, s.q(`INSERT INTO codes
		(hash, client_id, buyer_id, redirect_uri, scope, resource, code_challenge, allowance, expires_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		c.Hash, c.ClientID, c.BuyerID, c.RedirectURI, c.Scope, c.Resource, c.CodeChallenge, nullJSON(c.Allowance), ms(c.ExpiresAt))
	if isUnique(err) {
		return fmt.Errorf("sqlstore: code: %w", store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("sqlstore: save code: %w", err)
	}
	return nil
}

// Code implements store.Codes.
func (s *Store) Code(ctx context.Context, hash []byte) (*store.Code, error) {
	c, _, _, err := s.code(ctx, s.rdb, hash, "")
	return c, err
}

func (s *Store) code(ctx context.Context, q queryer, hash []byte, lock string) (*store.Code, sql.NullInt64, sql.NullString, error) {
	var (
		c         store.Code
		allowance sql.NullString
		expires   int64
		usedAt    sql.NullInt64
		grantID   sql.NullString
	)
	err := q.QueryRowContext(ctx, s.q(`SELECT hash, client_id, buyer_id, redirect_uri, scope, resource, code_challenge,
		allowance, expires_at, used_at, grant_id FROM codes WHERE hash = ?`+lock), hash).
		Scan(&c.Hash, &c.ClientID, &c.BuyerID, &c.RedirectURI, &c.Scope, &c.Resource, &c.CodeChallenge,
			&allowance, &expires, &usedAt, &grantID)
	if err != nil {
		return nil, usedAt, grantID, notFound(err, "code")
	}
	if allowance.Valid {
		c.Allowance = json.RawMessage(allowance.String)
	}
	c.ExpiresAt = time.UnixMilli(expires)
	return &c, usedAt, grantID, nil
}

// RedeemCode implements store.Codes.
func (s *Store) RedeemCode(ctx context.Context, hash []byte, iss store.Issue, now time.Time) error {
	if iss.Grant == nil || iss.Access == nil {
		return errors.New("sqlstore: RedeemCode needs a grant and an access token")
	}
	used := false
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		c, usedAt, grantID, err := s.code(ctx, tx, hash, s.d.forUpdate)
		if err != nil {
			return err
		}
		if usedAt.Valid {
			// A second redemption: whoever holds the code now may be an
			// attacker, so what the first one issued is revoked. The
			// revocation commits; the caller still gets ErrCodeUsed.
			used = true
			if grantID.Valid {
				return s.revokeFamily(ctx, tx, grantID.String, now)
			}
			return nil
		}
		if !now.Before(c.ExpiresAt) {
			return fmt.Errorf("sqlstore: code: %w", store.ErrExpired)
		}
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE codes SET used_at = ?, grant_id = ? WHERE hash = ?`),
			ms(now), iss.Grant.ID, hash); err != nil {
			return fmt.Errorf("sqlstore: redeem code: %w", err)
		}
		return s.issue(ctx, tx, iss)
	})
	if err != nil {
		return err
	}
	if used {
		return fmt.Errorf("sqlstore: code: %w", store.ErrCodeUsed)
	}
	return nil
}

// issue stores a grant (if new) and its tokens.
func (s *Store) issue(ctx context.Context, tx *sql.Tx, iss store.Issue) error {
	if g := iss.Grant; g != nil {
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO grants
			(id, client_id, buyer_id, scope, resource, allowance, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`),
			g.ID, g.ClientID, g.BuyerID, g.Scope, g.Resource, nullJSON(g.Allowance), ms(g.CreatedAt), ms(g.ExpiresAt)); err != nil {
			if isUnique(err) {
				return fmt.Errorf("sqlstore: grant %q: %w", g.ID, store.ErrConflict)
			}
			return fmt.Errorf("sqlstore: insert grant: %w", err)
		}
	}
	if r := iss.Refresh; r != nil {
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO refresh_tokens (hash, grant_id, state, expires_at) VALUES (?, ?, ?, ?)`),
			r.Hash, r.GrantID, stateActive, ms(r.ExpiresAt)); err != nil {
			return fmt.Errorf("sqlstore: insert refresh token: %w", err)
		}
	}
	if a := iss.Access; a != nil {
		if err := s.insertAccess(ctx, tx, a); err != nil {
			return err
		}
	}
	return nil
}

const qInsertAccess = `INSERT INTO access_tokens (hash, grant_id, client_id, buyer_id, scope, resource, store, expires_at,
	subject_hash, acting_platform) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

func (s *Store) insertAccess(ctx context.Context, q queryer, a *store.AccessToken) error {
	var grant any
	if a.GrantID != "" {
		grant = a.GrantID
	}
	_, err := s.exec(ctx, q, qInsertAccess,
		a.Hash, grant, a.ClientID, a.BuyerID, a.Scope, a.Resource, a.Store, ms(a.ExpiresAt), a.Subject, a.ActingPlatform)
	if isUnique(err) {
		return fmt.Errorf("sqlstore: access token: %w", store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("sqlstore: insert access token: %w", err)
	}
	return nil
}

// revokeFamily revokes a grant with all its refresh and access tokens.
func (s *Store) revokeFamily(ctx context.Context, q queryer, grantID string, now time.Time) error {
	for _, stmt := range []struct {
		query string
		args  []any
	}{
		{`UPDATE grants SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL`, []any{ms(now), grantID}},
		{`UPDATE refresh_tokens SET state = ?, sealed = NULL WHERE grant_id = ?`, []any{stateRevoked, grantID}},
		{`UPDATE access_tokens SET revoked_at = ? WHERE grant_id = ? AND revoked_at IS NULL`, []any{ms(now), grantID}},
	} {
		if _, err := q.ExecContext(ctx, s.q(stmt.query), stmt.args...); err != nil {
			return fmt.Errorf("sqlstore: revoke grant: %w", err)
		}
	}
	return nil
}

// Grant implements store.Grants.
func (s *Store) Grant(ctx context.Context, id string) (*store.Grant, error) {
	return s.grant(ctx, s.rdb, id)
}

func (s *Store) grant(ctx context.Context, q queryer, id string) (*store.Grant, error) {
	var (
		g                store.Grant
		allowance        sql.NullString
		created, expires int64
		revoked          sql.NullInt64
	)
	err := q.QueryRowContext(ctx, s.q(`SELECT id, client_id, buyer_id, scope, resource, allowance, created_at, expires_at, revoked_at
		FROM grants WHERE id = ?`), id).
		Scan(&g.ID, &g.ClientID, &g.BuyerID, &g.Scope, &g.Resource, &allowance, &created, &expires, &revoked)
	if err != nil {
		return nil, notFound(err, "grant")
	}
	if allowance.Valid {
		g.Allowance = json.RawMessage(allowance.String)
	}
	g.CreatedAt, g.ExpiresAt, g.RevokedAt = time.UnixMilli(created), time.UnixMilli(expires), fromMS(revoked)
	return &g, nil
}

// IssueGrant implements store.Grants.
func (s *Store) IssueGrant(ctx context.Context, iss store.Issue) error {
	if iss.Grant == nil || iss.Access == nil {
		return errors.New("sqlstore: IssueGrant needs a grant and an access token")
	}
	return s.inTx(ctx, func(tx *sql.Tx) error { return s.issue(ctx, tx, iss) })
}

// RevokeGrant implements store.Grants.
func (s *Store) RevokeGrant(ctx context.Context, id string, now time.Time) error {
	return s.inTx(ctx, func(tx *sql.Tx) error { return s.revokeFamily(ctx, tx, id, now) })
}

type refreshRow struct {
	token     store.RefreshToken
	state     string
	rotatedAt sql.NullInt64
	successor []byte
	sealed    []byte
}

func (s *Store) refreshRow(ctx context.Context, q queryer, hash []byte, lock string) (*refreshRow, error) {
	var (
		r       refreshRow
		expires int64
	)
	err := q.QueryRowContext(ctx, s.q(`SELECT hash, grant_id, state, expires_at, rotated_at, successor_hash, sealed
		FROM refresh_tokens WHERE hash = ?`+lock), hash).
		Scan(&r.token.Hash, &r.token.GrantID, &r.state, &expires, &r.rotatedAt, &r.successor, &r.sealed)
	if err != nil {
		return nil, notFound(err, "refresh token")
	}
	r.token.ExpiresAt = time.UnixMilli(expires)
	return &r, nil
}

// RefreshToken implements store.RefreshTokens.
func (s *Store) RefreshToken(ctx context.Context, hash []byte, now time.Time) (*store.RefreshToken, *store.Grant, error) {
	r, err := s.refreshRow(ctx, s.rdb, hash, "")
	if err != nil {
		return nil, nil, err
	}
	g, err := s.grant(ctx, s.rdb, r.token.GrantID)
	if err != nil {
		return nil, nil, err
	}
	if err := live(r, g, now); err != nil {
		return nil, nil, err
	}
	return &r.token, g, nil
}

func live(r *refreshRow, g *store.Grant, now time.Time) error {
	switch {
	case r.state == stateRevoked || !g.RevokedAt.IsZero():
		return fmt.Errorf("sqlstore: refresh token: %w", store.ErrRevoked)
	case !now.Before(r.token.ExpiresAt) || !now.Before(g.ExpiresAt):
		return fmt.Errorf("sqlstore: refresh token: %w", store.ErrExpired)
	}
	return nil
}

// Rotate implements store.RefreshTokens.
func (s *Store) Rotate(ctx context.Context, hash []byte, next store.Issue, now time.Time, grace time.Duration) (*store.Rotation, error) {
	if next.Refresh == nil || next.Access == nil || next.Grant != nil {
		return nil, errors.New("sqlstore: Rotate needs a refresh and an access token and no new grant")
	}
	var (
		res    *store.Rotation
		reused bool
	)
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		r, err := s.refreshRow(ctx, tx, hash, s.d.forUpdate)
		if err != nil {
			return err
		}
		g, err := s.grant(ctx, tx, r.token.GrantID)
		if err != nil {
			return err
		}
		if err := live(r, g, now); err != nil {
			return err
		}
		switch r.state {
		case stateActive:
			if next.Refresh.GrantID != g.ID || next.Access.GrantID != g.ID {
				return errors.New("sqlstore: Rotate: next tokens belong to another grant")
			}
			upd, err := tx.ExecContext(ctx, s.q(`UPDATE refresh_tokens SET state = ?, rotated_at = ?, successor_hash = ?, sealed = ?
				WHERE hash = ? AND state = ?`), stateRotated, ms(now), next.Refresh.Hash, next.Sealed, hash, stateActive)
			if err != nil {
				return fmt.Errorf("sqlstore: rotate: %w", err)
			}
			// The row lock (FOR UPDATE / BEGIN IMMEDIATE) makes this
			// impossible; if it ever happens, two rotations must not.
			if n, err := upd.RowsAffected(); err != nil || n != 1 {
				return fmt.Errorf("sqlstore: rotate: token changed under the lock (%d rows, %v)", n, err)
			}
			res = &store.Rotation{Grant: g}
			return s.issue(ctx, tx, store.Issue{Refresh: next.Refresh, Access: next.Access})
		case stateRotated:
			if r.rotatedAt.Valid && now.Sub(time.UnixMilli(r.rotatedAt.Int64)) <= grace && len(r.sealed) > 0 {
				succ, err := s.refreshRow(ctx, tx, r.successor, "")
				if err == nil && succ.state == stateActive && bytes.Equal(succ.token.Hash, r.successor) {
					res = &store.Rotation{Grant: g, Replayed: true, Sealed: r.sealed}
					return nil
				}
			}
		}
		// Reuse: revoke the family. This must commit even though the
		// caller gets an error, so it is not returned as one here.
		reused = true
		return s.revokeFamily(ctx, tx, g.ID, now)
	})
	if err != nil {
		return nil, err
	}
	if reused {
		return nil, fmt.Errorf("sqlstore: refresh token: %w", store.ErrTokenReused)
	}
	return res, nil
}

// SaveAccessToken implements store.AccessTokens.
func (s *Store) SaveAccessToken(ctx context.Context, t *store.AccessToken) error {
	return s.insertAccess(ctx, s.db, t)
}

const qAccessToken = `SELECT t.hash, t.grant_id, t.client_id, t.buyer_id, t.scope, t.resource, t.store,
	t.expires_at, t.revoked_at, p.platform_id, t.subject_hash, t.acting_platform, sub.hash, sub.revoked_at
	FROM access_tokens t LEFT JOIN platform_clients p ON p.client_id = t.client_id
	LEFT JOIN access_tokens sub ON sub.hash = t.subject_hash WHERE t.hash = ?`

// AccessToken implements store.AccessTokens.
func (s *Store) AccessToken(ctx context.Context, hash []byte, now time.Time) (*store.AccessToken, error) {
	var (
		a                       store.AccessToken
		grant, platform         sql.NullString
		subject                 []byte
		expires                 int64
		revoked, subjectRevoked sql.NullInt64
	)
	// The owning platform comes along in the same indexed read: every
	// request needs it, and a second query would double the cost. So
	// does an exchanged token's subject (a primary-key lookup): the
	// token lives only while its subject does, checked here rather than
	// by cascading revocations, so no revocation racing an exchange can
	// leave the exchanged token alive.
	err := s.queryRow(ctx, s.rdb, qAccessToken, hash).
		Scan(&a.Hash, &grant, &a.ClientID, &a.BuyerID, &a.Scope, &a.Resource, &a.Store, &expires, &revoked, &platform,
			&a.Subject, &a.ActingPlatform, &subject, &subjectRevoked)
	if err != nil {
		return nil, notFound(err, "access token")
	}
	a.GrantID, a.Platform, a.ExpiresAt = grant.String, platform.String, time.UnixMilli(expires)
	if a.ActingPlatform != "" {
		a.Platform = a.ActingPlatform
	}
	if revoked.Valid || (a.Exchanged() && (subject == nil || subjectRevoked.Valid)) {
		return nil, fmt.Errorf("sqlstore: access token: %w", store.ErrRevoked)
	}
	if !now.Before(a.ExpiresAt) {
		return nil, fmt.Errorf("sqlstore: access token: %w", store.ErrExpired)
	}
	return &a, nil
}

// RevokeToken implements store.AccessTokens.
func (s *Store) RevokeToken(ctx context.Context, hash []byte, now time.Time) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		r, err := s.refreshRow(ctx, tx, hash, s.d.forUpdate)
		if err == nil {
			return s.revokeFamily(ctx, tx, r.token.GrantID, now)
		}
		if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE access_tokens SET revoked_at = ? WHERE hash = ? AND revoked_at IS NULL`),
			ms(now), hash); err != nil {
			return fmt.Errorf("sqlstore: revoke access token: %w", err)
		}
		return nil
	})
}
