// `signalbox serve` started with a config file, environment variables and flags together, with
// the Azure SignalR emulator's settings.json, with bad settings, and with TLS (the official client
// over wss:// to a self-signed certificate it trusts).
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { startServer, signalboxBinary } from '../lib/server.js';
import { createClient } from '../lib/clients.js';
import { rest, hubPath } from '../lib/rest.js';
import { FakeUpstream } from '../lib/upstream.js';
import { spawnReady } from '../lib/process.js';
import { freePort, rand, withTimeout } from '../lib/util.js';

const run = promisify(execFile);
const e2eDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

function tempDir(t) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'signalbox-config-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Runs serve with args and env, expecting it to refuse to start; returns its stderr. */
async function refuses(args, env = {}) {
  const cleanEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SIGNALBOX_')));
  const err = await run(signalboxBinary(), ['serve', '--listen', '127.0.0.1:0', ...args], {
    env: { ...cleanEnv, ...env },
    timeout: 15000,
  }).then(
    () => assert.fail('serve started with a bad configuration'),
    (e) => e,
  );
  assert.equal(err.code, 2, `exit code (stderr: ${err.stderr})`);
  return err.stderr;
}

describe('configuration', () => {
  test('config file, environment and flags together: flag > environment > file > default', async (t) => {
    const up = await new FakeUpstream().start();
    t.after(() => up.close());
    const fileKey = 'file-key-' + rand();
    const envKey = 'env-key-' + rand();
    const flagKey = 'flag-key-' + rand();
    const hub = rand('cfg');
    // The file names the upstream (only for this hub) and a key; the environment overrides
    // the key; the flag overrides the environment.
    const server = await startServer({
      keys: [flagKey],
      config: `access-key: ${fileKey}\nupstreams:\n  - url: "${up.url}/file/{event}"\n    hub: ${hub}\nkeep-alive-interval: 5s\n`,
      env: { SIGNALBOX_ACCESS_KEY: envKey },
    });
    t.after(() => server.stop());
    // The flag's key is the one that works.
    const c = await createClient({ ...server, key: flagKey }, { hub });
    t.after(() => c.stop());
    for (const key of [envKey, fileKey]) {
      const res = await rest({ ...server, key }, 'POST', hubPath(hub, ':send'), { body: { target: 'msg', arguments: ['x'] } });
      assert.equal(res.status, 401, `the overridden key ${key} still works`);
    }
    // The file's upstream rule is in force.
    const rec = await up.waitFor((r) => r.event === 'connected' && r.hub === hub, { what: 'connected at the file upstream' });
    assert.equal(rec.path, '/file/connected');
  });

  test("the Azure SignalR emulator's settings.json names the upstream", async (t) => {
    const up = await new FakeUpstream().start();
    t.after(() => up.close());
    const dir = tempDir(t);
    const settings = path.join(dir, 'settings.json');
    fs.writeFileSync(
      settings,
      JSON.stringify({
        UpstreamSettings: {
          Templates: [{ UrlTemplate: `${up.url}/emulator/{hub}/{category}/{event}`, EventPattern: '*', HubPattern: '*', CategoryPattern: '*' }],
        },
      }),
    );
    const server = await startServer({ args: ['--emulator-settings', settings] });
    t.after(() => server.stop());
    const hub = rand('emu');
    const c = await createClient(server, { hub });
    t.after(() => c.stop());
    const rec = await up.waitFor((r) => r.event === 'connected' && r.hub === hub, { what: 'connected at the emulator upstream' });
    assert.equal(rec.path, `/emulator/${hub}/connections/connected`);
  });

  test('unknown keys and bad values are named with where they came from', async (t) => {
    const dir = tempDir(t);
    const file = path.join(dir, 'signalbox.yaml');
    fs.writeFileSync(file, 'listen: 127.0.0.1:0\nkeep-alive-intervall: 5s\n');
    assert.match(await refuses(['--config', file]), /line 2: unknown key "keep-alive-intervall" \(did you mean "keep-alive-interval"\?\)/);
    fs.writeFileSync(file, 'client-timeout: soon\n');
    assert.match(await refuses(['--config', file]), /line 1: client-timeout: "soon" is not a duration/);
    assert.match(await refuses([], { SIGNALBOX_MAX_CONNECTIONS: 'many' }), /max-connections \(SIGNALBOX_MAX_CONNECTIONS\): "many" is not a whole number/);
    assert.match(await refuses(['--poll-timeout', '-1s']), /poll-timeout: must be a positive duration/);
    assert.match(await refuses(['--bogus']), /unknown flag: --bogus/);
    const emu = path.join(dir, 'settings.json');
    fs.writeFileSync(emu, '{"UpstreamSettings":{"Templates":[{"UrlTemplate":"http://x/","HubPatern":"chat"}]}}');
    assert.match(await refuses(['--emulator-settings', emu]), /Templates\[0\]: unknown key "HubPatern"/);
  });
});

describe('TLS', () => {
  test('the official client connects over wss:// to a self-signed certificate it trusts', async (t) => {
    const dir = tempDir(t);
    const [cert, key] = [path.join(dir, 'cert.pem'), path.join(dir, 'key.pem')];
    await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
      '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1', '-keyout', key, '-out', cert]);
    const accessKey = 'tls-key-' + rand() + 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
    const port = await freePort();
    const metricsPort = await freePort();
    const endpoint = `https://localhost:${port}`;
    // Ready when the plain-HTTP metrics listener answers: this process does not trust the certificate.
    const server = await spawnReady('signalbox', signalboxBinary(),
      ['serve', '--listen', `127.0.0.1:${port}`, '--public-url', endpoint, '--access-key', accessKey,
        '--tls-cert', cert, '--tls-key', key, '--metrics-listen', `127.0.0.1:${metricsPort}`],
      {}, `http://127.0.0.1:${metricsPort}/metrics`);
    t.after(() => server.stop());

    const hub = 'tls';
    const { stdout: clientToken } = await run(signalboxBinary(), ['token', '--access-key', accessKey, '--hub', hub, '--endpoint', endpoint]);
    const restPath = `/api/hubs/${hub}/:send`;
    const { stdout: restToken } = await run(signalboxBinary(), ['token', '--access-key', accessKey, '--rest', restPath, '--endpoint', endpoint]);
    // The client runs in a node process of its own, which trusts the certificate from the start.
    const script = `
      import { HubConnectionBuilder, HttpTransportType, LogLevel } from '@microsoft/signalr';
      const conn = new HubConnectionBuilder()
        .withUrl(process.env.HUB_URL, { transport: HttpTransportType.WebSockets, accessTokenFactory: () => process.env.CLIENT_TOKEN })
        .configureLogging(LogLevel.Warning).build();
      const got = new Promise((resolve) => conn.on('overTls', resolve));
      await conn.start();
      const res = await fetch(process.env.REST_URL, { method: 'POST', headers: { Authorization: 'Bearer ' + process.env.REST_TOKEN, 'Content-Type': 'application/json' },
        body: JSON.stringify({ target: 'overTls', arguments: ['secret hello'] }) });
      console.log('rest', res.status);
      console.log('received', await got);
      console.log('transport', conn.connection.transport.constructor.name, conn.connection.transport._webSocket?.url ?? '');
      await conn.stop();`;
    const child = (extraEnv) =>
      run(process.execPath, ['--input-type=module', '-e', script], {
        cwd: e2eDir,
        timeout: 30000,
        env: { ...process.env, HUB_URL: `${endpoint}/client/?hub=${hub}`, CLIENT_TOKEN: clientToken.trim(),
          REST_URL: `${endpoint}${restPath}?api-version=2022-06-01`, REST_TOKEN: restToken.trim(), ...extraEnv },
      });
    const { stdout } = await child({ NODE_EXTRA_CA_CERTS: cert });
    assert.match(stdout, /^rest 202$/m);
    assert.match(stdout, /^received secret hello$/m);
    assert.match(stdout, /^transport WebSocketTransport wss:\/\/localhost:\d+\/client\/\?hub=tls/m);
    // Without trusting the certificate the same client fails: the connection really is TLS.
    await assert.rejects(child({ NODE_EXTRA_CA_CERTS: '' }), /Failed to complete negotiation with the server: TypeError: fetch failed/);
  });
});
