// Package mandate produces and checks AP2 authorizations as UCP stores,
// platforms and bridges exchange them.
//
// Three artifacts:
//
//   - merchant_authorization: the store's detached compact JWS
//     (header..signature, ES256/ES384/ES512, kid in the protected header)
//     over the RFC 8785 canonical JSON of the checkout with its "ap2" member
//     removed (UCP dev.ucp.shopping.ap2_mandate). See
//     SignMerchantAuthorization and VerifyMerchantAuthorization.
//   - checkout mandate: a compact ES256 JWS by the agent key, header
//     {"alg":"ES256","kid":...}, sent as ap2.checkout_mandate on
//     complete_checkout.
//   - payment mandate: the same form, authorising the live total; sent with
//     the crypto rail.
//
// # Mandate claims
//
// The Artos SDK (@artos-commerce/ucp-client) mints, and this package always
// mints and accepts:
//
//	checkout            verbatim latest get_checkout body, ap2 included (checkout mandate)
//	payment             {amount: minor units, currency, merchant} (payment mandate)
//	merchant            store slug (checkout mandate)
//	jti                 "m_<uuid>" / "p_<uuid>", single use
//	exp                 epoch seconds; default now+300
//	payment_mandate_id  optional buyer allowance UUID for spend caps
//
// This package adds, and checks when present (Artos mandates lack them):
//
//	iat            epoch seconds
//	iss            the agent (e.g. its UCP profile URL)
//	aud            the verifier
//	checkout_id    checkout session id
//	checkout_hash  base64url SHA-256 of JCS(terms) (see CheckoutHash); AP2
//	               v0.2 calls the payment mandate's copy transaction_id
//	total          {amount, currency} of the priced checkout
//	handler_id     the payment handler instance (rail), e.g. "artos.card"
//
// "Terms" are the checkout members id, currency, line_items, totals,
// fulfillment and discounts: what is bought and what it costs. A checkout
// mandate is bound to the live checkout by comparing the terms of its
// embedded checkout with the store's current ones, so a mandate for stale
// prices fails with mandate_scope_mismatch.
//
// # Verification
//
// Verification uses an explicit algorithm allow-list (ES256 for mandates,
// ES256/ES384/ES512 for merchant_authorization; never none or HMAC),
// resolves keys by kid through a KeyResolver (a KeySet parsed from a UCP
// profile's signing_keys or keys, or a JWKS), applies bounded leeway to exp
// and iat, bounds the lifetime, and makes each mandate single use through a
// ReplayCache. Every refusal is an *Error whose Code is the UCP error code.
//
// SD-JWT (AP2 v0.2) checkout mandates are handled by the sdjwt helpers in
// this package; see SDJWTChain.
package mandate
