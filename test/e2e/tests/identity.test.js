// Issue 9: identity-based connections offline. `signalbox identity` is the managed identity,
// `signalbox serve --identity-issuer` trusts it, and examples/functionapp runs with
// `__serviceUri` + `__credential=managedidentity` (system-assigned and user-assigned with
// `__clientId`, an AuthType=azure.msi connection string, one endpoint and two
// Azure__SignalR__Endpoints__*__serviceUri endpoints) and no
// access key anywhere: negotiate signs with the key from /api/v1/auth/accessKey, messages and
// group actions carry the Entra bearer, the trigger runs without signature validation. Tokens of
// an untrusted issuer, expired, for another audience, of an identity off the allow-list, and
// alg-confused ones are refused on every endpoint.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { HubConnectionBuilder, HttpTransportType } from '@microsoft/signalr';
import { startServer } from '../lib/server.js';
import { rest, hubPath, v1Path } from '../lib/rest.js';
import { signJWT, decodeJWT, clientToken, restToken } from '../lib/jwt.js';
import { connectViaApp, triggerUrl } from '../lib/functionsapp.js';
import { startIdentity, msiToken, issuerPublicKeyPEM, startExampleApp, identitySettings } from '../lib/identity.js';
import { freePort, rand, until, withTimeout } from '../lib/util.js';

const USER_CLIENT_ID = '5e0c4b1e-7d6a-4f59-9a3c-2b8f1d0e6c77';
const procs = [];
const clients = [];
const track = (p) => (procs.push(p), p);

after(async () => {
  await Promise.all(clients.splice(0).map((c) => c.stop()));
  const crashed = procs.filter((p) => p.child.exitCode !== null && p.child.exitCode !== 0);
  await Promise.all(procs.map((p) => p.stop()));
  if (process.env.E2E_SERVER_LOG) for (const p of procs) console.error(p.logs());
  if (crashed.length) throw new Error(`a process died:\n${crashed.map((p) => p.logs().slice(-3000)).join('\n----\n')}`);
});

/** An official client through the app, tracked for cleanup. */
async function viaApp(app, opts) {
  const c = await connectViaApp(app, opts);
  clients.push(c);
  return c;
}

/** The chat hub of examples/functionapp, exercised through one app: trigger, output binding, group actions. */
async function exerciseApp(app, servers, idp, clientId) {
  const alice = await viaApp(app, { userId: 'alice', transport: 'ws', protocol: 'json' });
  const bob = await viaApp(app, { userId: 'bob', transport: 'sse', protocol: 'json' });
  const carol = await viaApp(app, { userId: 'carol', transport: 'lp', protocol: 'messagepack' });

  // The trigger (no signature validation: the app has no access key) answers with a result.
  assert.deepEqual(await withTimeout(alice.conn.invoke('echo', { n: 1, s: 'x' }), 10000, 'echo'), { n: 1, s: 'x' });
  assert.equal(await withTimeout(carol.conn.invoke('echo', 'mp'), 10000, 'echo over messagepack'), 'mp');

  // broadcast -> the output binding's REST call with the Entra bearer -> every client.
  const text = rand('hello-');
  await withTimeout(bob.conn.invoke('broadcast', text), 10000, 'broadcast');
  await Promise.all([alice, bob, carol].map((c) => c.waitFor('newMessage', (t) => t === text, { what: `newMessage(${text})` })));

  // joinGroup -> a group action with the Entra bearer; a REST group send (also with an
  // Entra token) reaches alice only.
  const group = rand('g-');
  await withTimeout(alice.conn.invoke('joinGroup', group), 10000, 'joinGroup');
  const bearer = await msiToken(idp, { clientId });
  const inGroup = rand('to-group-');
  for (const s of servers) {
    const res = await rest(s, 'POST', hubPath('chat', 'groups', group, ':send'), { token: bearer, body: { target: 'msg', arguments: [inGroup] } });
    assert.equal(res.status, 202, res.describe());
  }
  await alice.waitText(inGroup);
  const marker = rand('marker-');
  for (const s of servers) {
    const res = await rest(s, 'POST', hubPath('chat', ':send'), { token: bearer, body: { target: 'msg', arguments: [marker] } });
    assert.equal(res.status, 202, res.describe());
  }
  await Promise.all([bob, carol].map((c) => c.waitText(marker)));
  assert.ok(!bob.got(inGroup) && !carol.got(inGroup), 'a group message reached a client outside the group');

  await until(() => /msg=connected/.test(app.logs()), 5000, 'the connected event in the app log');
  return [alice, bob, carol];
}

describe('identity: the identity command', () => {
  test('prints the three lines and answers the App Service managed identity protocol', async () => {
    const idp = track(await startIdentity());
    assert.match(idp.endpoint, /^http:\/\/127\.0\.0\.1:\d+\/msi\/token$/);
    assert.equal(idp.endpoint, `${idp.issuer}/msi/token`);
    assert.ok(idp.header.length >= 16);
    const lines = idp.logs().split('\n').filter((l) => /^[A-Z_]+=/.test(l));
    assert.deepEqual(lines.map((l) => l.split('=')[0]), ['IDENTITY_ENDPOINT', 'IDENTITY_HEADER', 'ISSUER']);

    const q = 'api-version=2019-08-01&resource=https://signalr.azure.com';
    for (const headers of [{}, { 'X-IDENTITY-HEADER': 'wrong' }]) {
      const res = await fetch(`${idp.endpoint}?${q}`, { headers });
      assert.equal(res.status, 401);
    }
    const res = await fetch(`${idp.endpoint}?${q}&client_id=${USER_CLIENT_ID}`, { headers: { 'X-IDENTITY-HEADER': idp.header } });
    assert.equal(res.status, 200);
    const body = await res.json();
    assert.equal(body.token_type, 'Bearer');
    assert.equal(body.resource, 'https://signalr.azure.com');
    assert.equal(body.client_id, USER_CLIENT_ID);
    assert.match(body.expires_on, /^\d{10}$/);
    const claims = decodeJWT(body.access_token);
    assert.equal(claims.iss, idp.issuer);
    assert.equal(claims.aud, 'https://signalr.azure.com');
    assert.equal(claims.appid, USER_CLIENT_ID);
    // Stable ids: the same client id gives the same object id; the system identity is another.
    const again = decodeJWT(await msiToken(idp, { clientId: USER_CLIENT_ID }));
    const system = decodeJWT(await msiToken(idp));
    assert.equal(again.oid, claims.oid);
    assert.notEqual(system.oid, claims.oid);
    assert.match(JSON.parse(Buffer.from(body.access_token.split('.')[0], 'base64url')).alg, /^(RS256|ES256)$/);
  });
});

describe('identity: one endpoint, no access key in the app', () => {
  let idp;
  let server;
  let appPort;
  let systemOid;

  before(async () => {
    idp = track(await startIdentity());
    systemOid = decodeJWT(await msiToken(idp)).oid;
    appPort = await freePort();
    server = track(
      await startServer({
        upstream: [triggerUrl(appPort)],
        args: ['--identity-issuer', idp.issuer, '--identity-allow', systemOid, '--identity-allow', USER_CLIENT_ID, '--disable-local-auth'],
      }),
    );
  });

  for (const kind of ['system-assigned', 'user-assigned']) {
    test(`${kind}: negotiate, trigger, messages and group actions`, async () => {
      const clientId = kind === 'user-assigned' ? USER_CLIENT_ID : undefined;
      const app = track(await startExampleApp({ port: appPort, env: identitySettings('AzureSignalRConnectionString', server.url, idp, clientId) }));
      try {
        const [alice] = await exerciseApp(app, [server], idp, clientId);
        // The client token the app minted is signed with a key from /api/v1/auth/accessKey.
        const res = await fetch(`${app.url}/api/negotiate`, { method: 'POST', headers: { 'x-ms-client-principal-id': 'dave' } });
        const { accessToken } = await res.json();
        const header = JSON.parse(Buffer.from(accessToken.split('.')[0], 'base64url'));
        assert.match(header.kid ?? '', /^sbx-ak1\./, `kid of the client token: ${JSON.stringify(header)}`);
        const oid = Buffer.from(header.kid.split('.')[2], 'base64url').toString();
        assert.equal(oid, kind === 'user-assigned' ? decodeJWT(await msiToken(idp, { clientId })).oid : systemOid);
        assert.equal(alice.state, 'Connected');
      } finally {
        await Promise.all(clients.splice(0).map((c) => c.stop()));
        await app.stop();
        procs.splice(procs.indexOf(app), 1);
      }
    });
  }

  test('AuthType=azure.msi connection string (user-assigned by ClientId)', async () => {
    const app = track(
      await startExampleApp({
        port: appPort,
        env: {
          AzureSignalRConnectionString: `Endpoint=${server.url};AuthType=azure.msi;ClientId=${USER_CLIENT_ID};Version=1.0;`,
          IDENTITY_ENDPOINT: idp.endpoint,
          IDENTITY_HEADER: idp.header,
        },
      }),
    );
    try {
      await exerciseApp(app, [server], idp, USER_CLIENT_ID);
    } finally {
      await Promise.all(clients.splice(0).map((c) => c.stop()));
      await app.stop();
      procs.splice(procs.indexOf(app), 1);
    }
  });

  test('refusals on every endpoint', async () => {
    const other = track(await startIdentity());
    const path = hubPath('chat', ':send');
    const good = await msiToken(idp, { clientId: USER_CLIENT_ID });
    const { pem, kid } = await issuerPublicKeyPEM(idp);
    const claims = decodeJWT(good);
    const hsWithPublicKey = (() => {
      const head = Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT', kid })).toString('base64url');
      const body = Buffer.from(JSON.stringify(claims)).toString('base64url');
      const sig = crypto.createHmac('sha256', pem).update(`${head}.${body}`).digest('base64url');
      return `${head}.${body}.${sig}`;
    })();
    const rsReheadedHS = (() => {
      const [, body, sig] = good.split('.');
      return `${Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT', kid })).toString('base64url')}.${body}.${sig}`;
    })();
    const bad = {
      'untrusted issuer': { token: await msiToken(other, { clientId: USER_CLIENT_ID }), status: 401 },
      'wrong audience': { token: await msiToken(idp, { clientId: USER_CLIENT_ID, resource: 'https://management.azure.com' }), status: 401 },
      'identity not allowed': { token: await msiToken(idp, { clientId: 'a-stranger' }), status: 403 },
      'HS256 signed with the issuer public key': { token: hsWithPublicKey, status: 401 },
      'RS256 signature under an HS256 header': { token: rsReheadedHS, status: 401 },
      'alg none': { token: signJWT(claims, '', { alg: 'none', header: { kid } }), status: 401 },
      'access-key token with local auth disabled': { token: restToken(server.key, path), status: 401 },
    };
    await assertRefusedEverywhere(server, bad, path);

    // Controls: the valid token passes where it applies; a derived key signs client tokens.
    assert.equal((await rest(server, 'POST', path, { token: good, body: { target: 'msg', arguments: [1] } })).status, 202);
    assert.equal((await rest(server, 'POST', v1Path('chat'), { token: good, body: { target: 'msg', arguments: [1] } })).status, 202);
    for (const p of ['/api/auth/accessKey', '/api/v1/auth/accessKey']) {
      const res = await fetch(`${server.url}${p}`, { headers: { Authorization: `Bearer ${good}` } });
      assert.equal(res.status, 200, p);
      const body = await res.json();
      assert.ok(body.KeyId && body.AccessKey, JSON.stringify(body));
      const tok = signJWT({ aud: `${server.url}/client/?hub=chat` }, body.AccessKey, { header: { kid: body.KeyId } });
      const neg = await fetch(`${server.url}/client/negotiate?hub=chat&negotiateVersion=1`, { method: 'POST', headers: { Authorization: `Bearer ${tok}` } });
      assert.equal(neg.status, 200, `${p}: negotiate with the derived key`);
      // The derived key is for client tokens only, and only under its own kid.
      assert.equal((await rest(server, 'POST', path, { token: signJWT({ aud: `http://127.0.0.1${path}` }, body.AccessKey, { header: { kid: body.KeyId } }) })).status, 401);
      const noKid = await fetch(`${server.url}/client/negotiate?hub=chat`, { method: 'POST', headers: { Authorization: `Bearer ${clientToken(body.AccessKey, 'chat')}` } });
      assert.equal(noKid.status, 401);
    }
    // Local auth disabled: the access key signs nothing the client endpoints accept.
    const neg = await fetch(`${server.url}/client/negotiate?hub=chat`, { method: 'POST', headers: { Authorization: `Bearer ${clientToken(server.key, 'chat')}` } });
    assert.equal(neg.status, 401);
  });

  test('expired identity tokens are refused on every endpoint', async () => {
    const short = track(await startIdentity({ args: ['--token-lifetime', '2s'] }));
    const s = track(await startServer({ args: ['--identity-issuer', short.issuer] }));
    const path = hubPath('chat', ':send');
    const token = await msiToken(short);
    assert.equal((await rest(s, 'POST', path, { token, body: { target: 'msg', arguments: [1] } })).status, 202, 'a fresh token');
    const { exp } = decodeJWT(token);
    await until(() => Date.now() / 1000 > exp + 0.5, 5000, 'the token to expire');
    await assertRefusedEverywhere(s, { expired: { token, status: 401 } }, path);
  });
});

/** Every endpoint refuses each token with the given status (client endpoints: always 401). */
async function assertRefusedEverywhere(server, bad, path) {
  for (const [name, { token, status }] of Object.entries(bad)) {
    const send = await rest(server, 'POST', path, { token, body: { target: 'msg', arguments: [name] } });
    assert.equal(send.status, status, `${name}: ${send.describe()}`);
    const v1 = await rest(server, 'POST', v1Path('chat'), { token, body: { target: 'msg', arguments: [name] } });
    assert.equal(v1.status, status, `${name}: ${v1.describe()}`);
    const exists = await rest(server, 'HEAD', hubPath('chat', 'users', 'u1'), { token });
    assert.equal(exists.status, status, `${name}: HEAD user`);
    for (const p of ['/api/auth/accessKey', '/api/v1/auth/accessKey']) {
      const res = await fetch(`${server.url}${p}`, { headers: { Authorization: `Bearer ${token}` } });
      assert.equal(res.status, name.startsWith('access-key') ? 401 : status, `${name}: ${p}`);
    }
    const neg = await fetch(`${server.url}/client/negotiate?hub=chat`, { method: 'POST', headers: { Authorization: `Bearer ${token}` } });
    assert.equal(neg.status, 401, `${name}: negotiate`);
    // Connect without negotiate (WebSockets): the official client fails to start.
    const conn = new HubConnectionBuilder()
      .withUrl(`${server.url}/client/?hub=chat`, { transport: HttpTransportType.WebSockets, skipNegotiation: true, accessTokenFactory: () => token })
      .build();
    await assert.rejects(withTimeout(conn.start(), 10000, `${name}: start`), undefined, `${name}: connect`);
    await conn.stop();
  }
}

describe('identity: two Azure__SignalR__Endpoints__*__serviceUri endpoints', () => {
  test('user-assigned identity across two Signalbox instances', async () => {
    const idp = track(await startIdentity());
    const appPort = await freePort();
    const args = ['--identity-issuer', idp.issuer, '--identity-allow', USER_CLIENT_ID, '--disable-local-auth'];
    const [east, west] = await Promise.all([
      startServer({ upstream: [triggerUrl(appPort)], args }),
      startServer({ upstream: [triggerUrl(appPort)], args }),
    ]);
    track(east);
    track(west);
    const app = track(
      await startExampleApp({
        port: appPort,
        env: {
          ...identitySettings('Azure__SignalR__Endpoints__east', east.url, idp, USER_CLIENT_ID),
          ...identitySettings('Azure__SignalR__Endpoints__west', west.url, idp, USER_CLIENT_ID),
        },
      }),
    );
    const [alice, bob, carol] = await exerciseApp(app, [east, west], idp, USER_CLIENT_ID);
    // Negotiate spreads clients over both endpoints; connect until each has one. Where a
    // connection lives, its server's REST API says (with an Entra token).
    const bearer = await msiToken(idp, { clientId: USER_CLIENT_ID });
    const home = new Map();
    const locate = async (c) => {
      for (const s of [east, west]) {
        if ((await rest(s, 'HEAD', hubPath('chat', 'connections', c.id), { token: bearer })).status === 200) home.set(c, s);
      }
      return c;
    };
    const on = (s) => (c) => home.get(c) === s;
    const all = [alice, bob, carol];
    for (const c of all) await locate(c);
    for (let i = 0; i < 24 && !(all.some(on(east)) && all.some(on(west))); i++) {
      all.push(await locate(await viaApp(app, { userId: `extra${i}`, transport: 'ws' })));
    }
    assert.ok(all.some(on(east)) && all.some(on(west)), `negotiate never chose one of the endpoints: ${all.length} clients`);
    const text = rand('both-');
    const sender = all.find(on(west));
    await withTimeout(sender.conn.invoke('broadcast', text), 10000, 'broadcast from the west');
    await Promise.all(all.map((c) => c.waitFor('newMessage', (t) => t === text, { what: `newMessage(${text})` })));
    assert.equal(await withTimeout(all.find(on(east)).conn.invoke('echo', 7), 10000, 'echo via east'), 7);
  });
});
