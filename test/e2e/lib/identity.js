// Identity-based access end to end: `signalbox identity` (a local managed identity), Signalbox
// trusting it, and the example function app (examples/functionapp) with identity settings.
import crypto from 'node:crypto';
import { signalboxBinary } from './server.js';
import { goBinary } from './functionsapp.js';
import { spawnReady } from './process.js';
import { freePort, until } from './util.js';


/**
 * Starts `signalbox identity` on a free port. Returns the handle plus the three values it
 * printed: { endpoint, header, issuer }.
 */
export async function startIdentity({ args = [] } = {}) {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const h = await spawnReady('signalbox identity', signalboxBinary(), ['identity', '--listen', `127.0.0.1:${port}`, ...args], {}, `${base}/.well-known/openid-configuration`);
  const printed = await until(() => {
    const lines = Object.fromEntries(
      h.logs().split('\n').filter((l) => /^(IDENTITY_ENDPOINT|IDENTITY_HEADER|ISSUER)=/.test(l)).map((l) => l.split(/=(.*)/s).slice(0, 2)),
    );
    return lines.ISSUER && lines.IDENTITY_HEADER && lines.IDENTITY_ENDPOINT ? lines : null;
  }, 5000, 'the identity lines on stdout');
  return { ...h, endpoint: printed.IDENTITY_ENDPOINT, header: printed.IDENTITY_HEADER, issuer: printed.ISSUER };
}

/** A token from the identity endpoint, as a managed identity gets one. */
export async function msiToken(idp, { resource = 'https://signalr.azure.com', clientId } = {}) {
  const q = new URLSearchParams({ 'api-version': '2019-08-01', resource });
  if (clientId) q.set('client_id', clientId);
  const res = await fetch(`${idp.endpoint}?${q}`, { headers: { 'X-IDENTITY-HEADER': idp.header }, signal: AbortSignal.timeout(5000) });
  if (res.status !== 200) throw new Error(`token endpoint: ${res.status} ${await res.text()}`);
  return (await res.json()).access_token;
}

/** The public key of the issuer's JWKS, as PEM (for alg-confusion tokens). */
export async function issuerPublicKeyPEM(idp) {
  const disc = await (await fetch(`${idp.issuer}/.well-known/openid-configuration`)).json();
  const jwks = await (await fetch(disc.jwks_uri)).json();
  const jwk = jwks.keys[0];
  return { pem: crypto.createPublicKey({ key: jwk, format: 'jwk' }).export({ type: 'spki', format: 'pem' }), kid: jwk.kid };
}

/** The example function app with `env`; ready once its negotiate function answers 200. */
export async function startExampleApp({ port, env }) {
  port = port ?? (await freePort());
  const url = `http://127.0.0.1:${port}`;
  const h = await spawnReady('examples/functionapp', goBinary('./examples/functionapp'), [], { ...env, FUNCTIONS_CUSTOMHANDLER_PORT: String(port) }, `${url}/api/negotiate`, {
    readyTimeout: 30000,
  });
  return { ...h, url, port };
}

/** The identity settings of the function app for endpoint key prefix K (e.g. AzureSignalRConnectionString). */
export function identitySettings(prefix, serviceUrl, idp, clientId) {
  const env = {
    [`${prefix}__serviceUri`]: serviceUrl,
    [`${prefix}__credential`]: 'managedidentity',
    IDENTITY_ENDPOINT: idp.endpoint,
    IDENTITY_HEADER: idp.header,
  };
  if (clientId) env[`${prefix}__clientId`] = clientId;
  return env;
}
