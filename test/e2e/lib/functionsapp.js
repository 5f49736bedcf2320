// The Go test function app (test/e2e/functionsapp) as a child process, plus official clients
// that connect through its negotiate function, and Signalbox on a fixed port (so a test can
// stop an endpoint and bring it back at the same address).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { HubConnectionBuilder, LogLevel } from '@microsoft/signalr';
import { MessagePackHubProtocol } from '@microsoft/signalr-protocol-msgpack';
import { TestClient, TRANSPORTS } from './clients.js';
import { signalboxBinary } from './server.js';
import { spawnReady } from './process.js';
import { freePort, withTimeout, rand, until } from './util.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const built = new Map();

/** The binary of Go main package `pkg` (relative to the repository), built once per process. */
export function goBinary(pkg) {
  if (built.has(pkg)) return built.get(pkg);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'signalbox-e2e-bin-'));
  const bin = path.join(dir, path.basename(pkg));
  execFileSync('go', ['build', '-o', bin, pkg], { cwd: repoRoot, stdio: ['ignore', 'inherit', 'inherit'] });
  process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  built.set(pkg, bin);
  return bin;
}

/** The function app binary (test/e2e/functionsapp). */
export function functionsAppBinary() {
  return goBinary('./test/e2e/functionsapp');
}


/** Signalbox on a given port (same key and upstream on every start); `flags` are more serve flags. Returns { url, port, key, stop(), logs() }. */
export async function startSignalboxAt({ port, key, upstream = [], flags = [] }) {
  const args = ['serve', '--listen', `127.0.0.1:${port}`, '--access-key', key, ...flags];
  for (const u of upstream) args.push('--upstream', u);
  const url = `http://127.0.0.1:${port}`;
  const h = await spawnReady(`signalbox :${port}`, signalboxBinary(), args, {}, `${url}/api/health`);
  return { ...h, url, port, key, keys: [key] };
}

/** The connection string of a Signalbox handle. */
export function connectionString(server) {
  return `Endpoint=${server.url};AccessKey=${server.key};Version=1.0;`;
}

/** The upstream URL template that points a Signalbox at the app's trigger. */
export function triggerUrl(port) {
  return `http://127.0.0.1:${port}/runtime/webhooks/signalr`;
}

/**
 * Starts the function app with the given settings (env). port: default a free one.
 * Returns a handle with helpers for each endpoint of the app.
 */
export async function startFunctionsApp({ env = {}, port } = {}) {
  port = port ?? (await freePort());
  const url = `http://127.0.0.1:${port}`;
  const h = await spawnReady('functionsapp', functionsAppBinary(), [], { ...env, FUNCTIONS_CUSTOMHANDLER_PORT: String(port) }, `${url}/api/ready`);
  const call = async (method, p, body) => {
    const res = await fetch(`${url}${p}`, {
      method,
      headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
      signal: AbortSignal.timeout(10000),
    });
    const text = await res.text();
    return { status: res.status, text, json: () => JSON.parse(text), describe: () => `${method} ${p} -> ${res.status} ${text.slice(0, 400)}` };
  };
  const app = {
    ...h,
    url,
    port,
    call,
    /** POST /api/negotiate (userId via the x-ms-client-principal-id header). */
    negotiate: (userId) =>
      fetch(`${url}/api/negotiate`, {
        method: 'POST',
        headers: userId ? { 'x-ms-client-principal-id': userId } : {},
        signal: AbortSignal.timeout(10000),
      }),
    send: (body) => call('POST', '/api/send', body),
    group: (body) => call('POST', '/api/group', body),
    output: (body) => call('POST', '/api/output', body),
    async events(connectionId) {
      const res = await call('GET', `/api/events${connectionId ? `?connectionId=${encodeURIComponent(connectionId)}` : ''}`);
      if (res.status !== 200) throw new Error(res.describe());
      return res.json();
    },
    /** Resolves with the first trigger event of `connectionId` matching pred (polls with a timeout). */
    waitEvent(connectionId, pred, what, timeout = 10000) {
      return until(async () => (await app.events(connectionId)).find(pred), timeout, `${what} (connection ${connectionId})`, 50);
    },
  };
  return app;
}

class MemoryLogger {
  constructor(name) {
    this.name = name;
    this.lines = [];
  }
  log(level, message) {
    this.lines.push(`[${new Date().toISOString()}] ${this.name} ${LogLevel[level]}: ${message}`);
    if (this.lines.length > 200) this.lines.shift();
    if (process.env.E2E_CLIENT_LOG) console.error(this.lines.at(-1));
  }
}

/**
 * An official client that negotiates with the function app (base URL <app>/api): the app's
 * negotiate function answers {url, accessToken} and the client follows it to Signalbox.
 * The user id travels in x-ms-client-principal-id, as App Service authentication sets it;
 * `headers` adds more request headers (e.g. X-MS-TOKEN-AAD-ID-TOKEN).
 */
export async function connectViaApp(app, { userId, transport = 'ws', protocol = 'json', name, headers } = {}) {
  name = name ?? `app:${transport}/${protocol}/${userId ?? 'anon'}/${rand()}`;
  const logger = new MemoryLogger(name);
  const opts = { transport: TRANSPORTS[transport], logger, timeout: 15000 };
  if (userId || headers) opts.headers = { ...(userId ? { 'x-ms-client-principal-id': userId } : {}), ...headers };
  let builder = new HubConnectionBuilder().withUrl(`${app.url}/api`, opts).configureLogging(logger);
  if (protocol === 'messagepack') builder = builder.withHubProtocol(new MessagePackHubProtocol());
  const conn = builder.build();
  const client = new TestClient(conn, { name, hub: 'chat', transport, protocol, userId, logger });
  try {
    await withTimeout(conn.start(), 20000, `${name}: start()`);
    client._id = conn.connectionId;
  } catch (err) {
    err.message += `\nclient log:\n${logger.lines.slice(-15).join('\n')}`;
    throw err;
  }
  return client;
}
