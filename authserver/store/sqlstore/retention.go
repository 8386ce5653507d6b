package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/ucpbridge/ucpbridge/authserver/store"
)

// sweepLockKey names the PostgreSQL advisory lock a sweep batch holds
// (with the schema's hash as the second key): one instance deletes at a
// time, so two never race for the same rows and none is counted twice.
const sweepLockKey = 80215504

// sweepLockTimeout bounds how long a PostgreSQL sweep batch waits for a
// row lock a request holds (a refresh rotation, a revocation): well under
// deadlock_timeout (1 s), so the sweep gives up first and the request is
// never the one PostgreSQL aborts.
const sweepLockTimeout = "200ms"

// Default sweep batch sizes (store.Retention.BatchSize zero). SQLite has
// one writer that token issuance queues on, so its batches are small;
// PostgreSQL's row locks let a delete run beside the inserts, and small
// batches there only add per-transaction cost (50 fell behind ~2,000
// tokens/s in the issue 13 soak).
const (
	SQLiteSweepBatch   = 50
	PostgresSweepBatch = 500
)

// errSweepBusy: another instance holds the sweep lock.
var errSweepBusy = errors.New("sqlstore: another instance is sweeping")

// SweepExpired implements store.Sweeper. It works in four passes, each a
// series of batches in their own transactions:
//
//  1. refresh families revoked more than r.RevokedRetention ago: the
//     grant with its refresh and access tokens (all revoked);
//  2. families that expired more than r.TokenGrace ago and have no live
//     access token left. A live family is never touched, so a replay of
//     any of its rotated-out refresh tokens still revokes it;
//  3. access tokens that expired more than r.TokenGrace ago;
//  4. unused authorization codes that expired more than r.CodeRetention
//     ago. A redeemed code goes with the family it issued (passes 1 and
//     2), so replaying it at any time in the family's life still
//     revokes the family (RFC 6749 §4.1.2);
//  5. self-registered clients (RFC 7591) registered more than
//     r.UnusedClientRetention ago that no buyer consented to and that
//     hold no grant.
//
// Candidate rows are picked through an index on their expiry (or
// revocation) time, LIMIT r.BatchSize. After a full batch the sweep
// waits as long as the batch took, so it holds at most half of the
// write time while requests are waiting for it. On PostgreSQL each batch takes a
// transaction-scoped advisory lock with pg_try_advisory_xact_lock (a
// second sweeper finds it taken and stops: Busy), skips rows a request
// has locked (FOR UPDATE SKIP LOCKED) and waits at most sweepLockTimeout
// for any other lock; on SQLite a batch is one IMMEDIATE transaction on
// the single writer connection, queued with the requests' writes.
func (s *Store) SweepExpired(ctx context.Context, now time.Time, r store.Retention) (store.SweepStats, error) {
	start := time.Now()
	st := store.SweepStats{Deleted: map[string]int64{}}
	err := s.sweepExpired(ctx, now, r, &st)
	st.Duration = time.Since(start)
	return st, err
}

func (s *Store) sweepExpired(ctx context.Context, now time.Time, r store.Retention, st *store.SweepStats) error {
	r, err := r.WithDefaults()
	if err != nil {
		return err
	}
	if r.BatchSize == 0 {
		r.BatchSize = SQLiteSweepBatch
		if s.d.postgres {
			r.BatchSize = PostgresSweepBatch
		}
	}
	tokenCut, codeCut, revokedCut := ms(now.Add(-r.TokenGrace)), ms(now.Add(-r.CodeRetention)), ms(now.Add(-r.RevokedRetention))
	clientCut := ms(now.Add(-r.UnusedClientRetention))
	lock := ""
	if s.d.postgres {
		lock = " FOR UPDATE SKIP LOCKED"
	}
	passes := []struct {
		name  string
		batch func(ctx context.Context, tx *sql.Tx, n int, del map[string]int64) (picked int, err error)
	}{
		{"revoked families", func(ctx context.Context, tx *sql.Tx, n int, del map[string]int64) (int, error) {
			return s.sweepFamilies(ctx, tx, del, s.q(`SELECT id FROM grants
				WHERE revoked_at IS NOT NULL AND revoked_at <= ? ORDER BY revoked_at LIMIT ?`+lock), revokedCut, n)
		}},
		{"expired families", func(ctx context.Context, tx *sql.Tx, n int, del map[string]int64) (int, error) {
			// A grant's access tokens may outlive it (one issued by the
			// last rotation before the family's end); the family waits
			// for them.
			return s.sweepFamilies(ctx, tx, del, s.q(`SELECT id FROM grants g WHERE expires_at <= ?
				AND NOT EXISTS (SELECT 1 FROM access_tokens a WHERE a.grant_id = g.id AND a.expires_at > ?)
				ORDER BY expires_at LIMIT ?`+lock), tokenCut, tokenCut, n)
		}},
		{"access tokens", func(ctx context.Context, tx *sql.Tx, n int, del map[string]int64) (int, error) {
			return s.sweepRows(ctx, tx, del, store.TableAccessTokens, "expires_at", tokenCut, n)
		}},
		{"codes", func(ctx context.Context, tx *sql.Tx, n int, del map[string]int64) (int, error) {
			return s.sweepRows(ctx, tx, del, store.TableCodes, "expires_at", codeCut, n, "grant_id IS NULL")
		}},
		{"unused clients", func(ctx context.Context, tx *sql.Tx, n int, del map[string]int64) (int, error) {
			return s.sweepUnusedClients(ctx, tx, del, s.q(`SELECT id FROM clients c
				WHERE registration_hash IS NOT NULL AND created_at <= ?
				AND NOT EXISTS (SELECT 1 FROM consents x WHERE x.client_id = c.id)
				AND NOT EXISTS (SELECT 1 FROM grants g WHERE g.client_id = c.id)
				ORDER BY created_at LIMIT ?`+lock), clientCut, n)
		}},
	}
	for _, p := range passes {
		for i := 0; ; i++ {
			if i == r.MaxBatches {
				st.More = true
				break
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			var picked int
			// Counted only once the batch commits.
			del := map[string]int64{}
			var held time.Time // when the batch got the connection
			err := s.inTx(ctx, func(tx *sql.Tx) error {
				held = time.Now()
				if err := s.sweepLock(ctx, tx); err != nil {
					return err
				}
				var err error
				picked, err = p.batch(ctx, tx, r.BatchSize, del)
				return err
			})
			if errors.Is(err, errSweepBusy) {
				st.Busy = true
				return nil
			}
			if lockTimedOut(err) {
				// A request held a row this batch needed: leave the rest of
				// this pass to the next sweep rather than wait.
				st.More = true
				break
			}
			if err != nil {
				return fmt.Errorf("sqlstore: sweep %s: %w", p.name, err)
			}
			for t, n := range del {
				st.Deleted[t] += n
			}
			if picked < r.BatchSize {
				break
			}
			// More to do: first leave the writer to the requests for as
			// long as the batch held it. On SQLite (one writer) batches
			// back to back took ~80% of write time and slowed token
			// issuance ~5x while a sweep ran (issue 13 soak).
			if err := pause(ctx, time.Since(held)); err != nil {
				return err
			}
		}
	}
	return nil
}

// pause waits d, or until ctx ends.
func pause(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// sweepLock, on PostgreSQL, takes the sweep's advisory lock for this
// transaction (errSweepBusy if another instance holds it) and bounds its
// lock waits.
func (s *Store) sweepLock(ctx context.Context, tx *sql.Tx) error {
	if !s.d.postgres {
		return nil
	}
	if _, err := tx.ExecContext(ctx, `SET LOCAL lock_timeout = '`+sweepLockTimeout+`'`); err != nil {
		return err
	}
	var got bool
	// Keyed by schema too: stores in other schemas of one database
	// (tests, tenants) sweep other tables and need not wait.
	if err := tx.QueryRowContext(ctx, `SELECT pg_try_advisory_xact_lock(`+fmt.Sprint(sweepLockKey)+`, hashtext(current_schema()))`).Scan(&got); err != nil {
		return err
	}
	if !got {
		return errSweepBusy
	}
	return nil
}

// lockTimedOut reports PostgreSQL's lock_not_available (lock_timeout).
func lockTimedOut(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "55P03"
}

// sweepRows deletes up to n rows of table whose column is at or before cut
// (and that match the constant condition and, if any: it must be the
// predicate of the partial index that serves the pick), oldest first,
// through the column's index.
func (s *Store) sweepRows(ctx context.Context, tx *sql.Tx, del map[string]int64, table, column string, cut int64, n int, and ...string) (int, error) {
	cond := column + ` <= `
	if s.d.postgres {
		cond += `$1`
	} else {
		cond += `?`
	}
	for _, c := range and {
		cond += ` AND ` + c
	}
	var query string
	if s.d.postgres {
		query = `DELETE FROM ` + table + ` WHERE ctid = ANY(ARRAY(SELECT ctid FROM ` + table + `
			WHERE ` + cond + ` ORDER BY ` + column + ` LIMIT $2 FOR UPDATE SKIP LOCKED))`
	} else {
		query = `DELETE FROM ` + table + ` WHERE rowid IN (SELECT rowid FROM ` + table + `
			WHERE ` + cond + ` ORDER BY ` + column + ` LIMIT ?)`
	}
	res, err := tx.ExecContext(ctx, query, cut, n)
	if err != nil {
		return 0, err
	}
	deleted, err := res.RowsAffected()
	if err != nil {
		return 0, err
	}
	del[table] += deleted
	return int(deleted), nil
}

// sweepFamilies deletes the grants pick selects (up to n) with their
// refresh and access tokens and the codes they were issued for, and
// returns how many it picked.
func (s *Store) sweepFamilies(ctx context.Context, tx *sql.Tx, del map[string]int64, pick string, args ...any) (int, error) {
	return s.sweepPicked(ctx, tx, del, pick, args, func(in string) []sweepDelete {
		// Tokens first: refresh_tokens references grants.
		return []sweepDelete{
			{store.TableCodes, `DELETE FROM codes WHERE grant_id IN (` + in + `)`},
			{store.TableAccessTokens, `DELETE FROM access_tokens WHERE grant_id IN (` + in + `)`},
			{store.TableRefreshTokens, `DELETE FROM refresh_tokens WHERE grant_id IN (` + in + `)`},
			{store.TableGrants, `DELETE FROM grants WHERE id IN (` + in + `)`},
		}
	})
}

// sweepUnusedClients deletes the clients pick selects (up to n), with
// what a client that never got a grant can have left: unused codes (its
// sign-ins that were never finished) and an ownership row.
func (s *Store) sweepUnusedClients(ctx context.Context, tx *sql.Tx, del map[string]int64, pick string, args ...any) (int, error) {
	return s.sweepPicked(ctx, tx, del, pick, args, func(in string) []sweepDelete {
		// The clients go first, re-checked: on PostgreSQL the pick's NOT
		// EXISTS read a snapshot taken before its row locks, so a consent or
		// grant committed in between (SaveConsent's lock on the client was
		// already released) is seen only by this new statement. Their codes
		// and ownership rows go only if the client did.
		gone := ` AND NOT EXISTS (SELECT 1 FROM clients k WHERE k.id = client_id)`
		return []sweepDelete{
			{store.TableClients, `DELETE FROM clients WHERE id IN (` + in + `)
				AND NOT EXISTS (SELECT 1 FROM consents x WHERE x.client_id = clients.id)
				AND NOT EXISTS (SELECT 1 FROM grants g WHERE g.client_id = clients.id)`},
			{store.TableCodes, `DELETE FROM codes WHERE client_id IN (` + in + `)` + gone},
			{"", `DELETE FROM platform_clients WHERE client_id IN (` + in + `)` + gone},
		}
	})
}

// sweepDelete is one statement of a sweep batch and the table whose
// count its deleted rows go to ("": not counted).
type sweepDelete struct{ table, query string }

// sweepPicked runs pick (one id column), then the statements deletes
// builds for the picked ids (in: their placeholder list), counting the
// rows each deletes, and returns how many ids it picked.
func (s *Store) sweepPicked(ctx context.Context, tx *sql.Tx, del map[string]int64, pick string, args []any, deletes func(in string) []sweepDelete) (int, error) {
	ids, err := pickIDs(ctx, tx, pick, args...)
	if err != nil || len(ids) == 0 {
		return 0, err
	}
	in := strings.TrimSuffix(strings.Repeat("?,", len(ids)), ",")
	for _, d := range deletes(in) {
		res, err := tx.ExecContext(ctx, s.q(d.query), ids...)
		if err != nil {
			return 0, err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return 0, err
		}
		if d.table != "" {
			del[d.table] += n
		}
	}
	return len(ids), nil
}

// pickIDs runs a query of one text column and returns its values.
func pickIDs(ctx context.Context, tx *sql.Tx, query string, args ...any) ([]any, error) {
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []any
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// retentionIndexes (migration 4) serve the sweep's picks. The one on
// access_tokens(expires_at) is the only one on a hot path (every token
// issued); its keys arrive in time order, so each insert appends to the
// index's right edge (measured in the issue 13 closing note). The grant
// ones are partial or small: grants are born of buyer consent, not of
// every request.
const retentionIndexes = `CREATE INDEX access_tokens_expires ON access_tokens(expires_at);
	CREATE INDEX codes_expires ON codes(expires_at);
	CREATE INDEX grants_expires ON grants(expires_at);
	CREATE INDEX grants_revoked ON grants(revoked_at) WHERE revoked_at IS NOT NULL`

// codeRetention (migration 5): a redeemed code is kept as long as the
// family it issued and deleted with it (through codes_grant); the code
// pass deletes only unused ones (codes_unused_expires). Codes redeemed
// before this whose family a sweep already deleted are removed once: a
// replay of them has nothing left to revoke. NOT EXISTS, not NOT IN: on
// PostgreSQL NOT IN (SELECT ...) is a hashed subplan only while every
// grant id fits in work_mem, and past that rescans grants for each code
// (200,000 of each: over 20 s and counting, against 0.2 s for the
// anti-join), inside the upgrade transaction every opener queues on.
const codeRetention = `DELETE FROM codes WHERE grant_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM grants WHERE grants.id = codes.grant_id);
	DROP INDEX codes_expires;
	CREATE INDEX codes_unused_expires ON codes(expires_at) WHERE grant_id IS NULL;
	CREATE INDEX codes_grant ON codes(grant_id) WHERE grant_id IS NOT NULL`

// clientRetention (migration 6) serves the unused-client pass: the
// self-registered clients by registration time, and the lookups of a
// client's consents and grants (which RevokeClientGrants and DeleteClient
// also make) and codes.
const clientRetention = `CREATE INDEX clients_registered ON clients(created_at) WHERE registration_hash IS NOT NULL;
	CREATE INDEX consents_client ON consents(client_id);
	CREATE INDEX grants_client ON grants(client_id, buyer_id);
	CREATE INDEX codes_client ON codes(client_id)`
