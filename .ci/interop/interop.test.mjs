// Self-test of the interop scripts (Node side only).
// Run: cd .ci/interop && npm ci && node --test
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { generateKeyPairSync, createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const dir = path.dirname(fileURLToPath(import.meta.url));
const run = (script, cmd, input) =>
  JSON.parse(execFileSync(process.execPath, [path.join(dir, script), cmd], { input: JSON.stringify(input) }).toString());

function keypair(kid) {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { priv: privateKey.export({ format: 'jwk' }), pub: { ...publicKey.export({ format: 'jwk' }), kid } };
}
const A = keypair('key-a');
const B = keypair('key-b');
const jwks = { keys: [B.pub, A.pub] };

const COMPONENTS = ['@method', '@authority', '@path', '@query', 'idempotency-key', 'content-digest', 'content-type'];
const BODY = '{"hello":"wörld"}';

function signedRequest() {
  return run('httpsig.mjs', 'sign', {
    method: 'post',
    url: 'https://API.Example.COM:443/v1/checkout?x=1&y=2',
    headers: { 'Content-Type': 'application/json', 'Idempotency-Key': 'abc-123' },
    body: BODY,
    jwk: A.priv,
    keyid: 'key-a',
    components: COMPONENTS,
    created: 1700000000,
  }).headers;
}

function verifyReq(headers, over = {}) {
  return run('httpsig.mjs', 'verify', {
    method: 'POST', url: 'https://api.example.com/v1/checkout?x=1&y=2', headers, body: BODY, jwks, requiredComponents: COMPONENTS, ...over,
  });
}

test('httpsig sign emits created+keyid only, lowercase headers, content-digest', () => {
  const h = signedRequest();
  assert.equal(h['content-digest'], `sha-256=:${createHash('sha256').update(BODY).digest('base64')}:`);
  assert.equal(h['signature-input'],
    'sig1=("@method" "@authority" "@path" "@query" "idempotency-key" "content-digest" "content-type");created=1700000000;keyid="key-a"');
  assert.match(h.signature, /^sig1=:[A-Za-z0-9+/]{86}==:$/); // 64 raw bytes
  for (const k of Object.keys(h)) assert.equal(k, k.toLowerCase());
});

test('httpsig verify round trip and tampering', () => {
  const h = signedRequest();
  assert.deepEqual(verifyReq(h), { ok: true });
  assert.deepEqual(verifyReq(h, { label: 'sig1' }), { ok: true });
  assert.equal(verifyReq(h, { body: BODY + ' ' }).error, 'digest_mismatch');
  const noDigest = { ...h }; delete noDigest['content-digest'];
  assert.equal(verifyReq(noDigest).error, 'digest_mismatch');
  assert.equal(verifyReq({ ...h, 'idempotency-key': 'x' }).error, 'signature_invalid');
  assert.equal(verifyReq(h, { method: 'PUT' }).error, 'signature_invalid');
  assert.equal(verifyReq(h, { url: 'https://api.example.com:8443/v1/checkout?x=1&y=2' }).error, 'signature_invalid');
  assert.equal(verifyReq(h, { jwks: { keys: [B.pub] } }).error, 'unknown_key');
  assert.equal(verifyReq(h, { jwks: { keys: [{ ...B.pub, kid: 'key-a' }] } }).error, 'signature_invalid');
  assert.equal(verifyReq(h, { requiredComponents: [...COMPONENTS, 'authorization'] }).error, 'missing_required_components');
  assert.equal(verifyReq(h, { label: 'other' }).error, 'label_not_found');
  assert.equal(verifyReq({ 'content-digest': h['content-digest'] }).error, 'no_signature');
});

test('httpsig response round trip', () => {
  const body = '{"id":"ord_1"}';
  const h = run('httpsig.mjs', 'sign-response', {
    status: 201, headers: { 'Content-Type': 'application/json' }, body, jwk: B.priv, keyid: 'key-b', label: 'resp',
    components: ['@status', 'content-digest', 'content-type'],
  }).headers;
  assert.match(h['signature-input'], /^resp=\("@status" "content-digest" "content-type"\);created=\d+;keyid="key-b"$/);
  const v = (over) => run('httpsig.mjs', 'verify-response', { status: 201, headers: h, body, jwks, requiredComponents: ['@status'], ...over });
  assert.deepEqual(v({}), { ok: true });
  assert.equal(v({ status: 200 }).error, 'signature_invalid');
  assert.equal(v({ body: '{}' }).error, 'digest_mismatch');
});

test('httpsig verifies RFC 9421 B.2.4', () => {
  const r = run('httpsig.mjs', 'verify-response', {
    status: 200,
    headers: {
      Date: 'Tue, 20 Apr 2021 02:07:56 GMT',
      'Content-Type': 'application/json',
      'Content-Digest': 'sha-512=:mEWXIS7MaLRuGgxOBdODa3xqM1XdEvxoYhvlCFJ41QJgJc4GTsPp29l5oGX69wWdXymyU0rjJuahq4l5aGgfLQ==:',
      'Content-Length': '23',
      'Signature-Input': 'sig-b24=("@status" "content-type" "content-digest" "content-length");created=1618884473;keyid="test-key-ecc-p256"',
      Signature: 'sig-b24=:wNmSUAhwb5LxtOtOpNa6W5xj067m5hFrj0XQ4fvpaCLx0NKocgPquLgyahnzDnDAUy5eCdlYUEkLIj+32oiasw==:',
    },
    body: '{"message": "good dog"}',
    digestAlgs: ['sha-512'],
    jwks: { keys: [{ kty: 'EC', crv: 'P-256', kid: 'test-key-ecc-p256', x: 'qIVYZVLCrPZHGHjP17CTW0_-D9Lfw0EkjqF7xB4FivA', y: 'Mc4nN9LTDOBhfoUeg8Ye9WedFRhnZXZJA12Qp0zZ6F0' }] },
    requiredComponents: ['@status', 'content-digest'],
  });
  assert.deepEqual(r, { ok: true });
});

test('httpsig malformed input exits 2', () => {
  const r = spawnSync(process.execPath, [path.join(dir, 'httpsig.mjs'), 'verify'], { input: 'not json' });
  assert.equal(r.status, 2);
});

test('jose compact round trip', () => {
  const payload = '{"a":"é✓"}';
  const { token } = run('jose.mjs', 'sign-compact', { payload, jwk: A.priv, kid: 'key-a' });
  const r = run('jose.mjs', 'verify-compact', { token, jwks, algs: ['ES256'] });
  assert.deepEqual(r, { ok: true, header: { alg: 'ES256', kid: 'key-a' }, payload });
  const [h, , s] = token.split('.');
  const forged = `${h}.${Buffer.from('{"a":1}').toString('base64url')}.${s}`;
  assert.equal(run('jose.mjs', 'verify-compact', { token: forged, jwks }).ok, false);
  assert.equal(run('jose.mjs', 'verify-compact', { token, jwks: { keys: [B.pub] } }).error, 'ERR_JWKS_NO_MATCHING_KEY');
});

test('jose detached round trip', () => {
  const payload = '{"mandate":"m_1"}';
  const { token } = run('jose.mjs', 'sign-detached', { payload, jwk: A.priv, kid: 'key-a' });
  assert.match(token, /^[\w-]+\.\.[\w-]+$/);
  assert.equal(run('jose.mjs', 'verify-detached', { token, payload, jwks }).ok, true);
  assert.equal(run('jose.mjs', 'verify-detached', { token, payload: payload + ' ', jwks }).ok, false);
});
