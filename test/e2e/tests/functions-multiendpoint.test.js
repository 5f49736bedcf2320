// Issue 4, "what it must show" item 3: two Signalbox instances as two endpoints of one function
// app (Azure__SignalR__Endpoints__east__primary, ..__west__secondary). Messages and group
// actions reach the clients of both; negotiate moves to the secondary while the primary is
// stopped and back when it returns (the app checks endpoint health every 250 ms, set by the
// AzureSignalRHealthCheck app settings).
import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { createClient } from '../lib/clients.js';
import { rest, hubPath } from '../lib/rest.js';
import { rand, freePort, until, withTimeout } from '../lib/util.js';
import { startFunctionsApp, startSignalboxAt, connectViaApp, connectionString, triggerUrl } from '../lib/functionsapp.js';

const HEALTH_INTERVAL_MS = 250;
const FAILOVER_TIMEOUT = 10000;

let primary; // east
let secondary; // west
let app;
let appPort;
const clients = [];
const stopped = []; // handles of stopped Signalbox runs, for the crash check and logs

before(async () => {
  appPort = await freePort();
  const [pp, ps] = [await freePort(), await freePort()];
  [primary, secondary] = await Promise.all([
    startSignalboxAt({ port: pp, key: rand('east-key-') + 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789', upstream: [triggerUrl(appPort)] }),
    startSignalboxAt({ port: ps, key: rand('west-key-') + 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789', upstream: [triggerUrl(appPort)] }),
  ]);
  app = await startFunctionsApp({
    port: appPort,
    env: {
      Azure__SignalR__Endpoints__east__primary: connectionString(primary),
      Azure__SignalR__Endpoints__west__secondary: connectionString(secondary),
      AzureSignalRHealthCheck__Interval: `${HEALTH_INTERVAL_MS}ms`,
      AzureSignalRHealthCheck__Timeout: '00:00:01',
      AzureSignalRHealthCheck__MaxRetries: '0',
    },
  });
  await bothOnline();
});

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.stop()));
});

after(async () => {
  await Promise.all(clients.splice(0).map((c) => c.stop()));
  const procs = [app, primary, secondary].filter(Boolean);
  const crashed = procs.filter((p) => p.child.exitCode !== null || p.child.signalCode !== null);
  await Promise.all(procs.map((p) => p.stop()));
  if (process.env.E2E_SERVER_LOG) for (const p of [...procs, ...stopped]) console.error(p.logs());
  if (crashed.length) throw new Error(`a process died during the tests:\n${crashed.map((p) => p.logs().slice(-3000)).join('\n----\n')}`);
});

const track = (c) => (clients.push(c), c);

/** Waits until the app's signalREndpoints binding reports both endpoints online. */
async function bothOnline() {
  await until(
    async () => {
      const res = await app.call('GET', '/api/endpoints');
      return res.status === 200 && res.json().length === 2 && res.json().every((e) => e.online);
    },
    FAILOVER_TIMEOUT,
    'both endpoints online in GET /api/endpoints',
    50,
  );
}

/** The url of a fresh negotiate through the app. */
async function negotiateUrl(userId) {
  const res = await app.negotiate(userId);
  const text = await res.text();
  assert.equal(res.status, 200, `negotiate: ${res.status} ${text}`);
  return JSON.parse(text).url;
}

/** Fence per client on the Signalbox that holds it (see harness.fence). */
async function fence(server, ...cs) {
  await Promise.all(
    cs.map(async (c) => {
      const marker = rand('fence-');
      const res = await rest(server, 'POST', hubPath('chat', 'connections', c.id, ':send'), { body: { target: 'msg', arguments: [marker] } });
      assert.equal(res.status, 202, res.describe());
      await c.waitText(marker, { what: `fence marker on ${c.name}` });
    }),
  );
}

async function isOn(server, c) {
  const res = await rest(server, 'HEAD', hubPath('chat', 'connections', c.id));
  return res.status === 200;
}

async function ok(res) {
  assert.equal(res.status, 204, res.describe());
}

test('messages and group actions reach clients of both endpoints; the trigger serves both', async () => {
  // signalREndpoints and signalRNegotiation list both, with their names and types.
  const eps = (await app.call('GET', '/api/endpoints')).json();
  assert.deepEqual(
    eps.map((e) => [e.name, e.endpointType, e.endpoint]).sort(),
    [
      ['east', 'Primary', primary.url],
      ['west', 'Secondary', secondary.url],
    ],
  );
  const uw = rand('west-user-');
  const neg = await app.call('POST', `/api/negotiation?userId=${uw}`);
  assert.equal(neg.status, 200, neg.describe());
  const byName = Object.fromEntries(neg.json().endpoints.map((e) => [e.name, e]));
  assert.equal(byName.east.connectionInfo.url, `${primary.url}/client/?hub=chat`);
  assert.equal(byName.west.connectionInfo.url, `${secondary.url}/client/?hub=chat`);

  // Negotiate picks the online primary.
  const ue = rand('east-user-');
  const ce = track(await connectViaApp(app, { userId: ue }));
  assert.ok(await isOn(primary, ce), 'the negotiated client is on the primary');
  assert.ok(!(await isOn(secondary, ce)), 'and not on the secondary');
  // A client of the secondary, with the connection info signalRNegotiation gave for it.
  const { url, accessToken } = byName.west.connectionInfo;
  const cw = track(await createClient(secondary, { hub: 'chat', url, token: accessToken, userId: uw, protocol: 'messagepack' }));
  assert.ok(await isOn(secondary, cw), 'the west client is on the secondary');

  // Broadcast: both.
  let t = rand('all-');
  await ok(await app.send({ kind: 'all', target: 'msg', args: [t] }));
  await Promise.all([ce.waitText(t), cw.waitText(t)]);

  // User: the user's endpoint only has the connection; the other endpoint has nobody.
  t = rand('user-');
  await ok(await app.send({ kind: 'user', userId: uw, target: 'msg', args: [t] }));
  await cw.waitText(t);
  await fence(primary, ce);
  assert.equal(ce.got(t), false, 'the east client must not get the west user message');

  // Connection add to a group on the endpoint that holds it (the other answers "no such
  // connection", which must not fail the action), then a group send.
  const g = rand('g-');
  await ok(await app.group({ action: 'add', connectionId: cw.id, groupName: g }));
  await ok(await app.group({ action: 'add', userId: ue, groupName: g }));
  t = rand('group-');
  await ok(await app.send({ kind: 'group', groupName: g, target: 'msg', args: [t] }));
  await Promise.all([ce.waitText(t), cw.waitText(t)]);
  await ok(await app.group({ action: 'remove', connectionId: cw.id, groupName: g }));
  t = rand('group2-');
  await ok(await app.send({ kind: 'group', groupName: g, target: 'msg', args: [t] }));
  await ce.waitText(t);
  await fence(secondary, cw);
  assert.equal(cw.got(t), false, 'removed from the group on the secondary');

  // Connection send to each side.
  t = rand('conn-');
  await ok(await app.send({ kind: 'connection', connectionId: cw.id, target: 'msg', args: [t] }));
  await cw.waitText(t);

  // An output item's "endpoints" restricts where it goes: only the named one, or none.
  t = rand('west-only-');
  await ok(await app.output({ target: 'msg', arguments: [t], endpoints: [{ endpointType: 'Secondary', name: 'west', endpoint: secondary.url }] }));
  await cw.waitText(t);
  await fence(primary, ce);
  assert.equal(ce.got(t), false, 'an item for the west endpoint must not reach the east client');
  // An empty endpoints list goes nowhere, and says so (issue 11: it used to succeed silently).
  t = rand('nowhere-');
  const nowhere = await app.output({ target: 'msg', arguments: [t], endpoints: [] });
  assert.equal(nowhere.status, 422, nowhere.describe());
  assert.match(nowhere.text, /match no configured endpoint/);
  await fence(primary, ce);
  await fence(secondary, cw);
  assert.equal(ce.got(t) || cw.got(t), false, 'an item with an empty endpoints list goes nowhere');

  // The trigger validates upstream signatures of both endpoints (different keys).
  assert.equal(await withTimeout(ce.conn.invoke('add', 1, 2), 10000, 'east add'), 3);
  assert.equal(await withTimeout(cw.conn.invoke('add', 3, 4), 10000, 'west add'), 7);
  const ev = await app.waitEvent(cw.id, (e) => e.event === 'connected', 'west connected event');
  assert.equal(ev.userId, uw);
});

test('negotiate moves to the secondary while the primary is stopped and back when it returns', async () => {
  await bothOnline();
  for (let i = 0; i < 5; i++) assert.equal(await negotiateUrl(), `${primary.url}/client/?hub=chat`, 'primary preferred');
  const onWest = track(await createClient(secondary, { hub: 'chat', token: undefined, userId: rand('w-') }));

  // Stop the primary.
  const primaryPort = primary.port;
  const primaryKey = primary.key;
  await primary.stop();
  stopped.push(primary);
  const t0 = Date.now();
  await until(async () => (await negotiateUrl()) === `${secondary.url}/client/?hub=chat`, FAILOVER_TIMEOUT, 'negotiate to answer the secondary', 50);
  const failoverMs = Date.now() - t0;
  for (let i = 0; i < 5; i++) assert.equal(await negotiateUrl(), `${secondary.url}/client/?hub=chat`, 'only the secondary while the primary is down');
  const eps = (await app.call('GET', '/api/endpoints')).json();
  assert.deepEqual(Object.fromEntries(eps.map((e) => [e.name, e.online])), { east: false, west: true });

  const c0 = track(await connectViaApp(app, { userId: rand('fo-') }));
  assert.ok(await isOn(secondary, c0), 'a client negotiated during the outage is on the secondary');
  assert.equal(await withTimeout(c0.conn.invoke('echo', 'via west'), 10000, 'echo on the secondary'), 'via west');
  // Sends skip the offline endpoint, still reach the online one, and name the skipped one.
  let t = rand('during-');
  const during = await app.send({ kind: 'all', target: 'msg', args: [t] });
  assert.equal(during.status, 200, during.describe());
  assert.deepEqual(during.json().failed.map((f) => f.name), ['east']);
  assert.deepEqual(during.json().delivered.map((d) => d.name), ['west']);
  await Promise.all([c0.waitText(t), onWest.waitText(t)]);

  // With both endpoints down, negotiate answers 503 (the extension's text).
  const secondaryPort = secondary.port;
  const secondaryKey = secondary.key;
  await secondary.stop();
  stopped.push(secondary);
  await until(async () => (await app.negotiate()).status === 503, FAILOVER_TIMEOUT, 'negotiate to answer 503 with no endpoint online', 50);
  const res503 = await app.negotiate();
  assert.equal(res503.status, 503);
  assert.match(await res503.text(), /not connected yet/);
  secondary = await startSignalboxAt({ port: secondaryPort, key: secondaryKey, upstream: [triggerUrl(appPort)] });
  await until(async () => (await app.negotiate()).status === 200, FAILOVER_TIMEOUT, 'negotiate to recover when the secondary returns', 50);
  assert.equal(await negotiateUrl(), `${secondary.url}/client/?hub=chat`);
  const c1 = track(await connectViaApp(app, { userId: rand('fo-') }));

  // Bring the primary back at the same address.
  primary = await startSignalboxAt({ port: primaryPort, key: primaryKey, upstream: [triggerUrl(appPort)] });
  await until(async () => (await negotiateUrl()) === `${primary.url}/client/?hub=chat`, FAILOVER_TIMEOUT, 'negotiate to answer the primary again', 50);
  for (let i = 0; i < 5; i++) assert.equal(await negotiateUrl(), `${primary.url}/client/?hub=chat`, 'primary preferred again');
  const c2 = track(await connectViaApp(app, { userId: rand('back-') }));
  assert.ok(await isOn(primary, c2), 'a client negotiated after the return is on the primary');
  assert.equal(await withTimeout(c2.conn.invoke('echo', 'via east'), 10000, 'echo on the primary'), 'via east');
  t = rand('after-');
  await ok(await app.send({ kind: 'all', target: 'msg', args: [t] }));
  await Promise.all([c1.waitText(t), c2.waitText(t)]);
  assert.ok(failoverMs < FAILOVER_TIMEOUT, `failover took ${failoverMs} ms`);
});
