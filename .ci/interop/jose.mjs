#!/usr/bin/env node
// JOSE (JWS, ES256) reference side for Go interop tests.
//
// Usage: node jose.mjs <verify-compact|sign-compact|sign-detached|verify-detached>
// Reads ONE JSON object on stdin, writes ONE JSON object (one line) on stdout.
// Exit codes: 0 = a result was produced (including {"ok":false} from verify-*);
//             2 = malformed input / usage error (message on stderr);
//             1 = unexpected internal error (message on stderr).
// See README.md for the contract.

import {
  CompactSign,
  FlattenedSign,
  compactVerify,
  flattenedVerify,
  createLocalJWKSet,
  importJWK,
  base64url,
} from 'jose';

class InputError extends Error {}

function fail(code, msg) {
  process.stderr.write(`jose.mjs: ${msg}\n`);
  process.exit(code);
}

async function readJSON() {
  const chunks = [];
  for await (const c of process.stdin) chunks.push(c);
  const text = Buffer.concat(chunks).toString('utf8');
  try {
    const v = JSON.parse(text);
    if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Error('not an object');
    return v;
  } catch (e) {
    throw new InputError(`stdin is not a JSON object: ${e.message}`);
  }
}

function out(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

function reqString(input, name, { allowEmpty = false } = {}) {
  const v = input[name];
  if (typeof v !== 'string' || (!allowEmpty && v === '')) throw new InputError(`"${name}" must be a ${allowEmpty ? '' : 'non-empty '}string`);
  return v;
}

function keySet(input) {
  const jwks = input.jwks;
  if (!jwks || typeof jwks !== 'object' || !Array.isArray(jwks.keys)) throw new InputError('"jwks" must be {"keys":[...]}');
  // Only the public members are handed to jose (createLocalJWKSet rejects private keys).
  const keys = jwks.keys.map((k) => {
    if (!k || typeof k !== 'object') return k;
    const { d, p, q, dp, dq, qi, k: sym, ...pub } = k;
    return pub;
  });
  try {
    return createLocalJWKSet({ keys });
  } catch (e) {
    throw new InputError(`"jwks" rejected by jose: ${e.message}`);
  }
}

function algs(input) {
  const a = input.algs ?? ['ES256'];
  if (!Array.isArray(a) || !a.every((x) => typeof x === 'string')) throw new InputError('"algs" must be an array of strings');
  return a;
}

async function privateKey(input) {
  const jwk = input.jwk;
  if (!jwk || typeof jwk !== 'object' || jwk.kty !== 'EC' || jwk.crv !== 'P-256' || typeof jwk.d !== 'string') {
    throw new InputError('"jwk" must be a private EC P-256 JWK');
  }
  try {
    return await importJWK(jwk, 'ES256');
  } catch (e) {
    throw new InputError(`cannot import "jwk": ${e.message}`);
  }
}

function errorCode(e) {
  return e?.code ?? e?.name ?? 'error';
}

const td = new TextDecoder();
const te = new TextEncoder();

async function verifyCompact(input) {
  const token = reqString(input, 'token');
  const getKey = keySet(input);
  try {
    const { payload, protectedHeader } = await compactVerify(token, getKey, { algorithms: algs(input) });
    return { ok: true, header: protectedHeader, payload: td.decode(payload) };
  } catch (e) {
    if (e instanceof InputError) throw e;
    return { ok: false, error: errorCode(e), detail: String(e?.message ?? e) };
  }
}

async function signCompact(input) {
  const payload = reqString(input, 'payload', { allowEmpty: true });
  const kid = reqString(input, 'kid');
  const key = await privateKey(input);
  const token = await new CompactSign(te.encode(payload)).setProtectedHeader({ alg: 'ES256', kid }).sign(key);
  return { token };
}

async function signDetached(input) {
  const payload = reqString(input, 'payload', { allowEmpty: true });
  const kid = reqString(input, 'kid');
  const key = await privateKey(input);
  const jws = await new FlattenedSign(te.encode(payload)).setProtectedHeader({ alg: 'ES256', kid }).sign(key);
  return { token: `${jws.protected}..${jws.signature}` };
}

async function verifyDetached(input) {
  const token = reqString(input, 'token');
  const payload = reqString(input, 'payload', { allowEmpty: true });
  const getKey = keySet(input);
  const parts = token.split('.');
  if (parts.length !== 3 || parts[1] !== '') {
    return { ok: false, error: 'ERR_JWS_INVALID', detail: 'token is not a detached compact JWS (<protected>..<signature>)' };
  }
  const [protectedB64, , signature] = parts;
  // Standard JWS (b64 true) => payload is passed base64url-encoded.
  // RFC 7797 (b64:false, crit:["b64"]) => payload is passed as-is; jose enforces crit.
  let b64 = true;
  try {
    const hdr = JSON.parse(td.decode(base64url.decode(protectedB64)));
    if (hdr && hdr.b64 === false) b64 = false;
  } catch {
    // leave it to jose to reject
  }
  try {
    const { protectedHeader } = await flattenedVerify(
      { protected: protectedB64, payload: b64 ? base64url.encode(te.encode(payload)) : payload, signature },
      getKey,
      { algorithms: algs(input) },
    );
    return { ok: true, header: protectedHeader };
  } catch (e) {
    if (e instanceof InputError) throw e;
    return { ok: false, error: errorCode(e), detail: String(e?.message ?? e) };
  }
}

const commands = {
  'verify-compact': verifyCompact,
  'sign-compact': signCompact,
  'sign-detached': signDetached,
  'verify-detached': verifyDetached,
};

const cmd = process.argv[2];
if (!commands[cmd]) fail(2, `usage: node jose.mjs <${Object.keys(commands).join('|')}>  (JSON on stdin)`);
try {
  const input = await readJSON();
  out(await commands[cmd](input));
} catch (e) {
  if (e instanceof InputError) fail(2, e.message);
  fail(1, e?.stack ?? String(e));
}
