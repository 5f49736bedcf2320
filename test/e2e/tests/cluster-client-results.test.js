// Issue 9 in a cluster: :invoke and the stream operations sent to one node reach a connection
// that another node holds (the request is forwarded to the owner, which has the transport and
// receives the answer). Two nodes on their own redis-server, the official client on node B,
// every REST call to node A.
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
