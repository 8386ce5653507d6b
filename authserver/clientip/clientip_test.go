package clientip

import (
	"net/http"
	"net/netip"
	"testing"
)

func TestAddr(t *testing.T) {
	proxies := &Resolver{Trusted: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}}
	cases := []struct {
		name   string
		res    *Resolver
		peer   string
		header map[string][]string
		want   string
	}{
		{"no proxy trusted: headers ignored", &Resolver{}, "203.0.113.9:1234", map[string][]string{"X-Forwarded-For": {"198.51.100.1"}}, "203.0.113.9"},
		{"nil resolver", nil, "203.0.113.9:1234", nil, "203.0.113.9"},
		{"untrusted peer: headers ignored", proxies, "203.0.113.9:1234", map[string][]string{"X-Forwarded-For": {"198.51.100.1"}}, "203.0.113.9"},
		{"trusted peer: XFF hop", proxies, "10.1.2.3:80", map[string][]string{"X-Forwarded-For": {"198.51.100.1"}}, "198.51.100.1"},
		{"spoofed left hops skipped", proxies, "10.1.2.3:80", map[string][]string{"X-Forwarded-For": {"1.2.3.4, 198.51.100.1, 10.9.9.9"}}, "198.51.100.1"},
		{"XFF over several headers", proxies, "10.1.2.3:80", map[string][]string{"X-Forwarded-For": {"1.2.3.4", "198.51.100.7"}}, "198.51.100.7"},
		{"Forwarded wins", proxies, "10.1.2.3:80", map[string][]string{"Forwarded": {`for="[2001:db8::1]:443";proto=https`}, "X-Forwarded-For": {"1.2.3.4"}}, "2001:db8::1"},
		{"Forwarded list", proxies, "10.1.2.3:80", map[string][]string{"Forwarded": {"for=1.2.3.4, for=198.51.100.2;by=10.0.0.1"}}, "198.51.100.2"},
		{"obfuscated hop stops at the proxy", proxies, "10.1.2.3:80", map[string][]string{"Forwarded": {"for=_hidden"}}, "10.1.2.3"},
		{"all hops trusted: leftmost", proxies, "10.1.2.3:80", map[string][]string{"X-Forwarded-For": {"10.0.0.5"}}, "10.0.0.5"},
		{"mapped v4 peer", proxies, "[::ffff:10.1.2.3]:80", map[string][]string{"X-Forwarded-For": {"198.51.100.3"}}, "198.51.100.3"},
		{"no header behind proxy", proxies, "10.1.2.3:80", nil, "10.1.2.3"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, _ := http.NewRequest("GET", "http://x/", nil)
			r.RemoteAddr = c.peer
			for k, vs := range c.header {
				for _, v := range vs {
					r.Header.Add(k, v)
				}
			}
			if got := c.res.Addr(r); got.String() != c.want {
				t.Fatalf("Addr = %v, want %v", got, c.want)
			}
		})
	}
}

func TestKeyGroupsIPv6By64(t *testing.T) {
	a, b := netip.MustParseAddr("2001:db8:1:2::1"), netip.MustParseAddr("2001:db8:1:2:ffff::9")
	if Key(a) != Key(b) || Key(a) != "2001:db8:1:2::/64" {
		t.Fatalf("keys %q %q", Key(a), Key(b))
	}
	if Key(netip.MustParseAddr("::ffff:192.0.2.1")) != "192.0.2.1" {
		t.Fatal("mapped v4 not unmapped")
	}
	if Key(netip.Addr{}) != "invalid" {
		t.Fatal("zero addr key")
	}
}
