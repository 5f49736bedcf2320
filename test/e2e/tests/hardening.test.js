// Issue 7, found by probing from outside: each case as an outsider saw it, now refused or
// isolated. (The Go packages hold the unit regression tests of the same bugs.)
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { harness } from '../lib/harness.js';
import { FakeUpstream } from '../lib/upstream.js';
import { startServer } from '../lib/server.js';
import { createClient } from '../lib/clients.js';
import { clientToken, signJWT } from '../lib/jwt.js';
import { hubPath, rest } from '../lib/rest.js';
import { RS } from '../lib/raw.js';
import { rand, withTimeout, until, outcome } from '../lib/util.js';

const FN_KEY = 'fn-key-' + rand();
const up = new FakeUpstream();
const held = new Set();
up.override = (rec, res) => {
  if (rec.event === 'slow') {
    held.add(res); // answered when the test lets go
    return true;
  }
  if (rec.event === 'echoerr') {
    // A function app that echoes its request, secrets included, in an error body.
    res.writeHead(500).end(`cannot handle ${rec.path}?${rec.query} code=${rec.query.get('code')}`);
    return true;
  }
  return false;
};
const release = () => {
  for (const res of held) res.writeHead(200).end();
  held.clear();
};
const h = harness(async () => {
  await up.start();
  return {
    config:
      `upstream:\n  - "${up.url}/api/{hub}/{event}?code=${FN_KEY}&event={event}"\n` +
      'upstream-max-in-flight-per-event: 50\n',
  };
});
after(async () => {
  release();
  await up.close();
});

describe('found 1: a connection belongs to the token that negotiated it', () => {
  test('under negotiate v0 another anonymous token cannot poll, send to or delete the victim\'s connection', async () => {
    const hub = rand('hj');
    const victim = clientToken(h.server.key, hub);
    const attacker = signJWT({ aud: `http://127.0.0.1/client/?hub=${hub}`, other: 'token' }, h.server.key);
    const auth = (t) => ({ Authorization: `Bearer ${t}` });
    const neg = await fetch(`${h.server.url}/client/negotiate?hub=${hub}`, { method: 'POST', headers: auth(victim) });
    const { connectionId, connectionToken } = await neg.json();
    assert.equal(connectionToken, undefined, 'v0 has no connection token: the id is the public connection id');
    const url = `${h.server.url}/client/?hub=${hub}&id=${encodeURIComponent(connectionId)}`;
    assert.equal((await fetch(url, { headers: auth(victim) })).status, 200);
    assert.equal((await fetch(url, { method: 'POST', headers: auth(victim), body: `{"protocol":"json","version":1}${RS}` })).status, 200);
    const hs = await fetch(url, { headers: auth(victim) });
    assert.equal(hs.status, 200);
    const secret = rand('only-for-the-victim-');
    const sent = await h.rest('POST', hubPath(hub, 'connections', connectionId, ':send'), { body: { target: 'msg', arguments: [secret] } });
    assert.equal(sent.status, 202);

    const poll = await fetch(url, { headers: auth(attacker) });
    const body = await poll.text();
    assert.equal(poll.status, 403, body);
    assert.ok(!body.includes(secret), 'the attacker read the victim\'s message');
    assert.equal((await fetch(url, { method: 'POST', headers: auth(attacker), body: `{"type":6}${RS}` })).status, 403);
    assert.equal((await fetch(url, { method: 'DELETE', headers: auth(attacker) })).status, 403);

    const mine = await fetch(url, { headers: auth(victim), signal: AbortSignal.timeout(10000) });
    assert.equal(mine.status, 200);
    assert.ok((await mine.text()).includes(secret), 'the victim still gets its message');
  });
});

describe('found 2: one slow upstream event does not stall the others', () => {
  test('70 clients in a slow event: the 21st and later fail fast as overloaded, another client\'s echo answers at once', async () => {
    const hub = rand('slow');
    const clients = await Promise.all(Array.from({ length: 70 }, () => h.connect({ hub, transport: 'ws' })));
    let refused = 0;
    const calls = clients.map((c) => outcome(c.conn.invoke('slow', 1)).then((r) => {
      if (r.error) refused++;
      return r;
    }));
    await until(() => held.size >= 50, 10000, '50 slow calls at the function app');
    // The other 20 are refused at once, while the 50 are still held.
    await until(() => refused >= 20, 10000, '20 calls refused as overloaded');
    const other = await h.connect({ hub, transport: 'ws' });
    const t0 = Date.now();
    assert.equal(await withTimeout(other.conn.invoke('echo', 'fast'), 3000, 'echo beside the slow event'), 'fast');
    const echoMs = Date.now() - t0;
    assert.ok(echoMs < 1000, `echo took ${echoMs} ms`);
    release();
    const results = await withTimeout(Promise.all(calls), 15000, 'the slow calls');
    const overloaded = results.filter((r) => r.error && /upstream overloaded: 50 calls in flight for event slow/.test(r.error.message));
    assert.equal(overloaded.length, 20, JSON.stringify(results.filter((r) => r.error).map((r) => r.error.message).slice(0, 3)));
    assert.equal(results.filter((r) => !r.error).length, 50);
  });
});

describe('found 4: placeholders are escaped for their position in the upstream URL', () => {
  test('a target with & and = stays one query value of the signed request', async () => {
    const hub = rand('q');
    const c = await h.connect({ hub, transport: 'ws' });
    const target = 'x&code=evil&admin=1';
    await c.conn.send(target, 1);
    const rec = await up.waitFor((r) => r.hub === hub && r.category === 'messages', { what: 'the invocation upstream' });
    assert.deepEqual(rec.query.getAll('code'), [FN_KEY], rec.query.toString());
    assert.equal(rec.query.get('admin'), null);
    assert.equal(rec.query.get('event'), target);
    assert.equal(decodeURIComponent(rec.path), `/api/${hub}/${target}`);
  });
});

describe('found 5: a REST token is valid for its own path only', () => {
  test('user a%2Fgroups%2Fadmins cannot add a to admins; users/bob does not reach BOB', async () => {
    const hub = rand('aud');
    const bob = await h.connect({ hub, userId: 'BOB', transport: 'ws' });
    const forged = (p) => ({ token: signJWT({ aud: `http://127.0.0.1${p}` }, h.server.key) });
    const add = await h.rest('PUT', `/api/hubs/${hub}/users/a/groups/admins`, forged(`/api/hubs/${hub}/users/a%2Fgroups%2Fadmins`));
    assert.equal(add.status, 401, add.describe());
    const send = await h.rest('POST', hubPath(hub, 'users', 'BOB', ':send'), { body: { target: 'msg', arguments: ['x'] }, ...forged(hubPath(hub, 'users', 'bob', ':send')) });
    assert.equal(send.status, 401, send.describe());
    await h.expectNot('x', bob);
    assert.match(h.server.logs(), /msg="access token rejected" endpoint=rest reason=audience/);
  });
});

describe('found 6: REST refuses what it cannot deliver', () => {
  test('arguments nested 600 deep and 1e400 answer 400, not 202', async () => {
    const hub = rand('undeliv');
    const mp = await h.connect({ hub, transport: 'ws', protocol: 'messagepack' });
    for (const args of ['[' + '['.repeat(600) + ']'.repeat(600) + ']', '[1e400]']) {
      const res = await h.rest('POST', hubPath(hub, ':send'), { body: `{"target":"msg","arguments":${args}}` });
      assert.equal(res.status, 400, res.describe());
    }
    await h.sendAll(hub, 'still-fine');
    await mp.waitText('still-fine');
  });
});

describe('found 7: negotiate floods', () => {
  test('one address beyond the negotiate rate gets 429 with Retry-After; connected clients are still served', async () => {
    const server = await startServer({ config: 'negotiate-rate: 2\nnegotiate-burst: 10\n' });
    try {
      const hub = rand('flood');
      const c = await createClient(server, { hub, transport: 'ws' });
      const tok = clientToken(server.key, hub);
      const statuses = [];
      const retry = new Set();
      for (let i = 0; i < 60; i++) {
        const r = await fetch(`${server.url}/client/negotiate?hub=${hub}&negotiateVersion=1`, { method: 'POST', headers: { Authorization: `Bearer ${tok}` } });
        await r.arrayBuffer();
        statuses.push(r.status);
        if (r.status === 429) retry.add(r.headers.get('retry-after'));
      }
      const ok = statuses.filter((s) => s === 200).length;
      assert.ok(ok <= 12, `${ok} of 60 accepted`);
      assert.equal(statuses.filter((s) => s === 429).length, 60 - ok);
      assert.deepEqual([...retry], ['1']);
      const t = rand('served-');
      const res = await rest(server, 'POST', hubPath(hub, ':send'), { body: { target: 'msg', arguments: [t] } });
      assert.equal(res.status, 202);
      await c.waitText(t);
      await c.stop();
    } finally {
      await server.stop();
    }
  });
});

describe('found 8: smaller ones', () => {
  test('an upstream error body echoing the function key is logged redacted', async () => {
    const hub = rand('redact');
    const c = await h.connect({ hub, transport: 'ws' });
    const r = await outcome(c.conn.invoke('echoerr', 1));
    assert.match(r.error?.message ?? '', /status code 500/);
    await until(() => h.server.logs().includes('upstream call failed'), 5000, 'the failure log line');
    const logs = h.server.logs();
    assert.ok(!logs.includes(FN_KEY), 'the function key reached the log');
    assert.match(logs, /response="cannot handle/);
  });

  test('--access-key-file keeps the keys out of the process list; a short key is accepted with a warning', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'signalbox-keys-'));
    const file = path.join(dir, 'keys');
    const long = 'file-key-' + rand() + 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
    fs.writeFileSync(file, `# primary, secondary\n${long}\nshort\n`);
    const server = await startServer({ keys: [], args: ['--access-key-file', file] });
    try {
      assert.ok(!server.argv.join(' ').includes(long), 'the key is on the command line');
      const c = await createClient({ ...server, key: long }, { hub: rand('kf'), transport: 'lp' });
      await c.stop();
      const c2 = await createClient({ ...server, key: 'short' }, { hub: rand('kf'), transport: 'sse' });
      await c2.stop();
      assert.match(server.logs(), /access key is short.*key=2 length=5/);
      assert.ok(!server.logs().includes(long));
    } finally {
      await server.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
