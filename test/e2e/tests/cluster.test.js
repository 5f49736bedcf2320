// Issue 12: several nodes on one Redis behave as one service. The test starts its own
// redis-server (so that it can kill and restart it), three signalbox processes on it, and
// the official client spread across them.
import { test, describe, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { ClientPool } from '../lib/clients.js';
import { rest, hubPath } from '../lib/rest.js';
import { metric, roundRobin, startNodes, startRedis, waitReady } from '../lib/cluster.js';
import { rand, until } from '../lib/util.js';

const NODE_TIMEOUT_MS = 3000; // --node-timeout of the nodes: the bound for a dead node

describe('cluster of three nodes on Redis', () => {
  let redis;
  let nodes; // [A, B, C]
  const pool = new ClientPool();

  before(async () => {
    redis = await startRedis();
    nodes = await startNodes(redis, 3, { nodeTimeout: `${NODE_TIMEOUT_MS}ms` });
  });
  afterEach(() => pool.stopAll());
  after(async () => {
    await pool.stopAll();
    await Promise.all((nodes ?? []).map((n) => n.stop()));
    await redis?.stop();
  });

  const connect = (node, opts) => pool.create(node, { hub: opts.hub, ...opts });
  const send = (node, hub, segments, text, extra = {}) =>
    rest(node, 'POST', hubPath(hub, ...segments, ':send'), { body: { target: 'msg', arguments: [text] }, ...extra });

  /** Sends a marker broadcast from node and waits until every client got it. */
  async function marker(node, hub, clients) {
    const m = rand('marker-');
    const res = await send(node, hub, [], m);
    assert.equal(res.status, 202, res.describe());
    await Promise.all(clients.map((c) => c.waitText(m)));
  }

  test('REST calls to node A reach the right clients on B and C, and never the wrong ones', async () => {
    const [A, B, C] = nodes;
    const hub = rand('h');
    const alice = await connect(B, { hub, userId: 'alice', transport: 'ws', protocol: 'json' });
    const bob = await connect(C, { hub, userId: 'bob', transport: 'ws', protocol: 'messagepack' });
    const carol = await connect(C, { hub, userId: 'carol', transport: 'sse', protocol: 'json' });
    const dave = await connect(B, { hub, userId: 'dave', transport: 'lp', protocol: 'messagepack' });
    const all = [alice, bob, carol, dave];

    // Broadcast.
    await marker(A, hub, all);

    // User: only bob.
    let res = await send(A, hub, ['users', 'bob'], 'toBob');
    assert.equal(res.status, 202, res.describe());
    await bob.waitText('toBob');
    // Connection: only dave.
    res = await send(A, hub, ['connections', dave.id], 'toDave');
    assert.equal(res.status, 202, res.describe());
    await dave.waitText('toDave');
    await marker(A, hub, all);
    for (const c of [alice, carol, dave]) assert.ok(!c.got('toBob'), `${c.userId} got bob's message`);
    for (const c of [alice, bob, carol]) assert.ok(!c.got('toDave'), `${c.userId} got dave's message`);

    // Group: alice by connection id, carol as a user (persistent), from A.
    const g = rand('g');
    res = await rest(A, 'PUT', hubPath(hub, 'groups', g, 'connections', alice.id));
    assert.equal(res.status, 200, res.describe());
    res = await rest(A, 'PUT', hubPath(hub, 'groups', g, 'connections', 'no-such-connection'));
    assert.equal(res.status, 404, res.describe());
    res = await rest(A, 'PUT', hubPath(hub, 'users', 'carol', 'groups', g));
    assert.equal(res.status, 200, res.describe());
    res = await send(A, hub, ['groups', g], 'toGroup');
    assert.equal(res.status, 202, res.describe());
    await Promise.all([alice.waitText('toGroup'), carol.waitText('toGroup')]);
    // carol's later connection, on B, is in the group too.
    const carol2 = await connect(B, { hub, userId: 'carol', transport: 'ws', protocol: 'json' });
    all.push(carol2);
    res = await send(A, hub, ['groups', g], 'toGroup2');
    assert.equal(res.status, 202, res.describe());
    await Promise.all([alice.waitText('toGroup2'), carol.waitText('toGroup2'), carol2.waitText('toGroup2')]);
    await marker(A, hub, all);
    for (const c of [bob, dave]) assert.ok(!c.got('toGroup') && !c.got('toGroup2'), `${c.userId} got a group message`);
    // A user send reaches both of carol's connections, on two nodes.
    res = await send(A, hub, ['users', 'carol'], 'toCarol');
    assert.equal(res.status, 202, res.describe());
    await Promise.all([carol.waitText('toCarol'), carol2.waitText('toCarol')]);

    // Existence checks agree on every node.
    for (const n of nodes) {
      for (const c of all) {
        const r = await rest(n, 'HEAD', hubPath(hub, 'connections', c.id));
        assert.equal(r.status, 200, `${n.url}: ${r.describe()}`);
      }
      for (const [path, want] of [
        [hubPath(hub, 'connections', 'nope'), 404],
        [hubPath(hub, 'users', 'bob'), 200],
        [hubPath(hub, 'users', 'nobody'), 404],
        [hubPath(hub, 'groups', g), 200],
        [hubPath(hub, 'groups', rand('empty')), 404],
        [hubPath(hub, 'users', 'carol', 'groups', g), 200],
        [hubPath(hub, 'users', 'bob', 'groups', g), 404],
      ]) {
        const r = await rest(n, 'HEAD', path);
        assert.equal(r.status, want, `${n.url}: ${r.describe()}`);
      }
      const list = await rest(n, 'GET', hubPath(hub, 'groups', g, 'connections'));
      assert.equal(list.status, 200, list.describe());
      assert.deepEqual(
        list.json().value.map((v) => v.connectionId).sort(),
        [alice.id, carol.id, carol2.id].sort(),
        `${n.url} lists the group`,
      );
    }

    // Close from A closes bob's connection on C.
    res = await rest(A, 'DELETE', hubPath(hub, 'connections', bob.id), { query: { reason: 'kicked' } });
    assert.equal(res.status, 200, res.describe());
    await bob.waitClosed();
    for (const n of nodes) {
      const r = await rest(n, 'HEAD', hubPath(hub, 'connections', bob.id));
      assert.equal(r.status, 404, `${n.url} still knows the closed connection: ${r.describe()}`);
    }
  });

  test('behind a round-robin TCP balancer every transport negotiates, connects and works', async () => {
    const lb = await roundRobin(nodes);
    const forwardedBefore = (await Promise.all(nodes.map((n) => metric(n, 'signalbox_cluster_forwarded_requests_total')))).reduce((a, b) => a + b, 0);
    try {
      const hub = rand('h');
      const via = { url: lb.url, key: nodes[0].key };
      const combos = [
        { transport: 'ws', protocol: 'json' },
        { transport: 'ws', protocol: 'messagepack' },
        { transport: 'sse', protocol: 'json' },
        { transport: 'lp', protocol: 'json' },
        { transport: 'lp', protocol: 'messagepack' },
      ];
      const clients = [];
      for (const [i, c] of combos.entries()) clients.push(await connect(via, { hub, userId: `u${i}`, ...c }));
      // Several rounds, so that requests land on every node whoever holds the connection.
      for (let round = 0; round < 3; round++) {
        await marker(via, hub, clients);
        for (const [i, c] of clients.entries()) {
          const text = rand(`to-u${i}-`);
          const res = await send(via, hub, ['users', `u${i}`], text);
          assert.equal(res.status, 202, res.describe());
          await c.waitText(text);
        }
      }
      const forwarded = (await Promise.all(nodes.map((n) => metric(n, 'signalbox_cluster_forwarded_requests_total')))).reduce((a, b) => a + b, 0);
      assert.ok(forwarded > forwardedBefore, 'some client requests reached a node that did not hold the connection and were forwarded');
      assert.ok(lb.counts.every((n) => n > 0), `every node took connections through the balancer: ${lb.counts}`);
      await Promise.all(clients.map((c) => c.stop()));
      for (const c of clients) assert.equal(c.closeError, undefined, `${c.name} closed cleanly`);
    } finally {
      await lb.close();
    }
  });

  test('Redis down for 10 s under steady REST sends: every 2xx delivered, the rest 503, back within 5 s', async () => {
    const [A, B, C] = nodes;
    const hub = rand('h');
    const clients = [
      await connect(A, { hub, userId: 'a', transport: 'ws', protocol: 'json' }),
      await connect(B, { hub, userId: 'b', transport: 'ws', protocol: 'messagepack' }),
      await connect(C, { hub, userId: 'c', transport: 'lp', protocol: 'json' }),
    ];
    const results = []; // { seq, status, at }
    let stopAt = Infinity;
    let seq = 0;
    const stream = (async () => {
      while (Date.now() < stopAt) {
        const n = seq++;
        const at = Date.now();
        let status;
        try {
          status = (await send(A, hub, [], `seq-${n}`, { timeout: 5000 })).status;
        } catch (err) {
          status = `error ${err.message}`;
        }
        results.push({ seq: n, status, at });
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    await new Promise((r) => setTimeout(r, 1000));
    const downAt = Date.now();
    await redis.kill();
    await new Promise((r) => setTimeout(r, 10000));
    await redis.start();
    const upAt = Date.now();
    // Delivery must resume within 5 s of Redis returning.
    await until(() => results.some((r) => r.at > upAt && r.status === 202), 5000, 'a 202 after Redis returned');
    const resumedAt = results.find((r) => r.at > upAt && r.status === 202).at;
    await new Promise((r) => setTimeout(r, 1000));
    stopAt = Date.now();
    await stream;

    const accepted = results.filter((r) => r.status === 202);
    const others = results.filter((r) => r.status !== 202);
    assert.ok(others.length > 0, 'some sends were refused while Redis was down');
    for (const r of others) assert.equal(r.status, 503, `send ${r.seq} answered ${r.status}`);
    assert.ok(accepted.some((r) => r.at < downAt) && accepted.some((r) => r.at > upAt), 'sends succeed before and after the outage');
    for (const c of clients) {
      for (const r of accepted) await c.waitText(`seq-${r.seq}`, { timeout: 10000 });
      assert.ok(!c.isClosed, `${c.name} stayed connected through the outage`);
    }
    const outages = await metric(A, 'signalbox_backplane_outages_total');
    assert.ok(outages >= 1, 'the outage is counted');
    const logs = A.logs();
    assert.equal(logs.match(/redis unreachable/g)?.length, 1, `one log line for the episode:\n${logs.slice(-3000)}`);
    console.log(
      `# outage: ${results.length} sends, ${accepted.length} accepted (all delivered to 3 clients), ${others.length} answered 503; delivery resumed ${resumedAt - upAt} ms after Redis returned`,
    );
    await Promise.all(nodes.map((n) => waitReady(n)));
  });

  test('a killed node is forgotten within the bound: existence checks and group sends', async () => {
    const [A, B, C] = nodes;
    const hub = rand('h');
    const g = rand('g');
    const victim = await connect(C, { hub, userId: 'victim', transport: 'ws', protocol: 'json' });
    const survivor = await connect(B, { hub, userId: 'survivor', transport: 'ws', protocol: 'json' });
    for (const c of [victim, survivor]) {
      const r = await rest(A, 'PUT', hubPath(hub, 'groups', g, 'connections', c.id));
      assert.equal(r.status, 200, r.describe());
    }
    assert.equal((await rest(A, 'HEAD', hubPath(hub, 'users', 'victim'))).status, 200);
    C.child.kill('SIGKILL');
    const killedAt = Date.now();
    await C.exited;
    await until(
      async () => {
        const [conn, user, list] = await Promise.all([
          rest(A, 'HEAD', hubPath(hub, 'connections', victim.id)),
          rest(A, 'HEAD', hubPath(hub, 'users', 'victim')),
          rest(A, 'GET', hubPath(hub, 'groups', g, 'connections')),
        ]);
        return conn.status === 404 && user.status === 404 && list.status === 200 &&
          list.json().value.every((v) => v.connectionId !== victim.id);
      },
      NODE_TIMEOUT_MS + 3000,
      'the dead node forgotten',
    );
    const forgotten = Date.now() - killedAt;
    assert.ok(forgotten <= NODE_TIMEOUT_MS + 2000, `forgotten after ${forgotten} ms, bound ${NODE_TIMEOUT_MS} ms + one heartbeat`);
    // Group sends go on for the survivor.
    await until(async () => (await send(A, hub, ['groups', g], 'after')).status === 202, 5000, 'a 202 group send');
    await survivor.waitText('after');
    console.log(`# dead node forgotten after ${forgotten} ms (node-timeout ${NODE_TIMEOUT_MS} ms)`);
  });
});
