// Issue 3: a stalled upstream (never answers) does not stop other connections' invocations, the
// per-connection queue is bounded (excess invocations fail at once), and the per-request timeout
// turns a stall into a clear Completion error.
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { harness } from '../lib/harness.js';
import { FakeUpstream } from '../lib/upstream.js';
import { rand, withTimeout, outcome } from '../lib/util.js';

const TIMEOUT_S = 5;
const up = new FakeUpstream();
const stalled = new Set();
up.override = (rec, res) => {
  if (rec.event !== 'stall') return false;
  stalled.add(res); // never answered (until the test file ends)
  return true;
};
const h = harness(async () => {
  await up.start();
  return { config: `upstream:\n  - "${up.url}/{hub}/{category}/{event}"\nupstream-timeout: ${TIMEOUT_S}s\n` };
});
after(async () => {
  for (const res of stalled) res.destroy();
  await up.close();
});

describe('stalled upstream', () => {
  test('other connections are served while one connection waits; excess invocations fail at once; the stall times out', async () => {
    const hub = rand('stall');
    const a = await h.connect({ hub, transport: 'ws', protocol: 'json', name: 'stalled' });
    const b = await h.connect({ hub, transport: 'lp', protocol: 'messagepack', name: 'other' });
    const t0 = Date.now();
    const first = outcome(a.conn.invoke('stall', 'x'));
    await up.waitFor((r) => r.connectionId === a.id && r.event === 'stall', { what: 'the stalled call to reach the upstream' });

    // 100 more invocations queue behind the stalled one; the queue is bounded, so some fail at once.
    const queued = Array.from({ length: 100 }, (_, i) => outcome(a.conn.invoke('echo', i)));

    // Another connection is not held up by A's stall.
    const tb = Date.now();
    assert.equal(await withTimeout(b.conn.invoke('echo', 'not blocked'), 3000, 'B while A is stalled'), 'not blocked');
    assert.ok(Date.now() - tb < 3000);

    const results = await withTimeout(Promise.all([first, ...queued]), (TIMEOUT_S + 10) * 1000, 'all of A\'s invocations to finish');
    const elapsed = (Date.now() - t0) / 1000;
    assert.ok(results[0].error, 'the stalled invocation fails');
    assert.match(results[0].error.message, /Invocation failed.*(time|timed)/i, results[0].error.message);
    assert.ok(elapsed >= TIMEOUT_S - 0.5 && elapsed < TIMEOUT_S + 10, `stall ended by the ${TIMEOUT_S}s upstream timeout (${elapsed}s)`);

    const rest = results.slice(1);
    const full = rest.filter((r) => r.error);
    const ok = rest.filter((r) => !r.error);
    assert.ok(full.length >= 1, 'the bounded queue rejected some invocations');
    for (const r of full) assert.match(r.error.message, /Invocation failed/, r.error.message);
    assert.ok(ok.length >= 1, 'queued invocations ran after the stall');
    for (const [i, r] of rest.entries()) if (!r.error) assert.equal(r.value, i);
    // the queue keeps order: the successes are a prefix of what was sent
    const okIdx = rest.map((r, i) => (r.error ? -1 : i)).filter((i) => i >= 0);
    assert.deepEqual(okIdx, [...Array(okIdx.length).keys()], 'the accepted invocations are the first ones sent');

    // the connection is healthy afterwards
    assert.equal(await withTimeout(a.conn.invoke('echo', 'after'), 5000, 'A after the stall'), 'after');
  });
});
