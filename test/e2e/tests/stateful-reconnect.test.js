// Issue 7, stateful reconnect: the official client with withStatefulReconnect() loses its
// WebSocket (a TCP proxy in the test cuts it) while REST messages keep coming; after the
// reconnect it has every message exactly once and in order, the same connection id, and the
// upstream heard no disconnected. The same cut held past a short window ends in disconnected.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { HubConnectionBuilder, HttpTransportType, HubConnectionState, JsonHubProtocol } from '@microsoft/signalr';
import { MessagePackHubProtocol } from '@microsoft/signalr-protocol-msgpack';
import { startServer } from '../lib/server.js';
import { metric, startNodes, startRedis } from '../lib/cluster.js';
import { FakeUpstream } from '../lib/upstream.js';
import { clientToken } from '../lib/jwt.js';
import { hubPath, rest } from '../lib/rest.js';
import { deferred, rand, withTimeout, closeServer } from '../lib/util.js';

const TEMPLATE = '/upstream/{hub}/{category}/{event}';

/**
 * A TCP proxy on 127.0.0.1:0 in front of the service. cut() destroys every open connection
 * (both ends, no closing handshake: a network failure) and holds new ones, unconnected, until
 * release(): the client's immediate reconnect attempt waits instead of failing.
 */
class CutProxy {
  constructor(targetPort) {
    this.targetPort = targetPort;
    this.pairs = new Set();
    this.held = [];
    this.holding = false;
    this.accepted = 0;
    this.server = net.createServer((sock) => this._accept(sock));
  }

  async start() {
    await new Promise((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${this.server.address().port}`;
    return this;
  }

  _accept(sock) {
    this.accepted++;
    sock.on('error', () => {});
    if (this.holding) {
      sock.pause();
      this.held.push(sock);
      this.heldChanged?.();
      return;
    }
    this._pipe(sock);
  }

  /** Later connections go to another port (another node of a cluster). */
  retarget(port) {
    this.targetPort = port;
  }

  _pipe(sock) {
    const up = net.connect(this.targetPort, '127.0.0.1');
    up.on('error', () => sock.destroy());
    sock.on('error', () => up.destroy());
    const pair = { sock, up };
    this.pairs.add(pair);
    const drop = () => this.pairs.delete(pair);
    sock.on('close', () => { up.destroy(); drop(); });
    up.on('close', () => { sock.destroy(); drop(); });
    sock.pipe(up);
    up.pipe(sock);
    sock.resume();
  }

  cut() {
    this.holding = true;
    for (const { sock, up } of this.pairs) {
      sock.resetAndDestroy();
      up.resetAndDestroy();
    }
    this.pairs.clear();
  }

  /** Resolves once a new connection (the client's reconnect) is being held. */
  async heldConnection(ms) {
    if (this.held.length > 0) return;
    const d = deferred();
    this.heldChanged = d.resolve;
    await withTimeout(d.promise, ms, 'the client to try to reconnect through the proxy');
    this.heldChanged = null;
  }

  release() {
    this.holding = false;
    for (const sock of this.held.splice(0)) this._pipe(sock);
  }

  async close() {
    this.cut();
    for (const sock of this.held.splice(0)) sock.destroy();
    await closeServer(this.server);
  }
}

async function statefulClient(proxy, server, hub, protocol, userId) {
  const conn = new HubConnectionBuilder()
    .withUrl(`${proxy.url}/client/?hub=${hub}`, {
      transport: HttpTransportType.WebSockets,
      accessTokenFactory: ((tok) => () => tok)(clientToken(server.key, hub, { userId })),
    })
    .withHubProtocol(protocol === 'messagepack' ? new MessagePackHubProtocol() : new JsonHubProtocol())
    .withStatefulReconnect()
    .configureLogging({ log() {} })
    .build();
  const got = [];
  const waiters = [];
  conn.on('msg', (x) => {
    got.push(x);
    for (const w of waiters.splice(0)) w();
  });
  conn.until = async (pred, ms, what) => {
    const deadline = Date.now() + ms;
    while (!pred(got)) {
      const d = deferred();
      waiters.push(d.resolve);
      await withTimeout(d.promise, Math.max(1, deadline - Date.now()), what);
    }
  };
  conn.got = got;
  const closed = deferred();
  conn.onclose((err) => closed.resolve(err ?? null));
  conn.closed = closed.promise;
  await conn.start();
  return conn;
}

async function sendTo(server, hub, id, text) {
  const res = await rest(server, 'POST', hubPath(hub, 'connections', id, ':send'), {
    body: { target: 'msg', arguments: [text] },
  });
  assert.equal(res.status, 202, res.describe());
}

const disconnectedOf = (up, id) => up.requests.filter((r) => r.connectionId === id && r.event === 'disconnected');

describe('stateful reconnect through a cut transport', () => {
  const up = new FakeUpstream();
  let server;
  before(async () => {
    await up.start();
    server = await startServer({ upstream: [up.url + TEMPLATE] });
  });
  after(async () => {
    await server?.stop();
    await up.close();
  });

  for (const protocol of ['json', 'messagepack']) {
    test(`${protocol}: every message exactly once and in order, same connection id, no disconnected`, async (t) => {
      const proxy = await new CutProxy(server.port).start();
      const hub = rand('sr');
      let conn;
      try {
        conn = await statefulClient(proxy, server, hub, protocol, 'u1');
        const id = conn.connectionId;
        await up.waitFor((r) => r.connectionId === id && r.event === 'connected', { what: 'connected upstream' });

        const total = 90;
        const want = Array.from({ length: total }, (_, i) => `m${i}`);
        // REST messages keep coming, one every 10 ms, before, during and after the cut.
        let sent = 0;
        const sender = (async () => {
          for (; sent < total; sent++) {
            await sendTo(server, hub, id, want[sent]);
            await new Promise((r) => setTimeout(r, 10));
          }
        })();
        await conn.until((g) => g.length >= 20, 10000, 'messages before the cut');
        // The other direction: client invocations just before the cut (not yet acknowledged:
        // the client resends them after the reconnect) and during it (buffered by the client).
        const notes = ['n0', 'n1', 'n2', 'n3', 'n4', 'n5'];
        await conn.send('note', notes[0]);
        await conn.send('note', notes[1]);
        await up.waitFor((r) => r.connectionId === id && r.event === 'note' && r.message?.arguments?.[0] === notes[1], { what: 'n1 upstream' });
        proxy.cut();
        const cutAt = sent;
        // The client reconnects at once; its attempt is held while messages go on arriving.
        await proxy.heldConnection(10000);
        for (const n of notes.slice(2)) await conn.send('note', n);
        await new Promise((r) => setTimeout(r, 400)); // the gap: REST sends during it are buffered
        const duringCut = sent - cutAt;
        const gotAtRelease = conn.got.length;
        const releasedAt = Date.now();
        proxy.release();
        await conn.until((g) => g.length > gotAtRelease, 10000, 'a message after the release');
        const resumeMs = Date.now() - releasedAt;
        await sender;
        await conn.until((g) => g.length >= total, 15000, `all ${total} messages`);
        // A last message proves nothing more (a duplicate) is on its way behind them.
        await sendTo(server, hub, id, 'last');
        await conn.until((g) => g.includes('last'), 10000, 'the last message');
        assert.deepEqual(conn.got, [...want, 'last'], 'every message exactly once, in order');
        assert.ok(duringCut >= 3, `messages were sent while the transport was cut (${duringCut})`);
        assert.equal(conn.connectionId, id, 'the connection id is unchanged');
        assert.equal(conn.state, HubConnectionState.Connected);
        assert.ok(proxy.accepted >= 3, `the client opened a second WebSocket (proxy accepted ${proxy.accepted})`);
        // An invocation after the reconnect reaches the upstream and its result comes back.
        assert.equal(await withTimeout(conn.invoke('echo', 'after'), 10000, 'echo after the reconnect'), 'after');
        await up.waitFor((r) => r.connectionId === id && r.event === 'note' && r.message?.arguments?.[0] === 'n5', { what: 'n5 upstream' });
        const upNotes = up.requests.filter((r) => r.connectionId === id && r.event === 'note').map((r) => r.message?.arguments?.[0]);
        assert.deepEqual(upNotes, notes, 'client invocations reached the upstream exactly once, in order');
        assert.deepEqual(disconnectedOf(up, id), [], 'the upstream heard no disconnected');
        t.diagnostic(`${total} messages, ${duringCut} sent while cut; first message ${resumeMs} ms after the release`);
      } finally {
        await conn?.stop();
        await proxy.close();
      }
    });
  }
});

describe('stateful reconnect after the window', () => {
  const up = new FakeUpstream();
  let server;
  before(async () => {
    await up.start();
    server = await startServer({ upstream: [up.url + TEMPLATE], args: ['--reconnect-window', '1s'] });
  });
  after(async () => {
    await server?.stop();
    await up.close();
  });

  for (const protocol of ['json', 'messagepack']) {
    test(`${protocol}: a cut longer than the window ends in disconnected upstream`, async (t) => {
      const proxy = await new CutProxy(server.port).start();
      const hub = rand('sr');
      let conn;
      try {
        conn = await statefulClient(proxy, server, hub, protocol, 'u2');
        const id = conn.connectionId;
        await up.waitFor((r) => r.connectionId === id && r.event === 'connected', { what: 'connected upstream' });
        await sendTo(server, hub, id, 'before');
        await conn.until((g) => g.includes('before'), 10000, 'a message before the cut');
        const cutAt = Date.now();
        proxy.cut();
        await proxy.heldConnection(10000);
        await sendTo(server, hub, id, 'during'); // buffered, then dropped with the connection
        const ev = await up.waitFor((r) => r.connectionId === id && r.event === 'disconnected', {
          timeout: 10000,
          what: 'disconnected after the window',
        });
        const after = Date.now() - cutAt;
        assert.ok(after >= 900, `disconnected came ${after} ms after the cut, not before the 1 s window`);
        assert.match(ev.body.toString(), /did not reconnect within/);
        proxy.release();
        // The held reconnect now reaches a service that forgot the connection: refused, the
        // client stops.
        const err = await withTimeout(conn.closed, 10000, 'the client to give up');
        assert.ok(err, 'the client closed with an error');
        assert.equal(conn.got.includes('during'), false);
        assert.equal(disconnectedOf(up, id).length, 1, 'disconnected exactly once');
        t.diagnostic(`disconnected ${after} ms after the cut (window 1 s)`);
      } finally {
        await conn?.stop();
        await proxy.close();
      }
    });
  }
});

describe('stateful reconnect in a cluster', () => {
  const up = new FakeUpstream();
  let redis;
  let nodes;
  before(async () => {
    await up.start();
    redis = await startRedis();
    nodes = await startNodes(redis, 2, { args: ['--upstream', up.url + TEMPLATE] });
  });
  after(async () => {
    await Promise.all((nodes ?? []).map((n) => n.stop()));
    await redis?.stop();
    await up.close();
  });

  test('the reconnect reaches the other node, is forwarded to the one holding the connection, and resumes', async () => {
    const [A, B] = nodes;
    const proxy = await new CutProxy(A.port).start();
    const hub = rand('sr');
    let conn;
    try {
      conn = await statefulClient(proxy, A, hub, 'messagepack', 'u3');
      const id = conn.connectionId;
      await up.waitFor((r) => r.connectionId === id && r.event === 'connected', { what: 'connected upstream' });
      const want = Array.from({ length: 40 }, (_, i) => `c${i}`);
      // REST to node B: it reaches the connection on A through Redis, before, during and after the cut.
      for (const m of want.slice(0, 10)) await sendTo(B, hub, id, m);
      await conn.until((g) => g.length >= 10, 10000, 'messages before the cut');
      const forwardedBefore = await metric(B, 'signalbox_cluster_forwarded_requests_total');
      proxy.cut();
      proxy.retarget(B.port); // the balancer now sends the client to B
      await proxy.heldConnection(10000);
      for (const m of want.slice(10, 30)) await sendTo(B, hub, id, m);
      proxy.release();
      for (const m of want.slice(30)) await sendTo(B, hub, id, m);
      await conn.until((g) => g.length >= want.length, 15000, `all ${want.length} messages`);
      await sendTo(A, hub, id, 'last');
      await conn.until((g) => g.includes('last'), 10000, 'the last message');
      assert.deepEqual(conn.got, [...want, 'last'], 'every message exactly once, in order');
      assert.equal(conn.connectionId, id);
      assert.ok((await metric(B, 'signalbox_cluster_forwarded_requests_total')) > forwardedBefore, 'B forwarded the reconnect to A');
      assert.equal(await withTimeout(conn.invoke('echo', 'after'), 10000, 'echo after the reconnect'), 'after');
      assert.deepEqual(disconnectedOf(up, id), [], 'the upstream heard no disconnected');
    } finally {
      await conn?.stop();
      await proxy.close();
    }
  });
});
