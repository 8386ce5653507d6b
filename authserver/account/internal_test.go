package account

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/ucpbridge/ucpbridge/authserver/oauth"
	"github.com/ucpbridge/ucpbridge/authserver/store"
)

func TestCursorRoundTrip(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 5, 1, 12, 0, 0, 123_000_000, time.UTC)
	c, err := decodeCursor(encodeCursor(&store.OrderCursor{CreatedAt: at, ShopSlug: "flower-shop", ID: "ord_x"}))
	if err != nil || !c.CreatedAt.Equal(at) || c.ShopSlug != "flower-shop" || c.ID != "ord_x" {
		t.Fatalf("%+v %v", c, err)
	}
}

// TestCursorForgeries: anything but a cursor this server made is refused
// as a tool error before it reaches the store.
func TestCursorForgeries(t *testing.T) {
	t.Parallel()
	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	for _, s := range []string{
		"%%%", "not base64!", enc("a string"), enc(map[string]any{}),
		enc(cursor{V: 2, T: 1, S: "s", I: "i"}), enc(cursor{V: 1, T: 0, S: "s", I: "i"}),
		enc(cursor{V: 1, T: 1, S: "", I: "i"}), enc(cursor{V: 1, T: 1, S: "s", I: "a\x00b"}),
		enc(cursor{V: 1, T: 1, S: "s", I: strings.Repeat("i", 129)}),
	} {
		_, err := decodeCursor(s)
		if te, ok := err.(*ToolError); !ok || te.Code != CodeInvalidArgument {
			t.Errorf("cursor %q: %v", s, err)
		}
	}
}

// TestAddressBook: exactly one default when there are addresses (the
// first marked, else the first), and stored entries that are not address
// objects are left out.
func TestAddressBook(t *testing.T) {
	t.Parallel()
	a := func(label string, def bool, addr string) store.SavedAddress {
		return store.SavedAddress{Label: label, Default: def, Address: json.RawMessage(addr)}
	}
	obj := `{"street_address":"1 Main St"}`
	for name, tc := range map[string]struct {
		in   []store.SavedAddress
		want string // labels, the default starred
	}{
		"none":          {nil, ""},
		"marked":        {[]store.SavedAddress{a("home", false, obj), a("work", true, obj)}, "home work*"},
		"unmarked":      {[]store.SavedAddress{a("home", false, obj), a("work", false, obj)}, "home* work"},
		"two marked":    {[]store.SavedAddress{a("home", true, obj), a("work", true, obj)}, "home* work"},
		"broken":        {[]store.SavedAddress{a("bad", true, `"text"`), a("null", false, `null`), a("work", false, obj)}, "work*"},
		"broken marked": {[]store.SavedAddress{a("bad", true, `[1]`), a("home", false, obj), a("work", true, obj)}, "home work*"},
	} {
		var got []string
		for _, x := range addressBook(&store.AccountDoc{Addresses: tc.in}) {
			if x.Default {
				x.Label += "*"
			}
			got = append(got, x.Label)
		}
		if strings.Join(got, " ") != tc.want {
			t.Errorf("%s: %v, want %s", name, got, tc.want)
		}
	}
}

func TestRaises(t *testing.T) {
	t.Parallel()
	exp := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	cur := &oauth.Allowance{MaxPerOrder: 5000, DailyCap: 12050, Currency: "EUR", ExpiresAt: exp}
	for _, tc := range []struct {
		to   oauth.Allowance
		want string
	}{
		{oauth.Allowance{MaxPerOrder: 5000}, ""},
		{oauth.Allowance{MaxPerOrder: 100, DailyCap: 100, ExpiresAt: exp.Add(-time.Hour)}, ""},
		{oauth.Allowance{ExpiresAt: exp.Add(500 * time.Millisecond)}, ""}, // stored to the second
		{oauth.Allowance{MaxPerOrder: 5001}, "max_per_order_amount 5001 (50.01 EUR) is above the current 5000 (50.00 EUR)"},
		{oauth.Allowance{DailyCap: 20000}, "daily_cap_amount 20000 (200.00 EUR) is above the current 12050 (120.50 EUR)"},
		{oauth.Allowance{ExpiresAt: exp.Add(time.Second)}, "expires_at 2026-06-01T00:00:01Z is later than the current 2026-06-01T00:00:00Z"},
	} {
		if got := raises(cur, &tc.to); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.to, got, tc.want)
		}
	}
}

// nameStore knows one registered client.
type nameStore struct{ Store }

func (nameStore) Client(_ context.Context, id string) (*store.Client, error) {
	if id == "demo-agent" {
		return &store.Client{ID: id, Name: "Demo agent"}, nil
	}
	return nil, store.ErrNotFound
}

// TestClientName: what the buyer knows an agent by: its registered name,
// or a metadata-document client's host, as the consent page shows it.
func TestClientName(t *testing.T) {
	t.Parallel()
	s := &Server{cfg: Config{Store: nameStore{}}}
	for id, want := range map[string]string{
		"demo-agent": "Demo agent", "https://agent.example/oauth/client.json": "agent.example", "gone-client": "gone-client",
	} {
		if got, err := s.clientName(t.Context(), id); err != nil || got != want {
			t.Errorf("%s: %q %v, want %q", id, got, err, want)
		}
	}
}
