// Package discovery fetches and caches UCP discovery profiles following the
// fetch rules of UCP 2026-04-08 (overview.md, "Profile Requirements"),
// parses the UCP-Agent request header, and negotiates the protocol version
// and capability set between a business and a platform profile.
//
// Every failure is an *Error carrying the UCP error code
// (invalid_profile_url, profile_unreachable, profile_malformed,
// version_unsupported, capabilities_incompatible) and, through Status, the
// HTTP status the spec assigns to it.
//
// The spec's fetch rules, and where each is enforced:
//
//   - https only (plain http on loopback behind Fetcher.AllowInsecureLoopback,
//     for local test harnesses): Fetcher.Fetch, before any traffic;
//   - no redirects: every client the Fetcher uses, including a caller's, is
//     wrapped with NoRedirects, and a 3xx is profile_unreachable;
//   - timeouts: the default client's 5s, and a deadline on every fetch;
//   - cache for at least 60s regardless of Cache-Control: Fetcher.TTL is
//     floored at 60s, and a longer max-age is honoured up to an hour;
//   - a fixed discovery footprint: a bounded LRU, one request per URL at a
//     time, and failures remembered for Fetcher.NegativeTTL.
//
// The default client also refuses to connect to non-public addresses
// (internal/netguard), since the platform profile URL comes from whoever
// sends the request.
package discovery
