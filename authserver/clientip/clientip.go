// Package clientip finds the address a request came from, for rate limits
// and sign-in throttles. Behind a reverse proxy every request arrives from
// the proxy, so the forwarding headers it adds (Forwarded, RFC 7239, and
// X-Forwarded-For) are read, but only when the hop that added them is a
// configured trusted proxy: anyone else could write any address there.
package clientip

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Resolver finds a request's client address. The zero value trusts no
// proxy: the socket peer is the client.
type Resolver struct {
	// Trusted are the proxies whose forwarding headers are believed.
	Trusted []netip.Prefix
}

// Addr is the client's address: the socket peer, or, walking the
// forwarding chain from the nearest hop back while each hop is a trusted
// proxy, the first hop that is not one. Forwarded wins over
// X-Forwarded-For when both are present. An unparsable peer is the zero
// Addr.
func (res *Resolver) Addr(r *http.Request) netip.Addr {
	peer := parseHost(r.RemoteAddr)
	if res == nil || len(res.Trusted) == 0 || !res.trusted(peer) {
		return peer
	}
	chain := forwarded(r.Header.Values("Forwarded"))
	if chain == nil {
		chain = xff(r.Header.Values("X-Forwarded-For"))
	}
	addr := peer
	for i := len(chain) - 1; i >= 0; i-- {
		hop := chain[i]
		if !hop.IsValid() {
			// An obfuscated or garbled hop: the trusted proxy's own view
			// ends here, and the peer it saw is the best we know.
			return addr
		}
		addr = hop
		if !res.trusted(hop) {
			return hop
		}
	}
	return addr
}

// Key is Addr as a rate-limit key: IPv6 grouped by /64, because one host
// usually holds a whole /64 and could otherwise mint fresh buckets at will.
func (res *Resolver) Key(r *http.Request) string { return Key(res.Addr(r)) }

// Key is a rate-limit key for a: the address, IPv6 as its /64.
func Key(a netip.Addr) string {
	a = a.Unmap()
	if !a.IsValid() {
		return "invalid"
	}
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}

func (res *Resolver) trusted(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range res.Trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// parseHost reads "host:port", "[v6]:port", a bare address or a bracketed
// one.
func parseHost(s string) netip.Addr {
	s = strings.TrimSpace(s)
	if host, _, err := net.SplitHostPort(s); err == nil {
		s = host
	}
	s = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	if i := strings.IndexByte(s, '%'); i >= 0 {
		s = s[:i] // a zone never matters for a limit
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}

// forwarded lists the for= hops of Forwarded headers, in order; nil when
// there is none. Unknown or obfuscated identifiers become zero Addrs.
func forwarded(values []string) []netip.Addr {
	var out []netip.Addr
	for _, v := range values {
		for elem := range strings.SplitSeq(v, ",") {
			for pair := range strings.SplitSeq(elem, ";") {
				k, val, ok := strings.Cut(strings.TrimSpace(pair), "=")
				if !ok || !strings.EqualFold(strings.TrimSpace(k), "for") {
					continue
				}
				out = append(out, parseHost(strings.Trim(strings.TrimSpace(val), `"`)))
			}
		}
	}
	return out
}

func xff(values []string) []netip.Addr {
	var out []netip.Addr
	for _, v := range values {
		for hop := range strings.SplitSeq(v, ",") {
			out = append(out, parseHost(hop))
		}
	}
	return out
}
