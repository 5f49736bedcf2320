// A stand-in for a function app's negotiate function with the SignalRConnectionInfo input binding:
// POST /api/negotiate returns {url, accessToken} for Signalbox, with CORS for browsers.
import http from 'node:http';
import { clientToken } from './jwt.js';
import { closeServer } from './util.js';

/**
 * startNegotiate(() => signalboxHandle, { hub }) -> { url, port, requests, close() }
 * The user id comes from the `userId` query parameter or the x-ms-client-principal-id header.
 */
export async function startNegotiate(getServer, { hub }) {
  const requests = [];
  const srv = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://127.0.0.1');
    requests.push({ method: req.method, path: url.pathname, query: url.searchParams, headers: req.headers });
    const origin = req.headers.origin;
    if (origin) {
      res.setHeader('Access-Control-Allow-Origin', origin);
      res.setHeader('Access-Control-Allow-Credentials', 'true');
      res.setHeader('Vary', 'Origin');
    }
    if (req.method === 'OPTIONS') {
      res.setHeader('Access-Control-Allow-Methods', 'POST, GET, OPTIONS');
      res.setHeader('Access-Control-Allow-Headers', req.headers['access-control-request-headers'] ?? '*');
      res.writeHead(204).end();
      return;
    }
    if (url.pathname !== '/api/negotiate' || (req.method !== 'POST' && req.method !== 'GET')) {
      res.writeHead(404).end();
      return;
    }
    const server = getServer();
    const userId = url.searchParams.get('userId') ?? req.headers['x-ms-client-principal-id'] ?? undefined;
    const body = JSON.stringify({
      url: `${server.url}/client/?hub=${hub}`,
      accessToken: clientToken(server.key, hub, { userId }),
    });
    res.writeHead(200, { 'Content-Type': 'application/json' }).end(body);
  });
  await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const port = srv.address().port;
  return { url: `http://127.0.0.1:${port}`, port, requests, close: () => closeServer(srv) };
}
