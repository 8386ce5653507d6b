package sqlstore_test

// Third security review of issue 9: the PostgreSQL spend hold
// (holdSpendPG, migration 2's ucpbridge_hold_spend). Each TestReview9c…
// test showed a hole and now guards its fix.

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ucpbridge/ucpbridge/authserver/store"
	"github.com/ucpbridge/ucpbridge/authserver/store/sqlstore"
	"github.com/ucpbridge/ucpbridge/authserver/store/sqlstore/sqlstoretest"
)

// TestReview9cCanceledHoldLeaksOnPostgres: a hold whose caller goes away
// (net/http cancels a request's context when the agent hangs up) must
// either be taken, with HoldSpend returning nil so the completion owns
// and later releases it, or leave nothing behind. On PostgreSQL the hold
// is one autocommit statement: when the context ends while it is queued
// on the allowance row's lock, pgx gives up on the connection and sends
// a CancelRequest asynchronously; if the lock is granted before that
// cancel lands, the backend stores the hold and commits it, and the
// caller has already been told the hold failed. Nobody knows its id, so
// nobody releases it: the buyer's daily cap is reduced by an order that
// was never placed for the hold's life (15 min, 31 for crypto), and the
// check never ran on it (a hold over the cap is stored just the same).
// The four-statement transaction this replaced could not commit without
// its caller's COMMIT.
//
// The race is between the cancel and the lock's release, so the test
// releases the lock at moments around the deadline and counts leaks.
func TestReview9cCanceledHoldLeaksOnPostgres(t *testing.T) {
	s := sqlstoretest.Postgres(t)
	if s == nil {
		t.Skip(sqlstoretest.EnvPG + " is not set")
	}
	ctx := context.Background()
	now := time.Now().UTC()
	day, next := now.Truncate(24*time.Hour), now.Truncate(24*time.Hour).Add(24*time.Hour)
	leaks, tries := 0, 0
	var sample error
	for i := range 40 {
		buyer := fmt.Sprintf("b%d", i)
		if err := s.SaveConsent(ctx, &store.Consent{BuyerID: buyer, ClientID: "c1", Scope: "purchase:complete",
			Allowance: []byte(`{"daily_cap":1000}`), UpdatedAt: now}); err != nil {
			t.Fatal(err)
		}
		// Another completion of the pair holds the allowance row's lock.
		tx, err := s.DB().BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.ExecContext(ctx, `SELECT 1 FROM consents WHERE buyer_id = $1 AND client_id = 'c1' FOR UPDATE`, buyer); err != nil {
			t.Fatal(err)
		}
		// This completion queues behind it; its caller hangs up.
		deadline := time.Now().Add(50 * time.Millisecond)
		cctx, cancel := context.WithDeadline(ctx, deadline)
		done := make(chan error, 1)
		go func() {
			h := &store.SpendHold{ID: fmt.Sprintf("hold_%d", i), BuyerID: buyer, ClientID: "c1", Ref: "shop/chk", Amount: 900, Currency: "EUR",
				CreatedAt: now, ExpiresAt: now.Add(15 * time.Minute)}
			done <- s.HoldSpend(cctx, h, day, next, now, func(json.RawMessage, int64) error { return nil })
		}()
		// The other completion commits around the deadline.
		time.Sleep(time.Until(deadline.Add(time.Duration(i%12-3) * 250 * time.Microsecond)))
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		herr := <-done
		cancel()
		if herr == nil {
			continue // taken: the completion owns it
		}
		tries++
		time.Sleep(20 * time.Millisecond)
		spent, err := s.Spent(ctx, buyer, "c1", day, next, now)
		if err != nil {
			t.Fatal(err)
		}
		if spent != 0 {
			leaks++
			sample = herr
		}
	}
	if leaks > 0 {
		t.Errorf("%d of %d holds that HoldSpend reported failed (e.g. %v) are stored and count against the buyer's daily cap "+
			"for 15 minutes, with nobody to release them", leaks, tries, sample)
	}
	t.Logf("%d failed holds, %d leaked", tries, leaks)
}

// TestReview9cRepeatableReadOverspendsOnPostgres: holdSpendFunc's
// safety rests on READ COMMITTED ("a fresh snapshot per statement in a
// volatile function under READ COMMITTED"), but nothing makes the
// transaction READ COMMITTED: the function runs in whatever isolation
// the session defaults to. A database an operator configured with
// default_transaction_isolation = 'repeatable read' (ALTER DATABASE …
// SET, or the DSN) takes the snapshot when the outer SELECT starts,
// before the lock wait, so every queued hold sums the window as it was
// before the holds it queued behind and all of them pass: concurrent
// completions overspend the daily cap.
func TestReview9cRepeatableReadOverspendsOnPostgres(t *testing.T) {
	dsn := os.Getenv(sqlstoretest.EnvPG)
	if dsn == "" {
		t.Skip(sqlstoretest.EnvPG + " is not set")
	}
	ctx := context.Background()
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	schema := fmt.Sprintf("t_r9c_%d", time.Now().UnixNano())
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	defer admin.ExecContext(ctx, "DROP SCHEMA "+schema+" CASCADE")
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	q.Set("default_transaction_isolation", "repeatable read")
	u.RawQuery = strings.ReplaceAll(q.Encode(), "+", "%20")
	s, err := sqlstore.Open(ctx, u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := time.Now().UTC()
	day, next := now.Truncate(24*time.Hour), now.Truncate(24*time.Hour).Add(24*time.Hour)
	if err := s.SaveConsent(ctx, &store.Consent{BuyerID: "b1", ClientID: "c1", Scope: "purchase:complete",
		Allowance: []byte(`{"daily_cap":1000}`), UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	const cap, amount = 1000, 300
	var ok atomic.Int64
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			h := &store.SpendHold{ID: fmt.Sprintf("h%d", i), BuyerID: "b1", ClientID: "c1", Ref: "shop/chk", Amount: amount, Currency: "EUR",
				CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
			err := s.HoldSpend(ctx, h, day, next, now, func(_ json.RawMessage, spent int64) error {
				if spent+amount > cap {
					return errors.New("over the cap")
				}
				return nil
			})
			if err == nil {
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	spent, err := s.Spent(ctx, "b1", "c1", day, next, now)
	if err != nil {
		t.Fatal(err)
	}
	if spent > cap {
		t.Errorf("under default_transaction_isolation = repeatable read, %d concurrent holds of %d were taken against a daily cap of %d: "+
			"spent %d", ok.Load(), amount, cap, spent)
	}
}

// TestReview9cRefusedHoldRefusesOthersOnPostgres: on PostgreSQL a hold
// is committed before Go's check runs and deleted only after it refused,
// so for that interval a refused hold counts for every other completion
// of the pair. An order over the per-order limit (or the whole cap),
// which can never be taken, makes concurrent orders that fit the cap
// fail with spend_cap_exceeded ("spent" includes the refused amount).
// On SQLite the check runs inside the transaction and this cannot
// happen; the README promises that concurrent completions near the cap
// "place exactly the orders that fit".
func TestReview9cRefusedHoldRefusesOthersOnPostgres(t *testing.T) {
	s := sqlstoretest.Postgres(t)
	if s == nil {
		t.Skip(sqlstoretest.EnvPG + " is not set")
	}
	ctx := context.Background()
	now := time.Now().UTC()
	day, next := now.Truncate(24*time.Hour), now.Truncate(24*time.Hour).Add(24*time.Hour)
	if err := s.SaveConsent(ctx, &store.Consent{BuyerID: "b1", ClientID: "c1", Scope: "purchase:complete",
		Allowance: []byte(`{"daily_cap":1000}`), UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	capCheck := func(amount int64, delay time.Duration, sawSpent *int64) store.SpendCheck {
		return func(_ json.RawMessage, spent int64) error {
			time.Sleep(delay) // Go's check and the round trip back (a busy instance, GC)
			if sawSpent != nil {
				*sawSpent = spent
			}
			if spent+amount > 1000 {
				return errors.New("over the cap")
			}
			return nil
		}
	}
	checking := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		big := &store.SpendHold{ID: "big", BuyerID: "b1", ClientID: "c1", Ref: "shop/a", Amount: 5000, Currency: "EUR",
			CreatedAt: now, ExpiresAt: now.Add(15 * time.Minute)}
		done <- s.HoldSpend(ctx, big, day, next, now, func(a json.RawMessage, spent int64) error {
			close(checking)
			return capCheck(5000, 300*time.Millisecond, nil)(a, spent)
		})
	}()
	<-checking
	var saw int64
	small := &store.SpendHold{ID: "small", BuyerID: "b1", ClientID: "c1", Ref: "shop/b", Amount: 500, Currency: "EUR",
		CreatedAt: now, ExpiresAt: now.Add(15 * time.Minute)}
	err := s.HoldSpend(ctx, small, day, next, now, capCheck(500, 0, &saw))
	if berr := <-done; berr == nil {
		t.Fatal("precondition: the oversized hold was taken")
	}
	if err != nil {
		t.Errorf("an order of 500 against an untouched daily cap of 1000 was refused (%v): it counted %d spent, "+
			"the hold of an order that was itself being refused", err, saw)
	}
}
