// Package ucp holds the wire types for UCP 2026-04-08 (the Universal
// Commerce Protocol): discovery profiles and the response envelope,
// checkout, cart, catalog and order resources.
//
// Types marshal to the strict 2026-04-08 shapes. Reading is tolerant where
// real peers differ: ParseProfile also accepts flat profiles, the draft's
// `keys`, and the 2026-01-11 array capabilities and per-transport services,
// so a client written against this release can still talk to older or
// newer servers.
//
// The package imports only the standard library, so the SDK, the MCP bridge
// and the reference store can share it without pulling in each other.
package ucp
