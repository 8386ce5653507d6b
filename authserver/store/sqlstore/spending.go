package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ucpbridge/ucpbridge/authserver/store"
)

// Hold states.
const (
	holdHeld     = "held"
	holdConsumed = "consumed"
	holdReleased = "released"
)

// holdTimeout bounds a hold that no longer listens to its caller.
const holdTimeout = 10 * time.Second

// HoldSpend implements store.Spending. The consent row is the lock every
// hold of a (buyer, client) pair takes first (FOR UPDATE on PostgreSQL,
// the one write transaction on SQLite), so the sum read here cannot be
// stale by the time the hold is stored: two instances sharing one
// database queue on the row.
func (s *Store) HoldSpend(ctx context.Context, h *store.SpendHold, from, to, now time.Time, check store.SpendCheck) error {
	if h.Amount < 0 {
		return fmt.Errorf("sqlstore: hold spend: negative amount %d", h.Amount)
	}
	// Once started, a hold runs to a definite end whatever the caller
	// does: a commit cut short by a cancelled context may still land on
	// the server while the caller hears it failed, leaving a hold nobody
	// releases. So the caller's cancellation stops only a hold not yet
	// begun; a caller gone by the end releases what it was given.
	if err := ctx.Err(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), holdTimeout)
	defer cancel()
	if s.d.postgres {
		return s.holdSpendPG(ctx, h, from, to, now, check)
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		allowance, err := s.lockAllowance(ctx, tx, h.BuyerID, h.ClientID)
		if err != nil {
			return err
		}
		// The hold goes in first and the window's sum (without it) comes
		// back with it: one round trip instead of two while the lock is
		// held. A refusal rolls the insert back. The sum's snapshot is
		// this statement's, taken after the lock was granted, so it sees
		// every hold committed before ours.
		var spent sql.NullInt64
		err = tx.QueryRowContext(ctx, s.q(`INSERT INTO spend_holds (id, buyer_id, client_id, ref, amount, currency, state, created_at, expires_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
			RETURNING (SELECT SUM(amount) FROM spend_holds WHERE buyer_id = ? AND client_id = ? AND created_at >= ? AND created_at < ?
				AND (state = ? OR (state = ? AND expires_at > ?)) AND id <> ?)`),
			h.ID, h.BuyerID, h.ClientID, h.Ref, h.Amount, h.Currency, holdHeld, ms(h.CreatedAt), ms(h.ExpiresAt),
			h.BuyerID, h.ClientID, ms(from), ms(to), holdConsumed, holdHeld, ms(now), h.ID).Scan(&spent)
		if isUnique(err) {
			return fmt.Errorf("sqlstore: hold %q: %w", h.ID, store.ErrConflict)
		}
		if err != nil {
			return fmt.Errorf("sqlstore: hold spend: %w", err)
		}
		return check(allowance, spent.Int64)
	})
}

// lockAllowance reads a pair's allowance under its consent row's lock,
// the lock every hold of the pair queues on; no consent is no allowance
// (nil), and no lock: such holds are refused anyway.
func (s *Store) lockAllowance(ctx context.Context, tx *sql.Tx, buyerID, clientID string) ([]byte, error) {
	c, err := s.consent(ctx, tx, buyerID, clientID, s.d.forUpdate)
	switch {
	case err == nil:
		return c.Allowance, nil
	case errors.Is(err, store.ErrNotFound):
		return nil, nil
	}
	return nil, err
}

// RecheckHold implements store.Spending.
func (s *Store) RecheckHold(ctx context.Context, h *store.SpendHold, from, to, now time.Time, check store.SpendCheck) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		allowance, err := s.lockAllowance(ctx, tx, h.BuyerID, h.ClientID)
		if err != nil {
			return err
		}
		var amount, created int64
		err = tx.QueryRowContext(ctx, s.q(`SELECT amount, created_at FROM spend_holds
			WHERE id = ? AND buyer_id = ? AND client_id = ? AND state = ? AND expires_at > ?`),
			h.ID, h.BuyerID, h.ClientID, holdHeld, ms(now)).Scan(&amount, &created)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("sqlstore: hold %q: %w", h.ID, store.ErrHoldLapsed)
		}
		if err != nil {
			return fmt.Errorf("sqlstore: recheck hold: %w", err)
		}
		spent, err := s.spent(ctx, tx, h.BuyerID, h.ClientID, from, to, now)
		if err != nil {
			return err
		}
		// The hold itself counts in spent when it was taken in the window.
		mine := int64(0)
		if created >= ms(from) && created < ms(to) {
			mine = amount
		}
		return check(allowance, spent-mine)
	})
}

func (s *Store) spent(ctx context.Context, q queryer, buyerID, clientID string, from, to, now time.Time) (int64, error) {
	var n sql.NullInt64
	err := q.QueryRowContext(ctx, s.q(`SELECT SUM(amount) FROM spend_holds
		WHERE buyer_id = ? AND client_id = ? AND created_at >= ? AND created_at < ?
		AND (state = ? OR (state = ? AND expires_at > ?))`),
		buyerID, clientID, ms(from), ms(to), holdConsumed, holdHeld, ms(now)).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("sqlstore: spent: %w", err)
	}
	return n.Int64, nil
}

// Spent implements store.Spending.
func (s *Store) Spent(ctx context.Context, buyerID, clientID string, from, to, now time.Time) (int64, error) {
	return s.spent(ctx, s.rdb, buyerID, clientID, from, to, now)
}

// ReleaseHold implements store.Spending.
func (s *Store) ReleaseHold(ctx context.Context, id string) error {
	if _, err := s.db.ExecContext(ctx, s.q(`UPDATE spend_holds SET state = ? WHERE id = ? AND state = ?`), holdReleased, id, holdHeld); err != nil {
		return fmt.Errorf("sqlstore: release hold: %w", err)
	}
	return nil
}

// SweepHolds implements store.Spending.
func (s *Store) SweepHolds(ctx context.Context, before time.Time) (int64, error) {
	res, err := s.db.ExecContext(ctx, s.q(`DELETE FROM spend_holds WHERE created_at < ?`), ms(before))
	if err != nil {
		return 0, fmt.Errorf("sqlstore: sweep holds: %w", err)
	}
	return res.RowsAffected()
}

// consumeHold marks a live hold consumed inside CompleteSession's
// transaction; anything else is store.ErrHoldLapsed, which rolls the
// order back.
func (s *Store) consumeHold(ctx context.Context, tx *sql.Tx, id string, now time.Time) error {
	res, err := tx.ExecContext(ctx, s.q(`UPDATE spend_holds SET state = ? WHERE id = ? AND state = ? AND expires_at > ?`),
		holdConsumed, id, holdHeld, ms(now))
	if err != nil {
		return fmt.Errorf("sqlstore: consume hold: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("sqlstore: consume hold: %w", err)
	} else if n != 1 {
		return fmt.Errorf("sqlstore: hold %q: %w", id, store.ErrHoldLapsed)
	}
	return nil
}

// BuyerOrders implements store.Orders, on the (buyer_id, created_at,
// shop_slug, id) index: a keyset page, newest first.
func (s *Store) BuyerOrders(ctx context.Context, buyerID string, after *store.OrderCursor, limit int) ([]*store.Order, error) {
	if buyerID == "" {
		return nil, errors.New("sqlstore: buyer orders: empty buyer id")
	}
	where, args := []string{"buyer_id = ?"}, []any{buyerID}
	if after != nil {
		c := ms(after.CreatedAt)
		where = append(where, `(created_at < ? OR (created_at = ? AND (shop_slug < ? OR (shop_slug = ? AND id < ?))))`)
		args = append(args, c, c, after.ShopSlug, after.ShopSlug, after.ID)
	}
	args = append(args, limit)
	rows, err := s.rdb.QueryContext(ctx, s.q(`SELECT shop_slug, id, checkout_id, owner, client_id, buyer_id, buyer_type, doc, created_at
		FROM orders WHERE `+strings.Join(where, " AND ")+` ORDER BY created_at DESC, shop_slug DESC, id DESC LIMIT ?`), args...)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: buyer orders: %w", err)
	}
	defer rows.Close()
	var out []*store.Order
	for rows.Next() {
		o, err := scanOrder(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: buyer orders: %w", err)
	}
	return out, nil
}

// redeemCoupon takes a redemption off the buyer's coupon inside
// CompleteSession's transaction, under the buyer row's lock, so two
// orders can never both spend the last of a balance.
func (s *Store) redeemCoupon(ctx context.Context, tx *sql.Tx, r *store.CouponRedemption) error {
	if r.Amount <= 0 {
		return fmt.Errorf("sqlstore: redeem coupon: amount %d", r.Amount)
	}
	var raw sql.NullString
	err := tx.QueryRowContext(ctx, s.q(`SELECT account FROM buyers WHERE id = ?`+s.d.forUpdate), r.BuyerID).Scan(&raw)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("sqlstore: redeem coupon of buyer %q: %w", r.BuyerID, store.ErrCouponSpent)
	}
	if err != nil {
		return fmt.Errorf("sqlstore: redeem coupon: %w", err)
	}
	doc, err := store.ParseAccount(rawJSON(raw))
	if err != nil {
		return fmt.Errorf("sqlstore: redeem coupon: buyer %q account: %w", r.BuyerID, err)
	}
	i := slices.IndexFunc(doc.Coupons, func(c store.SavedCoupon) bool { return c.ID == r.CouponID })
	if i < 0 || doc.Coupons[i].Balance < r.Amount {
		return fmt.Errorf("sqlstore: coupon %q: %w", r.CouponID, store.ErrCouponSpent)
	}
	doc.Coupons[i].Balance -= r.Amount
	b, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, s.q(`UPDATE buyers SET account = ? WHERE id = ?`), string(b), r.BuyerID); err != nil {
		return fmt.Errorf("sqlstore: redeem coupon: %w", err)
	}
	return nil
}

// holdSpendFunc takes a hold on PostgreSQL in one statement: it locks
// the pair's consent row, sums the window (a fresh snapshot per
// statement in a volatile function under READ COMMITTED, which Open
// pins, so the sum sees every hold committed before the lock was
// granted), stores the hold and returns the allowance and the sum. The
// caller's transaction commits it only if its check passes: until then
// the hold is invisible to others, who wait on the row lock.
const holdSpendFunc = `CREATE OR REPLACE FUNCTION ucpbridge_hold_spend(
	p_id TEXT, p_buyer TEXT, p_client TEXT, p_ref TEXT, p_amount BIGINT, p_currency TEXT,
	p_created BIGINT, p_expires BIGINT, p_from BIGINT, p_to BIGINT, p_now BIGINT)
RETURNS TABLE (allowance TEXT, spent BIGINT) LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE a TEXT; s BIGINT;
BEGIN
	SELECT c.allowance INTO a FROM consents c WHERE c.buyer_id = p_buyer AND c.client_id = p_client FOR UPDATE;
	SELECT COALESCE(SUM(h.amount), 0) INTO s FROM spend_holds h
		WHERE h.buyer_id = p_buyer AND h.client_id = p_client AND h.created_at >= p_from AND h.created_at < p_to
		AND (h.state = 'consumed' OR (h.state = 'held' AND h.expires_at > p_now));
	INSERT INTO spend_holds (id, buyer_id, client_id, ref, amount, currency, state, created_at, expires_at)
		VALUES (p_id, p_buyer, p_client, p_ref, p_amount, p_currency, 'held', p_created, p_expires);
	RETURN QUERY SELECT a, s;
END
$fn$`

// holdSpendPG is HoldSpend on PostgreSQL: one call of holdSpendFunc in
// a transaction committed only when check passes (three round trips, the
// lock held over two). A request cancelled meanwhile rolls it back, so no
// hold outlives a caller that was told it failed.
func (s *Store) holdSpendPG(ctx context.Context, h *store.SpendHold, from, to, now time.Time, check store.SpendCheck) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		var (
			allowance sql.NullString
			spent     int64
		)
		err := tx.QueryRowContext(ctx, `SELECT allowance, spent FROM ucpbridge_hold_spend($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
			h.ID, h.BuyerID, h.ClientID, h.Ref, h.Amount, h.Currency, ms(h.CreatedAt), ms(h.ExpiresAt), ms(from), ms(to), ms(now)).
			Scan(&allowance, &spent)
		if isUnique(err) {
			return fmt.Errorf("sqlstore: hold %q: %w", h.ID, store.ErrConflict)
		}
		if err != nil {
			return fmt.Errorf("sqlstore: hold spend: %w", err)
		}
		return check(rawJSON(allowance), spent)
	})
}
