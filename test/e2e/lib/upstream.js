// A fake function app: records every upstream request the service makes and answers the way the
// Functions SignalR extension does (framed Completions in the caller's protocol).
import http from 'node:http';
import { deferred, withTimeout, readBody, closeServer } from './util.js';
import { completionFrame, completionErrorFrame, parseUnframed } from './frames.js';

export class FakeUpstream {
  constructor() {
    this.requests = [];
    this.waiters = new Set();
    this.server = null;
    this.url = null;
    // Tests may replace this to answer differently: (rec, res) => boolean (true = handled).
    this.override = null;
  }

  async start() {
    this.server = http.createServer((req, res) => this._handle(req, res).catch((err) => {
      res.statusCode = 599;
      res.end(String(err));
    }));
    await new Promise((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = this.server.address().port;
    this.url = `http://127.0.0.1:${this.port}`;
    return this;
  }

  close() {
    return closeServer(this.server);
  }

  async _handle(req, res) {
    const body = await readBody(req);
    const url = new URL(req.url, this.url);
    const ct = req.headers['content-type'] ?? '';
    const protocol = ct.startsWith('application/x-msgpack') ? 'messagepack' : 'json';
    let message;
    let parseError;
    try {
      message = body.length ? parseUnframed(protocol, body) : undefined;
    } catch (err) {
      parseError = err.message;
    }
    const rec = {
      seq: this.requests.length,
      method: req.method,
      path: url.pathname,
      query: url.searchParams,
      headers: req.headers,
      connectionId: req.headers['x-asrs-connection-id'],
      hub: req.headers['x-asrs-hub'],
      category: req.headers['x-asrs-category'],
      event: req.headers['x-asrs-event'],
      contentType: ct,
      protocol,
      body,
      message,
      parseError,
    };
    this.requests.push(rec);
    for (const w of this.waiters) {
      if (w.pred(rec)) {
        this.waiters.delete(w);
        w.resolve(rec);
      }
    }
    if (this.override && (await this.override(rec, res))) return;
    this.answer(rec, res);
  }

  /** The default function app behaviour, by event name. */
  answer(rec, res) {
    if (rec.category !== 'messages') {
      res.writeHead(200).end();
      return;
    }
    const id = rec.message?.invocationId;
    const reply = (buf) => {
      res.writeHead(200, { 'Content-Type': rec.protocol === 'json' ? 'application/json' : 'application/x-msgpack' });
      res.end(buf);
    };
    switch (rec.event) {
      case 'echo':
        if (id === undefined || id === null) return res.writeHead(200).end();
        return reply(completionFrame(rec.protocol, id, rec.message.arguments[0] ?? null));
      case 'fail':
        return res.writeHead(500).end('function crashed');
      case 'missing':
        return res.writeHead(404).end();
      case 'void':
        return res.writeHead(204).end();
      case 'empty200':
        return res.writeHead(200, { 'Content-Length': '0' }).end();
      case 'throws':
        return reply(completionErrorFrame(rec.protocol, id, 'boom from the function'));
      case 'garbage':
        return reply(Buffer.from('this is not a hub message'));
      default:
        return res.writeHead(200).end();
    }
  }

  /** Resolves with the first request (recorded or future) matching `pred`. */
  waitFor(pred, { timeout = 10000, what = 'an upstream request' } = {}) {
    const have = this.requests.find(pred);
    if (have) return Promise.resolve(have);
    const d = deferred();
    const w = { pred, resolve: d.resolve };
    this.waiters.add(w);
    return withTimeout(d.promise, timeout, what).finally(() => this.waiters.delete(w));
  }

  /** Requests of one connection, in arrival order. */
  of(connectionId) {
    return this.requests.filter((r) => r.connectionId === connectionId);
  }
}
