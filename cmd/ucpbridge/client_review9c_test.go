package main

// Third security review of issue 9: ucpbridge client add (the test
// showed the hole and now guards its fix).

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"testing"
)

// TestReview9cClientAddValidatesRedirects: client add checks the URLs a
// platform registers (--profile, --cimd: https, no user information, no
// fragment) but takes an app's --redirect as given. A redirect URI is
// where the authorization server sends the buyer's authorization code;
// OAuth 2.1 (and this server's own CIMD rules, cimd.parseDocument) want
// an absolute URI without a fragment, https or loopback http, and no
// javascript:/data: schemes. An operator's typo or a pasted value is
// stored and then used verbatim by redirectBack.
func TestReview9cClientAddValidatesRedirects(t *testing.T) {
	t.Parallel()
	db := t.TempDir() + "/db"
	for i, redirect := range []string{
		"javascript:alert(document.domain)//",
		"http://attacker.example/cb", // plain http off loopback: the code in clear
		"https://app.example/cb#frag",
		"/relative/callback",
		"",
	} {
		var out bytes.Buffer
		err := run(context.Background(), []string{"client", "add", "--db", db, "--role", "app", "--id", fmt.Sprintf("app%d", i),
			"--redirect", redirect}, &out, io.Discard)
		if err == nil {
			t.Errorf("client add --role app --redirect %q accepted: %s", redirect, out.String())
		}
	}
}
