package main

import (
	"bytes"
	"context"
	"io"
	"slices"
	"testing"

	"github.com/ucpbridge/ucpbridge/authserver/oauth"
	"github.com/ucpbridge/ucpbridge/authserver/store/sqlstore"
)

// TestClientAddResource: `client add --role platform --resource URL`
// records the bridge resources the platform runs, and the platform may
// exchange their tokens; a URL another platform holds, a malformed one
// or the flag on another role is refused.
func TestClientAddResource(t *testing.T) {
	t.Parallel()
	db := t.TempDir() + "/db"
	add := func(args ...string) error {
		return run(context.Background(), append([]string{"client", "add", "--db", db}, args...), &bytes.Buffer{}, io.Discard)
	}
	if err := add("--role", "platform", "--id", "acme", "--resource", "https://bridge.acme.example/mcp", "--resource", "http://127.0.0.1:8090/mcp"); err != nil {
		t.Fatal(err)
	}
	for _, bad := range [][]string{
		{"--role", "platform", "--id", "rival", "--resource", "https://bridge.acme.example/mcp"}, // acme's
		{"--role", "platform", "--id", "p2", "--resource", "http://bridge.example/mcp"},          // plain http off loopback
		{"--role", "platform", "--id", "p3", "--resource", "https://bridge.example/mcp#x"},
		{"--role", "platform", "--id", "p4", "--resource", "https://user@bridge.example/mcp"},
		{"--role", "app", "--id", "a1", "--redirect", "http://127.0.0.1/cb", "--resource", "https://app.example/mcp"},
	} {
		if err := add(bad...); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
	st, err := sqlstore.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if list, err := st.PlatformResources(context.Background(), "acme"); err != nil ||
		!slices.Equal(list, []string{"http://127.0.0.1:8090/mcp", "https://bridge.acme.example/mcp"}) {
		t.Fatalf("acme's resources %q %v", list, err)
	}
	c, err := st.Client(context.Background(), "acme")
	if err != nil || !slices.Contains(c.GrantTypes, oauth.GrantTypeTokenExchange) {
		t.Fatalf("acme %+v %v", c, err)
	}
	for _, id := range []string{"rival", "p2", "p3", "p4", "a1"} {
		if _, err := st.Client(context.Background(), id); err == nil {
			t.Errorf("%s was registered", id)
		}
	}
}
