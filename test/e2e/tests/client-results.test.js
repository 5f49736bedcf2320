// Issue 9: the REST API of 2024-12-01 with the official client. POST .../:invoke answers with the
// client handler's result (200), its error (400), a timeout (504), a throttle (429) and an unknown
// or departed connection (404) over every transport and protocol; server-to-client streams fed by
// streams/{id}/:send and ended by :complete (reason or error) arrive in order; POST /:execute runs
// its commands, in order, on exactly the connections its OData filter selects.
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { harness } from '../lib/harness.js';
import { COMBOS } from '../lib/clients.js';
import { FakeUpstream } from '../lib/upstream.js';
import { hubPath } from '../lib/rest.js';
import { deferred, rand, withTimeout } from '../lib/util.js';

const INVOKE_TIMEOUT_MS = 3000;
const MAX_PENDING = 3;
const up = new FakeUpstream();
const h = harness(async () => {
  await up.start();
  return {
    upstream: [`${up.url}/upstream/{hub}/{category}/{event}`],
    args: ['--invoke-timeout', `${INVOKE_TIMEOUT_MS}ms`, '--max-pending-invocations', String(MAX_PENDING)],
  };
});
after(() => up.close());

const invoke = (hub, id, target, args = [], opts = {}) =>
  h.rest('POST', hubPath(hub, 'connections', id, ':invoke'), { body: { target, arguments: args }, ...opts });

describe(':invoke (client results)', () => {
  for (const { transport, protocol } of COMBOS) {
    test(`${transport}/${protocol}: result, error, no handler, departed connection`, async () => {
      const hub = rand('inv');
      const c = await h.connect({ hub, transport, protocol });
      c.conn.on('add', (a, b) => a + b);
      c.conn.on('shape', (x) => ({ got: x, list: [1, 'two', null], nested: { ok: true } }));
      c.conn.on('fail', () => {
        throw new Error('handler says no');
      });

      let res = await invoke(hub, c.id, 'add', [2, 3]);
      assert.equal(res.status, 200, res.describe());
      assert.match(res.headers.get('content-type'), /application\/json/);
      assert.deepEqual(res.json(), { result: 5 });

      res = await invoke(hub, c.id, 'shape', ['héllo']);
      assert.equal(res.status, 200, res.describe());
      assert.deepEqual(res.json(), { result: { got: 'héllo', list: [1, 'two', null], nested: { ok: true } } });

      // The SDK's PascalCase body works too.
      res = await h.rest('POST', hubPath(hub, 'connections', c.id, ':invoke'), { body: { Target: 'add', Arguments: [40, 2] } });
      assert.deepEqual(res.json(), { result: 42 }, res.describe());

      res = await invoke(hub, c.id, 'fail');
      assert.equal(res.status, 400, res.describe());
      assert.equal(res.errorCode, 'Error.Invocation.Failed');
      assert.match(res.json().message, /handler says no/);

      res = await invoke(hub, c.id, 'nobodyListens');
      assert.equal(res.status, 400, res.describe());
      assert.equal(res.errorCode, 'Error.Invocation.Failed');

      // The connection still works, and answers again.
      assert.deepEqual((await invoke(hub, c.id, 'add', [1, 1])).json(), { result: 2 });

      await c.stop();
      res = await invoke(hub, c.id, 'add', [1, 2]);
      assert.equal(res.status, 404, res.describe());
      assert.equal(res.errorCode, 'Error.Connection.NotExisted');
    });
  }

  test('unknown connection, bad bodies', async () => {
    const hub = rand('inv');
    let res = await invoke(hub, 'no-such-connection', 'add', [1]);
    assert.equal(res.status, 404, res.describe());
    assert.equal(res.errorCode, 'Error.Connection.NotExisted');
    const c = await h.connect({ hub });
    res = await h.rest('POST', hubPath(hub, 'connections', c.id, ':invoke'), { body: { arguments: [] } });
    assert.equal(res.status, 400, res.describe());
    res = await h.rest('POST', hubPath(hub, 'connections', c.id, ':invoke'), { body: Buffer.from([0x80]), contentType: 'application/octet-stream' });
    assert.equal(res.status, 415, res.describe());
  });

  test('timeout, the pending bound, and a client leaving while it is asked', async () => {
    const hub = rand('inv');
    const c = await h.connect({ hub });
    const started = [];
    c.conn.on('hang', () => {
      const d = deferred();
      started.push(d);
      return d.promise; // never settles during the test
    });
    c.conn.on('add', (a, b) => a + b);

    const t0 = Date.now();
    const hanging = Array.from({ length: MAX_PENDING }, () => invoke(hub, c.id, 'hang'));
    // Once MAX_PENDING reached the client and wait, one more is refused at once.
    await withTimeout(
      (async () => {
        while (started.length < MAX_PENDING) await new Promise((r) => setImmediate(r));
      })(),
      INVOKE_TIMEOUT_MS,
      'the client to receive the hanging invocations',
    );
    const throttled = await invoke(hub, c.id, 'add', [1, 2]);
    assert.equal(throttled.status, 429, throttled.describe());
    assert.equal(throttled.errorCode, 'Error.Invocation.Throttled');
    for (const res of await Promise.all(hanging)) {
      assert.equal(res.status, 504, res.describe());
      assert.equal(res.errorCode, 'Error.Invocation.Timeout');
    }
    const took = Date.now() - t0;
    assert.ok(took >= INVOKE_TIMEOUT_MS - 50 && took < INVOKE_TIMEOUT_MS + 5000, `timed out after ${took} ms`);
    // Once they timed out, the slots are free again.
    assert.deepEqual((await invoke(hub, c.id, 'add', [2, 2])).json(), { result: 4 });

    // A client that leaves while an invocation waits: 404 at once, not a timeout.
    const pending = invoke(hub, c.id, 'hang');
    const nStarted = started.length;
    await withTimeout(
      (async () => {
        while (started.length === nStarted) await new Promise((r) => setImmediate(r));
      })(),
      5000,
      'the client to receive the invocation',
    );
    const t1 = Date.now();
    await c.stop();
    const res = await pending;
    assert.equal(res.status, 404, res.describe());
    assert.ok(Date.now() - t1 < INVOKE_TIMEOUT_MS, 'answered at once, not at the timeout');
  });
});

/** Starts a server-to-client stream from the client and returns { id, items, done } once the upstream saw it. */
async function startStream(c, target, ...args) {
  const items = [];
  const done = deferred();
  c.conn.stream(target, ...args).subscribe({
    next: (v) => items.push(v),
    complete: () => done.resolve({ ok: true }),
    error: (err) => done.resolve({ ok: false, err }),
  });
  const rec = await up.waitFor((r) => r.connectionId === c.id && r.event === target, { what: `the ${target} stream invocation upstream` });
  const id = rec.message.invocationId;
  assert.ok(id !== undefined && id !== null && id !== '', `stream id in ${JSON.stringify(rec.message)}`);
  return { id: String(id), items, done: withTimeout(done.promise, 10000, `${target} stream to end`) };
}

describe('streams/{streamId}/:send and :complete', () => {
  for (const { transport, protocol } of COMBOS) {
    test(`${transport}/${protocol}: items and completion in order; reason and error`, async () => {
      const hub = rand('str');
      const c = await h.connect({ hub, transport, protocol });
      const path = (id, op) => hubPath(hub, 'connections', c.id, 'streams', id, op);

      const s = await startStream(c, rand('count'));
      const sent = [1, 'two', { three: [3] }, null, 5.5];
      for (const item of sent) {
        const res = await h.rest('POST', path(s.id, ':send'), { body: JSON.stringify(item), contentType: 'application/json' });
        assert.equal(res.status, 202, res.describe());
      }
      let res = await h.rest('POST', path(s.id, ':complete'));
      assert.equal(res.status, 202, res.describe());
      assert.deepEqual(await s.done, { ok: true });
      assert.deepEqual(s.items, sent);
      // The stream is over: more items are refused.
      res = await h.rest('POST', path(s.id, ':send'), { body: '1', contentType: 'application/json' });
      assert.equal(res.status, 404, res.describe());
      assert.equal(res.errorCode, 'Error.Stream.NotExisted');

      // completed=true ends it with the last item.
      const s2 = await startStream(c, rand('last'));
      res = await h.rest('POST', path(s2.id, ':send'), { body: '"only"', contentType: 'application/json', query: { completed: 'true' } });
      assert.equal(res.status, 202, res.describe());
      assert.deepEqual(await s2.done, { ok: true });
      assert.deepEqual(s2.items, ['only']);

      // reason (the swagger) and error (the Management SDK) end it with an error.
      for (const param of ['reason', 'error']) {
        const s3 = await startStream(c, rand(param));
        await h.rest('POST', path(s3.id, ':send'), { body: '7', contentType: 'application/json' });
        res = await h.rest('POST', path(s3.id, ':complete'), { query: { [param]: `stopped by ${param}` } });
        assert.equal(res.status, 202, res.describe());
        const end = await s3.done;
        assert.equal(end.ok, false);
        assert.match(String(end.err?.message ?? end.err), new RegExp(`stopped by ${param}`));
        assert.deepEqual(s3.items, [7]);
      }
    });
  }

  test('unknown stream, unknown connection, cancelled stream', async () => {
    const hub = rand('str');
    const c = await h.connect({ hub });
    let res = await h.rest('POST', hubPath(hub, 'connections', c.id, 'streams', 'nope', ':send'), { body: '1', contentType: 'application/json' });
    assert.equal(res.errorCode, 'Error.Stream.NotExisted', res.describe());
    res = await h.rest('POST', hubPath(hub, 'connections', 'nobody', 'streams', 'x', ':complete'));
    assert.equal(res.errorCode, 'Error.Connection.NotExisted', res.describe());
    // A client that disposes its subscription cancels the stream (CancelInvocation).
    const target = rand('cancel');
    const sub = c.conn.stream(target).subscribe({ next() {}, complete() {}, error() {} });
    const rec = await up.waitFor((r) => r.connectionId === c.id && r.event === target);
    sub.dispose();
    const id = String(rec.message.invocationId);
    await withTimeout(
      (async () => {
        for (;;) {
          res = await h.rest('POST', hubPath(hub, 'connections', c.id, 'streams', id, ':send'), { body: '1', contentType: 'application/json' });
          if (res.status === 404) return;
        }
      })(),
      5000,
      'the cancelled stream to be refused',
    );
    assert.equal(res.errorCode, 'Error.Stream.NotExisted');
  });
});

describe(':execute', () => {
  test('the filter selects exactly, commands run in order, on both path styles', async () => {
    const hub = rand('exe');
    const l1 = await h.connect({ hub, userId: 'listener-1', transport: 'ws', protocol: 'messagepack' });
    const l2 = await h.connect({ hub, userId: 'listener-2', transport: 'sse' });
    const other = await h.connect({ hub, userId: 'speaker', transport: 'lp' });
    const anon = await h.connect({ hub });
    const all = [l1, l2, other, anon];
    const g = rand('g-');
    const exec = (filter, commands, path = hubPath(hub, ':execute')) =>
      h.rest('POST', path, { query: filter === undefined ? {} : { filter }, body: commands });

    // JoinGroup then SendMessage to the group: the joined listeners get it in order.
    const text = rand('to-listeners-');
    let res = await exec("startswith(userId, 'listener-')", [
      { type: 'JoinGroup', group: g },
      { type: 'SendMessage', message: { target: 'msg', arguments: [text] } },
    ]);
    assert.equal(res.status, 202, res.describe());
    await l1.waitText(text);
    await l2.waitText(text);
    await h.fence(other, anon);
    assert.ok(!other.got(text) && !anon.got(text), 'a connection outside the filter got the message');
    const inGroup = rand('in-group-');
    await h.rest('POST', hubPath(hub, 'groups', g, ':send'), { body: { target: 'msg', arguments: [inGroup] } });
    await l1.waitText(inGroup);
    await l2.waitText(inGroup);

    // Group membership, eq/ne/not/and/or/parentheses, null for anonymous, on the legacy path too.
    const cases = [
      [`'${g}' in groups and userId ne 'listener-1'`, [l2]],
      [`not ('${g}' in groups)`, [other, anon]],
      ['userId eq null', [anon]],
      [`(userId eq 'speaker' or userId eq 'listener-1') and not connectionId eq '${l1.id}'`, [other]],
      [`connectionId eq '${anon.id}' or connectionId eq '${l2.id}'`, [l2, anon]],
      [undefined, all],
    ];
    for (const [i, [filter, want]] of cases.entries()) {
      const marker = rand(`case${i}-`);
      res = await exec(filter, [{ type: 'SendMessage', message: { target: 'msg', arguments: [marker] } }], i % 2 ? `/api/v1/hubs/${hub}/:execute` : undefined);
      assert.equal(res.status, 202, `${filter}: ${res.describe()}`);
      for (const c of want) await c.waitText(marker, { what: `${marker} for ${filter}` });
      await h.fence(...all);
      for (const c of all) assert.equal(c.got(marker), want.includes(c), `${filter}: ${c.userId ?? 'anon'}`);
    }

    // LeaveGroup, then CloseConnection: in order, and only the selected.
    res = await exec("userId eq 'listener-2'", [{ type: 'LeaveGroup', group: g }]);
    assert.equal(res.status, 202);
    const after = rand('after-leave-');
    await h.rest('POST', hubPath(hub, 'groups', g, ':send'), { body: { target: 'msg', arguments: [after] } });
    await l1.waitText(after);
    await h.fence(l2);
    assert.ok(!l2.got(after), 'LeaveGroup did not take listener-2 out');
    const bye = rand('bye-');
    res = await exec("userId eq 'speaker'", [
      { type: 'SendMessage', message: { target: 'msg', arguments: [bye] } },
      { type: 'CloseConnection', reason: 'executed' },
      { type: 'SendMessage', message: { target: 'msg', arguments: ['never'] } },
    ]);
    assert.equal(res.status, 202, res.describe());
    await other.waitText(bye);
    const err = await other.waitClosed();
    assert.match(String(err?.message ?? ''), /executed/);
    assert.ok(!other.got('never'));
    assert.equal(l1.state, 'Connected');
  });

  test('unsupported filters and bad commands are a clear 400 that changes nothing', async () => {
    const hub = rand('exe');
    const c = await h.connect({ hub, userId: 'u1' });
    const send = [{ type: 'SendMessage', message: { target: 'msg', arguments: ['x'] } }];
    for (const [filter, want] of [
      ["userId gt 'a'", /operator "gt" is not supported/],
      ["endswith(userId, '1')", /function "endswith" is not supported/],
      ["role eq 'admin'", /unknown field "role"/],
      ["userId eq 'unclosed", /not closed/],
      ['userId eq 1', /number/],
    ]) {
      const res = await h.rest('POST', hubPath(hub, ':execute'), { query: { filter }, body: send });
      assert.equal(res.status, 400, `${filter}: ${res.describe()}`);
      assert.match(res.json().message, want, filter);
    }
    for (const [body, want] of [
      [[], /at least one command/],
      [[{ type: 'Explode' }], /type "Explode"/],
      [[{ type: 'JoinGroup' }], /needs a group/],
      [[{ type: 'SendMessage' }], /needs a message/],
      [[...send, { type: 'LeaveGroup', group: '' }], /command 1/],
      [{ type: 'SendMessage' }, /JSON array/],
    ]) {
      const res = await h.rest('POST', hubPath(hub, ':execute'), { body });
      assert.equal(res.status, 400, `${JSON.stringify(body)}: ${res.describe()}`);
      assert.match(res.json().message, want);
    }
    await h.fence(c);
    assert.ok(!c.got('x'), 'a refused :execute delivered its first command');
  });
});
