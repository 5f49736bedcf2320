// Issue 3: client events and invocations reach the upstream signed, and results come back.
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { harness } from '../lib/harness.js';
import { FakeUpstream } from '../lib/upstream.js';
import { startServer } from '../lib/server.js';
import { createClient } from '../lib/clients.js';
import { upstreamSignature } from '../lib/jwt.js';
import { hubPath, rest } from '../lib/rest.js';
import { rawLP } from '../lib/raw.js';
import { rand, freePort, withTimeout } from '../lib/util.js';

const up = new FakeUpstream();
const TEMPLATE = '/upstream/{hub}/{category}/{event}?code=s3cret';
const h = harness(async () => {
  await up.start();
  return { upstream: [up.url + TEMPLATE] };
});
after(() => up.close());

const PROTOCOL_COMBOS = [
  { transport: 'ws', protocol: 'json' },
  { transport: 'ws', protocol: 'messagepack' },
  { transport: 'sse', protocol: 'json' },
  { transport: 'lp', protocol: 'messagepack' },
];

const VALUE = { n: 42, f: 2.5, neg: -3, s: 'héllo ✓', t: true, f0: false, z: null, list: [1, 'a', null, [2]], deep: { a: { b: [] } } };

/** Asserts the signature header holds sha256=HMAC(key, id) for each key, in order (hex case-insensitive). */
function assertSignature(header, keys, id) {
  assert.ok(header, 'X-ASRS-Signature present');
  const got = header.split(',').map((s) => s.trim().toLowerCase());
  assert.deepEqual(got, keys.map((k) => upstreamSignature(k, id)), 'X-ASRS-Signature');
}

/** The error `promise` rejects with; fails the test if it resolves or takes longer than `ms`. */
async function rejection(promise, ms, what) {
  const outcome = await withTimeout(
    promise.then((value) => ({ value }), (error) => ({ error })),
    ms,
    what,
  );
  assert.ok(outcome.error, `${what} must reject, resolved with ${JSON.stringify(outcome.value)}`);
  return outcome.error;
}

/** A client on a server started just for one test (stopped by the caller). */
async function clientOn(server, opts) {
  return createClient(server, opts);
}

describe('invoke() returns the upstream result', () => {
  for (const { transport, protocol } of PROTOCOL_COMBOS) {
    test(`${transport} x ${protocol}`, async () => {
      const hub = rand('Up');
      const c = await h.connect({ hub, userId: 'ursula', transport, protocol });
      const result = await withTimeout(c.conn.invoke('echo', VALUE, 'second'), 10000, 'invoke(echo)');
      assert.deepEqual(result, VALUE);

      const rec = await up.waitFor((r) => r.connectionId === c.id && r.event === 'echo');
      assert.equal(rec.method, 'POST');
      assert.equal(rec.path, `/upstream/${hub.toLowerCase()}/messages/echo`, 'template placeholders filled');
      assert.equal(rec.query.get('code'), 's3cret', 'template query kept');
      assert.equal(rec.hub, hub.toLowerCase(), 'X-ASRS-Hub is lower case');
      assert.equal(rec.category, 'messages');
      assert.equal(rec.headers['x-asrs-user-id'], 'ursula');
      assert.match(rec.contentType, protocol === 'json' ? /^application\/json/ : /^application\/x-msgpack/);
      assertSignature(rec.headers['x-asrs-signature'], [h.server.key], c.id);
      assert.equal(rec.parseError, undefined, `body is one unframed ${protocol} message: ${rec.parseError}`);
      assert.equal(rec.message.type, 1);
      assert.equal(rec.message.target, 'echo');
      assert.ok(rec.message.invocationId !== undefined && rec.message.invocationId !== null, 'invocationId forwarded');
      assert.deepEqual(rec.message.arguments, [VALUE, 'second']);
    });
  }

  test('several invocations in flight resolve with their own results, forwarded in order', async () => {
    const hub = rand('up');
    const c = await h.connect({ hub, transport: 'ws', protocol: 'messagepack' });
    const results = await withTimeout(Promise.all([0, 1, 2, 3, 4].map((i) => c.conn.invoke('echo', `v${i}`))), 15000, 'five invokes');
    assert.deepEqual(results, ['v0', 'v1', 'v2', 'v3', 'v4']);
    const seen = up.of(c.id).filter((r) => r.event === 'echo').map((r) => r.message.arguments[0]);
    assert.deepEqual(seen, ['v0', 'v1', 'v2', 'v3', 'v4']);
  });
});

describe('upstream responses', () => {
  for (const protocol of ['json', 'messagepack']) {
    test(`${protocol}: 500 -> "Invocation failed, status code 500"`, async () => {
      const c = await h.connect({ hub: rand('up'), protocol });
      assert.match((await rejection(c.conn.invoke('fail', 1), 10000, 'invoke(fail)')).message, /Invocation failed, status code 500/);
      // the connection survives a failed invocation
      assert.equal(await c.conn.invoke('echo', 'still here'), 'still here');
    });

    test(`${protocol}: 404 -> "Invocation failed, status code 404"`, async () => {
      const c = await h.connect({ hub: rand('up'), protocol, transport: 'lp' });
      assert.match((await rejection(c.conn.invoke('missing'), 10000, 'invoke(missing)')).message, /Invocation failed, status code 404/);
    });

    test(`${protocol}: 204 and empty 200 -> void completion`, async () => {
      const c = await h.connect({ hub: rand('up'), protocol });
      assert.equal((await withTimeout(c.conn.invoke('void'), 10000, 'invoke(void)')) ?? null, null);
      assert.equal((await withTimeout(c.conn.invoke('empty200'), 10000, 'invoke(empty200)')) ?? null, null);
    });

    test(`${protocol}: the function's own error Completion is relayed`, async () => {
      const c = await h.connect({ hub: rand('up'), protocol });
      assert.match((await rejection(c.conn.invoke('throws'), 10000, 'invoke(throws)')).message, /boom from the function/);
    });

    test(`${protocol}: a 200 body that is not a Completion becomes an error, not a broken connection`, async () => {
      const c = await h.connect({ hub: rand('up'), protocol });
      await rejection(c.conn.invoke('garbage'), 10000, 'invoke(garbage)');
      assert.equal(await c.conn.invoke('echo', 'ok after garbage'), 'ok after garbage');
    });
  }
});

describe('send() and connection events', () => {
  for (const { transport, protocol } of PROTOCOL_COMBOS) {
    test(`send() reaches the upstream in order (${transport} x ${protocol})`, async () => {
      const hub = rand('up');
      const c = await h.connect({ hub, userId: 'sam', transport, protocol });
      for (let i = 0; i < 5; i++) await c.conn.send('notify', i, { i });
      await up.waitFor((r) => r.connectionId === c.id && r.event === 'notify' && r.message?.arguments?.[0] === 4, {
        what: 'the fifth send()',
      });
      const got = up.of(c.id).filter((r) => r.event === 'notify');
      assert.deepEqual(got.map((r) => r.message.arguments), [0, 1, 2, 3, 4].map((i) => [i, { i }]));
      for (const r of got) {
        assert.equal(r.category, 'messages');
        assert.equal(r.message.target, 'notify');
        assert.ok(r.message.invocationId === undefined || r.message.invocationId === null, 'send() carries no invocationId');
        assertSignature(r.headers['x-asrs-signature'], [h.server.key], c.id);
      }
    });
  }

  test('connected and disconnected arrive in order for each connection', async () => {
    const hub = rand('up');
    const clients = await Promise.all(
      [['ws', 'json'], ['ws', 'messagepack'], ['sse', 'json'], ['lp', 'json'], ['lp', 'messagepack']].map(([transport, protocol], i) =>
        h.connect({ hub, userId: `u${i}`, transport, protocol }),
      ),
    );
    for (const c of clients) await c.conn.send('notify', c.id);
    await Promise.all(clients.map((c) => up.waitFor((r) => r.connectionId === c.id && r.event === 'notify', { what: `notify of ${c.name}` })));
    await Promise.all(clients.map((c) => c.stop()));
    await Promise.all(
      clients.map((c) => up.waitFor((r) => r.connectionId === c.id && r.event === 'disconnected', { what: `disconnected of ${c.name}` })),
    );
    for (const [i, c] of clients.entries()) {
      const evs = up.of(c.id);
      assert.deepEqual(evs.map((r) => `${r.category}/${r.event}`), ['connections/connected', 'messages/notify', 'connections/disconnected'], c.name);
      const [conn, , disc] = evs;
      assert.match(conn.contentType, /^application\/json/);
      assert.equal(JSON.parse(conn.body.toString()).type, 10);
      const d = JSON.parse(disc.body.toString());
      assert.equal(d.type ?? d.Type, 11);
      assert.ok(!d.error, `a clean stop carries no error (${c.name}: ${d.error})`);
      for (const r of [conn, disc]) {
        assert.equal(r.hub, hub);
        assert.equal(r.headers['x-asrs-user-id'], `u${i}`);
        assertSignature(r.headers['x-asrs-signature'], [h.server.key], c.id);
      }
    }
  });

  test('client query (without access_token) and user claims are forwarded', async () => {
    const hub = rand('up');
    const c = await h.connect({
      hub,
      userId: 'quinn',
      transport: 'sse', // SSE puts the token in the query string
      url: `${h.server.url}/client/?hub=${hub}&room=blue`,
      claims: { role: 'admin', 'asrs.s.dc': 'true' },
    });
    const rec = await up.waitFor((r) => r.connectionId === c.id && r.event === 'connected');
    const q = rec.headers['x-asrs-client-query'] ?? '';
    assert.match(q, /room=blue/, `X-ASRS-Client-Query: ${q}`);
    assert.doesNotMatch(q, /access_token/i, 'the token never leaves the service');
    const claims = rec.headers['x-asrs-user-claims'] ?? '';
    assert.match(claims, /role: admin/, `X-ASRS-User-Claims: ${claims}`);
    assert.doesNotMatch(claims, /asrs\.s\./, 'system claims are not user claims');
    assert.doesNotMatch(claims, /(^|, )(aud|exp|iat|nbf): /, 'JWT system claims are not user claims');
  });

  test('a connection that times out: disconnected carries the error text', async () => {
    const server = await startServer({ upstream: [up.url + TEMPLATE], config: 'client-timeout: 1s\n' });
    try {
      const hub = rand('up');
      const lp = await rawLP(server, hub);
      await lp.handshake();
      const conn = await up.waitFor((r) => r.connectionId === lp.connectionId && r.event === 'connected');
      assert.equal(conn.hub, hub);
      const disc = await up.waitFor((r) => r.connectionId === lp.connectionId && r.event === 'disconnected', {
        what: 'disconnected after the client timeout',
      });
      const body = JSON.parse(disc.body.toString());
      assert.equal(body.type ?? body.Type, 11);
      assert.ok(typeof (body.error ?? body.Error) === 'string' && (body.error ?? body.Error).length > 0, `error text: ${disc.body}`);
    } finally {
      await server.stop();
    }
  });

  test('two access keys: one signature per key, primary first', async () => {
    const keys = ['first-key-' + rand(), 'second-key-' + rand()];
    const server = await startServer({ keys, upstream: [up.url + TEMPLATE] });
    let c;
    try {
      c = await clientOn(server, { hub: rand('up') });
      const rec = await up.waitFor((r) => r.connectionId === c.id && r.event === 'connected');
      assertSignature(rec.headers['x-asrs-signature'], keys, c.id);
      assert.equal(await c.conn.invoke('echo', 'two keys'), 'two keys');
    } finally {
      await c?.stop();
      await server.stop();
    }
  });
});

describe('no usable upstream: invoke() rejects promptly', () => {
  test('unreachable upstream (closed port)', async () => {
    const closed = await freePort();
    const server = await startServer({ upstream: [`http://127.0.0.1:${closed}/runtime/webhooks/signalr`] });
    const clients = [];
    try {
      for (const protocol of ['json', 'messagepack']) {
        const c = await clientOn(server, { hub: rand('up'), protocol });
        clients.push(c);
        const t0 = Date.now();
        const err = await rejection(c.conn.invoke('echo', 1), 10000, 'invoke to an unreachable upstream');
        assert.match(err.message, /Invocation failed/, `clear error text: ${err.message}`);
        assert.ok(Date.now() - t0 < 10000);
        // the connection is still usable
        const t = rand('alive-');
        const res = await rest(server, 'POST', hubPath(c.hub, 'connections', c.id, ':send'), {
          body: { target: 'msg', arguments: [t] },
        });
        assert.equal(res.status, 202);
        await c.waitText(t);
      }
    } finally {
      await Promise.all(clients.map((c) => c.stop()));
      await server.stop();
    }
  });

  test('no rule matches the hub (config file rule for another hub)', async () => {
    const config = [
      'upstreams:',
      `  - url: "${up.url}/other/{hub}/{category}/{event}"`,
      '    hub: other',
      '    category: "*"',
      '    event: "*"',
      '',
    ].join('\n');
    const server = await startServer({ config });
    const clients = [];
    try {
      // the rule is live for its own hub ...
      const o = await clientOn(server, { hub: 'other' });
      clients.push(o);
      assert.equal(await withTimeout(o.conn.invoke('echo', 'via rule'), 10000, 'invoke on the matching hub'), 'via rule');
      const rec = await up.waitFor((r) => r.connectionId === o.id && r.event === 'echo');
      assert.equal(rec.path, '/other/other/messages/echo');
      // ... and any other hub has no upstream
      for (const protocol of ['json', 'messagepack']) {
        const c = await clientOn(server, { hub: rand('mine'), protocol });
        clients.push(c);
        await rejection(c.conn.invoke('echo', 1), 5000, 'invoke with no matching rule');
        assert.equal(up.of(c.id).length, 0, 'nothing was sent upstream for the unmatched hub');
      }
    } finally {
      await Promise.all(clients.map((c) => c.stop()));
      await server.stop();
    }
  });

  test('no upstream configured at all', async () => {
    const server = await startServer();
    const clients = [];
    try {
      for (const [transport, protocol] of [['ws', 'json'], ['lp', 'messagepack']]) {
        const c = await clientOn(server, { hub: rand('none'), transport, protocol });
        clients.push(c);
        await rejection(c.conn.invoke('echo', 1), 5000, 'invoke with no upstream');
        await c.conn.send('fire-and-forget', 1); // ignored, but must not break the connection
        const t = rand('alive-');
        const res = await rest(server, 'POST', hubPath(c.hub, ':send'), { body: { target: 'msg', arguments: [t] } });
        assert.equal(res.status, 202);
        await c.waitText(t);
      }
    } finally {
      await Promise.all(clients.map((c) => c.stop()));
      await server.stop();
    }
  });
});
