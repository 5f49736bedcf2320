// Hand-built hub-protocol frames and MessagePack bytes, for REST multi-protocol bodies and for the
// fake upstream's replies. MessagePack framing/parsing goes through the official client's protocol.
import { JsonHubProtocol, MessageType, NullLogger } from '@microsoft/signalr';
import { MessagePackHubProtocol } from '@microsoft/signalr-protocol-msgpack';

const json = new JsonHubProtocol();
const msgpack = new MessagePackHubProtocol();

/** A framed message (string for JSON, Buffer for MessagePack) in the named protocol. */
export function frame(protocol, message) {
  if (protocol === 'json') return json.writeMessage(message);
  return Buffer.from(msgpack.writeMessage(message));
}

/** A framed Invocation without invocation id: what a service sends a client. */
export function invocationFrame(protocol, target, args) {
  return frame(protocol, { type: MessageType.Invocation, target, arguments: args, headers: {}, streamIds: [] });
}

/** A framed Completion with a result. */
export function completionFrame(protocol, invocationId, result) {
  return frame(protocol, { type: MessageType.Completion, invocationId, result, headers: {} });
}

/** A framed Completion with an error. */
export function completionErrorFrame(protocol, invocationId, error) {
  return frame(protocol, { type: MessageType.Completion, invocationId, error, headers: {} });
}

function varint(n) {
  const out = [];
  do {
    let b = n & 0x7f;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return Buffer.from(out);
}

/**
 * Parses one unframed hub message (an upstream request body) in the given protocol,
 * using the official client's parsers.
 */
export function parseUnframed(protocol, body) {
  if (protocol === 'json') {
    const text = body.toString('utf8');
    if (text.includes('\x1e')) throw new Error('upstream body must not carry the 0x1E record separator');
    return JSON.parse(text);
  }
  const framed = Buffer.concat([varint(body.length), body]);
  const ab = framed.buffer.slice(framed.byteOffset, framed.byteOffset + framed.length);
  const msgs = msgpack.parseMessages(ab, NullLogger.instance);
  if (msgs.length !== 1) throw new Error(`expected one MessagePack message in the upstream body, got ${msgs.length}`);
  return msgs[0];
}

// --- minimal MessagePack writer for the REST application/octet-stream body ---
function mpStr(s) {
  const b = Buffer.from(s, 'utf8');
  if (b.length < 32) return Buffer.concat([Buffer.from([0xa0 | b.length]), b]);
  const h = Buffer.alloc(5);
  h[0] = 0xdb;
  h.writeUInt32BE(b.length, 1);
  return Buffer.concat([h, b]);
}

function mpBin(data) {
  const h = Buffer.alloc(5);
  h[0] = 0xc6;
  h.writeUInt32BE(data.length, 1);
  return Buffer.concat([h, data]);
}

/** The SDK's multi-protocol body: MessagePack map { "json": bin, "messagepack": bin } of framed messages. */
export function multiProtocolBody(frames) {
  const keys = Object.keys(frames);
  const parts = [Buffer.from([0x80 | keys.length])];
  for (const k of keys) {
    const v = frames[k];
    parts.push(mpStr(k), mpBin(Buffer.isBuffer(v) ? v : Buffer.from(v, 'utf8')));
  }
  return Buffer.concat(parts);
}
