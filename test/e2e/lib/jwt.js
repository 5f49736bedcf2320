// Access tokens minted the way the Azure SignalR SDK does: HS256 (or HS512) over the UTF-8 bytes of
// the access key, aud without port, user id in asrs.s.uid.
import crypto from 'node:crypto';

const b64url = (buf) => Buffer.from(buf).toString('base64url');

/**
 * Signs `payload` with `key`. `alg` is 'HS256', 'HS512' or 'none' (unsigned, for negative tests).
 * `exp` defaults to one hour from now unless the payload sets it (null drops it).
 */
export function signJWT(payload, key, { alg = 'HS256', header = {} } = {}) {
  const now = Math.floor(Date.now() / 1000);
  const body = { iat: now, nbf: now, exp: now + 3600, ...payload };
  for (const k of Object.keys(body)) if (body[k] === null || body[k] === undefined) delete body[k];
  const head = b64url(JSON.stringify({ alg, typ: 'JWT', ...header }));
  const claims = b64url(JSON.stringify(body));
  const input = `${head}.${claims}`;
  if (alg === 'none') return `${input}.`;
  const hash = { HS256: 'sha256', HS384: 'sha384', HS512: 'sha512' }[alg];
  if (!hash) throw new Error(`unsupported alg ${alg}`);
  const sig = crypto.createHmac(hash, Buffer.from(key, 'utf8')).update(input).digest();
  return `${input}.${b64url(sig)}`;
}

/** The claims part of a JWT, decoded (no verification). */
export function decodeJWT(token) {
  const [, claims] = token.split('.');
  return JSON.parse(Buffer.from(claims, 'base64url').toString('utf8'));
}

/** The audience the SDK puts in client tokens: scheme://host/client/?hub=<lower hub>, port dropped. */
export function clientAudience(hub, host = '127.0.0.1') {
  return `http://${host}/client/?hub=${hub.toLowerCase()}`;
}

/** A client access token for `hub` (user id optional; extra claims and options pass through). */
export function clientToken(key, hub, { userId, claims = {}, alg, aud, exp } = {}) {
  const payload = { aud: aud ?? clientAudience(hub), ...claims };
  if (userId !== undefined) payload['asrs.s.uid'] = userId;
  if (exp !== undefined) payload.exp = exp;
  return signJWT(payload, key, { alg });
}

/** A REST token whose aud is the request path (the server compares the path only). */
export function restToken(key, path, { alg, exp } = {}) {
  const payload = { aud: `http://127.0.0.1${path}` };
  if (exp !== undefined) payload.exp = exp;
  return signJWT(payload, key, { alg });
}

/** sha256=<hex HMAC-SHA256(key, connectionId)>, lower-case hex. */
export function upstreamSignature(key, connectionId) {
  return 'sha256=' + crypto.createHmac('sha256', Buffer.from(key, 'utf8')).update(connectionId).digest('hex');
}
