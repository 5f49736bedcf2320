// Issue 2: every data-plane REST operation (spec table 4.4, rows 1-19 and 24) observed from the
// clients' side: who receives, and - proven with a fence message - who must not.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { harness } from '../lib/harness.js';
import { COMBOS } from '../lib/clients.js';
import { hubPath } from '../lib/rest.js';
import { decodeJWT } from '../lib/jwt.js';
import { rand, until } from '../lib/util.js';
import { invocationFrame, multiProtocolBody } from '../lib/frames.js';

const h = harness();

const send = (hub, segments, text, opts = {}) =>
  h.rest('POST', hubPath(hub, ...segments), { body: { target: 'msg', arguments: [text] }, ...opts });

function status(res, want) {
  assert.equal(res.status, want, res.describe());
}

function notFound(res, code) {
  assert.equal(res.status, 404, res.describe());
  assert.equal(res.errorCode, code, `x-ms-error-code of ${res.describe()}`);
}

/** Four clients across transports and protocols: a1 and a2 are user 'alice', b is 'bob', n is anonymous. */
async function four(hub) {
  const [a1, a2, b, n] = await Promise.all([
    h.connect({ hub, userId: 'alice', transport: 'ws', protocol: 'json', name: 'a1' }),
    h.connect({ hub, userId: 'alice', transport: 'lp', protocol: 'messagepack', name: 'a2' }),
    h.connect({ hub, userId: 'bob', transport: 'sse', protocol: 'json', name: 'b' }),
    h.connect({ hub, transport: 'ws', protocol: 'messagepack', name: 'n' }),
  ]);
  return { a1, a2, b, n };
}

describe('send', () => {
  test('to all, with excluded connections', async () => {
    const hub = rand('r');
    const { a1, a2, b, n } = await four(hub);
    const all = rand('all-');
    status(await send(hub, [':send'], all), 202);
    await h.expectGot(all, a1, a2, b, n);

    const some = rand('excl-');
    status(await send(hub, [':send'], some, { query: { excluded: [a1.id, b.id] } }), 202);
    await h.expectGot(some, a2, n);
    await h.expectNot(some, a1, b);
  });

  test('to a user reaches all of that user\'s connections only', async () => {
    const hub = rand('r');
    const { a1, a2, b, n } = await four(hub);
    const text = rand('user-');
    status(await send(hub, ['users', 'alice', ':send'], text), 202);
    await h.expectGot(text, a1, a2);
    await h.expectNot(text, b, n);
    // An offline user is not an error.
    status(await send(hub, ['users', 'nobody', ':send'], rand('x-')), 202);
  });

  test('to a connection reaches only that connection', async () => {
    const hub = rand('r');
    const { a1, a2, b, n } = await four(hub);
    const text = rand('conn-');
    status(await send(hub, ['connections', a2.id, ':send'], text), 202);
    await h.expectGot(text, a2);
    await h.expectNot(text, a1, b, n);
    status(await send(hub, ['connections', 'no-such-connection', ':send'], rand('x-')), 202);
  });

  test('another hub with the same user and group names is not reached', async () => {
    const hub = rand('r');
    const other = rand('r');
    const here = await h.connect({ hub, userId: 'alice' });
    const there = await h.connect({ hub: other, userId: 'alice' });
    status(await h.rest('PUT', hubPath(other, 'groups', 'g', 'connections', there.id)), 200);
    const t1 = rand('hub-');
    status(await send(hub, [':send'], t1), 202);
    const t2 = rand('hub-user-');
    status(await send(hub, ['users', 'alice', ':send'], t2), 202);
    const t3 = rand('hub-group-');
    status(await send(hub, ['groups', 'g', ':send'], t3), 202);
    await h.expectGot(t1, here);
    await h.expectGot(t2, here);
    await h.expectNot(t1, there);
    await h.expectNot(t2, there);
    await h.expectNot(t3, there);
  });

  test('PascalCase body {Target, Arguments} as the .NET SDK writes it', async () => {
    const hub = rand('r');
    const c = await h.connect({ hub, transport: 'lp', protocol: 'messagepack' });
    const text = rand('pascal-');
    const res = await h.rest('POST', hubPath(hub, ':send'), { body: { Target: 'msg', Arguments: [text, { N: 1 }] } });
    status(res, 202);
    const m = await c.waitText(text);
    assert.deepEqual(m.args, [text, { N: 1 }]);
  });

  test('application/octet-stream multi-protocol body: each client gets the frame of its protocol', async () => {
    const hub = rand('r');
    const j = await h.connect({ hub, transport: 'ws', protocol: 'json' });
    const m = await h.connect({ hub, transport: 'ws', protocol: 'messagepack' });
    const id = rand('multi-');
    const body = multiProtocolBody({
      json: invocationFrame('json', 'msg', [id, 'via-json']),
      messagepack: invocationFrame('messagepack', 'msg', [id, 'via-messagepack']),
    });
    status(await h.rest('POST', hubPath(hub, ':send'), { body, contentType: 'application/octet-stream' }), 202);
    assert.deepEqual((await j.waitText(id)).args, [id, 'via-json']);
    assert.deepEqual((await m.waitText(id)).args, [id, 'via-messagepack']);
  });
});

describe('groups of connections', () => {
  test('group send with excluded; add and remove a connection', async () => {
    const hub = rand('r');
    const { a1, a2, b, n } = await four(hub);
    const g = rand('g-');
    status(await h.rest('PUT', hubPath(hub, 'groups', g, 'connections', a1.id)), 200);
    status(await h.rest('PUT', hubPath(hub, 'groups', g, 'connections', b.id)), 200);
    status(await h.rest('PUT', hubPath(hub, 'groups', g, 'connections', n.id)), 200);

    const t1 = rand('group-');
    status(await send(hub, ['groups', g, ':send'], t1), 202);
    await h.expectGot(t1, a1, b, n);
    await h.expectNot(t1, a2);

    const t2 = rand('group-excl-');
    status(await send(hub, ['groups', g, ':send'], t2, { query: { excluded: n.id } }), 202);
    await h.expectGot(t2, a1, b);
    await h.expectNot(t2, n, a2);

    status(await h.rest('DELETE', hubPath(hub, 'groups', g, 'connections', a1.id)), 200);
    const t3 = rand('group-after-remove-');
    status(await send(hub, ['groups', g, ':send'], t3), 202);
    await h.expectGot(t3, b, n);
    await h.expectNot(t3, a1, a2);
  });

  test('adding an unknown connection to a group is 404 Error.Connection.NotExisted', async () => {
    const hub = rand('r');
    notFound(await h.rest('PUT', hubPath(hub, 'groups', 'g', 'connections', 'no-such-connection')), 'Error.Connection.NotExisted');
  });

  test('a connection leaves all its groups', async () => {
    const hub = rand('r');
    const { a1, b } = await four(hub);
    for (const g of ['g1', 'g2']) {
      status(await h.rest('PUT', hubPath(hub, 'groups', g, 'connections', a1.id)), 200);
      status(await h.rest('PUT', hubPath(hub, 'groups', g, 'connections', b.id)), 200);
    }
    status(await h.rest('DELETE', hubPath(hub, 'connections', a1.id, 'groups')), 200);
    for (const g of ['g1', 'g2']) {
      const t = rand(`${g}-`);
      status(await send(hub, ['groups', g, ':send'], t), 202);
      await h.expectGot(t, b);
      await h.expectNot(t, a1);
    }
  });

  test('group membership dies with the connection', async () => {
    const hub = rand('r');
    const c = await h.connect({ hub, userId: 'carol' });
    status(await h.rest('PUT', hubPath(hub, 'groups', 'g', 'connections', c.id)), 200);
    status(await h.rest('HEAD', hubPath(hub, 'groups', 'g')), 200);
    await c.stop();
    await until(async () => (await h.rest('HEAD', hubPath(hub, 'groups', 'g'))).status === 404, 5000, 'the group to be empty');
    const c2 = await h.connect({ hub, userId: 'carol' });
    const t = rand('g-');
    status(await send(hub, ['groups', 'g', ':send'], t), 202);
    await h.expectNot(t, c2);
  });

  test('list the connections of a group', async () => {
    const hub = rand('r');
    const { a1, b, n } = await four(hub);
    for (const c of [a1, b, n]) status(await h.rest('PUT', hubPath(hub, 'groups', 'g', 'connections', c.id)), 200);
    const res = await h.rest('GET', hubPath(hub, 'groups', 'g', 'connections'), { query: { 'api-version': '2024-12-01' } });
    status(res, 200);
    const got = res.json().value;
    assert.ok(Array.isArray(got), res.describe());
    const byId = Object.fromEntries(got.map((e) => [e.connectionId, e.userId]));
    assert.deepEqual(Object.keys(byId).sort(), [a1.id, b.id, n.id].sort());
    assert.equal(byId[a1.id], 'alice');
    assert.equal(byId[b.id], 'bob');
    assert.ok(!byId[n.id], 'an anonymous connection has no userId');
  });
});

test('list the connections of a group page by page through nextLink', async () => {
  const hub = rand('r');
  const { a1, a2, b, n } = await four(hub);
  const all = [a1, a2, b, n];
  for (const c of all) assert.equal((await h.rest('PUT', hubPath(hub, 'groups', 'pg', 'connections', c.id))).status, 200);
  const path = hubPath(hub, 'groups', 'pg', 'connections');
  let res = await h.rest('GET', path, { query: { 'api-version': '2024-12-01', maxpagesize: 1 } });
  const ids = [];
  for (let pages = 1; ; pages++) {
    assert.equal(res.status, 200, res.describe());
    const page = res.json();
    assert.ok(page.value.length <= 1, `maxpagesize=1 honoured: ${res.text}`);
    ids.push(...page.value.map((e) => e.connectionId));
    if (!page.nextLink) break;
    assert.ok(pages < 10, 'paging ends');
    const next = new URL(page.nextLink);
    assert.equal(next.pathname, path, `nextLink is absolute and names the same operation: ${page.nextLink}`);
    res = await h.rest('GET', path, { query: next.searchParams });
  }
  assert.deepEqual(ids.sort(), all.map((c) => c.id).sort(), 'every member exactly once');
});

describe('groups of users', () => {
  test('persistent membership (no ttl): current AND new connections of the user are in the group', async () => {
    const hub = rand('r');
    const { a1, a2, b, n } = await four(hub);
    const g = rand('ug-');
    status(await h.rest('PUT', hubPath(hub, 'users', 'alice', 'groups', g)), 200);
    const t1 = rand('ug-');
    status(await send(hub, ['groups', g, ':send'], t1), 202);
    await h.expectGot(t1, a1, a2);
    await h.expectNot(t1, b, n);

    const a3 = await h.connect({ hub, userId: 'alice', transport: 'sse', protocol: 'json', name: 'a3' });
    const t2 = rand('ug-new-');
    status(await send(hub, ['groups', g, ':send'], t2), 202);
    await h.expectGot(t2, a1, a2, a3);
    await h.expectNot(t2, b, n);
  });

  test('ttl=0 adds only the current connections', async () => {
    const hub = rand('r');
    const { a1, b } = await four(hub);
    const g = rand('ttl0-');
    status(await h.rest('PUT', hubPath(hub, 'users', 'alice', 'groups', g), { query: { ttl: 0 } }), 200);
    const a3 = await h.connect({ hub, userId: 'alice', transport: 'lp', protocol: 'json', name: 'a3' });
    const t = rand('ttl0-');
    status(await send(hub, ['groups', g, ':send'], t), 202);
    await h.expectGot(t, a1);
    await h.expectNot(t, a3, b);
  });

  test('a positive ttl keeps the membership for new connections', async () => {
    const hub = rand('r');
    await h.connect({ hub, userId: 'alice' });
    const g = rand('ttl-');
    status(await h.rest('PUT', hubPath(hub, 'users', 'alice', 'groups', g), { query: { ttl: 600 } }), 200);
    const a3 = await h.connect({ hub, userId: 'alice', transport: 'ws', protocol: 'messagepack', name: 'a3' });
    const t = rand('ttl-');
    status(await send(hub, ['groups', g, ':send'], t), 202);
    await h.expectGot(t, a3);
  });

  test('remove a user from a group: current and new connections leave', async () => {
    const hub = rand('r');
    const { a1, a2, b } = await four(hub);
    const g = rand('ug-');
    status(await h.rest('PUT', hubPath(hub, 'users', 'alice', 'groups', g)), 200);
    status(await h.rest('PUT', hubPath(hub, 'users', 'bob', 'groups', g)), 200);
    status(await h.rest('DELETE', hubPath(hub, 'users', 'alice', 'groups', g)), 204);
    const a3 = await h.connect({ hub, userId: 'alice', name: 'a3' });
    const t = rand('ug-rm-');
    status(await send(hub, ['groups', g, ':send'], t), 202);
    await h.expectGot(t, b);
    await h.expectNot(t, a1, a2, a3);
  });

  test('remove a user from all groups', async () => {
    const hub = rand('r');
    const { a1, b } = await four(hub);
    for (const g of ['g1', 'g2']) {
      status(await h.rest('PUT', hubPath(hub, 'users', 'alice', 'groups', g)), 200);
      status(await h.rest('PUT', hubPath(hub, 'users', 'bob', 'groups', g)), 200);
    }
    status(await h.rest('DELETE', hubPath(hub, 'users', 'alice', 'groups')), 204);
    const a3 = await h.connect({ hub, userId: 'alice', name: 'a3' });
    for (const g of ['g1', 'g2']) {
      const t = rand(`${g}-`);
      status(await send(hub, ['groups', g, ':send'], t), 202);
      await h.expectGot(t, b);
      await h.expectNot(t, a1, a3);
    }
  });
});

describe('existence checks', () => {
  test('connection, user, group and user-in-group: 200 and 404 with x-ms-error-code', async () => {
    const hub = rand('r');
    const { a1, b } = await four(hub);
    status(await h.rest('HEAD', hubPath(hub, 'connections', a1.id)), 200);
    notFound(await h.rest('HEAD', hubPath(hub, 'connections', 'no-such-connection')), 'Warning.Connection.NotExisted');

    status(await h.rest('HEAD', hubPath(hub, 'users', 'alice')), 200);
    notFound(await h.rest('HEAD', hubPath(hub, 'users', 'nobody')), 'Warning.User.NotExisted');

    notFound(await h.rest('HEAD', hubPath(hub, 'groups', 'g')), 'Warning.Group.NotExisted');
    status(await h.rest('PUT', hubPath(hub, 'groups', 'g', 'connections', b.id)), 200);
    status(await h.rest('HEAD', hubPath(hub, 'groups', 'g')), 200);

    // bob is in g through his connection; alice is not. The SDK sends GET for this check.
    status(await h.rest('GET', hubPath(hub, 'users', 'bob', 'groups', 'g')), 200);
    status(await h.rest('HEAD', hubPath(hub, 'users', 'bob', 'groups', 'g')), 200);
    notFound(await h.rest('GET', hubPath(hub, 'users', 'alice', 'groups', 'g')), 'Info.User.NotInGroup');
    status(await h.rest('PUT', hubPath(hub, 'users', 'alice', 'groups', 'g2')), 200);
    status(await h.rest('GET', hubPath(hub, 'users', 'alice', 'groups', 'g2')), 200);
  });

  test('a stopped connection and its user stop existing', async () => {
    const hub = rand('r');
    const c = await h.connect({ hub, userId: 'dave', transport: 'lp' });
    const id = c.id;
    status(await h.rest('HEAD', hubPath(hub, 'connections', id)), 200);
    await c.stop();
    await until(async () => (await h.rest('HEAD', hubPath(hub, 'connections', id))).status === 404, 5000, 'connection gone');
    notFound(await h.rest('HEAD', hubPath(hub, 'connections', id)), 'Warning.Connection.NotExisted');
    notFound(await h.rest('HEAD', hubPath(hub, 'users', 'dave')), 'Warning.User.NotExisted');
  });
});

describe('close connections', () => {
  test('close one connection: its onclose fires, the others stay', async () => {
    const hub = rand('r');
    const { a1, a2, b, n } = await four(hub);
    status(await h.rest('DELETE', hubPath(hub, 'connections', a2.id), { query: { reason: 'bye-bye' } }), 200);
    await a2.waitClosed();
    const t = rand('after-close-');
    await h.sendAll(hub, t);
    await h.expectGot(t, a1, b, n);
    assert.equal(a2.got(t), false);
    await until(async () => (await h.rest('HEAD', hubPath(hub, 'connections', a2.id))).status === 404, 5000, 'closed connection gone');

    const res = await h.rest('DELETE', hubPath(hub, 'connections', 'no-such-connection'));
    if (res.status !== 200) notFound(res, 'Warning.Connection.NotExisted');
  });

  test('close with a reason on every transport: onclose gets the reason', async () => {
    const hub = rand('r');
    for (const combo of COMBOS) {
      const c = await h.connect({ hub, ...combo });
      status(await h.rest('DELETE', hubPath(hub, 'connections', c.id), { query: { reason: 'bye-bye' } }), 200);
      const err = await c.waitClosed();
      assert.match(String(err?.message), /bye-bye/, `${c.name}: the reason reaches the client`);
    }
  });

  test(':closeConnections closes everyone except excluded', async () => {
    const hub = rand('r');
    const { a1, a2, b, n } = await four(hub);
    status(await h.rest('POST', hubPath(hub, ':closeConnections'), { query: { excluded: n.id, reason: 'maintenance' } }), 204);
    await Promise.all([a1.waitClosed(), a2.waitClosed(), b.waitClosed()]);
    const t = rand('survivor-');
    await h.sendAll(hub, t);
    await h.expectGot(t, n);
    assert.equal(n.isClosed, false);
  });

  test('groups/{g}/:closeConnections closes the group members only', async () => {
    const hub = rand('r');
    const { a1, a2, b, n } = await four(hub);
    for (const c of [a1, b, n]) status(await h.rest('PUT', hubPath(hub, 'groups', 'g', 'connections', c.id)), 200);
    status(await h.rest('POST', hubPath(hub, 'groups', 'g', ':closeConnections'), { query: { excluded: n.id } }), 204);
    await Promise.all([a1.waitClosed(), b.waitClosed()]);
    const t = rand('survivor-');
    await h.sendAll(hub, t);
    await h.expectGot(t, a2, n);
  });

  test('users/{u}/:closeConnections closes all of the user\'s connections only', async () => {
    const hub = rand('r');
    const { a1, a2, b, n } = await four(hub);
    status(await h.rest('POST', hubPath(hub, 'users', 'alice', ':closeConnections')), 204);
    await Promise.all([a1.waitClosed(), a2.waitClosed()]);
    const t = rand('survivor-');
    await h.sendAll(hub, t);
    await h.expectGot(t, b, n);
  });
});

describe(':generateToken', () => {
  test('returns a client token for the user that connects', async () => {
    const hub = rand('r');
    const res = await h.rest('POST', hubPath(hub, ':generateToken'), {
      query: { userId: 'gen-user', minutesToExpire: 5, 'api-version': '2022-11-01' },
    });
    status(res, 200);
    const { token } = res.json();
    assert.equal(typeof token, 'string', res.describe());
    const claims = decodeJWT(token);
    assert.equal(claims['asrs.s.uid'], 'gen-user');
    assert.match(String(claims.aud), new RegExp(`/client/\\?hub=${hub}$`), 'aud names the client endpoint and hub');
    const left = claims.exp - Date.now() / 1000;
    assert.ok(left > 240 && left <= 330, `exp honours minutesToExpire=5 (${left} s left)`);

    const dflt = await h.rest('POST', hubPath(hub, ':generateToken'), { query: { userId: 'd', 'api-version': '2022-11-01' } });
    status(dflt, 200);
    const dleft = decodeJWT(dflt.json().token).exp - Date.now() / 1000;
    assert.ok(dleft > 3500 && dleft <= 3660, `default lifetime is 60 minutes (${dleft} s left)`);
    for (const bad of ['0', '-1', 'x']) {
      const r = await h.rest('POST', hubPath(hub, ':generateToken'), { query: { userId: 'd', minutesToExpire: bad } });
      status(r, 400);
    }

    for (const [transport, protocol] of [['ws', 'json'], ['lp', 'messagepack']]) {
      const c = await h.connect({ hub, token, transport, protocol });
      const t = rand('gen-');
      status(await send(hub, ['users', 'gen-user', ':send'], t), 202);
      await c.waitText(t);
    }
  });
});
