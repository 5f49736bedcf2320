// Issue 2: client and REST authentication. Every bad token gets 401 at negotiate and the official
// client's start() rejects; good tokens (primary or secondary key, HS256 or HS512, port and case
// differences in aud) connect.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { harness } from '../lib/harness.js';
import { signJWT, clientToken, clientAudience, restToken } from '../lib/jwt.js';
import { hubPath } from '../lib/rest.js';
import { rand, withTimeout } from '../lib/util.js';

const PRIMARY = 'primary-key-' + rand() + '-0123456789abcdefghijklmnop';
const SECONDARY = 'secondary-key-' + rand() + '-0123456789abcdefghijklmnop';
const h = harness({ keys: [PRIMARY, SECONDARY] });
const HUB = 'authhub';
const now = () => Math.floor(Date.now() / 1000);

async function negotiate(token, hub = HUB) {
  const headers = token === null ? {} : { Authorization: `Bearer ${token}` };
  const res = await fetch(`${h.server.url}/client/negotiate?hub=${hub}&negotiateVersion=1`, { method: 'POST', headers });
  return { status: res.status, text: await res.text() };
}

const bad = {
  'no token': () => null,
  'wrong key': () => clientToken('not-the-key-' + rand(), HUB),
  expired: () => clientToken(PRIMARY, HUB, { exp: now() - 3600 }),
  'wrong hub': () => clientToken(PRIMARY, 'otherhub'),
  'alg none': () => signJWT({ aud: clientAudience(HUB) }, PRIMARY, { alg: 'none' }),
  'alg HS384 (not allowed)': () => signJWT({ aud: clientAudience(HUB) }, PRIMARY, { alg: 'HS384' }),
  'no exp': () => signJWT({ aud: clientAudience(HUB), exp: null }, PRIMARY),
  'REST audience': () => signJWT({ aud: `http://127.0.0.1/api/hubs/${HUB}` }, PRIMARY),
  'aud not /client/': () => signJWT({ aud: `http://127.0.0.1/server/?hub=${HUB}` }, PRIMARY),
  'tampered payload': () => {
    const [hd, , sig] = clientToken(PRIMARY, 'otherhub').split('.');
    const body = Buffer.from(JSON.stringify({ aud: clientAudience(HUB), exp: now() + 600 })).toString('base64url');
    return `${hd}.${body}.${sig}`;
  },
  garbage: () => 'not.a.jwt',
};

describe('client tokens that must be rejected', () => {
  for (const [name, mint] of Object.entries(bad)) {
    test(`${name}: negotiate 401 and start() rejects`, async () => {
      const token = mint();
      const res = await negotiate(token);
      assert.equal(res.status, 401, `negotiate with ${name}: ${res.status} ${res.text.slice(0, 200)}`);
      const c = await h.build({ hub: HUB, token, transport: 'ws' });
      await assert.rejects(withTimeout(c.conn.start(), 10000, 'start()'), /401|Unauthorized/i);
      assert.equal(c.state, 'Disconnected');
    });
  }

  test('a token over 4096 characters is rejected', async () => {
    const token = clientToken(PRIMARY, HUB, { claims: { pad: 'x'.repeat(5000) } });
    const res = await negotiate(token);
    assert.ok(res.status === 401 || res.status === 413, `want 401 or 413, got ${res.status}`);
  });
});

describe('client tokens that connect', () => {
  const good = {
    'HS256, primary key': () => clientToken(PRIMARY, HUB, { userId: 'u' }),
    'HS256, secondary key': () => clientToken(SECONDARY, HUB, { userId: 'u' }),
    'HS512': () => clientToken(PRIMARY, HUB, { alg: 'HS512', userId: 'u' }),
    'aud with a port, upper-case scheme and hub': () => clientToken(PRIMARY, HUB, { aud: `HTTP://127.0.0.1:1234/client/?hub=${HUB.toUpperCase()}`, userId: 'u' }),
    'user id from nameid': () => signJWT({ aud: clientAudience(HUB), nameid: 'u' }, PRIMARY),
    'user id from sub': () => signJWT({ aud: clientAudience(HUB), sub: 'u' }, PRIMARY),
  };
  for (const [name, mint] of Object.entries(good)) {
    test(name, async () => {
      const token = mint();
      const res = await negotiate(token);
      assert.equal(res.status, 200, res.text);
      const body = JSON.parse(res.text);
      assert.equal(body.negotiateVersion, 1);
      assert.ok(body.connectionId && body.connectionToken && body.connectionId !== body.connectionToken);
      const c = await h.connect({ hub: HUB, token, transport: 'lp' });
      const t = rand('auth-');
      const sent = await h.rest('POST', hubPath(HUB, 'users', 'u', ':send'), { body: { target: 'msg', arguments: [t] } });
      assert.equal(sent.status, 202, sent.describe());
      await c.waitText(t);
    });
  }
});

describe('negotiate details', () => {
  test('v0 (no negotiateVersion) has no connectionToken; GET is 405', async () => {
    const token = clientToken(PRIMARY, HUB);
    const v0 = await fetch(`${h.server.url}/client/negotiate?hub=${HUB}`, { method: 'POST', headers: { Authorization: `Bearer ${token}` } });
    assert.equal(v0.status, 200);
    const body = await v0.json();
    assert.ok(body.connectionId);
    assert.equal(body.connectionToken, undefined);
    const transports = body.availableTransports.map((t) => t.transport).sort();
    assert.deepEqual(transports, ['LongPolling', 'ServerSentEvents', 'WebSockets']);
    const get = await fetch(`${h.server.url}/client/negotiate?hub=${HUB}`, { headers: { Authorization: `Bearer ${token}` } });
    assert.equal(get.status, 405);
  });
});

describe('REST tokens', () => {
  const path = hubPath(HUB, ':send');
  const body = { target: 'msg', arguments: ['x'] };
  const cases = {
    'no token': null,
    'wrong key': () => restToken('nope-' + rand(), path),
    expired: () => restToken(PRIMARY, path, { exp: now() - 3600 }),
    'token for another hub': () => restToken(PRIMARY, hubPath('otherhub', ':send')),
    'token for another operation': () => restToken(PRIMARY, hubPath(HUB, 'users', 'u', ':send')),
    'client token': () => clientToken(PRIMARY, HUB),
    'alg none': () => signJWT({ aud: `http://127.0.0.1${path}` }, PRIMARY, { alg: 'none' }),
  };
  for (const [name, mint] of Object.entries(cases)) {
    test(`${name}: 401`, async () => {
      const token = mint === null ? null : mint();
      const res = await h.rest('POST', path, { body, token });
      assert.equal(res.status, 401, res.describe());
    });
  }
  test('secondary key and HS512 are accepted', async () => {
    for (const token of [restToken(SECONDARY, path), restToken(PRIMARY, path, { alg: 'HS512' })]) {
      const res = await h.rest('POST', path, { body, token });
      assert.equal(res.status, 202, res.describe());
    }
  });
  test('token in the access_token query instead of the header', async () => {
    const res = await fetch(`${h.server.url}${path}?access_token=${encodeURIComponent(restToken(PRIMARY, path))}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    });
    assert.equal(res.status, 202);
  });
});
