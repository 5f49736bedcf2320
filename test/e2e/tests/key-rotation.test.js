// Issue 7, build 2: key rotation without restart. Clients of all three transports stay
// connected while the keys rotate (add the new key as secondary, swap, drop the old one),
// through SIGHUP and through a change of the config file; a token is accepted exactly while
// its key is configured; the log says what changed and never shows a key.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { startServer } from '../lib/server.js';
import { createClient } from '../lib/clients.js';
import { clientToken } from '../lib/jwt.js';
import { hubPath, rest } from '../lib/rest.js';
import { rand, until } from '../lib/util.js';

const K1 = 'rotation-old-' + rand() + 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';
const K2 = 'rotation-new-' + rand() + 'abcdefghijklmnopqrstuvwxyz';
let server;
const clients = [];
after(async () => {
  if (process.env.E2E_SERVER_LOG) console.error(server?.logs());
  await Promise.all(clients.map((c) => c.stop()));
  await server?.stop();
});

test('rotating the access keys drops no client of any transport and refuses no token of a configured key', async () => {
  server = await startServer({ keys: [], config: `access-key: [${K1}]\n` });
  const cfgFile = server.argv[server.argv.indexOf('--config') + 1];
  const writeConfig = (keys) => {
    fs.writeFileSync(cfgFile + '.tmp', `access-key: [${keys.join(', ')}]\n`);
    fs.renameSync(cfgFile + '.tmp', cfgFile);
  };
  const reloads = () => (server.logs().match(/msg="configuration reloaded"/g) ?? []).length;
  const hub = rand('rot');
  // The app mints tokens with its current primary key, as a negotiate function does.
  let primary = K1;
  const tokenOf = (userId) => () => clientToken(primary, hub, { userId });
  const combos = [
    { transport: 'ws', protocol: 'json' },
    { transport: 'ws', protocol: 'messagepack' },
    { transport: 'sse', protocol: 'json' },
    { transport: 'lp', protocol: 'json' },
    { transport: 'lp', protocol: 'messagepack' },
  ];
  for (const [i, c] of combos.entries()) {
    const userId = `u${i}-${c.transport}`;
    clients.push(await createClient({ ...server, key: K1 }, { hub, userId, ...c, token: tokenOf(userId) }));
  }
  const negotiate = async (key) => {
    const r = await fetch(`${server.url}/client/negotiate?hub=${hub}&negotiateVersion=1`, {
      method: 'POST', headers: { Authorization: `Bearer ${clientToken(key, hub, { userId: 'probe' })}` },
    });
    await r.arrayBuffer();
    return r.status;
  };
  const everyoneGets = async (key, step) => {
    const t = rand(`${step}-`);
    const res = await rest({ ...server, key }, 'POST', hubPath(hub, ':send'), { body: { target: 'msg', arguments: [t] } });
    assert.equal(res.status, 202, `${step}: ${res.describe()}`);
    await Promise.all(clients.map((c) => c.waitText(t)));
    // An invocation from each client exercises the send path (POST for SSE and long polling).
    await Promise.all(clients.map((c) => c.conn.send('ping', step)));
  };
  await everyoneGets(K1, 'start');

  // 1. Add the new key as secondary (SIGHUP).
  writeConfig([K1, K2]);
  server.child.kill('SIGHUP');
  await until(() => reloads() >= 1, 10000, 'the reload after SIGHUP');
  assert.equal(await negotiate(K1), 200);
  assert.equal(await negotiate(K2), 200);
  await everyoneGets(K1, 'added-old');
  await everyoneGets(K2, 'added-new');

  // 2. Swap: the new key becomes primary (the file change alone triggers the reload); the
  //    app mints new tokens with it from now on.
  writeConfig([K2, K1]);
  await until(() => reloads() >= 2, 10000, 'the reload after the file changed');
  primary = K2;
  assert.equal(await negotiate(K1), 200);
  assert.equal(await negotiate(K2), 200);
  await everyoneGets(K2, 'swapped');

  // 3. Drop the old key (SIGHUP). Connections stay (long polling and SSE go on with the
  //    token that created their connection, as WebSockets do); every other old-key token
  //    is refused from now on.
  writeConfig([K2]);
  server.child.kill('SIGHUP');
  await until(() => reloads() >= 3, 10000, 'the reload that drops the old key');
  assert.equal(await negotiate(K1), 401);
  assert.equal(await negotiate(K2), 200);
  await everyoneGets(K2, 'dropped');
  const oldRest = await rest({ ...server, key: K1 }, 'POST', hubPath(hub, ':send'), { body: { target: 'msg', arguments: ['x'] } });
  assert.equal(oldRest.status, 401);

  for (const c of clients) assert.equal(c.isClosed, false, `${c.name} was dropped: ${c.closeError}`);
  const logs = server.logs();
  assert.match(logs, /msg="configuration reloaded" trigger=SIGHUP changed="access-key \(2 keys, was 1\)"/);
  assert.match(logs, /msg="configuration reloaded" trigger="file changed" changed="access-key \(2 keys, was 2\)"/);
  assert.match(logs, /changed="access-key \(1 keys, was 2\)"/);
  assert.ok(!logs.includes(K1) && !logs.includes(K2), 'a key is in the log');
});
