// Package netguard is everything a server needs to fetch or post to a URL
// that a caller named (OAuth client metadata documents, UCP profiles, order
// webhooks) without being turned against its own network:
//
//   - CheckURL, the URL rules applied before any traffic;
//   - Control and LoopbackControl, the dial-time address guard that refuses
//     loopback, private networks, link-local (cloud metadata services),
//     CGNAT, ULA and the other special-use ranges;
//   - NewClient, the one guarded *http.Client: no proxy, no redirects,
//     bounded response headers, timeouts;
//   - ReadBody, a size-capped body reader;
//   - Cache, a singleflight + TTL + LRU cache of fetched documents with a
//     bound on fetches in flight.
//
// The address check belongs in net.Dialer.Control, which runs for each
// address actually dialled after DNS resolution, so a name that resolves to
// a public address for a pre-check and to 10.0.0.1 for the connection (DNS
// rebinding) is still refused. An environment proxy would dial on the
// client's behalf and bypass it, which is why NewClient sets none.
//
// IsLoopbackHost is the module's one answer to "does this URL host name the
// local machine", used wherever development modes relax a rule for
// loopback (OAuth redirect URIs, issuers, profile and webhook URLs).
package netguard

import (
	"fmt"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
)

// ClassLoopback is the class Class reports for 127.0.0.0/8 and ::1, the one
// class LoopbackControl lets through.
const ClassLoopback = "loopback"

// BlockedError is returned by Control and LoopbackControl for a refused
// address. Class is safe to show to a remote party; Addr may be internal
// and belongs in logs.
type BlockedError struct {
	Addr  netip.Addr
	Class string
}

func (e *BlockedError) Error() string {
	return fmt.Sprintf("refusing to connect to %s address %s", e.Class, e.Addr)
}

// Control is a net.Dialer Control function that refuses every address that
// is not Public, and every network other than TCP.
func Control(network, address string, _ syscall.RawConn) error {
	return control(network, address, false)
}

// LoopbackControl is Control that also lets loopback addresses through, for
// local development against servers on 127.0.0.1. Every other special-use
// class is still refused: 0.0.0.0 reaches local services on Linux too, but
// allowing it would be surprising.
func LoopbackControl(network, address string, _ syscall.RawConn) error {
	return control(network, address, true)
}

func control(network, address string, allowLoopback bool) error {
	// Control sees the resolved family; "udp" or "unix" here would mean a
	// dialer used for something other than an HTTP fetch.
	if network != "tcp4" && network != "tcp6" {
		return fmt.Errorf("netguard: refusing to dial network %q", network)
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("netguard: refusing to dial unparsable address %q: %w", address, err)
	}
	class := Class(ap.Addr())
	if class == "" || (class == ClassLoopback && allowLoopback) {
		return nil
	}
	return &BlockedError{Addr: ap.Addr(), Class: class}
}

// Public reports whether a is an address a server-side fetch may connect to.
func Public(a netip.Addr) bool { return Class(a) == "" }

// IsLoopbackHost reports whether a URL host (without port) names the local
// machine: "localhost" or a loopback IP literal. Development modes use it to
// decide which plain-http URLs to accept; it does no DNS lookup, so the dial
// guard still has the last word.
func IsLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"))
	return err == nil && a.Unmap().IsLoopback()
}

type prefixClass struct {
	prefix netip.Prefix
	class  string
}

// specialPrefixes lists special-use ranges (RFC 6890 and successors) that a
// fetch must never reach. Read-only.
var specialPrefixes = []prefixClass{
	{netip.MustParsePrefix("0.0.0.0/8"), "this-network (0.0.0.0/8)"},
	{netip.MustParsePrefix("10.0.0.0/8"), "private (RFC 1918)"},
	{netip.MustParsePrefix("100.64.0.0/10"), "shared (CGNAT)"},
	{netip.MustParsePrefix("127.0.0.0/8"), ClassLoopback},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local"},
	{netip.MustParsePrefix("172.16.0.0/12"), "private (RFC 1918)"},
	{netip.MustParsePrefix("192.0.0.0/24"), "IETF protocol assignment"},
	{netip.MustParsePrefix("192.0.2.0/24"), "documentation"},
	{netip.MustParsePrefix("192.88.99.0/24"), "6to4 relay"},
	{netip.MustParsePrefix("192.168.0.0/16"), "private (RFC 1918)"},
	{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking"},
	{netip.MustParsePrefix("198.51.100.0/24"), "documentation"},
	{netip.MustParsePrefix("203.0.113.0/24"), "documentation"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast"},
	{netip.MustParsePrefix("255.255.255.255/32"), "broadcast"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved"},

	{netip.MustParsePrefix("::/128"), "unspecified"},
	{netip.MustParsePrefix("::1/128"), ClassLoopback},
	{netip.MustParsePrefix("64:ff9b:1::/48"), "local NAT64"},
	{netip.MustParsePrefix("100::/64"), "discard-only"},
	{netip.MustParsePrefix("2001::/23"), "IETF protocol assignment"},
	{netip.MustParsePrefix("2001:db8::/32"), "documentation"},
	{netip.MustParsePrefix("2002::/16"), "6to4"},
	{netip.MustParsePrefix("3fff::/20"), "documentation"},
	{netip.MustParsePrefix("fc00::/7"), "unique local (ULA)"},
	{netip.MustParsePrefix("fe80::/10"), "link-local"},
	{netip.MustParsePrefix("fec0::/10"), "site-local"},
	{netip.MustParsePrefix("ff00::/8"), "multicast"},
}

var (
	nat64    = netip.MustParsePrefix("64:ff9b::/96")
	globalV6 = netip.MustParsePrefix("2000::/3")
)

// Class returns "" for a public address and otherwise a short name of the
// special-use class a belongs to (ClassLoopback, "private (RFC 1918)",
// "link-local", ...).
func Class(a netip.Addr) string {
	if !a.IsValid() {
		return "invalid"
	}
	// Zoned addresses never match a Prefix, and ::ffff:10.0.0.1 reaches
	// 10.0.0.1, so compare the plain form.
	a = a.WithZone("").Unmap()
	if nat64.Contains(a) {
		// Well-known NAT64 is how IPv6-only networks reach public IPv4;
		// judge the embedded IPv4 address.
		b := a.As16()
		return Class(netip.AddrFrom4([4]byte(b[12:])))
	}
	for _, p := range specialPrefixes {
		if p.prefix.Contains(a) {
			return p.class
		}
	}
	// Everything outside 2000::/3 is unassigned or special in IPv6
	// (including the deprecated IPv4-compatible ::a.b.c.d form).
	if a.Is6() && !globalV6.Contains(a) {
		return "reserved"
	}
	return ""
}

// URLError is a URL refused by CheckURL. Problem is a phrase to follow the
// URL's name in a message ("must use https"); it never echoes the URL.
type URLError struct {
	Problem string
}

func (e *URLError) Error() string { return "netguard: URL " + e.Problem }

// CheckURL applies the rules every URL a caller names must meet before
// the server fetches or posts to it (CIMD client ids, UCP profiles,
// webhooks): at most maxLen bytes, already in wire form (no spaces,
// control or non-ASCII characters), https (or http to a loopback host
// when allowLoopbackHTTP), a host, no user information, no fragment.
// Refusals are *URLError.
func CheckURL(raw string, maxLen int, allowLoopbackHTTP bool) (*url.URL, error) {
	refuse := func(problem string) (*url.URL, error) { return nil, &URLError{Problem: problem} }
	if len(raw) > maxLen {
		return refuse(fmt.Sprintf("is longer than %d bytes", maxLen))
	}
	if strings.ContainsFunc(raw, func(r rune) bool { return r <= ' ' || r >= 0x7f }) {
		return refuse("contains spaces, control or non-ASCII characters")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return refuse("is not a valid URL")
	}
	if u.Scheme != "https" && !(allowLoopbackHTTP && u.Scheme == "http" && IsLoopbackHost(u.Hostname())) {
		return refuse("must use https")
	}
	if u.Opaque != "" || u.Hostname() == "" {
		return refuse("must have a host")
	}
	if u.User != nil {
		return refuse("must not contain user information")
	}
	if strings.Contains(raw, "#") {
		return refuse("must not contain a fragment")
	}
	return u, nil
}
