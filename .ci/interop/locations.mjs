#!/usr/bin/env node
// Drives a store's locations and pickup with the real Artos SDK (@artos-commerce/ucp-client),
// for authserver/shop/locations_artos_interop_test.go.
//
// Usage: node locations.mjs [JOB]   JOB is a JSON object; without it, read from stdin:
// {"baseUrl", "apiKey", "profileUrl", "store", "center": {latitude, longitude}, "radius": metres,
//  "item": a variant id, "ids": [location ids], "pickupAt": a location id,
//  "points": [{latitude, longitude}]}.
// Writes ONE JSON object (one line) on stdout: {"sdk", "steps": {name: {ok, ...}}, "distances"}.
// "distances" are the SDK's geodesicMetres from "center" to each of "points" (the radius parity the
// SDK promises with the Artos API). Exit codes: 0 = a result was written, even when a step failed;
// 2 = malformed job; 1 = unexpected internal error.

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  UCP_VERSION,
  UcpClient,
  createCheckoutHandlers,
  retailLocations,
  selectedDestinationId,
  geodesicMetres,
} from '@artos-commerce/ucp-client';

async function readJob(arg) {
  let text = arg;
  if (text === undefined) {
    const chunks = [];
    for await (const c of process.stdin) chunks.push(c);
    text = Buffer.concat(chunks).toString('utf8');
  }
  const v = JSON.parse(text);
  for (const k of ['baseUrl', 'apiKey', 'profileUrl', 'store', 'item', 'pickupAt']) {
    if (typeof v[k] !== 'string' || v[k] === '') throw new Error(`"${k}" must be a non-empty string`);
  }
  return v;
}

async function main() {
  let job;
  try {
    job = await readJob(process.argv[2]);
  } catch (e) {
    process.stderr.write(`locations.mjs: ${e.message}\n`);
    process.exit(2);
  }
  const pkg = JSON.parse(
    readFileSync(fileURLToPath(new URL('./node_modules/@artos-commerce/ucp-client/package.json', import.meta.url)), 'utf8'),
  );
  const client = new UcpClient({ artosBaseUrl: job.baseUrl, platformApiKey: job.apiKey, platformProfileUrl: job.profileUrl });
  const shop = createCheckoutHandlers({ client });
  const steps = {};
  async function step(name, fn) {
    try {
      steps[name] = { ok: true, ...(await fn()) };
    } catch (e) {
      steps[name] = { ok: false, error: e?.message ?? String(e), errorName: e?.name };
    }
  }
  const ids = (body) => retailLocations(body).map((l) => l.id);

  await step('searchLocations', async () => {
    const body = await shop.searchLocations({
      storeSlug: job.store,
      distance: { center: job.center, max: job.radius },
      filters: { items: [job.item] },
    });
    return { ids: ids(body), status: body.ucp?.status, first: body.locations?.[0] ?? null };
  });
  await step('browseLocations', async () => {
    const body = await shop.searchLocations({ storeSlug: job.store, pagination: { limit: 1 } });
    return { ids: ids(body), pagination: body.pagination ?? null };
  });
  await step('lookupLocations', async () => {
    const body = await shop.lookupLocations({ storeSlug: job.store, ids: job.ids });
    return {
      ids: ids(body),
      inputs: (body.locations ?? []).map((l) => (l.inputs ?? []).map((i) => i.id)),
      messages: (body.messages ?? []).map((m) => m.code),
    };
  });
  await step('pickupCheckout', async () => {
    const body = await shop.createCheckout({
      storeSlug: job.store,
      items: [{ id: job.item, quantity: 1 }],
      fulfillment: { selectedDestinationId: job.pickupAt },
    });
    return {
      status: body.status,
      selected: selectedDestinationId(body) ?? null,
      destinations: ids(body),
      totals: body.totals ?? [],
    };
  });
  const distances = (job.points ?? []).map((p) => geodesicMetres(job.center, p));
  process.stdout.write(
    JSON.stringify({ sdk: { name: pkg.name, version: pkg.version, ucpVersion: UCP_VERSION, node: process.version }, steps, distances }) + '\n',
  );
}

main().catch((e) => {
  process.stderr.write(`locations.mjs: ${e?.stack ?? e}\n`);
  process.exit(1);
});
