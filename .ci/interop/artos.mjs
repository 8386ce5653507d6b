#!/usr/bin/env node
// Drives a ucpbridge platform with the real Artos SDK (@artos-commerce/ucp-client),
// for authserver/shop/artos_interop_test.go.
//
// Usage: node artos.mjs <purchase|buyer> [JOB]   JOB is a JSON object; without it, read from stdin.
// Writes ONE JSON object (one line) on stdout. Exit codes: 0 = a result was written, even when a
// step failed (see "steps"); 2 = malformed job (message on stderr); 1 = unexpected internal error.
//
// Both jobs: {"baseUrl", "apiKey", "profileUrl", "agentJwk": private EC P-256 JWK, "kid"?: default
// agentJwk.kid}.
// purchase (the platform key alone) adds: "store"?: "flower-shop", "item"?: "bouquet_roses",
// "quantity"?: 1, "query"?: "roses", "paymentMethod"?: "artos.card", "successToken"?:
// "success_token", "shippingAddress"?: a UCP postal address, "readmeAddress"?: an address in the
// shape the SDK README shows.
// buyer (the platform key and a buyer token, sandbox crypto deps) adds: "buyerToken",
// "purchases": [{"name", "store", "items": [{"id", "quantity"?}], "paymentMethod",
// "shippingAddress"?}], run in order.
// See README.md for the results.

import { createHash } from 'node:crypto';
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

function newSigner(job) {
  try {
    return new Ap2Signer(job.agentJwk, job.kid ?? job.agentJwk.kid);
  } catch (e) {
    throw new InputError(`agentJwk: ${e.message}`);
  }
}

// The buyer job's own fields.
function checkBuyerJob(job) {
  if (typeof job.buyerToken !== 'string' || job.buyerToken === '') throw new InputError('"buyerToken" must be a non-empty string');
  if (!Array.isArray(job.purchases) || job.purchases.length === 0) throw new InputError('"purchases" must be a non-empty array');
  const names = new Set();
  for (const [i, p] of job.purchases.entries()) {
    const at = `purchases[${i}]`;
    if (p === null || typeof p !== 'object' || Array.isArray(p)) throw new InputError(`${at} must be an object`);
    for (const k of ['name', 'store', 'paymentMethod']) {
      if (typeof p[k] !== 'string' || p[k] === '') throw new InputError(`${at}.${k} must be a non-empty string`);
    }
    if (names.has(p.name)) throw new InputError(`${at}.name "${p.name}" is used twice`);
    names.add(p.name);
    if (!Array.isArray(p.items) || p.items.length === 0) throw new InputError(`${at}.items must be a non-empty array`);
    for (const [j, it] of p.items.entries()) {
      if (typeof it?.id !== 'string' || it.id === '') throw new InputError(`${at}.items[${j}].id must be a non-empty string`);
      if (it.quantity !== undefined && !(Number.isInteger(it.quantity) && it.quantity > 0)) {
        throw new InputError(`${at}.items[${j}].quantity must be a positive integer`);
      }
    }
    if (p.shippingAddress !== undefined && (p.shippingAddress === null || typeof p.shippingAddress !== 'object')) {
      throw new InputError(`${at}.shippingAddress must be an object`);
    }
  }
}

function sdkVersion() {
  // The package's exports map hides package.json; find it from the entry point.
  const entry = fileURLToPath(import.meta.resolve('@artos-commerce/ucp-client'));
  const pkg = JSON.parse(readFileSync(new URL('../package.json', `file://${entry}`), 'utf8'));
  return { name: pkg.name, version: pkg.version };
}

// Which credentials a request carries: "api-key" (X-API-Key), "bearer" (Authorization: Bearer).
function credentialsOf(headers) {
  const names = Object.keys(headers).map((h) => h.toLowerCase());
  const out = [];
  if (names.includes('x-api-key')) out.push('api-key');
  const auth = Object.entries(headers).find(([h]) => h.toLowerCase() === 'authorization')?.[1];
  if (typeof auth === 'string' && /^bearer /i.test(auth)) out.push('bearer');
  return out;
}

// The MCP tool a JSON-RPC request body calls, if any.
function toolOf(body) {
  try {
    return JSON.parse(body)?.params?.name;
  } catch {
    return undefined;
  }
}

// A fetch that records every exchange the SDK makes (the wire bytes as sent and received), with
// the tool called and the credentials sent.
function recordingFetch(log) {
  return async (url, init = {}) => {
    const requestHeaders = { ...(init.headers ?? {}) };
    const entry = { method: init.method ?? 'GET', url: String(url), credentials: credentialsOf(requestHeaders), requestHeaders };
    if (typeof init.body === 'string') {
      entry.requestBody = init.body;
      entry.tool = toolOf(init.body);
    }
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
    // messageOf is what the SDK shows (the first message with content); details are all of them.
    message: messageOf(body ?? {}),
    details: (body?.messages ?? []).map((m) => ({ type: m.type, code: m.code, content: m.content })),
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

  const http = [];
  const client = new UcpClient(
    { artosBaseUrl: job.baseUrl, platformApiKey: job.apiKey, platformProfileUrl: job.profileUrl },
    { fetch: recordingFetch(http) },
  );
  const signer = newSigner(job);
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

  return { ok, sdk: sdkInfo(), steps, mandates: sentMandates(http, () => keys), http };
}

function sdkInfo() {
  return { ...sdkVersion(), ucpVersion: UCP_VERSION, node: process.version };
}

// Every checkout mandate the SDK minted, as sent on the wire; keysFor(store) gives the keys its
// embedded merchant_authorization is verified with.
function sentMandates(http, keysFor) {
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
    if (rpc?.params?.name === 'complete_checkout' && tok) {
      const m = describeMandate(tok, keysFor(b64json(tok.split('.')[1]).merchant) ?? []);
      m.hasPaymentMandate = Boolean(rpc.params.arguments.checkout.ap2.payment_mandate);
      mandates.push(m);
    }
  }
  return mandates;
}

// The crypto deps confirmPurchase takes (deps.crypto), on the ucpbridge sandbox chain instead of
// Sui: signAndSubmit "settles" the server-built transaction at once, under the digest the sandbox
// gives it ("sim_" + hex SHA-256 of the base64-decoded unsigned_tx bytes). No network. Every call
// is recorded in `signed`, tagged with the purchase running (current()).
function sandboxCrypto(signed, current) {
  return {
    inputCoinType: '0x2::sui::SUI',
    // No client-side cap (maxSpendAmount): the server's allowance is what refuses.
    sui: {
      address: `0x${'0'.repeat(64)}`,
      async signAndSubmit(unsignedTx) {
        const tx = Buffer.from(String(unsignedTx), 'base64');
        if (tx.length === 0 || tx.toString('base64') !== unsignedTx) {
          throw new Error('sandbox chain: unsigned_tx is not canonical base64');
        }
        const digest = `sim_${createHash('sha256').update(tx).digest('hex')}`;
        signed.push({ purchase: current(), digest, txBytes: tx.length });
        return digest;
      },
    },
  };
}

// The buyer flow: the platform key and the buyer's bearer on one UcpClient, as a signed-in Artos
// host runs it. Each purchase is the SDK's createCheckout (platform key) then its confirmPurchase
// (card: complete with the bearer alone; crypto: prepare_checkout_payment and complete with the
// bearer alone, signAndSubmit in between).
async function buyer(job) {
  checkBuyerJob(job);
  const http = [];
  const signed = [];
  const client = new UcpClient(
    { artosBaseUrl: job.baseUrl, platformApiKey: job.apiKey, platformProfileUrl: job.profileUrl },
    { fetch: recordingFetch(http), buyerToken: job.buyerToken },
  );
  const signer = newSigner(job);
  let running;
  const shop = createCheckoutHandlers({ client, signer, crypto: sandboxCrypto(signed, () => running) });

  const keys = new Map();
  const steps = {};
  let ok = true;
  for (const p of job.purchases) {
    running = p.name;
    const st = { ok: true };
    steps[p.name] = st;
    try {
      if (!keys.has(p.store)) keys.set(p.store, await client.fetchStoreProfile(p.store));
      const storeKeys = keys.get(p.store);
      const args = { storeSlug: p.store, items: p.items.map((i) => ({ id: i.id, quantity: i.quantity ?? 1 })) };
      if (p.shippingAddress) args.shippingAddress = p.shippingAddress;
      const created = await shop.createCheckout(args);
      st.create = summary(created, storeKeys);
      if (isUcpError(created) || !created.id) continue;
      st.checkoutId = created.id;
      const outcome = await shop.confirmPurchase({ storeSlug: p.store, checkoutId: created.id, paymentMethod: p.paymentMethod });
      st.outcome = outcome.status;
      st.code = outcome.code;
      st.message = outcome.message;
      st.continueUrl = outcome.continueUrl;
      st.checkout = outcome.checkout ? summary(outcome.checkout, storeKeys) : undefined;
    } catch (e) {
      ok = false;
      Object.assign(st, { ok: false, error: e?.message ?? String(e), errorName: e?.name, wwwAuthenticate: e?.wwwAuthenticate });
    }
  }
  running = undefined;
  return { ok, sdk: sdkInfo(), buyerMode: client.hasBuyerToken(), steps, signed, mandates: sentMandates(http, (s) => keys.get(s)), http };
}

const commands = { purchase, buyer };
const cmd = process.argv[2];
if (!commands[cmd]) fail(2, `usage: node artos.mjs <${Object.keys(commands).join('|')}> [JOB]  (JSON job as argument or on stdin)`);
try {
  const job = await readJob(process.argv[3]);
  process.stdout.write(JSON.stringify(await commands[cmd](job)) + '\n');
} catch (e) {
  if (e instanceof InputError) fail(2, e.message);
  fail(1, e?.stack ?? String(e));
}
