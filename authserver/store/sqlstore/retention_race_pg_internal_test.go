package sqlstore

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/ucpbridge/ucpbridge/authserver/store"
)

// TestSweepSparesClientBeingConsentedOnPostgres: a buyer's consent to a
// self-registered client that is being saved while the sweep runs keeps
// the client. consents has no foreign key to clients, so an INSERT took
// no lock on the client: the sweep (READ COMMITTED, NOT EXISTS on its
// snapshot) deleted a client whose consent committed a moment later,
// leaving the consent of a deleted client and the buyer's sign-in broken.
func TestSweepSparesClientBeingConsentedOnPostgres(t *testing.T) {
	dsn := os.Getenv("UCPBRIDGE_TEST_PG")
	if dsn == "" {
		t.Skip("UCPBRIDGE_TEST_PG is not set")
	}
	ctx := context.Background()
	s0, err := Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	schemaName := fmt.Sprintf("t_consent_race_%d", time.Now().UnixNano())
	if _, err := s0.db.ExecContext(ctx, "CREATE SCHEMA "+schemaName); err != nil {
		t.Fatal(err)
	}
	defer func() {
		s0.db.ExecContext(ctx, "DROP SCHEMA "+schemaName+" CASCADE")
		s0.Close()
	}()
	u, _ := url.Parse(dsn)
	q := u.Query()
	q.Set("search_path", schemaName)
	u.RawQuery = q.Encode()
	s, err := Open(ctx, u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	t0 := time.UnixMilli(1_700_000_000_000)
	if err := s.CreateClient(ctx, &store.Client{ID: "ucpb_dcr_x", Type: store.ClientInstalled, Name: "x",
		RedirectURIs: []string{"http://127.0.0.1/cb"}, GrantTypes: []string{"authorization_code"},
		RegistrationHash: []byte("reg"), CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	// The consent's statement, in flight (not yet committed) while the
	// sweep runs.
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if err := s.saveConsent(ctx, tx, &store.Consent{BuyerID: "b1", ClientID: "ucpb_dcr_x", Scope: "purchase:complete",
		UpdatedAt: t0.Add(8 * 24 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	st, err := s.SweepExpired(sctx, t0.Add(8*24*time.Hour), store.Retention{})
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Client(ctx, "ucpb_dcr_x"); err != nil {
		t.Fatalf("client with a consent being saved: %v (sweep deleted %v)", err, st.Deleted)
	}
	// Once the consent is in, later sweeps keep the client too.
	if _, err := s.SweepExpired(ctx, t0.Add(9*24*time.Hour), store.Retention{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Client(ctx, "ucpb_dcr_x"); err != nil {
		t.Fatalf("consented client: %v", err)
	}
}
