#!/usr/bin/env node
// Drives a ucpbridge platform with the real Artos SDK (@artos-commerce/ucp-client),
// for authserver/shop/artos_interop_test.go.
//
// Usage: node artos.mjs purchase [JOB]   JOB is a JSON object; without it, read from stdin.
// Writes ONE JSON object (one line) on stdout. Exit codes: 0 = a result was written, even when a
// step failed (see "steps"); 2 = malformed job (message on stderr); 1 = unexpected internal error.
//
// Job: {"baseUrl", "apiKey", "profileUrl", "agentJwk": private EC P-256 JWK, "kid"?: default
// agentJwk.kid, "store"?: "flower-shop", "item"?: "bouquet_roses", "quantity"?: 1,
// "query"?: "roses", "paymentMethod"?: "artos.card", "successToken"?: "success_token",
// "shippingAddress"?: a UCP postal address, "readmeAddress"?: an address in the shape the SDK
// README shows}. See README.md for the result.

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  UCP_VERSION,
  UcpClient,
  Ap2Signer,
  createCheckoutHandlers,
  verifyMerchantAuthorization,
  isUcpError,
  messageOf,
  grandTotal,
  currencyOf,
  availableRails,
} from '@artos-commerce/ucp-client';

class InputError extends Error {}

function fail(code, msg) {
  process.stderr.write(`artos.mjs: ${msg}\n`);
  process.exit(code);
}

async function readJob(arg) {
  let text = arg;
  if (text === undefined) {
    const chunks = [];
    for await (const c of process.stdin) chunks.push(c);
    text = Buffer.concat(chunks).toString('utf8');
  }
  let v;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new InputError(`the job is not JSON: ${e.message}`);
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new InputError('the job must be a JSON object');
  for (const k of ['baseUrl', 'apiKey', 'profileUrl']) {
    if (typeof v[k] !== 'string' || v[k] === '') throw new InputError(`"${k}" must be a non-empty string`);
  }
  if (!v.agentJwk || typeof v.agentJwk !== 'object') throw new InputError('"agentJwk" must be a private JWK object');
  return v;
}

function sdkVersion() {
  // The package's exports map hides package.json; find it from the entry point.
  const entry = fileURLToPath(import.meta.resolve('@artos-commerce/ucp-client'));
  const pkg = JSON.parse(readFileSync(new URL('../package.json', `file://${entry}`), 'utf8'));
  return { name: pkg.name, version: pkg.version };
}

// A fetch that records every exchange the SDK makes (the wire bytes as sent and received).
function recordingFetch(log) {
  return async (url, init = {}) => {
    const entry = { method: init.method ?? 'GET', url: String(url), requestHeaders: { ...(init.headers ?? {}) } };
    if (typeof init.body === 'string') entry.requestBody = init.body;
    log.push(entry);
    const res = await fetch(url, init);
    const text = await res.clone().text();
    entry.status = res.status;
    entry.responseHeaders = Object.fromEntries(res.headers.entries());
    entry.responseBody = text;
    return res;
  };
}

function b64json(seg) {
  return JSON.parse(Buffer.from(seg, 'base64url').toString('utf8'));
}

// What an SDK-minted compact mandate says.
function describeMandate(token, keys) {
  const [h, p] = token.split('.');
  const header = b64json(h);
  const claims = b64json(p);
  return {
    header,
    claimNames: Object.keys(claims),
    merchant: claims.merchant,
    jti: claims.jti,
    exp: claims.exp,
    paymentMandateId: claims.payment_mandate_id,
    checkoutId: claims.checkout?.id,
    checkoutStatus: claims.checkout?.status,
    // The embedded body is the verbatim get_checkout response, so its nested
    // merchant_authorization must still verify with the SDK's own verifier.
    embeddedMerchantAuthorizationValid: claims.checkout ? verifyMerchantAuthorization(claims.checkout, keys) : false,
  };
}

function ids(body) {
  return (body?.products ?? []).map((p) => p.id);
}

function codes(body) {
  return (body?.messages ?? []).map((m) => m.code);
}

function summary(body, keys) {
  return {
    ucpStatus: body?.ucp?.status,
    ucpVersion: body?.ucp?.version,
    capabilities: Object.keys(body?.ucp?.capabilities ?? {}).sort(),
    id: body?.id,
    status: body?.status,
    currency: currencyOf(body ?? {}),
    total: grandTotal(body ?? {}),
    messages: codes(body),
    message: messageOf(body ?? {}),
    continueUrl: body?.continue_url,
    orderId: body?.order?.id,
    rails: availableRails(body ?? {}),
    merchantAuthorizationValid: keys ? verifyMerchantAuthorization(body ?? {}, keys) : undefined,
  };
}

async function purchase(job) {
  const store = job.store ?? 'flower-shop';
  const item = job.item ?? 'bouquet_roses';
  const quantity = job.quantity ?? 1;
  const query = job.query ?? 'roses';
  const paymentMethod = job.paymentMethod ?? 'artos.card';
  const successToken = job.successToken ?? 'success_token';
  const kid = job.kid ?? job.agentJwk.kid;

  const http = [];
  const client = new UcpClient(
    { artosBaseUrl: job.baseUrl, platformApiKey: job.apiKey, platformProfileUrl: job.profileUrl },
    { fetch: recordingFetch(http) },
  );
  let signer;
  try {
    signer = new Ap2Signer(job.agentJwk, kid);
  } catch (e) {
    throw new InputError(`agentJwk: ${e.message}`);
  }
  const shop = createCheckoutHandlers({ client, signer });

  const steps = {};
  let ok = true;
  async function step(name, fn) {
    try {
      steps[name] = { ok: true, ...(await fn()) };
    } catch (e) {
      ok = false;
      steps[name] = { ok: false, error: e?.message ?? String(e), errorName: e?.name, wwwAuthenticate: e?.wwwAuthenticate };
    }
    return steps[name];
  }

  let keys = [];
  await step('storeProfile', async () => {
    keys = await client.fetchStoreProfile(store);
    return { kids: keys.map((k) => k.kid) };
  });
  await step('globalSearch', async () => {
    // REST POST /catalog/search; price filter in major units, converted to minor by the SDK.
    const body = await shop.searchProducts({ query, filters: { price: { max: 100, currency: 'EUR' } } });
    return { ucpStatus: body.ucp?.status, ids: ids(body) };
  });
  await step('globalSearchMcp', async () => {
    const body = await client.callGlobalTool('search_catalog', { query });
    return { ucpStatus: body.ucp?.status, isError: isUcpError(body), ids: ids(body) };
  });
  await step('globalLookup', async () => {
    const body = await shop.lookupProducts({ ids: [item] });
    return { ucpStatus: body.ucp?.status, isError: isUcpError(body), ids: ids(body) };
  });
  await step('globalGetProduct', async () => {
    const body = await shop.getProduct({ id: item });
    return { ucpStatus: body.ucp?.status, isError: isUcpError(body), id: body.product?.id };
  });
  await step('storeSearch', async () => {
    const body = await client.callStoreTool(store, 'search_catalog', { catalog: { query } });
    return { ucpStatus: body.ucp?.status, isError: isUcpError(body), ids: ids(body) };
  });
  await step('storeGetProduct', async () => {
    const body = await shop.getProduct({ storeSlug: store, id: item });
    return { ucpStatus: body.ucp?.status, isError: isUcpError(body), id: body.product?.id };
  });
  await step('cart', async () => {
    const created = await shop.createCart({ storeSlug: store, items: [{ id: item, quantity }] });
    const got = created.id ? await shop.getCart({ storeSlug: store, id: created.id }) : created;
    return { id: created.id, ucpStatus: got.ucp?.status, isError: isUcpError(got), total: grandTotal(got), messages: codes(got) };
  });

  const createArgs = { storeSlug: store, items: [{ id: item, quantity }] };
  if (job.shippingAddress) createArgs.shippingAddress = job.shippingAddress;

  // 1. The SDK's own purchase flow: confirmPurchase on a fresh checkout.
  let checkoutId;
  await step('createCheckout', async () => {
    const body = await shop.createCheckout(createArgs);
    checkoutId = body.id;
    return summary(body, keys);
  });
  if (checkoutId) {
    await step('confirmPurchase', async () => {
      const outcome = await shop.confirmPurchase({ storeSlug: store, checkoutId, paymentMethod });
      return {
        outcome: outcome.status,
        code: outcome.code,
        message: outcome.message,
        continueUrl: outcome.continueUrl,
        checkout: outcome.checkout ? summary(outcome.checkout, keys) : undefined,
      };
    });
  }

  // 2. The SDK's primitives with a sandbox card token: confirmPurchase has no way to pass a
  // credential (it sends {handler_id, selected:true} only), so this repeats its card branch by
  // hand (get_checkout, store keys, verifyMerchantAuthorization, Ap2Signer, complete_checkout)
  // and adds credential {type:"token", token}.
  let paidId;
  let orderId;
  await step('purchaseCheckout', async () => {
    const body = await shop.createCheckout(createArgs);
    paidId = body.id;
    return summary(body, keys);
  });
  if (paidId) {
    const completeKey = crypto.randomUUID();
    let completeArgs;
    await step('purchase', async () => {
      const fresh = await client.callStoreTool(store, 'get_checkout', { id: paidId });
      const storeKeys = await client.fetchStoreProfile(store);
      if (!verifyMerchantAuthorization(fresh, storeKeys)) {
        return { verified: false, fresh: summary(fresh, storeKeys) };
      }
      completeArgs = {
        id: paidId,
        checkout: {
          ap2: { checkout_mandate: signer.mintCheckoutMandate({ checkout: fresh, merchant: store }) },
          payment: {
            instruments: [
              { handler_id: paymentMethod, selected: true, credential: { type: 'token', token: successToken } },
            ],
          },
        },
      };
      const done = await client.callStoreTool(store, 'complete_checkout', completeArgs, {
        idempotent: true,
        idempotencyKey: completeKey,
      });
      orderId = done.order?.id;
      return { verified: true, ...summary(done, storeKeys) };
    });
    if (completeArgs) {
      await step('purchaseReplay', async () => {
        // The same idempotency key and body: the stored response, not a second order.
        const again = await client.callStoreTool(store, 'complete_checkout', completeArgs, {
          idempotent: true,
          idempotencyKey: completeKey,
        });
        return summary(again, keys);
      });
    }
  }
  if (orderId) {
    await step('getOrder', async () => {
      const body = await shop.getOrder({ storeSlug: store, id: orderId });
      return {
        ucpStatus: body.ucp?.status,
        isError: isUcpError(body),
        id: body.id,
        checkoutId: body.checkout_id,
        total: grandTotal(body),
        lineItems: (body.line_items ?? []).map((l) => ({ id: l.item?.id, quantity: l.quantity?.total ?? l.quantity })),
      };
    });
  }

  // 3. The address shape the SDK README shows ({country, postal_code}); reported, not judged.
  if (job.readmeAddress) {
    await step('readmeAddress', async () => {
      const body = await shop.createCheckout({ ...createArgs, shippingAddress: job.readmeAddress });
      return summary(body, keys);
    });
  }

  // Every mandate the SDK minted, as sent on the wire.
  const mandates = [];
  for (const h of http) {
    if (!h.requestBody) continue;
    let rpc;
    try {
      rpc = JSON.parse(h.requestBody);
    } catch {
      continue;
    }
    const tok = rpc?.params?.arguments?.checkout?.ap2?.checkout_mandate;
    if (rpc?.params?.name === 'complete_checkout' && tok) mandates.push(describeMandate(tok, keys));
  }

  return { ok, sdk: { ...sdkVersion(), ucpVersion: UCP_VERSION, node: process.version }, steps, mandates, http };
}

const commands = { purchase };
const cmd = process.argv[2];
if (!commands[cmd]) fail(2, `usage: node artos.mjs <${Object.keys(commands).join('|')}> [JOB]  (JSON job as argument or on stdin)`);
try {
  const job = await readJob(process.argv[3]);
  process.stdout.write(JSON.stringify(await commands[cmd](job)) + '\n');
} catch (e) {
  if (e instanceof InputError) fail(2, e.message);
  fail(1, e?.stack ?? String(e));
}
