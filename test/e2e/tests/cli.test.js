// The `signalbox serve` contract (README.md, "signalbox serve"): generated key and connection string, environment
// variables and their precedence, health, and graceful shutdown on SIGTERM.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from '../lib/server.js';
import { createClient } from '../lib/clients.js';
import { rest, hubPath } from '../lib/rest.js';
import { rand, until, withTimeout } from '../lib/util.js';

async function broadcastReaches(server, key) {
  const hub = rand('cli');
  const c = await createClient({ ...server, key }, { hub });
  try {
    const t = rand('cli-');
    const res = await rest({ ...server, key }, 'POST', hubPath(hub, ':send'), { body: { target: 'msg', arguments: [t] } });
    assert.equal(res.status, 202, res.describe());
    await c.waitText(t);
  } finally {
    await c.stop();
  }
}

describe('signalbox serve', () => {
  test('without an access key it generates one and prints the connection string', async () => {
    const server = await startServer({ keys: [] });
    try {
      const m = await until(
        () => server.logs().match(/Endpoint=(http:\/\/[^;\s]+);AccessKey=([^;\s]+);Version=1\.0;/),
        5000,
        'the connection string in the output',
      );
      assert.match(m[1], new RegExp(`:${server.port}$`), 'the endpoint names the listen port');
      await broadcastReaches(server, m[2]);
    } finally {
      await server.stop();
    }
  });

  test('environment variables configure listen, keys and upstream', async () => {
    const key = 'env-key-' + rand();
    const server = await startServer({ keys: [key], via: 'env' });
    try {
      await broadcastReaches(server, key);
    } finally {
      await server.stop();
    }
  });

  test('a flag wins over the environment', async () => {
    const key = 'flag-key-' + rand();
    const server = await startServer({ keys: [key], env: { SIGNALBOX_ACCESS_KEY: 'env-key-' + rand() } });
    try {
      await broadcastReaches(server, key);
    } finally {
      await server.stop();
    }
  });

  test('a bad upstream template is a start-up error with a clear message', async () => {
    let started;
    try {
      await assert.rejects(
        startServer({ upstream: ['not a url {hub}'] }).then((s) => {
          started = s;
        }),
        /exited before it was ready[\s\S]*upstream/i,
      );
    } finally {
      await started?.stop();
    }
  });

  test('SIGTERM: connected clients are closed and the process exits 0', async () => {
    const server = await startServer();
    const hub = rand('cli');
    const clients = await Promise.all(['ws', 'sse', 'lp'].map((transport) => createClient(server, { hub, transport })));
    server.child.kill('SIGTERM');
    const { code, signal } = await withTimeout(server.exited, 15000, 'signalbox to exit after SIGTERM');
    assert.equal(signal, null);
    assert.equal(code, 0, server.logs().slice(-2000));
    await Promise.all(clients.map((c) => c.waitClosed(10000)));
    await server.stop();
  });
});
