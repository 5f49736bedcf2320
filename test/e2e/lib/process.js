// Child processes of the suite (Signalbox, the Go function app): started, captured, waited
// for until ready, stopped, and never left behind.
import { spawn } from 'node:child_process';
import os from 'node:os';
import { deferred, withTimeout } from './util.js';

const live = new Set();

// No orphans: whatever ends this process takes the children it started with it.
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

/**
 * Spawns `bin args` with env (the caller's SIGNALBOX_* variables removed, so that none leaks
 * into the black box) and resolves once GET readyUrl answers 200; fails fast if the process
 * exits first. onStop runs after the process ended (e.g. to remove temp files).
 * Returns { child, exited, logs(), stop() }.
 */
export async function spawnReady(name, bin, args, env, readyUrl, { readyTimeout = 15000, onStop } = {}) {
  const cleanEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SIGNALBOX_')));
  const child = spawn(bin, args, { env: { ...cleanEnv, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
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
  const handle = {
    child,
    exited: exited.promise,
    logs: () => output,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        try {
          await withTimeout(exited.promise, 5000, `${name} to exit after SIGTERM`);
        } catch {
          child.kill('SIGKILL');
          await exited.promise;
        }
      }
      onStop?.();
      return exited.promise;
    },
  };

  const deadline = Date.now() + readyTimeout;
  let lastErr = 'no answer';
  for (;;) {
    const gone = await Promise.race([exited.promise, new Promise((r) => setTimeout(() => r(null), 30))]);
    if (gone) {
      onStop?.();
      throw new Error(
        `${name} exited before it was ready (code ${gone.code}, signal ${gone.signal}${gone.error ? ', ' + gone.error.message : ''})\n` +
          `command: ${bin} ${args.join(' ')}\noutput:\n${output}`,
      );
    }
    try {
      const res = await fetch(readyUrl, { signal: AbortSignal.timeout(1000) });
      await res.arrayBuffer();
      if (res.status === 200) return handle;
      lastErr = `status ${res.status}`;
    } catch (err) {
      lastErr = err.cause?.code ?? err.message;
    }
    if (Date.now() > deadline) {
      await handle.stop();
      throw new Error(`${name} not ready after ${readyTimeout} ms (${lastErr})\noutput:\n${output}`);
    }
  }
}
