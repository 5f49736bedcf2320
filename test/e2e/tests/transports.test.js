// Issue 2: connect and receive over every transport x hub protocol the official client offers.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { harness } from '../lib/harness.js';
import { COMBOS } from '../lib/clients.js';
import { hubPath } from '../lib/rest.js';
import { rand, withTimeout } from '../lib/util.js';

const h = harness();

// Values whose JSON -> MessagePack conversion must be lossless for the official decoder.
const RICH = {
  int: 42,
  negative: -7,
  zero: 0,
  big: 9007199254740991,
  float: 3.14159,
  half: 1.5,
  str: 'héllo ✓ 😀 "quoted" \\ slash',
  empty: '',
  yes: true,
  no: false,
  nothing: null,
  list: [1, 'two', 3.5, false, null, [], {}],
  nested: { a: { b: [1, { c: null, d: 'deep' }], e: -0.25 } },
};

describe('connect and receive a REST broadcast', () => {
  for (const { transport, protocol } of COMBOS) {
    test(`${transport} x ${protocol}`, async () => {
      const hub = rand('t');
      const c = await h.connect({ hub, transport, protocol, userId: 'u1' });
      assert.ok(c.id, 'negotiate v1 gives the client a connection id');
      const id = rand('hello-');
      const res = await h.rest('POST', hubPath(hub, ':send'), {
        body: { target: 'msg', arguments: [id, RICH, 7, 'tail'] },
      });
      assert.equal(res.status, 202, res.describe());
      const m = await c.waitText(id);
      assert.deepEqual(m.args, [id, RICH, 7, 'tail'], 'arguments survive the trip (and the JSON->MessagePack conversion)');
    });
  }

  test('a JSON client and a MessagePack client in one hub receive the same values', async () => {
    const hub = rand('t');
    const [j, m] = await Promise.all([
      h.connect({ hub, transport: 'ws', protocol: 'json' }),
      h.connect({ hub, transport: 'lp', protocol: 'messagepack' }),
    ]);
    const id = rand('both-');
    const res = await h.rest('POST', hubPath(hub, ':send'), { body: { target: 'msg', arguments: [id, RICH] } });
    assert.equal(res.status, 202, res.describe());
    const [a, b] = await Promise.all([j.waitText(id), m.waitText(id)]);
    assert.deepEqual(a.args[1], RICH);
    assert.deepEqual(b.args[1], RICH);
  });

  test('a burst of messages arrives complete and in order on every transport', async () => {
    const hub = rand('t');
    const clients = await Promise.all(COMBOS.map((c) => h.connect({ hub, ...c })));
    const n = 30;
    const id = rand('seq-');
    for (let i = 0; i < n; i++) {
      const res = await h.rest('POST', hubPath(hub, ':send'), { body: { target: 'other', arguments: [id, i] } });
      assert.equal(res.status, 202, res.describe());
    }
    await Promise.all(clients.map((c) => c.waitFor('other', (x, i) => x === id && i === n - 1, { what: 'the last of the burst' })));
    for (const c of clients) {
      const seq = c.received.filter((m) => m.target === 'other' && m.args[0] === id).map((m) => m.args[1]);
      assert.deepEqual(seq, [...Array(n).keys()], `${c.name} got every message once, in order`);
    }
  });

  test('pretty-printed REST JSON (raw newlines) and a 300 KB argument reach every transport intact', async () => {
    const hub = rand('t');
    const clients = await Promise.all(COMBOS.map((c) => h.connect({ hub, ...c })));
    const id = rand('pretty-');
    const big = 'line1\nline2\r\n' + 'x'.repeat(300 * 1024);
    const body = JSON.stringify({ target: 'msg', arguments: [id, { nested: [1, 2, { s: 'a\nb' }] }, big] }, null, 2);
    assert.ok(body.includes('\n'), 'the body has raw newlines between tokens');
    const res = await h.rest('POST', hubPath(hub, ':send'), { body, contentType: 'application/json' });
    assert.equal(res.status, 202, res.describe());
    for (const c of clients) {
      const m = await c.waitText(id);
      assert.deepEqual(m.args[1], { nested: [1, 2, { s: 'a\nb' }] }, c.name);
      assert.equal(m.args[2], big, `${c.name}: the large argument is intact`);
    }
  });

  test('a client that asks for stateful reconnect still connects and receives', async () => {
    const hub = rand('t');
    const { HubConnectionBuilder, HttpTransportType } = await import('@microsoft/signalr');
    const { clientToken } = await import('../lib/jwt.js');
    const conn = new HubConnectionBuilder()
      .withUrl(`${h.server.url}/client/?hub=${hub}`, {
        transport: HttpTransportType.WebSockets,
        accessTokenFactory: ((tok) => () => tok)(clientToken(h.server.key, hub)),
      })
      .withStatefulReconnect()
      .configureLogging({ log() {} })
      .build();
    const got = new Promise((resolve) => conn.on('msg', resolve));
    try {
      await conn.start();
      const id = rand('stateful-');
      await h.sendAll(hub, id);
      assert.equal(await withTimeout(got, 10000, 'msg on a stateful-reconnect client'), id);
    } finally {
      await conn.stop();
    }
  });

  test('hand-written JSON numbers (1.0, 1e3, huge, tiny) reach every client as JSON.parse reads them', async () => {
    const hub = rand('t');
    const clients = await Promise.all(COMBOS.map((c) => h.connect({ hub, ...c })));
    const id = rand('num-');
    const nums = '1.0, 1e3, 2.5E-3, 1e300, 18446744073709551615, 123456789012345678901234567890, 0.1, -42, 4294967296, -2147483649';
    const body = `{"target":"msg","arguments":["${id}", [${nums}], {"k": 7.0}]}`;
    const want = JSON.parse(body).arguments;
    const res = await h.rest('POST', hubPath(hub, ':send'), { body, contentType: 'application/json' });
    assert.equal(res.status, 202, res.describe());
    for (const c of clients) {
      const m = await c.waitText(id);
      assert.deepEqual(m.args, want, c.name);
    }
  });

  test('hub names are case-insensitive', async () => {
    const hub = rand('Mixed');
    const c = await h.connect({ hub, transport: 'ws', protocol: 'messagepack' });
    const id = rand('case-');
    const res = await h.rest('POST', hubPath(hub.toLowerCase(), ':send'), { body: { target: 'msg', arguments: [id] } });
    assert.equal(res.status, 202, res.describe());
    await c.waitText(id);
    const res2 = await h.rest('POST', hubPath(hub.toUpperCase(), ':send'), { body: { target: 'msg', arguments: [id + '-upper'] } });
    assert.equal(res2.status, 202, res2.describe());
    await c.waitText(id + '-upper');
  });

  test('a client can stop and the service keeps serving the others', async () => {
    const hub = rand('t');
    const a = await h.connect({ hub, transport: 'ws', protocol: 'json' });
    const b = await h.connect({ hub, transport: 'lp', protocol: 'json' });
    await a.stop();
    const id = rand('after-');
    await h.sendAll(hub, id);
    await b.waitText(id);
    assert.equal(a.got(id), false);
  });
});
