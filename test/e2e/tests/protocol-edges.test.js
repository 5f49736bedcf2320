// Issue 2, "Bad input": raw HTTP against the client endpoints (long polling, so plain fetch can
// drive it): the spec's status codes, a Close with an error for bad frames, and everyone else is
// still served afterwards.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { harness } from '../lib/harness.js';
import { startServer } from '../lib/server.js';
import { clientToken } from '../lib/jwt.js';
import { rand } from '../lib/util.js';

const h = harness();
const RS = '\x1e';

function auth(hub) {
  return { Authorization: `Bearer ${clientToken(h.server.key, hub)}` };
}

/** A raw long-polling connection driven with fetch. */
async function rawLP(hub, server = h.server) {
  const auth = (hub) => ({ Authorization: `Bearer ${clientToken(server.key, hub)}` });
  const neg = await fetch(`${server.url}/client/negotiate?hub=${hub}&negotiateVersion=1`, { method: 'POST', headers: auth(hub) });
  assert.equal(neg.status, 200);
  const { connectionId, connectionToken } = await neg.json();
  const url = `${server.url}/client/?hub=${hub}&id=${encodeURIComponent(connectionToken)}`;
  const lp = {
    connectionId,
    url,
    async poll() {
      const res = await fetch(url, { headers: auth(hub), signal: AbortSignal.timeout(20000) });
      return { status: res.status, text: await res.text() };
    },
    async post(body) {
      const res = await fetch(url, { method: 'POST', headers: { ...auth(hub), 'Content-Type': 'text/plain;charset=UTF-8' }, body });
      await res.arrayBuffer();
      return res.status;
    },
    /** Polls until a frame satisfying pred arrives; returns the parsed JSON frames seen. */
    async until(pred, what) {
      const seen = [];
      for (let i = 0; i < 10; i++) {
        const r = await lp.poll();
        if (r.status !== 200) throw new Error(`poll ${r.status} while waiting for ${what}; seen ${JSON.stringify(seen)}`);
        for (const f of r.text.split(RS).filter(Boolean)) {
          const m = JSON.parse(f);
          seen.push(m);
          if (pred(m)) return seen;
        }
      }
      throw new Error(`no ${what} in 10 polls; seen ${JSON.stringify(seen)}`);
    },
  };
  const first = await lp.poll();
  assert.equal(first.status, 200, 'the first poll of a new connection answers 200 at once');
  assert.equal(first.text, '');
  return lp;
}

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
    const del = await fetch(lp.url, { method: 'DELETE', headers: auth(hub) });
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
