package account_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ucpbridge/ucpbridge/authserver/account"
	"github.com/ucpbridge/ucpbridge/authserver/guard"
	"github.com/ucpbridge/ucpbridge/authserver/oauth"
	"github.com/ucpbridge/ucpbridge/authserver/store"
)

var errDown = errors.New("database is down at 10.0.0.7")

// downStore fails every read, as a store whose database is gone.
type downStore struct{}

func (downStore) Buyer(context.Context, string) (*store.Buyer, error)   { return nil, errDown }
func (downStore) Client(context.Context, string) (*store.Client, error) { return nil, errDown }
func (downStore) Shops(context.Context) ([]*store.Shop, error)          { return nil, errDown }
func (downStore) Order(context.Context, string, string) (*store.Order, error) {
	return nil, errDown
}
func (downStore) BuyerOrders(context.Context, string, *store.OrderCursor, int) ([]*store.Order, error) {
	return nil, errDown
}
func (downStore) Spent(context.Context, string, string, time.Time, time.Time, time.Time) (int64, error) {
	return 0, errDown
}

type downAgents struct{}

func (downAgents) Authorizations(context.Context, string) ([]oauth.Authorization, error) {
	return nil, errDown
}
func (downAgents) LowerAllowance(context.Context, string, string, oauth.Allowance) (*oauth.Allowance, error) {
	return nil, errDown
}
func (downAgents) RevokeAuthorization(context.Context, string, string) (int64, error) {
	return 0, errDown
}

// TestPlatformFailures: a storage failure is the platform's, not the
// agent's: HTTP 503 with Retry-After and a JSON-RPC error echoing the id,
// never a tool result, and never the cause's text. So is a credential
// check that cannot run.
func TestPlatformFailures(t *testing.T) {
	t.Parallel()
	buyer := &guard.Principal{Kind: guard.KindBuyer, Tier: guard.TierToken, Credential: guard.CredentialBearer,
		ClientID: "agent", BuyerID: "ada", Scopes: []string{"purchase:complete"}}
	identify := buyer
	var identifyErr error
	srv, err := account.New(account.Config{BaseURL: "https://api.example", Store: downStore{}, Agents: downAgents{},
		Guard: guard.IdentifyFunc(func(*http.Request) (*guard.Principal, error) { return identify, identifyErr })})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	post := func(body string) (*http.Response, *rpcResponse, []byte) {
		res, err := http.Post(ts.URL+account.Path, "application/json", bytes.NewBufferString(body))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		var out rpcResponse
		json.Unmarshal(b, &out)
		return res, &out, b
	}
	for _, name := range []string{"get_buyer_context", "list_my_addresses", "list_my_orders", "list_my_agent_authorizations"} {
		res, out, b := post(toolCall(name, nil))
		if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") != "1" || out.Error == nil ||
			out.Error.Data.Code != "unavailable" || string(out.ID) != `"call-1"` || strings.Contains(string(b), "10.0.0.7") {
			t.Fatalf("%s: HTTP %d %s", name, res.StatusCode, b)
		}
	}
	identify, identifyErr = nil, &guard.Error{Status: http.StatusServiceUnavailable, Code: "unavailable", Content: "authentication is unavailable", RetryAfter: 1}
	if res, out, b := post(toolCall("get_buyer_context", nil)); res.StatusCode != http.StatusServiceUnavailable || out.Error == nil ||
		res.Header.Get("Retry-After") != "1" {
		t.Fatalf("guard down: HTTP %d %s", res.StatusCode, b)
	}
}

func TestNewRequires(t *testing.T) {
	t.Parallel()
	if _, err := account.New(account.Config{BaseURL: "https://api.example"}); err == nil {
		t.Fatal("New accepted a config without a guard, store and agents")
	}
}
