// Official @microsoft/signalr clients for every transport x protocol, wrapped so tests can await
// what arrives (with timeouts) and prove what did not.
import { HubConnectionBuilder, HttpTransportType, LogLevel, HubConnectionState } from '@microsoft/signalr';
import { MessagePackHubProtocol } from '@microsoft/signalr-protocol-msgpack';
import { clientToken } from './jwt.js';
import { deferred, withTimeout, rand } from './util.js';

export const TRANSPORTS = {
  ws: HttpTransportType.WebSockets,
  sse: HttpTransportType.ServerSentEvents,
  lp: HttpTransportType.LongPolling,
};

/** Every combination the official clients support (SSE is text only). */
export const COMBOS = [
  { transport: 'ws', protocol: 'json' },
  { transport: 'ws', protocol: 'messagepack' },
  { transport: 'sse', protocol: 'json' },
  { transport: 'lp', protocol: 'json' },
  { transport: 'lp', protocol: 'messagepack' },
];

/** Client-side log lines are kept (not printed) unless E2E_CLIENT_LOG is set. */
class MemoryLogger {
  constructor(name) {
    this.name = name;
    this.lines = [];
  }
  log(level, message) {
    const line = `[${new Date().toISOString()}] ${this.name} ${LogLevel[level]}: ${message}`;
    this.lines.push(line);
    if (this.lines.length > 200) this.lines.shift();
    if (process.env.E2E_CLIENT_LOG) console.error(line);
  }
}

/** Targets a test client listens on; anything else would only make the client log a warning. */
export const TARGETS = ['msg', 'other', 'newMessage'];

export class TestClient {
  constructor(conn, { name, hub, transport, protocol, userId, logger }) {
    this.conn = conn;
    this.hub = hub;
    this.name = name;
    this.transport = transport;
    this.protocol = protocol;
    this.userId = userId;
    this.logger = logger;
    this.received = []; // { target, args }
    this.waiters = new Set();
    this.closed = deferred();
    this.closeError = undefined;
    this.isClosed = false;
    conn.onclose((err) => {
      this.isClosed = true;
      this.closeError = err;
      this.closed.resolve(err);
    });
    for (const target of TARGETS) {
      conn.on(target, (...args) => this._record(target, args));
    }
  }

  /** The public connection id (what REST and upstream use); kept after the connection closed. */
  get id() {
    if (this.conn.connectionId) this._id = this.conn.connectionId;
    return this._id ?? null;
  }

  get state() {
    return this.conn.state;
  }

  _record(target, args) {
    const m = { target, args };
    this.received.push(m);
    for (const w of this.waiters) {
      if (w.target === target && w.pred(...args)) {
        this.waiters.delete(w);
        w.resolve(m);
      }
    }
  }

  /** Resolves with the first message (already received or future) on `target` whose args match. */
  waitFor(target, pred = () => true, { timeout = 10000, what } = {}) {
    const have = this.received.find((m) => m.target === target && pred(...m.args));
    if (have) return Promise.resolve(have);
    const d = deferred();
    const w = { target, pred, resolve: d.resolve };
    this.waiters.add(w);
    return withTimeout(d.promise, timeout, `${this.name}: ${what ?? `a '${target}' message`}`).finally(() =>
      this.waiters.delete(w),
    );
  }

  /** Resolves when a 'msg' whose first argument equals `text` arrived. */
  waitText(text, opts = {}) {
    return this.waitFor('msg', (a) => a === text, { what: `msg(${JSON.stringify(text)})`, ...opts });
  }

  /** True when a 'msg' whose first argument equals `text` arrived. */
  got(text) {
    return this.received.some((m) => m.target === 'msg' && m.args[0] === text);
  }

  /** Resolves with onclose's error argument. */
  waitClosed(timeout = 10000) {
    return withTimeout(this.closed.promise, timeout, `${this.name}: onclose`);
  }

  texts() {
    return this.received.filter((m) => m.target === 'msg').map((m) => m.args[0]);
  }

  async stop() {
    if (this.conn.state !== HubConnectionState.Disconnected) {
      try {
        await withTimeout(this.conn.stop(), 10000, `${this.name}: stop()`);
      } catch {
        // the test already decided; a stuck stop must not hide its result
      }
    }
  }
}

/**
 * Builds (and by default starts) a client.
 *   server: { url, key } ; hub ; userId ; transport 'ws'|'sse'|'lp' ; protocol 'json'|'messagepack'
 *   url: override the connect URL (default <server>/client/?hub=<hub>)
 *   token: string, function, or null for no accessTokenFactory (default: a valid client token)
 *   keepAliveMs / serverTimeoutMs: the client's keep-alive interval and server timeout
 */
export async function createClient(server, opts = {}) {
  const { hub, userId, transport = 'ws', protocol = 'json', start = true, claims } = opts;
  const name = opts.name ?? `${transport}/${protocol}/${userId ?? 'anon'}/${rand()}`;
  const url = opts.url ?? `${server.url}/client/?hub=${hub}`;
  const logger = new MemoryLogger(name);
  const httpOpts = { transport: TRANSPORTS[transport], skipNegotiation: false, logger, timeout: 15000 };
  if (opts.token !== null) {
    // One token per client, as a real app holds one: an anonymous connection is usable
    // only with the token that negotiated it (tokens minted in another second differ).
    let minted;
    const tok = opts.token ?? (() => (minted ??= clientToken(server.key, hub, { userId, claims })));
    httpOpts.accessTokenFactory = typeof tok === 'function' ? tok : () => tok;
  }
  let builder = new HubConnectionBuilder().withUrl(url, httpOpts).configureLogging(logger);
  if (protocol === 'messagepack') builder = builder.withHubProtocol(new MessagePackHubProtocol());
  const conn = builder.build();
  if (opts.keepAliveMs) conn.keepAliveIntervalInMilliseconds = opts.keepAliveMs;
  if (opts.serverTimeoutMs) conn.serverTimeoutInMilliseconds = opts.serverTimeoutMs;
  const client = new TestClient(conn, { name, hub, transport, protocol, userId, logger });
  if (start) {
    try {
      await withTimeout(conn.start(), 20000, `${name}: start()`);
      client._id = conn.connectionId;
    } catch (err) {
      err.message += `\nclient log:\n${logger.lines.slice(-15).join('\n')}`;
      throw err;
    }
  }
  return client;
}

/** Tracks clients so a test file can stop them all after each test. */
export class ClientPool {
  constructor() {
    this.clients = new Set();
  }
  async create(server, opts) {
    const c = await createClient(server, opts);
    this.clients.add(c);
    return c;
  }
  async stopAll() {
    const all = [...this.clients];
    this.clients.clear();
    await Promise.all(all.map((c) => c.stop()));
  }
}
