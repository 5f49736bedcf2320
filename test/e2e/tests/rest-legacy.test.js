// Issue 2: the legacy /api/v1/hubs/{hub}/... paths, any api-version, and REST input validation.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { harness } from '../lib/harness.js';
import { hubPath, v1Path } from '../lib/rest.js';
import { rand } from '../lib/util.js';

const h = harness();

function ok2xx(res) {
  assert.ok(res.status >= 200 && res.status < 300, `want 2xx: ${res.describe()}`);
}

function notFound(res, code) {
  assert.equal(res.status, 404, res.describe());
  assert.equal(res.errorCode, code, `x-ms-error-code of ${res.describe()}`);
}

const v1send = (hub, segments, text, body) =>
  h.rest('POST', v1Path(hub, ...segments), { body: body ?? { target: 'msg', arguments: [text] } });

describe('legacy /api/v1 paths', () => {
  test('send to all (hub root), user, connection and group', async () => {
    const hub = rand('v');
    const [a, b, c] = await Promise.all([
      h.connect({ hub, userId: 'alice', transport: 'ws', protocol: 'json', name: 'a' }),
      h.connect({ hub, userId: 'bob', transport: 'lp', protocol: 'messagepack', name: 'b' }),
      h.connect({ hub, userId: 'carol', transport: 'sse', protocol: 'json', name: 'c' }),
    ]);
    const all = rand('v1-all-');
    assert.equal((await v1send(hub, [], all)).status, 202);
    await h.expectGot(all, a, b, c);

    const user = rand('v1-user-');
    assert.equal((await v1send(hub, ['users', 'bob'], user)).status, 202);
    await h.expectGot(user, b);
    await h.expectNot(user, a, c);

    const conn = rand('v1-conn-');
    assert.equal((await v1send(hub, ['connections', c.id], conn)).status, 202);
    await h.expectGot(conn, c);
    await h.expectNot(conn, a, b);

    ok2xx(await h.rest('PUT', v1Path(hub, 'groups', 'g', 'connections', a.id)));
    const grp = rand('v1-group-');
    // PascalCase body, as the .NET SDK writes it.
    assert.equal((await v1send(hub, ['groups', 'g'], null, { Target: 'msg', Arguments: [grp] })).status, 202);
    await h.expectGot(grp, a);
    await h.expectNot(grp, b, c);
  });

  test('group membership of connections and users, and existence checks', async () => {
    const hub = rand('v');
    const [a, b] = await Promise.all([
      h.connect({ hub, userId: 'alice', name: 'a' }),
      h.connect({ hub, userId: 'bob', transport: 'lp', name: 'b' }),
    ]);
    for (const method of ['GET', 'HEAD']) {
      ok2xx(await h.rest(method, v1Path(hub, 'connections', a.id)));
      notFound(await h.rest(method, v1Path(hub, 'connections', 'nope')), 'Warning.Connection.NotExisted');
      ok2xx(await h.rest(method, v1Path(hub, 'users', 'alice')));
      notFound(await h.rest(method, v1Path(hub, 'users', 'nobody')), 'Warning.User.NotExisted');
      notFound(await h.rest(method, v1Path(hub, 'groups', 'g')), 'Warning.Group.NotExisted');
    }

    ok2xx(await h.rest('PUT', v1Path(hub, 'groups', 'g', 'connections', a.id)));
    ok2xx(await h.rest('HEAD', v1Path(hub, 'groups', 'g')));
    ok2xx(await h.rest('GET', v1Path(hub, 'groups', 'g', 'users', 'alice')));
    notFound(await h.rest('GET', v1Path(hub, 'groups', 'g', 'users', 'bob')), 'Info.User.NotInGroup');

    ok2xx(await h.rest('DELETE', v1Path(hub, 'groups', 'g', 'connections', a.id)));
    const t1 = rand('v1-g-');
    assert.equal((await v1send(hub, ['groups', 'g'], t1)).status, 202);
    await h.expectNot(t1, a, b);

    // user-group membership is persistent: a new connection of bob is in the group too
    ok2xx(await h.rest('PUT', v1Path(hub, 'groups', 'ug', 'users', 'bob')));
    ok2xx(await h.rest('HEAD', v1Path(hub, 'groups', 'ug', 'users', 'bob')));
    const b2 = await h.connect({ hub, userId: 'bob', transport: 'ws', protocol: 'messagepack', name: 'b2' });
    const t2 = rand('v1-ug-');
    assert.equal((await v1send(hub, ['groups', 'ug'], t2)).status, 202);
    await h.expectGot(t2, b, b2);
    await h.expectNot(t2, a);

    ok2xx(await h.rest('DELETE', v1Path(hub, 'groups', 'ug', 'users', 'bob')));
    notFound(await h.rest('GET', v1Path(hub, 'groups', 'ug', 'users', 'bob')), 'Info.User.NotInGroup');
    const t3 = rand('v1-ug-rm-');
    assert.equal((await v1send(hub, ['groups', 'ug'], t3)).status, 202);
    await h.expectNot(t3, b, b2);

    ok2xx(await h.rest('PUT', v1Path(hub, 'groups', 'x1', 'users', 'alice')));
    ok2xx(await h.rest('DELETE', v1Path(hub, 'users', 'alice', 'groups')));
    const t4 = rand('v1-ug-all-');
    assert.equal((await v1send(hub, ['groups', 'x1'], t4)).status, 202);
    await h.expectNot(t4, a);
  });

  test('close a connection', async () => {
    const hub = rand('v');
    const a = await h.connect({ hub, transport: 'sse' });
    const b = await h.connect({ hub, transport: 'ws' });
    ok2xx(await h.rest('DELETE', v1Path(hub, 'connections', a.id)));
    await a.waitClosed();
    const t = rand('v1-after-');
    assert.equal((await v1send(hub, [], t)).status, 202);
    await b.waitText(t);
  });
});

describe('api-version', () => {
  test('any api-version (or none) is accepted', async () => {
    const hub = rand('v');
    const c = await h.connect({ hub });
    for (const v of ['2022-06-01', '2022-11-01', '2023-07-01', '2024-01-01', '2024-12-01', '1.0']) {
      const t = rand(`ver-${v}-`);
      const res = await h.rest('POST', hubPath(hub, ':send'), { query: { 'api-version': v }, body: { target: 'msg', arguments: [t] } });
      assert.equal(res.status, 202, res.describe());
      await c.waitText(t);
    }
  });
});

describe('bad input', () => {
  test('invalid hub name is 400 with an error body', async () => {
    const res = await h.rest('POST', '/api/hubs/1bad/:send', { body: { target: 'msg', arguments: [] } });
    assert.equal(res.status, 400, res.describe());
    assert.ok(res.text.length > 0, 'error body');
  });

  test('missing body or target is 400', async () => {
    const hub = rand('v');
    const empty = await h.rest('POST', hubPath(hub, ':send'), { body: '', contentType: 'application/json' });
    assert.equal(empty.status, 400, empty.describe());
    const noTarget = await h.rest('POST', hubPath(hub, ':send'), { body: { arguments: [1] } });
    assert.equal(noTarget.status, 400, noTarget.describe());
    const garbage = await h.rest('POST', hubPath(hub, ':send'), { body: '{not json', contentType: 'application/json' });
    assert.equal(garbage.status, 400, garbage.describe());
  });

  test('a body over 1 MB is 413 and the service keeps serving', async () => {
    const hub = rand('v');
    const c = await h.connect({ hub });
    const big = JSON.stringify({ target: 'msg', arguments: ['x'.repeat(1100 * 1024)] });
    const res = await h.rest('POST', hubPath(hub, ':send'), { body: big, contentType: 'application/json' });
    assert.equal(res.status, 413, res.describe());
    assert.equal(c.texts().some((t) => t.length > 1000), false);
    const t = rand('after-413-');
    await h.sendAll(hub, t);
    await c.waitText(t);
  });

  test('invalid group name (whitespace only) is 400', async () => {
    const hub = rand('v');
    const res = await h.rest('POST', `/api/hubs/${hub}/groups/%20%20/:send`, { body: { target: 'msg', arguments: [] } });
    assert.equal(res.status, 400, res.describe());
  });

  test('health answers GET and HEAD', async () => {
    for (const method of ['GET', 'HEAD']) {
      const res = await fetch(`${h.server.url}/api/health`, { method });
      assert.equal(res.status, 200);
    }
  });
});
