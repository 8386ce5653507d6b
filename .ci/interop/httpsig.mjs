#!/usr/bin/env node
// RFC 9421 HTTP Message Signatures reference side for Go interop tests.
//
// Usage: node httpsig.mjs <sign|verify|sign-response|verify-response>
// Reads ONE JSON object on stdin, writes ONE JSON object (one line) on stdout.
// Exit codes: 0 = a result was produced (including {"ok":false} from verify);
//             2 = malformed input / usage error (message on stderr);
//             1 = unexpected internal error (message on stderr).
// See README.md for the contract.

import { createHash, createPublicKey, createPrivateKey, sign as cryptoSign, verify as cryptoVerify } from 'node:crypto';
import {
  httpbis,
  UnknownKeyError,
  UnsupportedAlgorithmError,
  ExpiredError,
  MalformedSignatureError,
  UnacceptableSignatureError,
} from 'http-message-signatures';

const ALG = 'ecdsa-p256-sha256';

class InputError extends Error {}

function fail(code, msg) {
  process.stderr.write(`httpsig.mjs: ${msg}\n`);
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

// ---------- input helpers ----------

function reqString(input, name, { allowEmpty = false } = {}) {
  const v = input[name];
  if (typeof v !== 'string' || (!allowEmpty && v === '')) throw new InputError(`"${name}" must be a ${allowEmpty ? '' : 'non-empty '}string`);
  return v;
}

// Lower-cases header names; duplicate names (differing only by case) are
// combined with ", " in input order. Values may be strings or arrays of strings.
function normaliseHeaders(h, name = 'headers') {
  if (h === undefined || h === null) return {};
  if (typeof h !== 'object' || Array.isArray(h)) throw new InputError(`"${name}" must be an object`);
  const outH = {};
  for (const [k, v] of Object.entries(h)) {
    let val;
    if (typeof v === 'string') val = v;
    else if (Array.isArray(v) && v.every((x) => typeof x === 'string')) val = v.join(', ');
    else throw new InputError(`header "${k}" must be a string or array of strings`);
    const lk = k.toLowerCase();
    outH[lk] = lk in outH ? `${outH[lk]}, ${val}` : val;
  }
  return outH;
}

// Body: "body" (utf-8 string) or, alternatively, "bodyBase64" for binary bodies.
function bodyBytes(input) {
  if (input.bodyBase64 !== undefined) {
    if (typeof input.bodyBase64 !== 'string') throw new InputError('"bodyBase64" must be a string');
    return Buffer.from(input.bodyBase64, 'base64');
  }
  if (input.body === undefined || input.body === null) return Buffer.alloc(0);
  if (typeof input.body !== 'string') throw new InputError('"body" must be a string');
  return Buffer.from(input.body, 'utf8');
}

function contentDigest(body) {
  return `sha-256=:${createHash('sha256').update(body).digest('base64')}:`;
}

function parseUrl(u) {
  try {
    return new URL(u);
  } catch {
    throw new InputError(`"url" is not an absolute URL: ${u}`);
  }
}

function requestFrom(input, prefix = '') {
  const method = reqString(input, 'method');
  const url = reqString(input, 'url');
  parseUrl(url);
  return { method, url, headers: normaliseHeaders(input.headers, `${prefix}headers`) };
}

function responseFrom(input) {
  if (!Number.isInteger(input.status)) throw new InputError('"status" must be an integer');
  return { status: input.status, headers: normaliseHeaders(input.headers) };
}

// Optional "request" object on response commands, for components with ;req.
function boundRequest(input) {
  if (input.request === undefined || input.request === null) return undefined;
  if (typeof input.request !== 'object') throw new InputError('"request" must be an object');
  return requestFrom(input.request, 'request.');
}

function lowerKeys(h) {
  const o = {};
  for (const [k, v] of Object.entries(h)) o[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : String(v);
  return o;
}

// ---------- keys ----------

function checkP256(jwk, what) {
  if (!jwk || typeof jwk !== 'object' || jwk.kty !== 'EC' || jwk.crv !== 'P-256') {
    throw new InputError(`${what} must be an EC P-256 JWK`);
  }
}

function signingKey(input) {
  const jwk = input.jwk;
  checkP256(jwk, '"jwk"');
  if (typeof jwk.d !== 'string') throw new InputError('"jwk" must be a private JWK (has "d")');
  let key;
  try {
    key = createPrivateKey({ key: jwk, format: 'jwk' });
  } catch (e) {
    throw new InputError(`cannot import "jwk": ${e.message}`);
  }
  return {
    alg: ALG,
    // Note: SigningKey.id is deliberately not set; keyid comes from paramValues.
    sign: async (data) => cryptoSign('sha256', data, { key, dsaEncoding: 'ieee-p1363' }),
  };
}

function jwksKeys(input) {
  const jwks = input.jwks;
  if (!jwks || typeof jwks !== 'object' || !Array.isArray(jwks.keys)) throw new InputError('"jwks" must be {"keys":[...]}');
  return jwks.keys;
}

function makeKeyLookup(keys) {
  return async (params) => {
    const kid = params.keyid;
    if (typeof kid !== 'string') return null;
    const jwk = keys.find((k) => k && k.kid === kid);
    if (!jwk) return null;
    if (jwk.kty !== 'EC' || jwk.crv !== 'P-256') return null;
    // Strip private part, if any, so we only ever build a public key.
    const { kty, crv, x, y } = jwk;
    let pub;
    try {
      pub = createPublicKey({ key: { kty, crv, x, y }, format: 'jwk' });
    } catch {
      return null;
    }
    return {
      id: kid,
      algs: [ALG],
      verify: async (data, signature) => {
        if (signature.length !== 64) return false;
        return cryptoVerify('sha256', data, { key: pub, dsaEncoding: 'ieee-p1363' }, signature);
      },
    };
  };
}

// ---------- sign ----------

function signOptions(input) {
  const keyid = reqString(input, 'keyid');
  const label = input.label === undefined ? 'sig1' : input.label;
  if (typeof label !== 'string' || !/^[a-z*][a-z0-9_\-.*]*$/.test(label)) throw new InputError('"label" must be a structured-field key (lowercase)');
  const components = input.components;
  if (!Array.isArray(components) || !components.every((c) => typeof c === 'string' && c !== '')) {
    throw new InputError('"components" must be an array of non-empty strings');
  }
  let created;
  if (input.created === undefined || input.created === null) created = new Date();
  else if (Number.isInteger(input.created) && input.created >= 0) created = new Date(input.created * 1000);
  else throw new InputError('"created" must be a non-negative integer (unix seconds)');
  return {
    key: signingKey(input),
    name: label,
    // Order here is the order emitted in Signature-Input: ;created=...;keyid="..."
    params: ['created', 'keyid'],
    paramValues: { created, keyid },
    fields: components.map((c) => c), // passed through verbatim (may carry ;req, ;sf, ;key=...)
  };
}

async function doSign(input, isResponse) {
  const message = isResponse ? responseFrom(input) : requestFrom(input);
  const req = isResponse ? boundRequest(input) : undefined;
  const body = bodyBytes(input);
  if (body.length > 0) message.headers['content-digest'] = contentDigest(body);
  const config = signOptions(input);
  let signed;
  try {
    signed = await httpbis.signMessage(config, message, req);
  } catch (e) {
    // e.g. a listed component header is absent
    throw new InputError(`signMessage failed: ${e.message}`);
  }
  return { headers: lowerKeys(signed.headers) };
}

// ---------- verify ----------

// Parses a Content-Digest dictionary loosely: returns Map alg -> Buffer|null.
function parseContentDigest(value) {
  const m = new Map();
  for (const part of value.split(',')) {
    const p = part.trim();
    if (!p) continue;
    const eq = p.indexOf('=');
    if (eq < 0) continue;
    const k = p.slice(0, eq).trim().toLowerCase();
    const rest = p.slice(eq + 1).split(';')[0].trim();
    const mm = /^:([A-Za-z0-9+/=]*):$/.exec(rest);
    m.set(k, mm ? Buffer.from(mm[1], 'base64') : null);
  }
  return m;
}

const DIGESTS = { 'sha-256': 'sha256', 'sha-512': 'sha512' };

// Content-Digest check (RFC 9530). Skipped only when the body is empty AND
// there is no Content-Digest header. Otherwise at least one algorithm from
// `accepted` (default ["sha-256"]) must be present, and every sha-256 /
// sha-512 entry present must match the body.
function checkDigest(headers, body, accepted) {
  const hv = headers['content-digest'];
  if (body.length === 0 && hv === undefined) return null;
  if (hv === undefined) return 'digest_mismatch';
  const d = parseContentDigest(hv);
  if (!accepted.some((a) => d.has(a))) return 'digest_mismatch';
  for (const [name, nodeAlg] of Object.entries(DIGESTS)) {
    if (!d.has(name)) continue;
    const got = d.get(name);
    if (!got || !got.equals(createHash(nodeAlg).update(body).digest())) return 'digest_mismatch';
  }
  return null;
}

// If "label" is given, keep only that member of Signature / Signature-Input
// so the library verifies exactly that signature.
function selectLabel(headers, label) {
  if (label === undefined || label === null) return headers;
  if (typeof label !== 'string') throw new InputError('"label" must be a string');
  const pick = (v) => {
    if (v === undefined) return undefined;
    // Dictionary members: split on commas that are not inside ( ) or " ".
    const members = [];
    let depth = 0, inStr = false, cur = '';
    for (let i = 0; i < v.length; i++) {
      const ch = v[i];
      if (inStr) {
        cur += ch;
        if (ch === '\\') { cur += v[++i] ?? ''; continue; }
        if (ch === '"') inStr = false;
        continue;
      }
      if (ch === '"') inStr = true;
      else if (ch === '(') depth++;
      else if (ch === ')') depth--;
      if (ch === ',' && depth === 0) { members.push(cur.trim()); cur = ''; continue; }
      cur += ch;
    }
    if (cur.trim()) members.push(cur.trim());
    const hit = members.filter((m) => m.split('=')[0].trim() === label);
    return hit.length ? hit.join(', ') : undefined;
  };
  const h = { ...headers };
  for (const name of ['signature', 'signature-input']) {
    if (h[name] === undefined) continue;
    const v = pick(h[name]);
    if (v === undefined) delete h[name];
    else h[name] = v;
  }
  return h;
}

function mapError(e) {
  const msg = String(e?.message ?? e);
  if (e instanceof UnknownKeyError) return 'unknown_key';
  if (e instanceof UnsupportedAlgorithmError) return 'unsupported_algorithm';
  if (e instanceof ExpiredError) return 'expired';
  if (e instanceof MalformedSignatureError) return 'malformed_signature';
  if (e instanceof UnacceptableSignatureError) {
    return /signed fields/.test(msg) ? 'missing_required_components' : 'unacceptable_signature';
  }
  // Plain Errors thrown while rebuilding the signature base.
  if (/^No header ".*" found|Missing request|Cannot derive|Cannot obtain|Unsupported component|query parameter|structured field|Unable to (parse|find)/.test(msg)) {
    return 'component_unavailable';
  }
  return 'malformed_signature'; // e.g. unparsable Signature / Signature-Input, "Incomplete signature headers"
}

async function doVerify(input, isResponse) {
  const message = isResponse ? responseFrom(input) : requestFrom(input);
  const req = isResponse ? boundRequest(input) : undefined;
  const body = bodyBytes(input);
  const keys = jwksKeys(input);
  const required = input.requiredComponents ?? [];
  if (!Array.isArray(required) || !required.every((c) => typeof c === 'string')) throw new InputError('"requiredComponents" must be an array of strings');
  let tolerance = 0;
  if (input.tolerance !== undefined) {
    if (!Number.isInteger(input.tolerance) || input.tolerance < 0) throw new InputError('"tolerance" must be a non-negative integer');
    tolerance = input.tolerance;
  }
  let maxAge;
  if (input.maxAge !== undefined && input.maxAge !== null) {
    if (!Number.isInteger(input.maxAge) || input.maxAge <= 0) throw new InputError('"maxAge" must be a positive integer');
    maxAge = input.maxAge;
  }
  const digestAlgs = input.digestAlgs ?? ['sha-256'];
  if (!Array.isArray(digestAlgs) || digestAlgs.length === 0 || !digestAlgs.every((a) => a in DIGESTS)) {
    throw new InputError(`"digestAlgs" must be a non-empty subset of ${JSON.stringify(Object.keys(DIGESTS))}`);
  }
  message.headers = selectLabel(message.headers, input.label);

  const digestErr = checkDigest(message.headers, body, digestAlgs);
  if (digestErr) return { ok: false, error: digestErr };

  if (message.headers['signature'] === undefined && message.headers['signature-input'] === undefined) {
    return { ok: false, error: input.label ? 'label_not_found' : 'no_signature' };
  }
  let result;
  try {
    result = await httpbis.verifyMessage({
      keyLookup: makeKeyLookup(keys),
      requiredFields: required,
      requiredParams: [],
      tolerance,
      ...(maxAge ? { maxAge } : {}),
    }, message, req);
  } catch (e) {
    return { ok: false, error: mapError(e), detail: String(e?.message ?? e) };
  }
  if (result === true) return { ok: true };
  if (result === false) return { ok: false, error: 'signature_invalid' };
  // null / undefined: the library found no key for any signature.
  return { ok: false, error: 'unknown_key' };
}

// ---------- main ----------

const commands = {
  'sign': (i) => doSign(i, false),
  'verify': (i) => doVerify(i, false),
  'sign-response': (i) => doSign(i, true),
  'verify-response': (i) => doVerify(i, true),
};

const cmd = process.argv[2];
if (!commands[cmd]) fail(2, `usage: node httpsig.mjs <${Object.keys(commands).join('|')}>  (JSON on stdin)`);
try {
  const input = await readJSON();
  out(await commands[cmd](input));
} catch (e) {
  if (e instanceof InputError) fail(2, e.message);
  fail(1, e?.stack ?? String(e));
}
