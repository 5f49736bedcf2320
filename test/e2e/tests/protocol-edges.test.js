// Issue 2, "Bad input": raw HTTP against the client endpoints (long polling, so plain fetch can
// drive it): the spec's status codes, a Close with an error for bad frames, and everyone else is
// still served afterwards.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { harness } from '../lib/harness.js';
import { startServer } from '../lib/server.js';
import { clientToken } from '../lib/jwt.js';
import { rand, until, withTimeout } from '../lib/util.js';
import { createClient } from '../lib/clients.js';
import { rawLP as rawLPOn, RS } from '../lib/raw.js';

const h = harness();

// One anonymous token per hub: a connection is usable only with the token that negotiated it.
const tokens = new Map();
function tokenFor(hub) {
  if (!tokens.has(hub)) tokens.set(hub, clientToken(h.server.key, hub));
  return tokens.get(hub);
}

function auth(hub) {
  return { Authorization: `Bearer ${tokenFor(hub)}` };
}

/** A raw long-polling connection on h.server (or another server). */
const rawLP = (hub, server = h.server) => rawLPOn(server, hub);

/** A healthy official client in the same hub, to show the service keeps serving others. */
async function stillServed(hub, bystander) {
  const t = rand('still-');
  await h.sendAll(hub, t);
  await bystander.waitText(t);
}

describe('client endpoints, raw', () => {
  test('negotiate without hub or with two hubs is 400', async () => {
    const hub = rand('e');
    const none = await fetch(`${h.server.url}/client/negotiate?negotiateVersion=1`, { method: 'POST', headers: auth(hub) });
    assert.equal(none.status, 400);
    const two = await fetch(`${h.server.url}/client/negotiate?hub=${hub}&hub=${hub}&negotiateVersion=1`, { method: 'POST', headers: auth(hub) });
    assert.equal(two.status, 400);
  });

  test('a request without id is 400, an unknown id 404', async () => {
    const hub = rand('e');
    const noId = await fetch(`${h.server.url}/client/?hub=${hub}`, { headers: auth(hub) });
    assert.equal(noId.status, 400);
    const unknown = await fetch(`${h.server.url}/client/?hub=${hub}&id=nope`, { headers: auth(hub) });
    assert.equal(unknown.status, 404);
    const post = await fetch(`${h.server.url}/client/?hub=${hub}&id=nope`, { method: 'POST', headers: auth(hub), body: 'x' });
    assert.equal(post.status, 404);
  });

  test('the connection id from negotiate is not the secret token', async () => {
    const hub = rand('e');
    const lp = await rawLP(hub);
    const byId = await fetch(`${h.server.url}/client/?hub=${hub}&id=${encodeURIComponent(lp.connectionId)}`, { headers: auth(hub) });
    assert.equal(byId.status, 404, 'the public connection id does not open the connection');
  });

  test('long polling: handshake, a REST message, then DELETE ends the connection', async () => {
    const hub = rand('e');
    const lp = await rawLP(hub);
    assert.equal(await lp.post(`{"protocol":"json","version":1}${RS}`), 200);
    await lp.until((m) => Object.keys(m).length === 0, 'the handshake response {}');
    const t = rand('raw-');
    await h.sendAll(hub, t);
    await lp.until((m) => m.type === 1 && m.target === 'msg' && m.arguments[0] === t, 'the REST message');
    const del = await fetch(lp.url, { method: 'DELETE', headers: lp.auth() });
    assert.equal(del.status, 202);
    const after = await lp.poll();
    assert.ok(after.status === 204 || after.status === 404, `poll after DELETE: ${after.status}`);
  });

  test('unknown hub protocol: handshake error, connection closed, others served', async () => {
    const hub = rand('e');
    const bystander = await h.connect({ hub, transport: 'ws' });
    const lp = await rawLP(hub);
    assert.equal(await lp.post(`{"protocol":"xml","version":1}${RS}`), 200);
    const seen = await lp.until((m) => typeof m.error === 'string', 'a handshake error');
    assert.ok(seen.at(-1).error.length > 0);
    await stillServed(hub, bystander);
  });

  test('malformed handshake and garbage frames: Close with an error, others served', async () => {
    const hub = rand('e');
    const bystander = await h.connect({ hub, transport: 'sse' });

    const a = await rawLP(hub);
    assert.equal(await a.post(`this is not json${RS}`), 200);
    const r = await a.poll();
    // Either the handshake error is delivered, or the connection is already gone.
    if (r.status === 200) assert.match(r.text, /error/i, `handshake failure reported: ${JSON.stringify(r.text)}`);
    else assert.ok(r.status === 204 || r.status === 404, `poll: ${r.status}`);

    const b = await rawLP(hub);
    assert.equal(await b.post(`{"protocol":"json","version":1}${RS}`), 200);
    await b.until((m) => Object.keys(m).length === 0, 'the handshake response');
    await b.post(`{"type":1,"target":${RS}`);
    const seen = await b.until((m) => m.type === 7, 'a Close message');
    assert.ok(seen.at(-1).error, 'the Close message says what was wrong');
    await stillServed(hub, bystander);
  });

  test('the server pings at its keep-alive interval', async () => {
    const server = await startServer({ config: 'keep-alive-interval: 300ms\n' });
    try {
      const hub = rand('e');
      const lp = await rawLP(hub, server);
      assert.equal(await lp.post(`{"protocol":"json","version":1}${RS}`), 200);
      await lp.until((m) => Object.keys(m).length === 0, 'the handshake response');
      const t0 = Date.now();
      await lp.until((m) => m.type === 6, 'a Ping');
      assert.ok(Date.now() - t0 < 5000, `ping within a few intervals (took ${Date.now() - t0} ms)`);
    } finally {
      await server.stop();
    }
  });

  test('long polling: a newer poll replaces the pending one (204)', async () => {
    const hub = rand('e');
    const lp = await rawLP(hub);
    assert.equal(await lp.post(`{"protocol":"json","version":1}${RS}`), 200);
    await lp.until((m) => Object.keys(m).length === 0, 'the handshake response');
    // Which of two concurrent polls reaches the server first is not observable from here, so the
    // assertion is symmetric: one ends with 204 (replaced), the other carries the next message.
    const first = lp.poll();
    const second = lp.poll();
    const replaced = await Promise.race([first, second]);
    assert.equal(replaced.status, 204, `the replaced poll ends with 204 (got ${replaced.status} ${replaced.text})`);
    const t = rand('after-replace-');
    await h.sendAll(hub, t);
    const [a, b] = await Promise.all([first, second]);
    const live = a === replaced ? b : a;
    assert.equal(live.status, 200);
    assert.ok(live.text.includes(t), 'the remaining poll carries the next message');
  });

  test('SSE: event stream headers and prelude, DELETE is 400, no transport switch', async () => {
    const hub = rand('e');
    const neg = await fetch(`${h.server.url}/client/negotiate?hub=${hub}&negotiateVersion=1`, { method: 'POST', headers: auth(hub) });
    const { connectionToken } = await neg.json();
    const url = `${h.server.url}/client/?hub=${hub}&id=${encodeURIComponent(connectionToken)}`;
    const ac = new AbortController();
    try {
      const sse = await fetch(`${url}&access_token=${encodeURIComponent(tokenFor(hub))}`, {
        headers: { Accept: 'text/event-stream' },
        signal: ac.signal,
      });
      assert.equal(sse.status, 200);
      assert.match(sse.headers.get('content-type'), /^text\/event-stream/);
      assert.match(sse.headers.get('cache-control') ?? '', /no-cache/);
      const reader = sse.body.getReader();
      let got = '';
      const readUntil = async (pred, what) => {
        const deadline = Date.now() + 10000;
        while (!pred(got)) {
          if (Date.now() > deadline) throw new Error(`SSE: no ${what} in ${JSON.stringify(got)}`);
          const { value, done } = await withTimeout(reader.read(), 10000, what);
          if (done) throw new Error(`SSE stream ended before ${what}: ${JSON.stringify(got)}`);
          got += Buffer.from(value).toString('utf8');
        }
      };
      await readUntil((g) => g.length > 0, 'the prelude');
      assert.ok(got.startsWith(':'), `the stream starts with a comment line: ${JSON.stringify(got)}`);
      const send = await fetch(url, { method: 'POST', headers: { ...auth(hub), 'Content-Type': 'text/plain;charset=UTF-8' }, body: `{"protocol":"json","version":1}${RS}` });
      assert.equal(send.status, 200);
      await readUntil((g) => g.includes(`data: {}${RS}`), 'the handshake response event');
      const del = await fetch(url, { method: 'DELETE', headers: auth(hub) });
      assert.equal(del.status, 400, 'DELETE is for long polling only');
      const lp = await fetch(url, { headers: auth(hub) });
      assert.equal(lp.status, 400, 'cannot change transports mid-connection');
      const t = rand('sse-raw-');
      await h.sendAll(hub, t);
      await readUntil((g) => g.includes(t), 'the REST message as an event');
      assert.match(got, new RegExp(`data: [^\\r\\n]*${t}[^\\r\\n]*\\r?\\n\\r?\\n`), 'one data line, then an empty line');
    } finally {
      ac.abort();
    }
  });

  test('CORS: negotiate preflight from another origin is allowed with credentials', async () => {
    const origin = 'http://127.0.0.1:1';
    const pre = await fetch(`${h.server.url}/client/negotiate?hub=x&negotiateVersion=1`, {
      method: 'OPTIONS',
      headers: { Origin: origin, 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'authorization,x-requested-with,x-signalr-user-agent' },
    });
    assert.ok(pre.status >= 200 && pre.status < 300, `preflight status ${pre.status}`);
    assert.equal(pre.headers.get('access-control-allow-origin'), origin);
    assert.equal(pre.headers.get('access-control-allow-credentials'), 'true');
    const allowed = (pre.headers.get('access-control-allow-headers') ?? '').toLowerCase();
    for (const hd of ['authorization', 'x-requested-with', 'x-signalr-user-agent']) assert.ok(allowed.includes(hd) || allowed === '*', `allows ${hd}: ${allowed}`);
  });

  test('max-connections: negotiate answers 429 beyond it', async () => {
    const server = await startServer({ config: 'max-connections: 2\n' });
    const clients = [];
    try {
      const hub = rand('e');
      for (let i = 0; i < 2; i++) clients.push(await createClient(server, { hub, transport: 'ws' }));
      const res = await fetch(`${server.url}/client/negotiate?hub=${hub}&negotiateVersion=1`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${clientToken(server.key, hub)}` },
      });
      assert.equal(res.status, 429);
      await clients.pop().stop();
      // a slot frees up once the server has seen the disconnect
      await until(async () => {
        const r = await fetch(`${server.url}/client/negotiate?hub=${hub}&negotiateVersion=1`, {
          method: 'POST',
          headers: { Authorization: `Bearer ${clientToken(server.key, hub)}` },
        });
        return r.status === 200;
      }, 5000, 'a free connection slot');
    } finally {
      await Promise.all(clients.map((c) => c.stop()));
      await server.stop();
    }
  });

  test('an oversized message closes that connection only', async () => {
    const hub = rand('e');
    const bystander = await h.connect({ hub, transport: 'lp', protocol: 'messagepack' });
    const lp = await rawLP(hub);
    assert.equal(await lp.post(`{"protocol":"json","version":1}${RS}`), 200);
    await lp.until((m) => Object.keys(m).length === 0, 'the handshake response');
    const big = JSON.stringify({ type: 1, target: 'x', arguments: ['y'.repeat(2 * 1024 * 1024)] }) + RS;
    const status = await lp.post(big).catch(() => 'reset');
    if (status === 200) {
      const seen = await lp.until((m) => m.type === 7, 'a Close message');
      assert.ok(seen.at(-1).error, 'the Close message says what was wrong');
    } else {
      assert.ok(status === 'reset' || status >= 400, `POST of an oversized message: ${status}`);
    }
    await stillServed(hub, bystander);
  });
});
