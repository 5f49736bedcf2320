// Issue 9 in a cluster: :invoke and the stream operations sent to one node reach a connection
// that another node holds (the request is forwarded to the owner, which has the transport and
// receives the answer), and :execute runs on every node's connections. Two nodes on their own
// redis-server, official clients on both, every REST call to node A.
import { test, describe, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { ClientPool } from '../lib/clients.js';
import { rest, hubPath } from '../lib/rest.js';
import { startNodes, startRedis } from '../lib/cluster.js';
import { FakeUpstream } from '../lib/upstream.js';
import { deferred, rand, withTimeout } from '../lib/util.js';

describe(':invoke and streams across cluster nodes', () => {
  let redis;
  let nodes;
  const up = new FakeUpstream();
  const pool = new ClientPool();

  before(async () => {
    await up.start();
    redis = await startRedis();
    nodes = await startNodes(redis, 2, { args: ['--upstream', `${up.url}/upstream/{hub}/{category}/{event}`] });
  });
  afterEach(() => pool.stopAll());
  after(async () => {
    await pool.stopAll();
    await Promise.all((nodes ?? []).map((n) => n.stop()));
    await redis?.stop();
    await up.close();
  });

  test(':execute sent to A selects and commands the connections of A and B', async () => {
    const [A, B] = nodes;
    const hub = rand('ex');
    const onA = await pool.create(A, { hub, userId: 'listener-a' });
    const onB = await pool.create(B, { hub, userId: 'listener-b', transport: 'sse' });
    const other = await pool.create(B, { hub, userId: 'speaker', transport: 'lp', protocol: 'messagepack' });
    const g = rand('g-');
    const text = rand('hello-');
    let res = await rest(A, 'POST', hubPath(hub, ':execute'), {
      query: { filter: "startswith(userId, 'listener-')" },
      body: [{ type: 'JoinGroup', group: g }, { type: 'SendMessage', message: { target: 'msg', arguments: [text] } }],
    });
    assert.equal(res.status, 202, res.describe());
    await onA.waitText(text);
    await onB.waitText(text);
    // The joins happened on both nodes: a group send reaches both listeners, and a fence
    // to the speaker proves the earlier message never reached it.
    const inGroup = rand('group-');
    res = await rest(A, 'POST', hubPath(hub, 'groups', g, ':send'), { body: { target: 'msg', arguments: [inGroup] } });
    assert.equal(res.status, 202, res.describe());
    await onA.waitText(inGroup);
    await onB.waitText(inGroup);
    const fence = rand('fence-');
    res = await rest(A, 'POST', hubPath(hub, 'connections', other.id, ':send'), { body: { target: 'msg', arguments: [fence] } });
    await other.waitText(fence);
    assert.ok(!other.got(text) && !other.got(inGroup), 'the speaker was selected');
    // A filter that does not parse is refused before any node runs anything.
    res = await rest(A, 'POST', hubPath(hub, ':execute'), { query: { filter: "userId gt 'a'" }, body: [{ type: 'CloseConnection' }] });
    assert.equal(res.status, 400, res.describe());
    assert.equal(onB.state, 'Connected');
  });

  for (const { transport, protocol } of [
    { transport: 'ws', protocol: 'messagepack' },
    { transport: 'lp', protocol: 'json' },
  ]) {
    test(`${transport}/${protocol}: the client on B answers an :invoke sent to A; a stream fed through A arrives in order`, async () => {
      const [A, B] = nodes;
      const hub = rand('ch');
      const c = await pool.create(B, { hub, transport, protocol });
      c.conn.on('mul', (a, b) => a * b);
      c.conn.on('fail', () => {
        throw new Error('no from B');
      });

      let res = await rest(A, 'POST', hubPath(hub, 'connections', c.id, ':invoke'), { body: { target: 'mul', arguments: [6, 7] } });
      assert.equal(res.status, 200, res.describe());
      assert.deepEqual(res.json(), { result: 42 });
      res = await rest(A, 'POST', `/api/v1/hubs/${hub}/connections/${c.id}/:invoke`, { body: { target: 'fail', arguments: [] } });
      assert.equal(res.status, 400, res.describe());
      assert.match(res.json().message, /no from B/);
      res = await rest(A, 'POST', hubPath(hub, 'connections', 'nobody', ':invoke'), { body: { target: 'mul', arguments: [1, 1] } });
      assert.equal(res.status, 404, res.describe());
      assert.equal(res.errorCode, 'Error.Connection.NotExisted');

      const target = rand('count');
      const items = [];
      const done = deferred();
      c.conn.stream(target).subscribe({ next: (v) => items.push(v), complete: () => done.resolve('complete'), error: (e) => done.resolve(e) });
      const rec = await up.waitFor((r) => r.connectionId === c.id && r.event === target, { what: 'the stream invocation upstream' });
      const sid = String(rec.message.invocationId);
      for (const item of [1, 2, 3]) {
        res = await rest(A, 'POST', hubPath(hub, 'connections', c.id, 'streams', sid, ':send'), { body: String(item), contentType: 'application/json' });
        assert.equal(res.status, 202, res.describe());
      }
      res = await rest(A, 'POST', hubPath(hub, 'connections', c.id, 'streams', sid, ':complete'));
      assert.equal(res.status, 202, res.describe());
      assert.equal(await withTimeout(done.promise, 10000, 'the stream to complete'), 'complete');
      assert.deepEqual(items, [1, 2, 3]);
    });
  }
});
