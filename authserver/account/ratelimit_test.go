package account_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ucpbridge/ucpbridge/authserver/account"
	"github.com/ucpbridge/ucpbridge/authserver/guard"
	"github.com/ucpbridge/ucpbridge/authserver/ratelimit"
)

// TestRateLimited: each buyer and agent client has its own bucket; over
// it, HTTP 429 with Retry-After and a JSON-RPC error, before any tool
// runs; another buyer is not slowed.
func TestRateLimited(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_800_000_000, 0)
	who := "ada"
	srv, err := account.New(account.Config{BaseURL: "https://api.example", Store: downStore{}, Agents: downAgents{},
		RateLimit: ratelimit.Limit{Rate: 0.5, Burst: 2}, Now: func() time.Time { return now },
		Guard: guard.IdentifyFunc(func(*http.Request) (*guard.Principal, error) {
			return &guard.Principal{Kind: guard.KindBuyer, Tier: guard.TierToken, Credential: guard.CredentialBearer,
				ClientID: "agent", BuyerID: who, Scopes: []string{"purchase:complete"}}, nil
		})})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	call := func() (*http.Response, []byte) {
		res, err := http.Post(ts.URL+account.Path, "application/json", bytes.NewBufferString(toolCall("get_buyer_context", nil)))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res, b
	}
	for range 2 {
		if res, b := call(); res.StatusCode == http.StatusTooManyRequests {
			t.Fatalf("limited within the burst: %s", b)
		}
	}
	res, b := call()
	if res.StatusCode != http.StatusTooManyRequests || res.Header.Get("Retry-After") != "3" || !bytes.Contains(b, []byte("rate_limited")) {
		t.Fatalf("over the burst: HTTP %d Retry-After %q %s", res.StatusCode, res.Header.Get("Retry-After"), b)
	}
	who = "bob"
	if res, b := call(); res.StatusCode == http.StatusTooManyRequests {
		t.Fatalf("another buyer limited: %s", b)
	}
	who, now = "ada", now.Add(2*time.Second)
	if res, b := call(); res.StatusCode == http.StatusTooManyRequests {
		t.Fatalf("not refilled: %s", b)
	}
}

// TestRefusedCredentialsLimitedPerNetwork: bad tokens count against their
// network; past DefaultFailureLimit the network gets 429 before the
// guard is asked; requests without credentials (discovery) never count.
func TestRefusedCredentialsLimitedPerNetwork(t *testing.T) {
	t.Parallel()
	var asked atomic.Int64
	anonymous := false
	srv, err := account.New(account.Config{BaseURL: "https://api.example", Store: downStore{}, Agents: downAgents{},
		Guard: guard.IdentifyFunc(func(*http.Request) (*guard.Principal, error) {
			asked.Add(1)
			if anonymous {
				return guard.Anonymous(), nil
			}
			return nil, &guard.Error{Status: http.StatusUnauthorized, Code: "invalid_token", Content: "not valid"}
		})})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	status := func() int {
		res, err := http.Post(ts.URL+account.Path, "application/json", bytes.NewBufferString(toolCall("get_buyer_context", nil)))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	anonymous = true
	for range 30 {
		if s := status(); s != http.StatusUnauthorized {
			t.Fatalf("anonymous discovery limited: HTTP %d", s)
		}
	}
	anonymous = false
	burst := int(account.DefaultFailureLimit.Burst)
	for i := range burst {
		if s := status(); s != http.StatusUnauthorized {
			t.Fatalf("bad token %d: HTTP %d", i, s)
		}
	}
	before := asked.Load()
	if s := status(); s != http.StatusTooManyRequests {
		t.Fatalf("past the budget: HTTP %d", s)
	}
	if asked.Load() != before {
		t.Fatal("the guard was asked for a blocked network")
	}
}
