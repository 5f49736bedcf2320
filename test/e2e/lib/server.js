// Starts `signalbox serve` as a black box on a free loopback port and stops it again.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, rand } from './util.js';
import { spawnReady } from './process.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
let builtBin;

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
  // A server started without a key keeps the key it generates in a state file: a temporary
  // one, never the user's ~/.local/state.
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'signalbox-e2e-state-'));
  const stateEnv = { SIGNALBOX_STATE_FILE: path.join(stateDir, 'state.json') };
  let configDir;
  if (config !== undefined) {
    configDir = fs.mkdtempSync(path.join(os.tmpdir(), 'signalbox-e2e-cfg-'));
    const file = path.join(configDir, 'signalbox.yaml');
    fs.writeFileSync(file, config);
    argv.push('--config', file);
  }
  argv.push(...args);

  const url = `http://127.0.0.1:${port}`;
  const onStop = () => {
    if (configDir) fs.rmSync(configDir, { recursive: true, force: true });
    fs.rmSync(stateDir, { recursive: true, force: true });
  };
  const h = await spawnReady('signalbox', bin, argv, { ...stateEnv, ...viaEnv, ...env }, `${url}/api/health`, { readyTimeout, onStop });
  return { ...h, url, port, key: keys[0], keys, argv };
}
