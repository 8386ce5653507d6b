package main

import (
	"context"
	"io"
	"strings"
	"testing"
)

func TestTrustedProxyFlag(t *testing.T) {
	t.Parallel()
	var l proxyList
	if err := l.Set("10.0.0.0/8, 192.168.1.7,fd00::/8"); err != nil {
		t.Fatal(err)
	}
	if err := l.Set("172.16.0.1/12"); err != nil {
		t.Fatal(err)
	}
	if got := l.String(); got != "10.0.0.0/8,192.168.1.7/32,fd00::/8,172.16.0.0/12" {
		t.Fatalf("%s", got)
	}
	for _, bad := range []string{"nope", "10.0.0.0/33", "1.2.3"} {
		var l proxyList
		if err := l.Set(bad); err == nil || !strings.Contains(err.Error(), "not an address or CIDR") {
			t.Errorf("%q: %v", bad, err)
		}
	}
	dir := t.TempDir()
	err := run(context.Background(), []string{"serve", "--trusted-proxy", "bogus", "--issuer", "https://api.example.com", "--db", dir + "/db",
		"--keys-dir", dir, "--seal-key", dir + "/seal"}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "bogus") {
		t.Fatalf("serve with a bad --trusted-proxy: %v", err)
	}
}
