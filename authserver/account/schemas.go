package account

// The tools' JSON Schemas (2020-12), written out rather than generated:
// they carry the bounds (limit 1-50, positive amounts), the formats and
// the descriptions a model reads, and additionalProperties: false so a
// misspelt argument is refused instead of ignored. mcp-go checks every
// call's arguments against the input schema and every result against the
// output schema (tests run every tool), so they cannot drift from the
// code unnoticed.

const noInput = `{"type":"object","properties":{},"additionalProperties":false}`

const listOrdersInput = `{"type":"object","properties":{` +
	`"limit":{"type":"integer","minimum":1,"maximum":50,"default":20,"description":"orders per page (1-50, default 20)"},` +
	`"cursor":{"type":"string","minLength":1,"maxLength":512,"description":"next_cursor from the previous page"}` +
	`},"additionalProperties":false}`

const getOrderInput = `{"type":"object","properties":{` +
	`"order_id":{"type":"string","minLength":1,"maxLength":256,"description":"the orderRef from list_my_orders (\"store/order id\") or the bare order id"}` +
	`},"required":["order_id"],"additionalProperties":false}`

const clientIDProperty = `"client_id":{"type":"string","minLength":1,"maxLength":2048,"description":"the agent's OAuth client id (clientId in list_my_agent_authorizations; your own is agentClientId in get_buyer_context)"}`

const revokeInput = `{"type":"object","properties":{` + clientIDProperty +
	`},"required":["client_id"],"additionalProperties":false}`

const updateLimitsInput = `{"type":"object","properties":{` + clientIDProperty + `,` +
	`"max_per_order_amount":{"type":"integer","minimum":1,"description":"new per-order maximum, integer minor units of the allowance's currency; at most the current one"},` +
	`"daily_cap_amount":{"type":"integer","minimum":1,"description":"new daily cap, integer minor units; at most the current one"},` +
	`"expires_at":{"type":"string","format":"date-time","description":"new expiry (RFC 3339); no later than the current one"}` +
	`},"required":["client_id"],"anyOf":[{"required":["max_per_order_amount"]},{"required":["daily_cap_amount"]},{"required":["expires_at"]}],` +
	`"additionalProperties":false}`

const amount = `{"type":"integer","minimum":0}`

const spendingCaps = `{"type":"object","description":"the agent's spend allowance; amounts in integer minor units of currency","properties":{` +
	`"maxPerOrderAmount":` + amount + `,` +
	`"dailyCapAmount":` + amount + `,` +
	`"spentTodayAmount":{"type":"integer","minimum":0,"description":"spent today (calendar day, UTC), payments in flight included"},` +
	`"remainingTodayAmount":{"type":"integer","minimum":0,"description":"what the daily cap still allows today"},` +
	`"currency":{"type":"string","description":"ISO 4217; orders in another currency are refused"},` +
	`"expiresAt":{"type":"string","format":"date-time"},` +
	`"allowanceId":{"type":"string","description":"the payment_mandate_id an AP2 mandate may name"}` +
	`},"required":["maxPerOrderAmount","dailyCapAmount","spentTodayAmount","remainingTodayAmount","currency","expiresAt"],"additionalProperties":false}`

const address = `{"type":"object","properties":{` +
	`"label":{"type":"string"},"default":{"type":"boolean"},` +
	`"address":{"type":"object","description":"UCP postal address (street_address, address_locality, postal_code, address_country, …)"}` +
	`},"required":["label","default","address"],"additionalProperties":false}`

const buyerContextSchema = `{"type":"object","properties":{` +
	`"profile":{"type":"object","properties":{` +
	`"id":{"type":"string"},"email":{"type":"string"},"name":{"type":"string"},"phone":{"type":"string"},"suiAddress":{"type":"string"}` +
	`},"required":["id","email"],"additionalProperties":false},` +
	`"defaultAddress":` + address + `,` +
	`"otherAddressLabels":{"type":"array","items":{"type":"string"}},` +
	`"savedCard":{"type":"object","description":"the saved card a buyer-bound card payment without a card charges","properties":{"brand":{"type":"string"},"last4":{"type":"string"}},"required":["brand","last4"],"additionalProperties":false},` +
	`"agentClientId":{"type":"string","description":"your OAuth client id"},` +
	`"hasAgentAuthorization":{"type":"boolean","description":"you hold a spending allowance that has not expired"},` +
	`"spendingCaps":` + spendingCaps +
	`},"required":["profile","otherAddressLabels","agentClientId","hasAgentAuthorization"],"additionalProperties":false}`

const addressesSchema = `{"type":"object","properties":{"addresses":{"type":"array","items":` + address + `}},` +
	`"required":["addresses"],"additionalProperties":false}`

const orderSummaryProperties = `"orderRef":{"type":"string","description":"\"store/order id\", for get_my_order"},` +
	`"id":{"type":"string"},"store":{"type":"string"},"storeName":{"type":"string"},` +
	`"placedAt":{"type":"string","format":"date-time"},` +
	`"currency":{"type":"string"},"totalAmount":` + amount + `,` +
	`"items":{"type":"array","items":{"type":"object","properties":{"id":{"type":"string"},"title":{"type":"string"},"quantity":{"type":"integer"}},"required":["id","title","quantity"],"additionalProperties":false}},` +
	`"permalinkUrl":{"type":"string"},` +
	`"placedBy":{"type":"string","enum":["agent","human"]},` +
	`"agentClientId":{"type":"string"}`

const orderSummaryRequired = `"orderRef","id","store","storeName","placedAt","currency","totalAmount","items"`

const orderListSchema = `{"type":"object","properties":{` +
	`"orders":{"type":"array","items":{"type":"object","properties":{` + orderSummaryProperties + `},"required":[` + orderSummaryRequired + `],"additionalProperties":false}},` +
	`"next_cursor":{"type":"string","description":"pass as cursor for the next page; absent on the last page"}` +
	`},"required":["orders"],"additionalProperties":false}`

const orderDetailSchema = `{"type":"object","properties":{` + orderSummaryProperties + `,` +
	`"order":{"type":"object","description":"the UCP order: line_items, totals, fulfillment (expectations with the destination, events)"}` +
	`},"required":[` + orderSummaryRequired + `,"order"],"additionalProperties":false}`

const authorizationsSchema = `{"type":"object","properties":{"authorizations":{"type":"array","items":{"type":"object","properties":{` +
	`"clientId":{"type":"string"},"clientName":{"type":"string"},` +
	`"scopes":{"type":"array","items":{"type":"string"}},` +
	`"spendingCaps":` + spendingCaps + `,` +
	`"updatedAt":{"type":"string","format":"date-time"},` +
	`"isCaller":{"type":"boolean","description":"this is you"}` +
	`},"required":["clientId","clientName","scopes","updatedAt","isCaller"],"additionalProperties":false}}},` +
	`"required":["authorizations"],"additionalProperties":false}`

const revokeSchema = `{"type":"object","properties":{` +
	`"clientId":{"type":"string"},"revoked":{"type":"boolean"},` +
	`"grantsRevoked":{"type":"integer","minimum":0,"description":"sign-ins ended now, each with its tokens; 0 when already revoked"},` +
	`"callerRevoked":{"type":"boolean","description":"you revoked yourself: your token no longer works"}` +
	`},"required":["clientId","revoked","grantsRevoked","callerRevoked"],"additionalProperties":false}`

const limitsSchema = `{"type":"object","properties":{"clientId":{"type":"string"},"spendingCaps":` + spendingCaps + `},` +
	`"required":["clientId","spendingCaps"],"additionalProperties":false}`
