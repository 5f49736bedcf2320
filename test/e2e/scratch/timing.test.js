import { test } from 'node:test';
import { harness } from '../lib/harness.js';
import { COMBOS } from '../lib/clients.js';
import { rand } from '../lib/util.js';
const h = harness();
for (const combo of COMBOS) {
  test(`stop timing ${combo.transport} ${combo.protocol}`, async () => {
    const hub = rand('s');
    const t0 = Date.now();
    const c = await h.build({ hub, ...combo });
    await c.conn.start();
    const t1 = Date.now();
    await c.conn.stop();
    const t2 = Date.now();
    console.log(combo, 'start', t1 - t0, 'stop', t2 - t1);
  });
}
