// Issue 7, build 3: the limits matrix. Every limit is exceeded once from outside, each is
// answered with its documented error (docs/reliability.md), and after each one the service
// still serves a bystander client. The panic row is a Go test (it needs a hook inside):
// internal/server TestPanicClosesOnlyItsConnection.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from '../lib/server.js';
import { createClient } from '../lib/clients.js';
import { FakeUpstream } from '../lib/upstream.js';
import { clientToken, signJWT } from '../lib/jwt.js';
import { hubPath, rest } from '../lib/rest.js';
import { RS } from '../lib/raw.js';
import { deferred, rand, until, outcome, withTimeout } from '../lib/util.js';

const up = new FakeUpstream();
const held = new Set();
up.override = (rec, res) => {
  if (rec.event !== 'slow') return false;
  held.add(res);
  return true;
};
let server;
let bystander;
const HUB = rand('lim');
const started = [];

before(async () => {
  await up.start();
  server = await startServer({
    config: [
      `upstream: ["${up.url}/{hub}/{category}/{event}"]`,
      'max-connections-per-address: 12',
      'max-connections-per-user: 2',
      'negotiate-timeout: 2s',
      'max-handshake-size: 256',
      'handshake-timeout: 1s',
      'max-argument-depth: 8',
      'max-header-bytes: 8192',
      'max-message-size: 4096',
      'max-pending-invocations: 1',
      'invoke-timeout: 3s',
      'upstream-max-in-flight-per-hub: 2',
      'max-groups-per-connection: 2',
      'max-token-size: 2048',
      '',
    ].join('\n'),
  });
  bystander = await createClient(server, { hub: HUB, userId: 'bystander', transport: 'ws' });
  started.push(bystander);
});
after(async () => {
  for (const res of held) res.writeHead(200).end();
  await Promise.all(started.map((c) => c.stop()));
  await server?.stop();
  await up.close();
});

/** The bystander still receives a REST message. */
async function stillServed() {
  const t = rand('still-');
  const res = await rest(server, 'POST', hubPath(HUB, ':send'), { body: { target: 'msg', arguments: [t] } });
  assert.equal(res.status, 202, res.describe());
  await bystander.waitText(t);
}

const auth = (tok) => ({ Authorization: `Bearer ${tok}` });
async function negotiate(tok, srv = server, hub = HUB) {
  const r = await fetch(`${srv.url}/client/negotiate?hub=${hub}&negotiateVersion=1`, { method: 'POST', headers: auth(tok) });
  return { status: r.status, text: await r.text(), retryAfter: r.headers.get('retry-after') };
}

/** A raw long-polling connection whose transport has started (first poll done). */
async function rawStart() {
  const tok = clientToken(server.key, HUB);
  const n = await negotiate(tok);
  assert.equal(n.status, 200, n.text);
  const { connectionToken } = JSON.parse(n.text);
  const url = `${server.url}/client/?hub=${HUB}&id=${encodeURIComponent(connectionToken)}`;
  assert.equal((await fetch(url, { headers: auth(tok) })).status, 200);
  return {
    poll: async () => {
      const r = await fetch(url, { headers: auth(tok), signal: AbortSignal.timeout(10000) });
      return { status: r.status, text: await r.text() };
    },
    post: async (body) => (await fetch(url, { method: 'POST', headers: auth(tok), body })).status,
  };
}

describe('limits matrix', () => {
  test('max-connections-per-user: the third connection of a user is 429', async () => {
    const tok = clientToken(server.key, HUB, { userId: 'u' });
    assert.equal((await negotiate(tok)).status, 200);
    assert.equal((await negotiate(tok)).status, 200);
    const third = await negotiate(tok);
    assert.equal(third.status, 429);
    assert.match(third.text, /connection limit per user \(2\)/);
    await stillServed();
  });

  test('max-handshake-size: a larger handshake gets a handshake error and the connection ends', async () => {
    const lp = await rawStart();
    assert.equal(await lp.post(`{"protocol":"json","version":1,"pad":"${'x'.repeat(300)}"}${RS}`), 200);
    const r = await lp.poll();
    assert.match(r.text, /"error":"Handshake request is too large\."/);
    await stillServed();
  });

  test('handshake-timeout: a connection without handshake is closed after it', async () => {
    const lp = await rawStart();
    const t0 = Date.now();
    const r = await lp.poll();
    const s = (Date.now() - t0) / 1000;
    assert.ok([204, 404].includes(r.status), `poll after the handshake timeout: ${r.status}`);
    assert.ok(s < 5, `closed after ${s}s`);
    await stillServed();
  });

  test('max-token-size: a token over it is 413 at negotiate (naming the figure) and 401 at the REST API', async () => {
    // 1,500 characters pass, 3,000 (under the 4,096 default) do not.
    const fits = clientToken(server.key, HUB, { claims: { pad: 'x'.repeat(1100) } });
    assert.ok(fits.length > 1400 && fits.length <= 2048, `${fits.length}`);
    assert.equal((await negotiate(fits)).status, 200);
    const big = clientToken(server.key, HUB, { claims: { pad: 'x'.repeat(2200) } });
    assert.ok(big.length > 2048 && big.length < 4096, `${big.length}`);
    const n = await negotiate(big);
    assert.equal(n.status, 413);
    assert.equal(n.text, 'The access token is longer than 2048 characters.');
    const bigRest = signJWT({ aud: `http://127.0.0.1${hubPath(HUB, ':send')}`, pad: 'x'.repeat(2200) }, server.key);
    const res = await rest(server, 'POST', hubPath(HUB, ':send'), { body: { target: 'msg', arguments: [1] }, token: bigRest });
    assert.equal(res.status, 401, res.describe());
    await stillServed();
  });

  test('max-groups-per-connection: a third group is 409 for a connection and for a user, and nothing is added', async () => {
    const c = await createClient(server, { hub: HUB, userId: 'grouped', transport: 'ws' });
    started.push(c);
    const put = (...segs) => rest(server, 'PUT', hubPath(HUB, ...segs));
    for (const g of ['g1', 'g2', 'g2']) {
      const r = await put('groups', g, 'connections', c.id);
      assert.equal(r.status, 200, r.describe());
    }
    const third = await put('groups', 'g3', 'connections', c.id);
    assert.equal(third.status, 409, third.describe());
    assert.equal(third.errorCode, 'Error.Connection.TooManyGroups');
    assert.deepEqual(third.json(), {
      code: 'Error.Connection.TooManyGroups',
      message: 'The connection is already in 2 groups, the limit per connection (max-groups-per-connection); remove it from a group first.',
    });
    assert.equal((await rest(server, 'HEAD', hubPath(HUB, 'groups', 'g3'))).status, 404, 'the refused add took effect');
    for (const g of ['u1', 'u2']) {
      const r = await put('users', 'member', 'groups', g);
      assert.equal(r.status, 200, r.describe());
    }
    const userThird = await put('users', 'member', 'groups', 'u3');
    assert.equal(userThird.status, 409, userThird.describe());
    assert.equal(userThird.errorCode, 'Error.User.TooManyGroups');
    assert.match(userThird.json().message, /^The user is already in 2 groups, the limit per user \(max-groups-per-connection\)/);
    // The connection keeps its groups and receives their messages.
    const t = rand('grp-');
    const sent = await rest(server, 'POST', hubPath(HUB, 'groups', 'g1', ':send'), { body: { target: 'msg', arguments: [t] } });
    assert.equal(sent.status, 202, sent.describe());
    await c.waitText(t);
    await stillServed();
  });

  test('max-argument-depth: REST 400, a client invocation gets a Completion error', async () => {
    const deep = '['.repeat(9) + ']'.repeat(9);
    const res = await rest(server, 'POST', hubPath(HUB, ':send'), { body: `{"target":"msg","arguments":[${deep}]}` });
    assert.equal(res.status, 400, res.describe());
    assert.match(res.text, /nests arrays and objects 9 deep; at most 8/);
    const c = await createClient(server, { hub: HUB, userId: 'deep', transport: 'ws' });
    started.push(c);
    const r = await outcome(c.conn.invoke('echo', JSON.parse(deep)));
    assert.match(r.error?.message ?? '', /nests arrays and objects 9 deep; at most 8/);
    assert.equal(await c.conn.invoke('echo', 'fine'), 'fine', 'the connection stays');
    await stillServed();
  });

  test('max-header-bytes: oversized request headers are 431', async () => {
    const r = await fetch(`${server.url}/client/negotiate?hub=${HUB}`, { method: 'POST', headers: { 'X-Pad': 'x'.repeat(16384) } });
    assert.equal(r.status, 431);
    await stillServed();
  });

  test('max-message-size: a long-polling POST over it is 413; a WebSocket message over it closes with an error', async () => {
    const lp = await rawStart();
    assert.equal(await lp.post(`{"protocol":"json","version":1}${RS}`), 200);
    assert.equal(await lp.post('x'.repeat(5000)), 413);
    const c = await createClient(server, { hub: HUB, userId: 'big', transport: 'ws' });
    started.push(c);
    c.conn.send('echo', 'y'.repeat(5000)).catch(() => {});
    const err = await c.waitClosed();
    assert.match(String(err), /maximum message size of 4096 bytes/);
    await stillServed();
  });

  test('REST body over 1 MiB is 413', async () => {
    const res = await rest(server, 'POST', hubPath(HUB, ':send'), { body: `{"target":"msg","arguments":["${'z'.repeat((1 << 20) + 10)}"]}` });
    assert.equal(res.status, 413, res.describe());
    await stillServed();
  });

  test('max-pending-invocations: one more :invoke than allowed is 429', async () => {
    const c = await createClient(server, { hub: HUB, userId: 'inv', transport: 'ws' });
    started.push(c);
    const reached = deferred();
    c.conn.on('hang', () => {
      reached.resolve();
      return new Promise(() => {});
    });
    const first = rest(server, 'POST', hubPath(HUB, 'connections', c.id, ':invoke'), { body: { target: 'hang', arguments: [] } });
    await withTimeout(reached.promise, 5000, 'the first :invoke at the client');
    const second = await rest(server, 'POST', hubPath(HUB, 'connections', c.id, ':invoke'), { body: { target: 'hang', arguments: [] } });
    assert.equal(second.status, 429, second.describe());
    assert.equal((await first).status, 504);
    await stillServed();
  });

  test('upstream-max-in-flight-per-hub: a third call while two are in flight fails at once as overloaded', async () => {
    const clients = [];
    for (const u of ['s1', 's2', 's3']) {
      const c = await createClient(server, { hub: HUB, userId: u, transport: 'ws' });
      started.push(c);
      clients.push(c);
    }
    // The clients' own connected events count against the same per-hub cap until the
    // upstream's answer is read, so a slow call made right after start() may itself be
    // refused as overloaded: issue it again (a bounded number of times) until two are held.
    const hold = async (c, tries = 50) => {
      const o = await outcome(c.conn.invoke('slow'));
      if (tries > 1 && /upstream overloaded/.test(o.error?.message ?? '')) return hold(c, tries - 1);
      return o;
    };
    const a = hold(clients[0]);
    const b = hold(clients[1]);
    await until(() => held.size >= 2, 5000, 'two slow calls held');
    const t0 = Date.now();
    const third = await outcome(clients[2].conn.invoke('echo', 1));
    assert.match(third.error?.message ?? '', new RegExp(`upstream overloaded: 2 calls in flight for hub ${HUB.toLowerCase()}`));
    assert.ok(Date.now() - t0 < 1000, 'refused at once');
    for (const res of held) res.writeHead(200).end();
    held.clear();
    await Promise.all([a, b]);
    await stillServed();
  });

  test('max-connections-per-address: beyond it negotiate is 429 until connections leave', async () => {
    const statuses = [];
    let refusal;
    for (let i = 0; i < 14; i++) {
      const n = await negotiate(clientToken(server.key, HUB, { userId: `addr${i}` }));
      statuses.push(n.status);
      if (n.status === 429) refusal ??= n.text;
    }
    assert.ok(statuses.includes(429), JSON.stringify(statuses));
    assert.match(refusal, /connection limit per client address \(12\)/);
    await stillServed();
    // The pending negotiations expire (negotiate-timeout 2s) and free their places.
    await until(async () => (await negotiate(clientToken(server.key, HUB, { userId: 'later' }))).status === 200, 10000, 'a free place');
  });
});

describe('limits matrix, negotiate floods', () => {
  test('max-pending-negotiations and negotiate-rate: 429, the rate with Retry-After; connected clients are served', async () => {
    const srv = await startServer({ config: 'max-pending-negotiations: 2\nnegotiate-rate: 1\nnegotiate-burst: 5\n' });
    try {
      const hub = rand('flood');
      const tok = clientToken(srv.key, hub);
      const rs = [];
      for (let i = 0; i < 8; i++) rs.push(await negotiate(tok, srv, hub));
      assert.deepEqual(rs.slice(0, 2).map((r) => r.status), [200, 200]);
      assert.equal(rs[2].status, 429);
      assert.match(rs[2].text, /waiting for a transport/);
      const limited = rs.filter((r) => r.retryAfter === '1');
      assert.ok(limited.length >= 2, `rate-limited answers: ${limited.length}`);
      assert.ok(limited.every((r) => r.status === 429 && /Too many negotiate requests/.test(r.text)));
    } finally {
      await srv.stop();
    }
  });
});
