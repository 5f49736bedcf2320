// Starts `signalbox serve` as a black box on a free loopback port and stops it again.
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, deferred, withTimeout, rand } from './util.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const live = new Set();
let builtBin;

// No orphans: whatever ends this process takes the servers it started with it.
function killAllSync() {
  for (const child of live) {
    try {
      child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
}
process.on('exit', killAllSync);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.once(sig, () => {
    killAllSync();
    process.exit(128 + (os.constants.signals[sig] ?? 1));
  });
}

/** The signalbox binary: $SIGNALBOX_BIN, else built once per process with `go build` into a temp dir. */
export function signalboxBinary() {
  if (process.env.SIGNALBOX_BIN) return path.resolve(process.env.SIGNALBOX_BIN);
  if (builtBin) return builtBin;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'signalbox-e2e-'));
  const bin = path.join(dir, 'signalbox');
  execFileSync('go', ['build', '-o', bin, './cmd/signalbox'], { cwd: repoRoot, stdio: ['ignore', 'inherit', 'inherit'] });
  process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  builtBin = bin;
  return bin;
}

/**
 * Starts the server. Options:
 *   keys: access keys (first is primary), default one random key
 *   upstream: array of --upstream templates
 *   config: YAML text written to a temp file and passed as --config
 *   args: extra CLI arguments; env: extra environment
 *   via: 'flags' (default) or 'env' (listen, keys and upstreams given as SIGNALBOX_* variables)
 * Returns { url, port, key, keys, logs(), stop() }.
 */
export async function startServer({ keys, upstream = [], config, args = [], env = {}, via = 'flags', readyTimeout = 15000 } = {}) {
  const bin = signalboxBinary();
  keys = keys ?? [rand('key-') + 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789'];
  const port = await freePort();
  const argv = ['serve'];
  const viaEnv = {};
  if (via === 'env') {
    viaEnv.SIGNALBOX_LISTEN = `127.0.0.1:${port}`;
    if (keys.length) viaEnv.SIGNALBOX_ACCESS_KEY = keys.join(',');
    if (upstream.length) viaEnv.SIGNALBOX_UPSTREAM = upstream.join(' ');
  } else {
    argv.push('--listen', `127.0.0.1:${port}`);
    for (const k of keys) argv.push('--access-key', k);
    for (const u of upstream) argv.push('--upstream', u);
  }
  let configDir;
  if (config !== undefined) {
    configDir = fs.mkdtempSync(path.join(os.tmpdir(), 'signalbox-e2e-cfg-'));
    const file = path.join(configDir, 'signalbox.yaml');
    fs.writeFileSync(file, config);
    argv.push('--config', file);
  }
  argv.push(...args);

  // The environment must not leak SIGNALBOX_* settings of the caller into the black box.
  const cleanEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SIGNALBOX_')));
  const child = spawn(bin, argv, { env: { ...cleanEnv, ...viaEnv, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(child);
  let output = '';
  const keep = (chunk) => {
    output += chunk.toString();
    if (output.length > 200000) output = output.slice(-100000);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const exited = deferred();
  child.on('exit', (code, signal) => {
    live.delete(child);
    exited.resolve({ code, signal });
  });
  child.on('error', (err) => {
    live.delete(child);
    exited.resolve({ code: null, signal: null, error: err });
  });

  const url = `http://127.0.0.1:${port}`;
  const handle = {
    url,
    port,
    key: keys[0],
    keys,
    argv,
    child,
    exited: exited.promise,
    logs: () => output,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        try {
          await withTimeout(exited.promise, 5000, 'signalbox to exit after SIGTERM');
        } catch {
          child.kill('SIGKILL');
          await exited.promise;
        }
      }
      if (configDir) fs.rmSync(configDir, { recursive: true, force: true });
      return exited.promise;
    },
  };

  const deadline = Date.now() + readyTimeout;
  let lastErr = 'no answer';
  for (;;) {
    const gone = await Promise.race([exited.promise, new Promise((r) => setTimeout(() => r(null), 30))]);
    if (gone) {
      throw new Error(
        `signalbox exited before it was ready (code ${gone.code}, signal ${gone.signal}${gone.error ? ', ' + gone.error.message : ''})\n` +
          `command: ${bin} ${argv.join(' ')}\noutput:\n${output}`,
      );
    }
    try {
      const res = await fetch(`${url}/api/health`, { signal: AbortSignal.timeout(1000) });
      await res.arrayBuffer();
      if (res.status === 200) return handle;
      lastErr = `status ${res.status}`;
    } catch (err) {
      lastErr = err.cause?.code ?? err.message;
    }
    if (Date.now() > deadline) {
      await handle.stop();
      throw new Error(`signalbox not healthy after ${readyTimeout} ms (${lastErr})\noutput:\n${output}`);
    }
  }
}
