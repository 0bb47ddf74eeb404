// Replication wire messages: 4-byte big-endian length + one CBOR message, and the checks
// that turn a peer's bytes into a typed message or a reason to cut it off.
import { decodeCbor, encodeCbor, type Value } from '../envelope/cbor.ts';
import { isDatasetName } from '../envelope/update.ts';
import { isNodeId, type NodeId } from '../identity/node-id.ts';

/** Protocol version carried in every hello. */
export const PROTOCOL_VERSION = 1;
export const MSG_HELLO = 0;
export const MSG_UPDATES = 1;
export const MSG_SYNC = 2;
/** Deepest nesting in a message (hello meta included). Past it: the peer is cut off. */
export const MAX_MESSAGE_DEPTH = 16;

/** One source in a digest: version and the first 8 bytes of its latest update's hash. */
export interface DigestEntry {
  version: number;
  hashPrefix: Uint8Array;
}

/** What a peer says about itself when a stream opens. */
export interface Hello {
  dataset: string;
  id: NodeId;
  digest: Map<NodeId, DigestEntry>;
  meta: Value;
  readable: boolean;
  writable: boolean;
}

export type Message =
  | { type: 'hello'; hello: Hello }
  | { type: 'updates'; updates: Uint8Array[] }
  | { type: 'sync' };

/** A decoded message, or why the peer must be cut off. */
export type MessageResult = { ok: true; message: Message } | { ok: false; reason: string };

/** Frames a CBOR message: 4-byte big-endian length, then the bytes. */
export function frame(message: unknown): Buffer {
  const body = encodeCbor(message);
  const out = Buffer.allocUnsafe(4 + body.length);
  out.writeUInt32BE(body.length, 0);
  out.set(body, 4);
  return out;
}

export function encodeHello(h: Hello): Buffer {
  const digest = [...h.digest].map(([source, e]) => [source, e.version, e.hashPrefix]);
  return frame([MSG_HELLO, PROTOCOL_VERSION, h.dataset, h.id, digest, h.meta, (h.readable ? 1 : 0) | (h.writable ? 2 : 0)]);
}

export function encodeUpdates(envelopes: Uint8Array[]): Buffer {
  return frame([MSG_UPDATES, envelopes]);
}

export const encodeSync = (): Buffer => frame([MSG_SYNC]);

/** Decodes and checks one message. Never throws. */
export function decodeMessage(bytes: Uint8Array): MessageResult {
  const r = decodeCbor(bytes, { maxDepth: MAX_MESSAGE_DEPTH });
  if (!r.ok) return { ok: false, reason: `malformed: ${r.detail}` };
  const m = r.value;
  if (!Array.isArray(m) || typeof m[0] !== 'number') return { ok: false, reason: 'malformed: not a typed message' };
  switch (m[0]) {
    case MSG_HELLO:
      return decodeHello(m);
    case MSG_UPDATES: {
      const list = m[1];
      if (m.length !== 2 || !Array.isArray(list) || !list.every((x) => x instanceof Uint8Array)) {
        return { ok: false, reason: 'malformed: updates is not [1, [bytes...]]' };
      }
      return { ok: true, message: { type: 'updates', updates: list as Uint8Array[] } };
    }
    case MSG_SYNC:
      return m.length === 1 ? { ok: true, message: { type: 'sync' } } : { ok: false, reason: 'malformed: sync' };
    default:
      return { ok: false, reason: `unknown message type ${String(m[0])}` };
  }
}

function decodeHello(m: Value[]): MessageResult {
  const [, version, dataset, id, digest, meta, flags] = m;
  if (m.length !== 7) return { ok: false, reason: 'malformed: hello has the wrong length' };
  if (typeof version !== 'number' || !Number.isSafeInteger(version)) return { ok: false, reason: 'malformed: hello protocol version' };
  if (version !== PROTOCOL_VERSION) return { ok: false, reason: `unsupported protocol version ${version}` };
  if (!isDatasetName(dataset)) return { ok: false, reason: 'malformed: hello dataset' };
  if (!isNodeId(id)) return { ok: false, reason: 'malformed: hello id is not a node id' };
  if (!Array.isArray(digest)) return { ok: false, reason: 'malformed: hello digest' };
  if (typeof flags !== 'number' || !Number.isInteger(flags) || flags < 0 || flags > 3) return { ok: false, reason: 'malformed: hello flags' };
  const map = new Map<NodeId, DigestEntry>();
  for (const e of digest) {
    if (!Array.isArray(e) || e.length !== 3) return { ok: false, reason: 'malformed: digest entry' };
    const [source, v, prefix] = e;
    if (!isNodeId(source) || typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1 || !(prefix instanceof Uint8Array) || prefix.length !== 8) {
      return { ok: false, reason: 'malformed: digest entry' };
    }
    if (map.has(source)) return { ok: false, reason: 'malformed: digest names a source twice' };
    map.set(source, { version: v, hashPrefix: prefix });
  }
  return { ok: true, message: { type: 'hello', hello: { dataset, id, digest: map, meta: meta ?? null, readable: (flags & 1) !== 0, writable: (flags & 2) !== 0 } } };
}

/**
 * Splits a byte stream into length-prefixed messages. A declared length over `maxBytes` is
 * refused from its 4-byte header alone, before any buffer is allocated for it.
 */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private need = -1;

  constructor(private readonly maxBytes: number) {}

  /** Bytes held waiting for the rest of a message. */
  get pending(): number {
    return this.buffered;
  }

  /** Adds bytes; returns complete messages, or a string reason if a length breaks the limit. */
  push(chunk: Buffer): Buffer[] | string {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const out: Buffer[] = [];
    for (;;) {
      if (this.need < 0) {
        if (this.buffered < 4) break;
        const head = this.take(4);
        const length = head.readUInt32BE(0);
        if (length > this.maxBytes) return `message of ${length} bytes exceeds the ${this.maxBytes}-byte limit`;
        this.need = length;
      }
      if (this.buffered < this.need) break;
      out.push(this.take(this.need));
      this.need = -1;
    }
    return out;
  }

  private take(n: number): Buffer {
    if (n === 0) return Buffer.alloc(0); // an empty message may end the last chunk: no chunk to cut
    const first = this.chunks[0]!;
    let out: Buffer;
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
    } else {
      out = Buffer.allocUnsafe(n); // n was checked against the limit and is all present
      let off = 0;
      while (off < n) {
        const c = this.chunks[0]!;
        const k = Math.min(c.length, n - off);
        c.copy(out, off, 0, k);
        off += k;
        if (k === c.length) this.chunks.shift();
        else this.chunks[0] = c.subarray(k);
      }
    }
    this.buffered -= n;
    return out;
  }
}
