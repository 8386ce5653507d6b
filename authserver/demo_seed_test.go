package authserver_test

import (
	"context"
	"testing"
	"time"

	"github.com/ucpbridge/ucpbridge/authserver"
	"github.com/ucpbridge/ucpbridge/authserver/oauth"
	"github.com/ucpbridge/ucpbridge/authserver/store"
	"github.com/ucpbridge/ucpbridge/authserver/store/sqlstore/sqlstoretest"
)

// createCounter counts CreateBuyer calls: the demo password is hashed
// (Argon2id, 64 MiB) only for one.
type createCounter struct {
	authserver.Store
	creates int
}

func (c *createCounter) CreateBuyer(ctx context.Context, b *store.Buyer) error {
	c.creates++
	return c.Store.CreateBuyer(ctx, b)
}

// TestSeedDemoHashesOnce: the first seed creates the buyer; a restart's
// seed finds it and neither hashes nor creates again, and the password
// still signs in.
func TestSeedDemoHashesOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := &createCounter{Store: sqlstoretest.SQLite(t)}
	for range 3 {
		if err := authserver.SeedDemo(ctx, st, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	if st.creates != 1 {
		t.Fatalf("buyer created (and its password hashed) %d times, want once", st.creates)
	}
	b, err := st.BuyerByEmail(ctx, authserver.DemoBuyerEmail)
	if err != nil || !oauth.CheckPassword(b.PasswordHash, authserver.DemoBuyerPassword) {
		t.Fatalf("demo buyer %v", err)
	}
}
