// A cluster for the tests: its own redis-server on a free port (so it can be killed and
// restarted), several signalbox nodes on it, and a round-robin TCP balancer in front.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { startServer } from './server.js';
import { deferred, freePort, rand, until, withTimeout } from './util.js';

/**
 * Starts redis-server on a free port with append-only persistence in a temp dir, so that
 * a restart keeps the data (as production Redis would). Returns
 * { url, port, kill(), start(), stop() }: kill() is SIGKILL, start() restarts on the same port.
 */
export async function startRedis() {
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'signalbox-e2e-redis-'));
  let child;
  let exited;
  const start = async () => {
    exited = deferred();
    child = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--appendonly', 'yes', '--appendfsync', 'always', '--save', ''],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    child.stdout.on('data', (c) => (out += c));
    child.stderr.on('data', (c) => (out += c));
    child.on('exit', () => exited.resolve());
    process.once('exit', () => child.kill('SIGKILL'));
    await until(
      () =>
        new Promise((resolve) => {
          const s = net.connect(port, '127.0.0.1', () => {
            s.write('PING\r\n');
          });
          s.on('data', (d) => {
            s.destroy();
            resolve(d.toString().startsWith('+PONG'));
          });
          s.on('error', () => resolve(false));
        }),
      10000,
      `redis-server on ${port} (${out})`,
    );
  };
  await start();
  return {
    url: `redis://127.0.0.1:${port}/0`,
    port,
    start,
    async kill() {
      child.kill('SIGKILL');
      await withTimeout(exited.promise, 5000, 'redis-server to die');
    },
    async stop() {
      child.kill('SIGKILL');
      await withTimeout(exited.promise, 5000, 'redis-server to die');
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Starts `count` nodes on redis with one shared key and prefix; resolves once each is ready (/readyz). */
export async function startNodes(redis, count, { nodeTimeout = '3s', key, args = [] } = {}) {
  key = key ?? rand('key-') + 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
  const prefix = rand('e2e-');
  const nodes = await Promise.all(
    Array.from({ length: count }, (_, i) =>
      startServer({
        keys: [key],
        args: ['--redis-url', redis.url, '--redis-prefix', prefix, '--node-id', `node${i}`, '--node-timeout', nodeTimeout, ...args],
      }),
    ),
  );
  await Promise.all(nodes.map((n) => waitReady(n)));
  return nodes;
}

/** Resolves once the node's /readyz answers 200. */
export function waitReady(node, ms = 15000) {
  return until(
    async () => {
      try {
        const r = await fetch(`${node.url}/readyz`, { signal: AbortSignal.timeout(1000) });
        await r.arrayBuffer();
        return r.status === 200;
      } catch {
        return false;
      }
    },
    ms,
    `${node.url}/readyz`,
  );
}

/**
 * A TCP balancer on a free port that sends each new connection to the next backend in
 * turn (no stickiness). Returns { url, port, counts, close() }.
 */
export async function roundRobin(backends) {
  const sockets = new Set();
  const counts = backends.map(() => 0);
  let next = 0;
  const srv = net.createServer((client) => {
    const i = next++ % backends.length;
    counts[i]++;
    const upstream = net.connect(backends[i].port, '127.0.0.1');
    sockets.add(client);
    sockets.add(upstream);
    client.pipe(upstream);
    upstream.pipe(client);
    const end = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', end);
    upstream.on('error', end);
    client.on('close', end);
    upstream.on('close', end);
  });
  await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const { port } = srv.address();
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    counts,
    close() {
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => srv.close(() => resolve()));
    },
  };
}

/** The value of a counter on a node's /metrics (0 when absent). */
export async function metric(node, name) {
  const r = await fetch(`${node.url}/metrics`, { signal: AbortSignal.timeout(5000) });
  const text = await r.text();
  const m = text.match(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm'));
  return m ? Number(m[1]) : 0;
}
