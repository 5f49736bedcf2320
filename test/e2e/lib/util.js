// Small async helpers shared by the suite: every wait has a timeout and names what it waited for.
import net from 'node:net';
import crypto from 'node:crypto';

/** A promise with its resolve/reject exposed. */
export function deferred() {
  let resolve;
  let reject;
  const promise = new Promise((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Resolves with `promise`, or rejects with a message naming `what` after `ms`. */
export function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** A port on 127.0.0.1 that was free a moment ago. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** A short random suffix for unique hub, group, user and payload names. */
export function rand(prefix = '') {
  return prefix + crypto.randomBytes(5).toString('hex');
}

/** Resolves when `fn()` returns truthy; polls every `every` ms, fails after `ms`. */
export async function until(fn, ms, what, every = 25) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, every));
  }
}

/** Reads a whole request body into a Buffer. */
export function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** Closes an http.Server and every socket it still holds. */
export function closeServer(srv) {
  return new Promise((resolve) => {
    if (!srv || !srv.listening) return resolve();
    srv.close(() => resolve());
    srv.closeAllConnections?.();
  });
}

/** Settles `promise` into { value } or { error }, for tests that expect some calls to fail. */
export async function outcome(promise) {
  try {
    return { value: await promise };
  } catch (error) {
    return { error };
  }
}
