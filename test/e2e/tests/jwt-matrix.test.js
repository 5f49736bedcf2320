// Issue 7: the JWT negative matrix. Every bad token is refused on the client endpoint
// (negotiate) and on the REST API, each with its status and its reason, which the service
// counts per reason (signalbox_auth_failures_total) and logs: every refusal at debug level
// ("access token refused", checked here one line per bad token), and at warn level
// rate-limited (at most 10 lines per 10 s, the rest counted as suppressed). The good tokens
// are accepted on both.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { harness } from '../lib/harness.js';
import { signJWT } from '../lib/jwt.js';
import { hubPath } from '../lib/rest.js';
import { rand, until } from '../lib/util.js';

const sortKeys = (o) => Object.fromEntries(Object.entries(o).sort(([a], [b]) => a.localeCompare(b)));

const PRIMARY = 'jwt-primary-' + rand() + '-0123456789abcdefghijklmnop';
const SECONDARY = 'jwt-secondary-' + rand() + '-0123456789abcdefghijklmnop';
const h = harness({ keys: [PRIMARY, SECONDARY], args: ['--log-level', 'debug'] });
const HUB = 'jwthub';
const REST_PATH = hubPath(HUB, ':send');
const now = () => Math.floor(Date.now() / 1000);
const b64 = (o) => Buffer.from(typeof o === 'string' ? o : JSON.stringify(o)).toString('base64url');
const hmac = (alg, key, input) =>
  crypto.createHmac({ HS256: 'sha256', HS384: 'sha384', HS512: 'sha512' }[alg], Buffer.from(key)).update(input).digest('base64url');

/** A token from raw header and payload objects (or strings), signed with HS256 and key unless sig is given. */
function raw(header, payload, { key = PRIMARY, sig, alg = 'HS256' } = {}) {
  const input = `${b64(header)}.${b64(payload)}`;
  return `${input}.${sig ?? hmac(alg, key, input)}`;
}

// The two audiences a token is minted for: the client URL of the hub, the REST request path.
const ENDPOINTS = {
  client: { aud: `http://127.0.0.1/client/?hub=${HUB}`, other: 'http://127.0.0.1/client/?hub=otherhub' },
  rest: { aud: `http://127.0.0.1${REST_PATH}`, other: `http://127.0.0.1${hubPath('otherhub', ':send')}` },
};
const claims = (aud, extra = {}) => ({ aud, iat: now(), exp: now() + 3600, ...extra });

// name -> (endpoint) => token; want: the reason label, and the client status when not 401.
const BAD = [
  ['no token', () => null, 'missing'],
  ['alg none (unsigned)', (e) => `${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims(e.aud))}.`, 'algorithm'],
  ['alg None', (e) => raw({ alg: 'None' }, claims(e.aud)), 'algorithm'],
  ['alg NONE', (e) => raw({ alg: 'NONE' }, claims(e.aud)), 'algorithm'],
  ['alg HS384', (e) => raw({ alg: 'HS384' }, claims(e.aud), { alg: 'HS384' }), 'algorithm'],
  ['alg confusion RS256 signed with the key as HMAC secret', (e) => raw({ alg: 'RS256' }, claims(e.aud)), 'algorithm'],
  ['alg ES256', (e) => raw({ alg: 'ES256' }, claims(e.aud)), 'algorithm'],
  ['alg PS256', (e) => raw({ alg: 'PS256' }, claims(e.aud)), 'algorithm'],
  ['alg EdDSA', (e) => raw({ alg: 'EdDSA' }, claims(e.aud)), 'algorithm'],
  ['alg missing', (e) => raw({ typ: 'JWT' }, claims(e.aud)), 'algorithm'],
  ['alg is a number', (e) => raw({ alg: 256 }, claims(e.aud)), 'malformed'],
  ['crit extension', (e) => raw({ alg: 'HS256', crit: ['exp'] }, claims(e.aud)), 'malformed'],
  ['header twice alg', (e) => raw('{"alg":"HS256","alg":"none"}', claims(e.aud)), 'malformed'],
  ['wrong key', (e) => signJWT({ aud: e.aud }, 'not-the-key-' + rand()), 'signature'],
  ['key with a trailing space', (e) => signJWT({ aud: e.aud }, PRIMARY + ' '), 'signature'],
  ['signature truncated', (e) => signJWT({ aud: e.aud }, PRIMARY).slice(0, -6), 'malformed'],
  ['signature of another token', (e) => {
    const [hd, pl] = signJWT({ aud: e.aud }, PRIMARY).split('.');
    return `${hd}.${pl}.${signJWT({ aud: e.other }, PRIMARY).split('.')[2]}`;
  }, 'signature'],
  ['signature empty', (e) => signJWT({ aud: e.aud }, PRIMARY).replace(/[^.]+$/, ''), 'signature'],
  ['signature in standard base64 with padding', (e) => {
    const [hd, pl, sig] = signJWT({ aud: e.aud }, PRIMARY).split('.');
    return `${hd}.${pl}.${Buffer.from(sig, 'base64url').toString('base64')}`;
  }, 'malformed'],
  ['payload tampered after signing', (e) => {
    const [hd, , sig] = signJWT({ aud: e.other }, PRIMARY).split('.');
    return `${hd}.${b64(claims(e.aud))}.${sig}`;
  }, 'signature'],
  ['expired an hour ago', (e) => raw({ alg: 'HS256' }, claims(e.aud, { exp: now() - 3600 })), 'expired'],
  ['exp 0', (e) => raw({ alg: 'HS256' }, claims(e.aud, { exp: 0 })), 'expired'],
  ['exp negative', (e) => raw({ alg: 'HS256' }, claims(e.aud, { exp: -1 })), 'expired'],
  ['exp missing', (e) => raw({ alg: 'HS256' }, { aud: e.aud, iat: now() }), 'malformed'],
  ['exp a string', (e) => raw({ alg: 'HS256' }, claims(e.aud, { exp: String(now() + 3600) })), 'malformed'],
  ['aud missing', () => raw({ alg: 'HS256' }, { exp: now() + 3600 }), 'audience'],
  ['aud of another hub', (e) => signJWT({ aud: e.other }, PRIMARY), 'audience'],
  ['aud of the other endpoint kind', (e) => signJWT({ aud: e === ENDPOINTS.client ? ENDPOINTS.rest.aud : ENDPOINTS.client.aud }, PRIMARY), 'audience'],
  ['aud path of another service', (e) => signJWT({ aud: e.aud.replace('/client/', '/server/').replace('/api/', '/apx/') }, PRIMARY), 'audience'],
  ['aud not a URL', () => signJWT({ aud: 'chat' }, PRIMARY), 'audience'],
  ['aud as a number', () => raw({ alg: 'HS256' }, claims(42)), 'malformed'],
  ['two segments', (e) => signJWT({ aud: e.aud }, PRIMARY).split('.').slice(0, 2).join('.'), 'malformed'],
  ['four segments', (e) => signJWT({ aud: e.aud }, PRIMARY) + '.x', 'malformed'],
  ['header not base64url', (e) => '!!!.' + signJWT({ aud: e.aud }, PRIMARY).split('.').slice(1).join('.'), 'malformed'],
  ['header not JSON', (e) => raw('alg=HS256', claims(e.aud)), 'malformed'],
  ['payload not JSON', () => raw({ alg: 'HS256' }, 'not json'), 'malformed'],
  ['oversized (5,000 characters)', (e) => signJWT({ aud: e.aud, pad: 'x'.repeat(5000) }, PRIMARY), 'too_long', 413],
  ['4,100 dots', () => '.'.repeat(4100), 'too_long', 413],
  // Beyond max-header-bytes the HTTP server refuses the request before any token check.
  ['100,000 dots', () => '.'.repeat(100000), null, 431, 431],
];

const GOOD = [
  ['HS256, primary key', (e) => signJWT({ aud: e.aud }, PRIMARY)],
  ['HS256, secondary key', (e) => signJWT({ aud: e.aud }, SECONDARY)],
  ['HS512', (e) => signJWT({ aud: e.aud }, PRIMARY, { alg: 'HS512' })],
  ['aud with a port and a query (as the SDK writes it)', (e) => signJWT({ aud: e.aud.replace('127.0.0.1', '127.0.0.1:443') + (e === ENDPOINTS.rest ? '?api-version=2022-06-01' : '') }, PRIMARY)],
];

async function call(endpoint, token, { scheme = 'Bearer' } = {}) {
  const headers = token === null ? {} : { Authorization: `${scheme} ${token}` };
  if (endpoint === 'client') {
    const res = await fetch(`${h.server.url}/client/negotiate?hub=${HUB}&negotiateVersion=1`, { method: 'POST', headers });
    return { status: res.status, text: await res.text() };
  }
  const res = await h.rest('POST', REST_PATH, { body: { target: 'msg', arguments: ['x'] }, token, headers: token === null ? {} : { Authorization: `${scheme} ${token}` } });
  return { status: res.status, text: res.text };
}

/** The auth failure counters, by "endpoint/reason". */
async function failures() {
  const text = await (await fetch(`${h.server.url}/metrics`)).text();
  const out = {};
  for (const m of text.matchAll(/^signalbox_auth_failures_total\{endpoint="([^"]+)",reason="([^"]+)"\} (\d+)/gm)) out[`${m[1]}/${m[2]}`] = Number(m[3]);
  return out;
}

describe('JWT negative matrix', () => {
  test(`${BAD.length} bad tokens x 2 endpoints: refused with their status and counted with their reason`, async () => {
    assert.ok(BAD.length >= 30);
    const metricEndpoint = { client: 'negotiate', rest: 'rest' };
    const wrong = [];
    const sent = [];
    for (const [name, mint, reason, clientStatus = 401, restStatus = 401] of BAD) {
      for (const ep of ['client', 'rest']) {
        const token = mint(ENDPOINTS[ep]);
        sent.push([name, token]);
        const before = await failures();
        const res = await call(ep, token);
        const after = await failures();
        const key = `${metricEndpoint[ep]}/${reason}`;
        const want = ep === 'client' ? clientStatus : restStatus;
        if (res.status !== want) wrong.push(`${name} on ${ep}: status ${res.status}, want ${want} (${res.text.slice(0, 120)})`);
        const counted = Object.keys(after).filter((k) => (after[k] ?? 0) > (before[k] ?? 0));
        const wantCounted = reason === null ? [] : [key];
        if (JSON.stringify(counted) !== JSON.stringify(wantCounted)) wrong.push(`${name} on ${ep}: counted ${JSON.stringify(counted)}, want ${JSON.stringify(wantCounted)}`);
        if (token && res.text.includes(token.slice(0, 40)) && token.length > 40) wrong.push(`${name} on ${ep}: the answer echoes the token`);
      }
    }
    assert.deepEqual(wrong, []);
    // Every refusal has its own debug line with its endpoint and reason: as many lines per
    // endpoint and reason as bad tokens of that reason were sent there.
    const want = {};
    for (const [, , reason] of BAD) {
      if (reason === null) continue;
      for (const ep of ['negotiate', 'rest']) want[`${ep}/${reason}`] = (want[`${ep}/${reason}`] ?? 0) + 1;
    }
    const logged = () => {
      const got = {};
      for (const m of h.server.logs().matchAll(/msg="access token refused" endpoint=(\S+) reason=(\S+)/g)) got[`${m[1]}/${m[2]}`] = (got[`${m[1]}/${m[2]}`] ?? 0) + 1;
      return got;
    };
    await until(() => JSON.stringify(sortKeys(logged())) === JSON.stringify(sortKeys(want)), 5000, 'a debug line per refused token').catch(() => {});
    assert.deepEqual(sortKeys(logged()), sortKeys(want));
    const logs = h.server.logs();
    assert.match(logs, /msg="access token rejected" endpoint=negotiate reason=missing/);
    assert.match(logs, /msg="access token rejected" endpoint=negotiate reason=algorithm/);
    for (const [name, token] of sent) {
      if (token && token.length > 40 && /[^.]/.test(token)) assert.ok(!logs.includes(token.slice(-40)), `${name}: the log holds the token`);
    }
  });

  test('good tokens are accepted on both endpoints (and the Bearer scheme in any case)', async () => {
    for (const [name, mint] of GOOD) {
      for (const ep of ['client', 'rest']) {
        const res = await call(ep, mint(ENDPOINTS[ep]));
        assert.equal(res.status, ep === 'client' ? 200 : 202, `${name} on ${ep}: ${res.text.slice(0, 200)}`);
      }
    }
    for (const scheme of ['bearer', 'BEARER']) {
      assert.equal((await call('client', signJWT({ aud: ENDPOINTS.client.aud }, PRIMARY), { scheme })).status, 200);
    }
  });
});
