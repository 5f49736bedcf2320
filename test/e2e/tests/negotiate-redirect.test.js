// Issue 2: the negotiate-redirect flow. The client is pointed at a function app's /api; the app
// answers {url, accessToken} and the client follows it to Signalbox.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { harness } from '../lib/harness.js';
import { startNegotiate } from '../lib/negotiate.js';
import { hubPath } from '../lib/rest.js';
import { rand } from '../lib/util.js';

const h = harness();
const HUB = 'redirecthub';
let neg;
before(async () => {
  neg = await startNegotiate(() => h.server, { hub: HUB });
});
after(() => neg?.close());

describe('negotiate redirect', () => {
  for (const [transport, protocol] of [['ws', 'json'], ['ws', 'messagepack'], ['sse', 'json'], ['lp', 'json'], ['lp', 'messagepack']]) {
    test(`${transport} x ${protocol}: follows {url, accessToken} and receives`, async () => {
      const user = rand('user-');
      const before = neg.requests.length;
      const c = await h.connect({ hub: HUB, transport, protocol, token: null, url: `${neg.url}/api?userId=${user}` });
      const mine = neg.requests.slice(before).filter((r) => r.path === '/api/negotiate');
      assert.equal(mine.length, 1, 'the client asked the function app once');
      assert.equal(mine[0].method, 'POST');
      assert.equal(mine[0].query.get('negotiateVersion'), '1');
      assert.ok(c.id, 'the client got a connection id from Signalbox');

      // the token from the redirect carried the user id
      const t = rand('redirect-');
      const res = await h.rest('POST', hubPath(HUB, 'users', user, ':send'), { body: { target: 'msg', arguments: [t] } });
      assert.equal(res.status, 202, res.describe());
      await c.waitText(t);
      const head = await h.rest('HEAD', hubPath(HUB, 'connections', c.id));
      assert.equal(head.status, 200, head.describe());
    });
  }

  test('the redirect token replaces the app\'s own accessTokenFactory', async () => {
    const c = await h.connect({ hub: HUB, transport: 'lp', token: () => 'not-a-valid-token', url: `${neg.url}/api?userId=replaced` });
    const t = rand('replaced-');
    const res = await h.rest('POST', hubPath(HUB, 'users', 'replaced', ':send'), { body: { target: 'msg', arguments: [t] } });
    assert.equal(res.status, 202);
    await c.waitText(t);
  });
});
