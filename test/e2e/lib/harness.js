// One server per test file, clients stopped after every test, and helpers that make "who must not
// receive" provable without sleeping.
import { before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './server.js';
import { ClientPool, createClient } from './clients.js';
import { rest, hubPath } from './rest.js';
import { rand } from './util.js';

export function harness(serverOpts = {}) {
  const h = { server: null, pool: new ClientPool() };
  before(async () => {
    h.server = await startServer(typeof serverOpts === 'function' ? await serverOpts() : serverOpts);
  });
  afterEach(async () => {
    await h.pool.stopAll();
  });
  after(async () => {
    await h.pool.stopAll();
    if (!h.server) return;
    const crashed = h.server.child.exitCode !== null || h.server.child.signalCode !== null;
    await h.server.stop();
    if (process.env.E2E_SERVER_LOG) console.error(h.server.logs());
    if (crashed) {
      throw new Error(`signalbox died during the tests (exit ${h.server.child.exitCode})\n${h.server.logs().slice(-4000)}`);
    }
  });

  /** A started client on h.server (see createClient for options); stopped after the test. */
  h.connect = (opts) => h.pool.create(h.server, opts);
  /** A client that is not tracked (for tests that manage its life themselves). */
  h.build = (opts) => createClient(h.server, { start: false, ...opts });
  h.rest = (method, path, opts) => rest(h.server, method, path, opts);

  /** REST send of msg(text, ...more) to everyone in the hub; asserts 202. */
  h.sendAll = async (hub, text, opts = {}) => {
    const res = await h.rest('POST', hubPath(hub, ':send'), { body: { target: 'msg', arguments: [text] }, ...opts });
    assert.equal(res.status, 202, res.describe());
    return res;
  };

  /**
   * Sends a unique marker to each client's own connection and waits for it. Frames to one
   * connection are delivered in order, so anything sent before the fence has arrived by then:
   * after `await h.fence(c)`, `c.got(x) === false` proves x was not delivered.
   */
  h.fence = async (...clients) => {
    await Promise.all(
      clients.map(async (c) => {
        const marker = rand('fence-');
        const res = await h.rest('POST', hubPath(c.hub, 'connections', c.id, ':send'), {
          body: { target: 'msg', arguments: [marker] },
        });
        assert.equal(res.status, 202, res.describe());
        await c.waitText(marker, { what: `fence marker on ${c.name}` });
      }),
    );
  };

  /** Asserts each client got `text` (waiting for it). */
  h.expectGot = (text, ...clients) => Promise.all(clients.map((c) => c.waitText(text)));

  /** Asserts, after a fence, that none of the clients got `text`. */
  h.expectNot = async (text, ...clients) => {
    await h.fence(...clients);
    for (const c of clients) assert.equal(c.got(text), false, `${c.name} must not receive ${JSON.stringify(text)}`);
  };
  return h;
}
