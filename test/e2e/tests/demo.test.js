// Issue 10: `signalbox demo` in a real browser (Debian chromium through playwright-core). Two chat
// pages talk through the built-in Go function app; one joins a group and receives a group message;
// the live view (/_/trace) shows the connections and the events. Screenshots are saved as artefacts
// in test/e2e/test-results/demo (or $ARTIFACTS_DIR/demo).
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { signalboxBinary } from '../lib/server.js';
import { spawnReady } from '../lib/process.js';
import { freePort, rand, until } from '../lib/util.js';

const CHROMIUM = '/usr/bin/chromium';
const here = path.dirname(fileURLToPath(import.meta.url));
const haveChromium = fs.existsSync(CHROMIUM);
if (!haveChromium && process.env.CI === 'true') {
  throw new Error(`${CHROMIUM} is missing and CI=true: install the Debian package 'chromium' (scripts/ensure-deps.sh does)`);
}
const skip = haveChromium ? false : `${CHROMIUM} is missing; install the Debian package 'chromium' to run the browser test`;
const artefacts = path.join(process.env.ARTIFACTS_DIR ?? path.join(here, '..', 'test-results'), 'demo');

let demo;
let browser;
let stateDir;

before(async () => {
  if (skip) return;
  fs.mkdirSync(artefacts, { recursive: true });
  stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'signalbox-demo-'));
  const port = await freePort();
  demo = await spawnReady('signalbox demo', signalboxBinary(), ['demo', '--listen', `127.0.0.1:${port}`],
    { SIGNALBOX_STATE_FILE: path.join(stateDir, 'state.json') }, `http://127.0.0.1:${port}/api/health`);
  const { chromium } = await import('playwright-core');
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'], timeout: 30000 });
});

after(async () => {
  await browser?.close();
  await demo?.stop();
  if (stateDir) fs.rmSync(stateDir, { recursive: true, force: true });
});

async function openChat(url, user) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const errors = [];
  page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
  await page.goto(`${url}?user=${user}`);
  await page.waitForSelector('body[data-connected="true"]', { timeout: 20000 }).catch(async () => {
    throw new Error(`${user}'s chat did not connect: ${await page.textContent('#status')} (console: ${errors.join(' | ')})`);
  });
  return page;
}

const messages = (page) => page.$$eval('#messages li', (lis) => lis.map((li) => li.textContent));
async function waitMessage(page, text, what) {
  await page.waitForFunction((t) => [...document.querySelectorAll('#messages li')].some((li) => li.textContent === t), text, { timeout: 10000 })
    .catch(async () => assert.fail(`${what}: "${text}" not among ${JSON.stringify(await messages(page))}`));
}

describe('signalbox demo in a browser', { skip }, () => {
  test('two chat pages, a group message, and the live view shows it all', async () => {
    const out = demo.logs();
    const chatUrl = out.match(/^Demo chat: (\S+)/m)?.[1];
    const traceUrl = out.match(/^Live view: (\S+)/m)?.[1];
    assert.ok(chatUrl && traceUrl, `demo printed the two URLs:\n${out}`);
    // The printed URLs say localhost; the browser may resolve it to ::1, where nothing listens.
    const base = chatUrl.replace('//localhost:', '//127.0.0.1:');

    // The live view first: it shows events as they happen.
    const traceContext = await browser.newContext();
    const trace = await traceContext.newPage();
    await trace.goto(traceUrl.replace('//localhost:', '//127.0.0.1:'));
    await trace.waitForSelector('body[data-live="true"]', { timeout: 20000 });

    const [alice, bob] = [rand('alice-'), rand('bob-')];
    const a = await openChat(base, alice);
    const b = await openChat(base, bob);

    // A message to everyone: typed in one page, shown in the other.
    await a.fill('#text', 'hello from the first page');
    await a.click('#send');
    await waitMessage(b, `${alice}: hello from the first page`, 'bob sees alice');
    await waitMessage(a, `${alice}: hello from the first page`, 'alice sees her own message');

    // A group: bob joins room1; alice (not a member) and bob both send to it; only bob's page
    // shows the message alice sent, and alice's page shows none of the group messages.
    await b.fill('#group', 'room1');
    await b.click('#join');
    await waitMessage(b, 'joined group room1', 'bob joined');
    await a.fill('#group', 'room1');
    await a.click('#join');
    await waitMessage(a, 'joined group room1', 'alice joined');
    await a.fill('#group-text', 'for the room');
    await a.click('#send-group');
    await waitMessage(b, `[room1] ${alice}: for the room`, 'bob receives the group message');

    await a.screenshot({ path: path.join(artefacts, 'chat-first.png') });
    await b.screenshot({ path: path.join(artefacts, 'chat-second.png') });

    // The live view: both connections with their group, and the events.
    await trace.waitForFunction(() => document.querySelectorAll('#connections tr').length === 2, null, { timeout: 10000 });
    const rows = await trace.$$eval('#connections tr', (trs) => trs.map((tr) => [...tr.children].map((td) => td.textContent)));
    assert.deepEqual(rows.map((r) => r[1]).sort(), [alice, bob].sort(), `users in the live view: ${JSON.stringify(rows)}`);
    for (const r of rows) {
      assert.equal(r[2], 'WebSockets');
      assert.equal(r[3], 'json');
      assert.equal(r[4], 'room1', `groups of ${r[1]}`);
    }
    const log = async () => trace.$$eval('#log div', (ds) => ds.map((d) => d.textContent));
    const wanted = [
      new RegExp(`connect\\s+chat .*userId=${alice}`),
      new RegExp(`connect\\s+chat .*userId=${bob}`),
      new RegExp(`invocation\\s+chat .*userId=${alice}.*target=broadcast`),
      new RegExp(`invocation\\s+chat .*userId=${bob}.*target=joinGroup`),
      new RegExp(`invocation\\s+chat .*userId=${alice}.*target=sendToGroup`),
      /upstream\s+chat .*status=200.*event=broadcast/,
      /rest\s+chat .*operation=sendAll.*status=202/,
      /rest\s+chat .*operation=addConnectionToGroup.*status=200/,
      /rest\s+chat .*operation=sendGroup.*status=202/,
    ];
    await until(async () => {
      const lines = await log();
      return wanted.every((re) => lines.some((l) => re.test(l)));
    }, 10000, 'the live view to show every event').catch(async (err) => {
      const lines = await log();
      const missing = wanted.filter((re) => !lines.some((l) => re.test(l)));
      throw new Error(`${err.message}: missing ${missing.join(', ')}\n${lines.join('\n')}`);
    });
    // The filter hides what does not match.
    await trace.fill('#filter', 'sendToGroup');
    const visible = await trace.$$eval('#log div:not(.hidden)', (ds) => ds.map((d) => d.textContent));
    assert.ok(visible.length >= 1 && visible.every((l) => l.includes('sendToGroup')), `filtered log: ${JSON.stringify(visible)}`);
    await trace.fill('#filter', '');
    await trace.screenshot({ path: path.join(artefacts, 'live-view.png'), fullPage: true });
    for (const f of ['chat-first.png', 'chat-second.png', 'live-view.png']) {
      assert.ok(fs.statSync(path.join(artefacts, f)).size > 1000, `${f} saved`);
    }
  });

  test('the live view refuses a page without a valid token', async () => {
    const traceUrl = demo.logs().match(/^Live view: (\S+)/m)[1].replace('//localhost:', '//127.0.0.1:');
    const page = await (await browser.newContext()).newPage();
    await page.goto(traceUrl.replace(/#token=.*/, '#token=not-a-token'));
    await page.waitForFunction(() => document.getElementById('status').textContent.startsWith('could not connect'), null, { timeout: 10000 });
  });
});
