// Issue 11, "what it must show": two Signalbox processes as the primary and the secondary
// endpoint of one Go function app (Azure__SignalR__Endpoints__a__primary, ..__b__secondary),
// with the default health settings, and the official JavaScript client.
//
// - Stop the primary: within 10 s every negotiation goes to the secondary (the default health
//   checks alone, no traffic to help them).
// - A send while the primary is down, detected or not, reaches the secondary's clients, is
//   reported as delivered with the primary named as failed, and is never duplicated by a
//   retry (the test retries as the Functions host does: on any non-2xx answer).
// - The primary returning takes negotiations back.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createClient } from '../lib/clients.js';
import { rest, hubPath } from '../lib/rest.js';
import { rand, freePort, until } from '../lib/util.js';
import { startFunctionsApp, startSignalboxAt, connectViaApp, connectionString, triggerUrl } from '../lib/functionsapp.js';

const FAILOVER_LIMIT_MS = 10000;

let primary;
let secondary;
let app;
let appPort;
const clients = [];
const stopped = [];
const figures = {};

const track = (c) => (clients.push(c), c);

before(async () => {
  appPort = await freePort();
  const [pp, ps] = [await freePort(), await freePort()];
  [primary, secondary] = await Promise.all([
    startSignalboxAt({ port: pp, key: rand('a-key-') + 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789', upstream: [triggerUrl(appPort)] }),
    startSignalboxAt({ port: ps, key: rand('b-key-') + 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789', upstream: [triggerUrl(appPort)] }),
  ]);
  // No health settings: the defaults are what is tested.
  app = await startFunctionsApp({
    port: appPort,
    env: {
      Azure__SignalR__Endpoints__a__primary: connectionString(primary),
      Azure__SignalR__Endpoints__b__secondary: connectionString(secondary),
    },
  });
  await until(
    async () => {
      const res = await app.call('GET', '/api/endpoints');
      return res.status === 200 && res.json().every((e) => e.online);
    },
    FAILOVER_LIMIT_MS,
    'both endpoints online',
    50,
  );
});

after(async () => {
  await Promise.all(clients.splice(0).map((c) => c.stop()));
  const procs = [app, primary, secondary].filter(Boolean);
  const crashed = procs.filter((p) => p.child.exitCode !== null || p.child.signalCode !== null);
  await Promise.all(procs.map((p) => p.stop()));
  if (process.env.E2E_SERVER_LOG) for (const p of [...procs, ...stopped]) console.error(p.logs());
  console.log(`# failover figures: ${JSON.stringify(figures)}`);
  if (crashed.length) throw new Error(`a process died during the tests:\n${crashed.map((p) => p.logs().slice(-3000)).join('\n----\n')}`);
});

const urlOf = (server) => `${server.url}/client/?hub=chat`;

async function negotiateUrl() {
  const res = await app.negotiate();
  const text = await res.text();
  assert.equal(res.status, 200, `negotiate: ${res.status} ${text}`);
  return JSON.parse(text).url;
}

/**
 * Negotiates without pause from now until `want` has been the only answer for `settle` ms
 * in a row; returns the time from `since` to the first answer of that final run.
 */
async function negotiationsMoveTo(want, since, what, settle = 1500) {
  let runStart = null;
  const deadline = since + FAILOVER_LIMIT_MS + settle + 5000;
  for (;;) {
    const url = await negotiateUrl();
    const now = Date.now();
    if (url === want) {
      runStart ??= now;
      if (now - runStart >= settle) return runStart - since;
    } else {
      runStart = null;
    }
    if (now > deadline) throw new Error(`${what}: negotiations still answer ${url}`);
  }
}

/** POST /api/send as the Functions host runs a function: retried on any non-2xx answer. */
async function sendLikeTheHost(body) {
  const answers = [];
  for (let attempt = 0; attempt < 3; attempt++) {
    const res = await app.send(body);
    answers.push(res);
    if (res.status >= 200 && res.status < 300) break;
  }
  return answers;
}

/** Proves `c` got `text` exactly once: a marker sent after it arrived, so would a duplicate. */
async function exactlyOnce(server, c, text) {
  await c.waitText(text);
  const marker = rand('fence-');
  const res = await rest(server, 'POST', hubPath('chat', 'connections', c.id, ':send'), { body: { target: 'msg', arguments: [marker] } });
  assert.equal(res.status, 202, res.describe());
  await c.waitText(marker);
  assert.equal(c.texts().filter((t) => t === text).length, 1, `${c.name} got ${text} more than once: ${c.texts()}`);
}

async function restartPrimary() {
  primary = await startSignalboxAt({ port: primary.port, key: primary.key, upstream: [triggerUrl(appPort)] });
}

test('failover to the secondary within 10 s, sends delivered once and reported, the primary takes negotiations back', async () => {
  // The secondary's client, with the connection info signalRNegotiation gives for b.
  const neg = await app.call('POST', '/api/negotiation');
  assert.equal(neg.status, 200, neg.describe());
  const b = neg.json().endpoints.find((e) => e.name === 'b');
  const onB = track(await createClient(secondary, { hub: 'chat', url: b.connectionInfo.url, token: b.connectionInfo.accessToken }));
  assert.equal(await negotiateUrl(), urlOf(primary), 'the primary is preferred');
  const onA = track(await connectViaApp(app, { userId: rand('a-user-') }));

  let t = rand('both-');
  const both = await app.send({ kind: 'all', target: 'msg', args: [t] });
  assert.equal(both.status, 204, both.describe());
  await Promise.all([onA.waitText(t), onB.waitText(t)]);

  // 1. Stop the primary (SIGTERM, drained). Nothing is sent: only the health checks see it.
  let t0 = Date.now();
  await primary.stop();
  stopped.push(primary);
  figures.activeFailoverMs = await negotiationsMoveTo(urlOf(secondary), t0, 'failover after stop');
  assert.ok(figures.activeFailoverMs < FAILOVER_LIMIT_MS, `negotiations moved after ${figures.activeFailoverMs} ms`);
  const during = track(await connectViaApp(app, { userId: rand('during-') }));
  assert.equal(await during.conn.invoke('echo', 'via b'), 'via b', 'a client negotiated now works through the secondary');

  // A send now (the primary known to be down): delivered to b, a named as failed.
  t = rand('detected-');
  let answers = await sendLikeTheHost({ kind: 'all', target: 'msg', args: [t] });
  assert.equal(answers.length, 1, `retried: ${answers.map((r) => r.describe())}`);
  assert.equal(answers[0].status, 200, answers[0].describe());
  assert.deepEqual(answers[0].json().failed.map((f) => [f.name, f.endpointType]), [['a', 'Primary']]);
  assert.deepEqual(answers[0].json().delivered.map((d) => d.name), ['b']);
  await exactlyOnce(secondary, onB, t);
  await exactlyOnce(secondary, during, t);
  // The output binding path: a delivered item does not fail the invocation.
  t = rand('output-');
  const out = await app.output({ target: 'msg', arguments: [t] });
  assert.equal(out.status, 204, out.describe());
  await exactlyOnce(secondary, onB, t);

  // 2. The primary returns: it takes negotiations back.
  t0 = Date.now();
  await restartPrimary();
  figures.failbackMs = await negotiationsMoveTo(urlOf(primary), t0, 'failback');
  assert.ok(figures.failbackMs < FAILOVER_LIMIT_MS, `negotiations came back after ${figures.failbackMs} ms`);
  const back = track(await connectViaApp(app, { userId: rand('back-') }));
  assert.equal(await back.conn.invoke('echo', 'via a'), 'via a');

  // 3. The primary dies (SIGKILL) and a send follows at once, before any health check can
  // notice: the call to a fails, the send is still delivered to b and reported so, once.
  primary.child.kill('SIGKILL');
  await primary.exited;
  stopped.push(primary);
  t0 = Date.now();
  t = rand('undetected-');
  answers = await sendLikeTheHost({ kind: 'all', target: 'msg', args: [t] });
  assert.equal(answers.length, 1, `retried: ${answers.map((r) => r.describe())}`);
  assert.equal(answers[0].status, 200, answers[0].describe());
  const [failed] = answers[0].json().failed;
  assert.equal(failed.name, 'a');
  assert.doesNotMatch(failed.error, /offline, skipped/, 'the send was made before the outage was detected');
  assert.deepEqual(answers[0].json().delivered.map((d) => d.name), ['b']);
  await exactlyOnce(secondary, onB, t);
  await exactlyOnce(secondary, during, t);
  // That failed call marked a offline at once (passive health).
  figures.passiveFailoverMs = await negotiationsMoveTo(urlOf(secondary), t0, 'failover after a failed send');
  assert.ok(figures.passiveFailoverMs < FAILOVER_LIMIT_MS, `negotiations moved after ${figures.passiveFailoverMs} ms`);

  // A group action in the same state is delivered too.
  const g = await app.group({ action: 'add', userId: rand('u-'), groupName: rand('g-') });
  assert.equal(g.status, 200, g.describe());
  assert.deepEqual(g.json().failed.map((f) => f.name), ['a']);

  // 4. And back once more.
  t0 = Date.now();
  await restartPrimary();
  figures.failback2Ms = await negotiationsMoveTo(urlOf(primary), t0, 'second failback');
  assert.ok(figures.failback2Ms < FAILOVER_LIMIT_MS);
});
