// Issue 2: a real browser. A page from one origin negotiates with a function app on a second origin
// (CORS with credentials), connects to Signalbox on a third, and shows a REST broadcast.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { harness } from '../lib/harness.js';
import { startNegotiate } from '../lib/negotiate.js';
import { hubPath } from '../lib/rest.js';
import { rand, closeServer } from '../lib/util.js';

const CHROMIUM = '/usr/bin/chromium';
const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const haveChromium = fs.existsSync(CHROMIUM);
if (!haveChromium && process.env.CI === 'true') {
  throw new Error(`${CHROMIUM} is missing and CI=true: install the Debian package 'chromium' (scripts/ensure-deps.sh does)`);
}
const skip = haveChromium ? false : `${CHROMIUM} is missing; install the Debian package 'chromium' to run the browser test`;

const h = harness();
const HUB = 'browserhub';
let neg;
let page;
let pageServer;
let browser;

before(async () => {
  if (skip) return;
  neg = await startNegotiate(() => h.server, { hub: HUB });
  const bundle = path.join(path.dirname(require.resolve('@microsoft/signalr/package.json')), 'dist/browser/signalr.min.js');
  const html = fs.readFileSync(path.join(here, '../pages/index.html'));
  pageServer = http.createServer((req, res) => {
    const p = new URL(req.url, 'http://x').pathname;
    if (p === '/') return res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' }).end(html);
    if (p === '/signalr.min.js') return res.writeHead(200, { 'Content-Type': 'text/javascript' }).end(fs.readFileSync(bundle));
    res.writeHead(404).end();
  });
  await new Promise((r) => pageServer.listen(0, '127.0.0.1', r));
  const { chromium } = await import('playwright-core');
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    timeout: 30000,
  });
});

after(async () => {
  await browser?.close();
  await closeServer(pageServer);
  await neg?.close();
});

describe('browser', { skip }, () => {
  for (const transport of ['WebSockets', 'ServerSentEvents', 'LongPolling']) {
    test(`cross-origin negotiate redirect, ${transport}: a REST broadcast shows in the page`, async () => {
      const context = await browser.newContext();
      try {
        page = await context.newPage();
        const errors = [];
        page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
        const user = rand('b-');
        const pageUrl = `http://127.0.0.1:${pageServer.address().port}/?transport=${transport}&neg=${encodeURIComponent(`${neg.url}/api?userId=${user}`)}`;
        await page.goto(pageUrl);
        await page
          .waitForFunction(() => document.getElementById('status').textContent !== 'starting', null, { timeout: 20000 })
          .catch(() => {});
        const status = await page.textContent('#status');
        assert.equal(status, 'connected', `page status (console errors: ${errors.join(' | ')})`);
        const id = await page.textContent('#connection');
        assert.ok(id, 'connection id shown');

        const negReq = neg.requests.find((r) => r.method === 'POST' && r.query.get('userId') === user);
        assert.equal(negReq?.headers.origin, `http://127.0.0.1:${pageServer.address().port}`, 'negotiate was a cross-origin request');

        const text = `hello from REST ${rand()}`;
        const res = await h.rest('POST', hubPath(HUB, ':send'), { body: { target: 'msg', arguments: [text] } });
        assert.equal(res.status, 202, res.describe());
        await page.waitForFunction((t) => document.getElementById('messages').textContent.includes(t), text, { timeout: 10000 });
        assert.equal(await page.textContent('#messages li:last-child'), text);

        // and to the user, through the token the redirect handed out
        const t2 = `hello ${user}`;
        const r2 = await h.rest('POST', hubPath(HUB, 'users', user, ':send'), { body: { target: 'msg', arguments: [t2] } });
        assert.equal(r2.status, 202, r2.describe());
        await page.waitForFunction((t) => document.getElementById('messages').textContent.includes(t), t2, { timeout: 10000 });
      } finally {
        await context.close();
      }
    });
  }
});
