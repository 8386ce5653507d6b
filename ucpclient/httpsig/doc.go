// Package httpsig signs and verifies HTTP messages with RFC 9421 HTTP
// Message Signatures and RFC 9530 Content-Digest, following the UCP
// 2026-04-08 signature profile, on top of github.com/yaronf/httpsign.
//
// What it adds to httpsign, and why:
//
//   - The UCP profile: label sig1, keyid always, no alg parameter (the
//     algorithm comes from the key), the UCP covered-component rules for
//     requests and responses (RequestComponents, ResponseComponents).
//   - The body is checked: Verify recomputes Content-Digest over the raw
//     body; httpsign's VerifyRequest only proves the header was signed.
//   - Interop fixes: @authority is lowercased without the default port on
//     both sides, an empty path is signed as "/", httpsign's 10-second
//     created window and mandatory created are replaced by a bounded skew
//     that accepts UCP peers (created optional), every label is tried.
//   - Keys come from a KeyResolver (a UCP profile's signing_keys/keys or a
//     JWKS, e.g. *mandate.KeySet); errors carry UCP codes and HTTP
//     statuses: key_not_found 401, digest_mismatch 400, signature_invalid
//     401, signature_missing 401, algorithm_unsupported 400,
//     coverage_insufficient 401.
package httpsig
