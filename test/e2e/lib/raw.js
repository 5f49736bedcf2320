// A raw long-polling connection driven with plain fetch, for what the official client never does
// (bad frames, silence, not reading).
import assert from 'node:assert/strict';
import { clientToken } from './jwt.js';

export const RS = '\x1e';

/** Negotiates and opens a long-polling connection (first poll done); returns helpers. */
export async function rawLP(server, hub) {
  // The connection's own token throughout: an anonymous connection is bound to it.
  const token = clientToken(server.key, hub);
  const auth = () => ({ Authorization: `Bearer ${token}` });
  const neg = await fetch(`${server.url}/client/negotiate?hub=${hub}&negotiateVersion=1`, { method: 'POST', headers: auth() });
  assert.equal(neg.status, 200);
  const { connectionId, connectionToken } = await neg.json();
  const url = `${server.url}/client/?hub=${hub}&id=${encodeURIComponent(connectionToken)}`;
  const lp = {
    connectionId,
    url,
    auth,
    async poll() {
      const res = await fetch(url, { headers: auth(), signal: AbortSignal.timeout(20000) });
      return { status: res.status, text: await res.text() };
    },
    async post(body) {
      const res = await fetch(url, { method: 'POST', headers: { ...auth(), 'Content-Type': 'text/plain;charset=UTF-8' }, body });
      await res.arrayBuffer();
      return res.status;
    },
    /** Polls until a frame satisfying pred arrives; returns the parsed JSON frames seen. */
    async until(pred, what) {
      const seen = [];
      for (let i = 0; i < 10; i++) {
        const r = await lp.poll();
        if (r.status !== 200) throw new Error(`poll ${r.status} while waiting for ${what}; seen ${JSON.stringify(seen)}`);
        for (const f of r.text.split(RS).filter(Boolean)) {
          const m = JSON.parse(f);
          seen.push(m);
          if (pred(m)) return seen;
        }
      }
      throw new Error(`no ${what} in 10 polls; seen ${JSON.stringify(seen)}`);
    },
    /** Sends the JSON handshake and waits for the empty handshake response. */
    async handshake() {
      assert.equal(await lp.post(`{"protocol":"json","version":1}${RS}`), 200);
      await lp.until((m) => Object.keys(m).length === 0, 'the handshake response {}');
    },
  };
  const first = await lp.poll();
  assert.equal(first.status, 200, 'the first poll of a new connection answers 200 at once');
  assert.equal(first.text, '');
  return lp;
}
