package oauth_test

import (
	"context"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/ucpbridge/ucpbridge/authserver/store"
	"github.com/ucpbridge/ucpbridge/authserver/store/sqlstore/sqlstoretest"
)

// sweepAfterCode runs the retention sweep right after each code is
// saved: the moment a sign-in's code exists, before the handler goes on.
type sweepAfterCode struct {
	store.Store
	sweep func()
}

func (s sweepAfterCode) SaveCode(ctx context.Context, c *store.Code) error {
	err := s.Store.SaveCode(ctx, c)
	s.sweep()
	return err
}

// TestFirstSignInOfOldRegistrationSurvivesSweep: a self-registered client
// first used after UnusedClientRetention (mcp-remote registered a week
// ago, the buyer signs in now) is not swept in the middle of that
// sign-in. The consent page saved the code before the consent, so a
// sweep between the two found a client with no consent and deleted it
// with the code: the buyer approved, the code was then unknown, and a
// consent of a deleted client was left behind.
func TestFirstSignInOfOldRegistrationSurvivesSweep(t *testing.T) {
	t.Parallel()
	st := sqlstoretest.SQLite(t)
	var e *env
	wrapped := sweepAfterCode{Store: st, sweep: func() {
		if _, err := st.SweepExpired(context.Background(), e.clock(), store.Retention{}); err != nil {
			t.Error(err)
		}
	}}
	e = newEnvWithStore(t, wrapped, withDCR)
	r := e.register(mcpRemoteRegistration)
	if r.Status != 201 {
		t.Fatalf("registration %+v", r)
	}
	e.advance(store.DefaultUnusedClientRetention + time.Hour)

	conf := e.oauth2Config(r.ClientID, "http://localhost:40123/oauth/callback", "purchase:complete", "offline_access")
	verifier := oauth2.GenerateVerifier()
	b := newBrowser(t)
	q := e.approve(b, conf.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier)), nil)
	if tok, err := conf.Exchange(t.Context(), q.Get("code"), oauth2.VerifierOption(verifier)); err != nil || tok.RefreshToken == "" {
		t.Fatalf("token %+v %v", tok, err)
	}
	if _, err := st.Client(t.Context(), r.ClientID); err != nil {
		t.Fatalf("client after its first sign-in: %v", err)
	}
}
