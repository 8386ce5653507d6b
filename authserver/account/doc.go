// Package account is the buyer account MCP server, served at /account/mcp
// (Artos's account surface, artos.md §2.2 and §7): what an agent reads
// about the buyer it acts for, and the controls a buyer has over the
// agents they authorized.
//
// The tools:
//
//   - get_buyer_context: the profile, the default address and the other
//     address labels, the saved card (brand and last four digits only),
//     and the calling agent's authorization with its spending caps and
//     what today (calendar day, UTC) has already spent, holds in flight
//     included. The recommended first call.
//   - list_my_addresses: the address book.
//   - list_my_orders: orders across every store, newest first, paged by an
//     opaque cursor.
//   - get_my_order: one order, named "store/order_id" or by its bare id.
//   - list_my_agent_authorizations: every agent the buyer authorized, with
//     its scopes and spending caps.
//   - revoke_agent_authorization: ends an agent's authorization and
//     revokes its tokens (the calling agent's own included).
//   - update_spending_limits: lowers an agent's caps or brings its expiry
//     forward; raising needs the consent page, where the buyer signs in.
//
// Who the buyer is comes from the bearer token and nothing else: no tool
// takes a buyer id. Every request is identified by the guard and must
// carry a buyer's bearer alone; anything else is refused before the MCP
// layer sees it, with HTTP 401 and a WWW-Authenticate challenge naming
// the RFC 9728 metadata (so MCP clients discover the authorization
// server), or 403. The server is stateless streamable HTTP: a bare
// tools/call POST without initialize works, as the Artos SDK sends it.
//
// Refusals a buyer or agent can act on (an unknown order, a raise, a bad
// cursor) are tool results with isError; protocol problems (credentials,
// an oversized body, storage failures) are JSON-RPC errors with the HTTP
// status that says what happened.
package account
