// Connection lifecycle limits, on a server configured with short timeouts: handshake timeout,
// client timeout (silence), server pings keep official clients alive, and a slow consumer (a
// connection that does not read) is closed without holding up anyone else.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { harness } from '../lib/harness.js';
import { rawLP } from '../lib/raw.js';
import { hubPath } from '../lib/rest.js';
import { rand, until } from '../lib/util.js';

const h = harness({
  config: [
    'handshake-timeout: 1s',
    'client-timeout: 1500ms',
    'keep-alive-interval: 300ms',
    'send-queue-bytes: 65536',
    '',
  ].join('\n'),
});

// Official clients must talk more often than the server's 1.5 s client timeout.
const alive = { keepAliveMs: 300, serverTimeoutMs: 5000 };

const gone = (hub, id, what) =>
  until(async () => (await h.rest('HEAD', hubPath(hub, 'connections', id))).status === 404, 8000, what);

describe('connection lifecycle', () => {
  test('no handshake within handshake-timeout: the connection is closed', async () => {
    const hub = rand('l');
    const lp = await rawLP(h.server, hub);
    const t0 = Date.now();
    // The connection is not in the registry before the handshake; the transport itself must end.
    const r = await lp.poll();
    assert.ok(r.status === 204 || r.status === 404 || (r.status === 200 && /error|"type":7/.test(r.text)), `poll: ${r.status} ${r.text}`);
    assert.ok(Date.now() - t0 < 6000, 'closed around the handshake timeout');
  });

  test('a client that goes silent is closed after client-timeout; a talking client stays', async () => {
    const hub = rand('l');
    const talker = await h.connect({ hub, transport: 'ws', ...alive });
    const lp = await rawLP(h.server, hub);
    await lp.handshake();
    assert.equal((await h.rest('HEAD', hubPath(hub, 'connections', lp.connectionId))).status, 200);
    await gone(hub, lp.connectionId, 'the silent connection to be closed');
    // the official client, pinging every 300 ms, is still here and served
    const t = rand('alive-');
    await h.sendAll(hub, t);
    await talker.waitText(t);
    assert.equal(talker.isClosed, false);
  });

  test('server pings keep official clients on every transport alive past their server timeout', async () => {
    const hub = rand('l');
    const clients = await Promise.all(
      [['ws', 'json'], ['sse', 'json'], ['lp', 'messagepack']].map(([transport, protocol]) =>
        h.connect({ hub, transport, protocol, keepAliveMs: 300, serverTimeoutMs: 1200 }),
      ),
    );
    // Nothing but pings flows for 3 server-timeout periods; a missing ping would close the client.
    const deadline = Date.now() + 3600;
    await until(() => Date.now() > deadline || clients.some((c) => c.isClosed), 5000, 'the quiet period');
    for (const c of clients) assert.equal(c.isClosed, false, `${c.name} closed: ${c.closeError}`);
  });

  test('a connection that does not read is closed as a slow consumer; broadcasts go on', async () => {
    const hub = rand('l');
    const reader = await h.connect({ hub, transport: 'ws', protocol: 'messagepack', ...alive });
    const lp = await rawLP(h.server, hub);
    await lp.handshake();
    // keep the slow one "talking" so only the full queue can close it
    const keepTalking = setInterval(() => lp.post(`{"type":6}\x1e`).catch(() => {}), 300);
    try {
      // Control: talking (without reading) keeps it open past the 1.5 s client timeout, so what
      // closes it below is the full queue, not silence.
      const quiet = Date.now() + 2000;
      await until(async () => {
        assert.equal((await h.rest('HEAD', hubPath(hub, 'connections', lp.connectionId))).status, 200, 'open while talking');
        return Date.now() > quiet;
      }, 4000, 'the control period', 200);
      const chunk = 'z'.repeat(10 * 1024);
      for (let i = 0; i < 20; i++) {
        const res = await h.rest('POST', hubPath(hub, ':send'), { body: { target: 'other', arguments: [i, chunk] } });
        assert.equal(res.status, 202, res.describe());
      }
      await reader.waitFor('other', (i) => i === 19, { what: 'the last of 20 broadcasts' });
      assert.equal(reader.received.filter((m) => m.target === 'other').length, 20, 'the reader got every broadcast');
      await gone(hub, lp.connectionId, 'the slow consumer to be closed');
    } finally {
      clearInterval(keepTalking);
    }
  });
});
