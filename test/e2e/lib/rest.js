// The data-plane REST API as a function app's output binding calls it: fetch with a bearer token
// whose aud is the request path.
import { restToken } from './jwt.js';

/**
 * rest(server, method, path, opts) -> { status, headers, text, json }
 *   path: '/api/hubs/<hub>/...'; opts.query: object (array values repeat the key) or URLSearchParams
 *   opts.body: object (sent as JSON) or Buffer/string with opts.contentType
 *   opts.token: override (null = no Authorization header); opts.key: sign with another key
 */
export async function rest(server, method, path, opts = {}) {
  const { query, body, contentType, headers = {}, timeout = 10000 } = opts;
  const qs = new URLSearchParams();
  if (query instanceof URLSearchParams) {
    for (const [k, v] of query) qs.append(k, v);
  } else if (query) {
    for (const [k, v] of Object.entries(query)) {
      for (const item of Array.isArray(v) ? v : [v]) qs.append(k, String(item));
    }
  }
  if (!qs.has('api-version') && path.startsWith('/api/hubs/')) qs.set('api-version', '2022-06-01');
  const token = opts.token === undefined ? restToken(opts.key ?? server.key, path) : opts.token;
  const h = { ...headers };
  if (token !== null) h.Authorization = `Bearer ${token}`;
  let payload;
  if (body !== undefined) {
    if (Buffer.isBuffer(body) || typeof body === 'string') {
      payload = body;
      h['Content-Type'] = contentType ?? 'application/json';
    } else {
      payload = JSON.stringify(body);
      h['Content-Type'] = contentType ?? 'application/json; charset=utf-8';
    }
  }
  const q = qs.toString();
  const url = `${server.url}${path}${q ? '?' + q : ''}`;
  const res = await fetch(url, { method, headers: h, body: payload, signal: AbortSignal.timeout(timeout) });
  const text = method === 'HEAD' ? '' : await res.text();
  return {
    status: res.status,
    headers: res.headers,
    text,
    errorCode: res.headers.get('x-ms-error-code'),
    json() {
      return JSON.parse(text);
    },
    describe() {
      return `${method} ${path}${q ? '?' + q : ''} -> ${res.status} x-ms-error-code=${res.headers.get('x-ms-error-code')} body=${text.slice(0, 300)}`;
    },
  };
}

/** Builds the path under the current API: hubPath('chat', 'users', 'u1', ':send'). Segments are URL-escaped. */
export function hubPath(hub, ...segments) {
  return `/api/hubs/${hub}` + segments.map((s) => (s.startsWith(':') ? '/' + s : '/' + encodeURIComponent(s))).join('');
}

/** Builds a legacy /api/v1/hubs/<hub>/... path. */
export function v1Path(hub, ...segments) {
  return `/api/v1/hubs/${hub}` + segments.map((s) => '/' + encodeURIComponent(s)).join('');
}
