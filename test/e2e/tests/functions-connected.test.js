// Issue 11 item 3: a Go connected handler that returns an error makes the trigger answer
// 403. Azure SignalR Service does not wait for connected, so by default the client stays
// connected (and the functions go doc says so); Signalbox started with
// --upstream-reject-connections closes it, as Azure Web PubSub's blocking connect does.
// Either way the service's log for that 403 does not blame the access key.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { rand, freePort, withTimeout } from '../lib/util.js';
import { startFunctionsApp, startSignalboxAt, connectViaApp, connectionString, triggerUrl } from '../lib/functionsapp.js';

let blocking; // --upstream-reject-connections
let plain; // the default
let appBlocking;
let appPlain;
const clients = [];
const track = (c) => (clients.push(c), c);

before(async () => {
  const [p1, p2, a1, a2] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const key = rand('k-') + 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
  [blocking, plain] = await Promise.all([
    startSignalboxAt({ port: p1, key, upstream: [triggerUrl(a1)], flags: ['--upstream-reject-connections'] }),
    startSignalboxAt({ port: p2, key, upstream: [triggerUrl(a2)] }),
  ]);
  [appBlocking, appPlain] = await Promise.all([
    startFunctionsApp({ port: a1, env: { AzureSignalRConnectionString: connectionString(blocking) } }),
    startFunctionsApp({ port: a2, env: { AzureSignalRConnectionString: connectionString(plain) } }),
  ]);
});

after(async () => {
  await Promise.all(clients.splice(0).map((c) => c.stop()));
  const procs = [appBlocking, appPlain, blocking, plain].filter(Boolean);
  const crashed = procs.filter((p) => p.child.exitCode !== null || p.child.signalCode !== null);
  await Promise.all(procs.map((p) => p.stop()));
  if (process.env.E2E_SERVER_LOG) for (const p of procs) console.error(p.logs());
  if (crashed.length) throw new Error(`a process died during the tests:\n${crashed.map((p) => p.logs().slice(-3000)).join('\n----\n')}`);
});

test('with --upstream-reject-connections a refused connected closes the connection', async () => {
  const ok = track(await connectViaApp(appBlocking, { userId: rand('fine-') }));
  // The refusal may arrive with the handshake (start() fails) or just after it (the
  // connection closes); either way with the function's text.
  const user = rand('banned-');
  let closeErr;
  let pending = Promise.resolve('not invoked');
  try {
    const banned = track(await connectViaApp(appBlocking, { userId: user }));
    // An invocation made at once waits behind connected and never reaches the function.
    pending = banned.conn.invoke('echo', 'should not run').then(
      () => 'resolved',
      (err) => err.message,
    );
    closeErr = await banned.waitClosed();
  } catch (err) {
    closeErr = err;
  }
  assert.match(String(closeErr?.message ?? closeErr), /Connection rejected by the upstream: user is banned/);
  assert.notEqual(await withTimeout(pending, 10000, 'the pending invoke to settle'), 'resolved');
  const events = (await appBlocking.events()).filter((e) => e.userId === user);
  assert.deepEqual(events.map((e) => e.event), ['connected'], 'no invocation and no disconnected after the refusal');
  // Other clients are not affected.
  assert.equal(await withTimeout(ok.conn.invoke('echo', 'still here'), 10000, 'echo'), 'still here');
  const log = blocking.logs();
  assert.match(log, /connected handler returned an error/);
  assert.doesNotMatch(log.split('\n').filter((l) => l.includes('status=403')).join('\n'), /access key/);
});

test('by default (as Azure SignalR Service) a refused connected leaves the client connected', async () => {
  const banned = track(await connectViaApp(appPlain, { userId: rand('banned-') }));
  await appPlain.waitEvent(banned.id, (e) => e.event === 'connected', 'connected event');
  assert.equal(await withTimeout(banned.conn.invoke('echo', 'not blocked'), 10000, 'echo'), 'not blocked');
  assert.equal(banned.isClosed, false);
  const log = plain.logs();
  assert.match(log, /status=403/);
  assert.doesNotMatch(log.split('\n').filter((l) => l.includes('status=403')).join('\n'), /access key/);
});
