// Replication wire messages: 4-byte big-endian length + one CBOR message, and the checks
// that turn a peer's bytes into a typed message or a reason to cut it off.
import { cborHead, checkCbor, decodeScanned, encodeCbor, minimalHeadLength, readHead, scanCbor, writeHead, type Value } from '../envelope/cbor.ts';
import { concatBytes } from '../util/bytes.ts';
import { isDatasetName } from '../envelope/update.ts';
import { MIN_ITEM_BYTES } from './compact.ts';
import { isNodeId, NODE_ID_LENGTH, type NodeId } from '../identity/node-id.ts';
import { MAX_DATASET_LENGTH, MAX_META_BYTES, MAX_UPDATE_BYTES, MAX_UPDATE_BYTES_CEILING } from '../limits.ts';
import { MAX_RECONCILE_MESSAGE_BYTES, NONCE_BYTES, newNonce } from '../reconcile/index.ts';

/** Protocol version carried in every hello. 2: hellos carry a reconciliation nonce, and
 *  reconciliation messages follow SYNC. 3: updates travel as compact items (compact.ts). */
export const PROTOCOL_VERSION = 3;
export const MSG_HELLO = 0;
export const MSG_UPDATES = 1;
export const MSG_SYNC = 2;
/** [3, bytes]: one message of a reconciliation session (src/reconcile), at most
 *  MAX_RECONCILE_MESSAGE_BYTES. */
export const MSG_RECONCILE = 3;
/** Deepest nesting in a hello's meta. Past it: the peer is cut off. */
export const MAX_MESSAGE_DEPTH = 16;
/** Smallest digest entry on the wire: [node id (52 chars), version, 8-byte hash prefix]. */
const MIN_DIGEST_ENTRY_BYTES = 1 + 2 + NODE_ID_LENGTH + 1 + 1 + 8;

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
  /** This side runs reconciliation sessions after SYNC (flag bit 4). Default false on encode. */
  reconcile?: boolean;
  /** The largest update body this side accepts: the peer sends nothing larger. Always on the
   *  wire; encodeHello writes MAX_UPDATE_BYTES (64 KiB) if it is not given. */
  maxUpdateBytes?: number;
  /** This side's share of the reconciliation salt (NONCE_BYTES random bytes). Always on the
   *  wire; encodeHello draws a fresh one if it is not given. */
  nonce?: Uint8Array;
}

export type Message =
  | { type: 'hello'; hello: Hello }
  | { type: 'updates'; updates: Uint8Array[] }
  | { type: 'sync' }
  | { type: 'reconcile'; payload: Uint8Array };

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

/** Encodes a hello by hand: integers are always CBOR unsigned integers (cbor-x would write
 *  versions above 2^32 as floats), so the decoder can demand one encoding. */
export function encodeHello(h: Hello): Buffer {
  const parts: Uint8Array[] = [];
  parts.push(cborHead(4, 9), cborHead(0, MSG_HELLO), cborHead(0, PROTOCOL_VERSION), text(h.dataset), text(h.id), cborHead(4, h.digest.size));
  for (const [source, e] of h.digest) parts.push(Uint8Array.of(0x83), text(source), cborHead(0, e.version), cborHead(2, e.hashPrefix.length), e.hashPrefix);
  parts.push(encodeCbor(h.meta), cborHead(0, (h.readable ? 1 : 0) | (h.writable ? 2 : 0) | (h.reconcile ? 4 : 0)), cborHead(0, h.maxUpdateBytes ?? MAX_UPDATE_BYTES));
  const nonce = h.nonce ?? newNonce();
  parts.push(cborHead(2, nonce.length), nonce);
  const length = parts.reduce((n, p) => n + p.length, 0);
  const out = Buffer.allocUnsafe(4 + length);
  out.writeUInt32BE(length, 0);
  let at = 4;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function text(value: string): Uint8Array {
  const bytes = Buffer.from(value, 'utf8');
  return concatBytes(cborHead(3, bytes.length), bytes);
}

/** An updates message: whole envelopes or compact items (see compact.ts). */
export function encodeUpdates(envelopes: Uint8Array[]): Buffer {
  // Written by hand, each item copied once: the bytes cbor-x would make for [MSG_UPDATES, items]
  // (minimal heads, byte strings), after the frame's length (test/replication/messages.test.ts).
  let length = 1 + cborHead(0, MSG_UPDATES).length + cborHead(4, envelopes.length).length;
  for (const e of envelopes) length += minimalHeadLength(e.length) + e.length;
  const out = Buffer.allocUnsafe(4 + length);
  out.writeUInt32BE(length, 0);
  out[4] = 0x82;
  let at = 5;
  at += writeHead(out, at, 0, MSG_UPDATES);
  at += writeHead(out, at, 4, envelopes.length);
  for (const e of envelopes) {
    at += writeHead(out, at, 2, e.length);
    out.set(e, at);
    at += e.length;
  }
  return out;
}

export const encodeSync = (): Buffer => frame([MSG_SYNC]);

export function encodeReconcile(payload: Uint8Array): Buffer {
  const head = cborHead(2, payload.length);
  const out = Buffer.allocUnsafe(4 + 2 + head.length + payload.length);
  out.writeUInt32BE(out.length - 4, 0);
  out[4] = 0x82;
  out[5] = MSG_RECONCILE;
  out.set(head, 6);
  out.set(payload, 6 + head.length);
  return out;
}

const malformed = (detail: string): MessageResult => ({ ok: false, reason: `malformed: ${detail}` });

/** The type of a message from its first bytes alone (no decoding): an unsigned integer, NaN
 *  for another number (never a known type), or null if the message is not [type, ...]. */
export function messageType(bytes: Uint8Array): number | null {
  const top = readHead(bytes, 0);
  if (top === null || top[0] !== 4 || top[1] < 1 || top[2] >= bytes.length) return null;
  const first = bytes[top[2]]!;
  if (first >> 5 === 1) return NaN; // a negative integer
  if (first === 0xf9 || first === 0xfa || first === 0xfb) return checkCbor(bytes.subarray(top[2], top[2] + 1 + (1 << ((first & 31) - 24))), 1) === null ? NaN : null; // a finite float
  const type = readHead(bytes, top[2]);
  return type !== null && type[0] === 0 ? type[1] : null;
}

/**
 * Decodes and checks one message, reading its fixed structure directly from the bytes: an
 * updates message yields views of its items (each at least MIN_ITEM_BYTES, so their
 * number is bounded by the size), and only a hello's `meta` (at most MAX_META_BYTES) goes
 * through the generic decoder, under the decode budget. Work and memory are a small constant
 * times the message size. Never throws.
 */
export function decodeMessage(bytes: Uint8Array): MessageResult {
  const top = readHead(bytes, 0);
  const type = messageType(bytes);
  if (top === null || type === null) return malformed('not a typed message');
  if (Number.isNaN(type)) return { ok: false, reason: 'unknown message type (not an unsigned integer)' };
  const pos = top[2] + readHead(bytes, top[2])![2];
  switch (type) {
    case MSG_HELLO:
      return decodeHello(bytes, pos, top[1]);
    case MSG_UPDATES: {
      const list = top[1] === 2 ? readHead(bytes, pos) : null;
      if (list === null || list[0] !== 4) return malformed('updates is not [1, [bytes...]]');
      let at = pos + list[2];
      if (list[1] > (bytes.length - at) / MIN_ITEM_BYTES) return malformed('more envelopes than the message can hold');
      const updates: Uint8Array[] = new Array(list[1]);
      for (let i = 0; i < list[1]; i++) {
        const h = readHead(bytes, at);
        if (h === null || h[0] !== 2) return malformed('updates is not [1, [bytes...]]');
        if (h[1] < MIN_ITEM_BYTES || h[1] > bytes.length - at - h[2]) return malformed(`envelope of ${h[1]} bytes`);
        updates[i] = bytes.subarray(at + h[2], at + h[2] + h[1]);
        at += h[2] + h[1];
      }
      if (at !== bytes.length) return malformed('trailing bytes');
      return { ok: true, message: { type: 'updates', updates } };
    }
    case MSG_SYNC:
      return top[1] === 1 && pos === bytes.length ? { ok: true, message: { type: 'sync' } } : malformed('sync');
    case MSG_RECONCILE: {
      const h = top[1] === 2 ? readHead(bytes, pos) : null;
      if (h === null || h[0] !== 2) return malformed('reconcile is not [3, bytes]');
      if (h[1] > MAX_RECONCILE_MESSAGE_BYTES) return malformed(`reconcile message of ${h[1]} bytes (limit ${MAX_RECONCILE_MESSAGE_BYTES})`);
      if (pos + h[2] + h[1] !== bytes.length) return malformed('reconcile: trailing or missing bytes');
      return { ok: true, message: { type: 'reconcile', payload: bytes.subarray(pos + h[2]) } };
    }
    default:
      return { ok: false, reason: `unknown message type ${type}` };
  }
}

const utf8Fatal = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Reads a text string of at most `maxBytes` at `pos`: [text, next position], or null. */
function readText(bytes: Uint8Array, pos: number, maxBytes: number): [string, number] | null {
  const h = readHead(bytes, pos);
  if (h === null || h[0] !== 3 || h[1] > maxBytes || h[1] > bytes.length - pos - h[2]) return null;
  try {
    return [utf8Fatal.decode(bytes.subarray(pos + h[2], pos + h[2] + h[1])), pos + h[2] + h[1]];
  } catch {
    return null;
  }
}

/** Reads an unsigned integer at `pos`: [value, next position], or null. */
function readUint(bytes: Uint8Array, pos: number): [number, number] | null {
  const h = readHead(bytes, pos);
  return h !== null && h[0] === 0 ? [h[1], pos + h[2]] : null;
}

/** [0, version, dataset, id, [[source, version, hashPrefix]...], meta, flags, maxUpdateBytes, nonce] */
function decodeHello(bytes: Uint8Array, start: number, fields: number): MessageResult {
  const version = readUint(bytes, start);
  if (version === null) return malformed('hello protocol version');
  if (version[0] !== PROTOCOL_VERSION) return { ok: false, reason: `unsupported protocol version ${version[0]}` };
  if (fields !== 9) return malformed('hello has the wrong length');
  const dataset = readText(bytes, version[1], MAX_DATASET_LENGTH * 3);
  if (dataset === null || !isDatasetName(dataset[0])) return malformed('hello dataset');
  const id = readText(bytes, dataset[1], NODE_ID_LENGTH);
  if (id === null || !isNodeId(id[0])) return malformed('hello id is not a node id');
  const list = readHead(bytes, id[1]);
  if (list === null || list[0] !== 4) return malformed('hello digest');
  let pos = id[1] + list[2];
  if (list[1] > (bytes.length - pos) / MIN_DIGEST_ENTRY_BYTES) return malformed('digest longer than the message');
  const digest = new Map<NodeId, DigestEntry>();
  for (let i = 0; i < list[1]; i++) {
    const source = bytes[pos] === 0x83 ? readText(bytes, pos + 1, NODE_ID_LENGTH) : null;
    const v = source && readUint(bytes, source[1]);
    const prefix = v ? readHead(bytes, v[1]) : null;
    if (!source || !isNodeId(source[0]) || !v || v[0] < 1 || !prefix || prefix[0] !== 2 || prefix[1] !== 8 || v[1] + prefix[2] + 8 > bytes.length) {
      return malformed('digest entry');
    }
    if (digest.has(source[0])) return malformed('digest names a source twice');
    pos = v[1] + prefix[2];
    digest.set(source[0], { version: v[0], hashPrefix: bytes.slice(pos, pos + 8) });
    pos += 8;
  }
  // meta: scanned within MAX_META_BYTES only, so an oversized one costs no more than that.
  // Depth counts from the message itself, whose array holds meta at depth 1.
  const scan = scanCbor(bytes.subarray(0, Math.min(bytes.length, pos + MAX_META_BYTES)), pos, { maxDepth: MAX_MESSAGE_DEPTH - 1 });
  if (!scan.ok) {
    const cut = scan.detail === 'truncated' || scan.detail.startsWith('string length') || scan.detail.startsWith('container');
    return malformed(cut && bytes.length > pos + MAX_META_BYTES ? `hello meta larger than ${MAX_META_BYTES} bytes` : `hello meta: ${scan.detail}`);
  }
  // decoded from a copy: cbor-x keeps its last input alive, which would pin the whole message
  const meta = decodeScanned(bytes.slice(pos, scan.end));
  const flags = readUint(bytes, scan.end);
  if (flags === null || flags[0] > 7) return malformed('hello flags');
  const max = readUint(bytes, flags[1]);
  if (max === null || max[0] < 1 || max[0] > MAX_UPDATE_BYTES_CEILING) return malformed('hello maxUpdateBytes');
  const nonce = readHead(bytes, max[1]);
  if (nonce === null || nonce[0] !== 2 || nonce[1] !== NONCE_BYTES) return malformed(`hello nonce is not ${NONCE_BYTES} bytes`);
  const end = max[1] + nonce[2] + NONCE_BYTES;
  if (end !== bytes.length) return malformed('trailing bytes');
  const hello: Hello = {
    dataset: dataset[0], id: id[0], digest, meta, readable: (flags[0] & 1) !== 0, writable: (flags[0] & 2) !== 0, reconcile: (flags[0] & 4) !== 0, maxUpdateBytes: max[0],
    nonce: bytes.slice(max[1] + nonce[2], end),
  };
  return { ok: true, message: { type: 'hello', hello } };
}

/** Received chunks shorter than this are copied into a shared buffer instead of being kept as
 *  they are: a peer sending one byte per chunk must not cost a Buffer object per byte. */
const COALESCE_BELOW = 1024;
/** Size of each shared buffer small chunks are copied into. */
const COALESCE_BYTES = 16 * 1024;

/**
 * Splits a byte stream into length-prefixed messages. A declared length over `maxBytes` is
 * refused from its 4-byte header alone, before any buffer is allocated for it. Work is linear
 * in the bytes received however they are chunked (a queue with a head index, small chunks
 * coalesced), and memory is the bytes held plus at most one coalescing buffer.
 */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  private head = 0;
  private buffered = 0;
  private need = -1;
  /** The coalescing buffer: bytes [0, used) are queued (as the last chunk), the rest is free. */
  private spare: Buffer | null = null;
  private spareUsed = 0;

  constructor(private readonly maxBytes: number) {}

  /** Bytes held waiting for the rest of a message. */
  get pending(): number {
    return this.buffered;
  }

  /** Adds bytes; returns complete messages, or a string reason if a length breaks the limit. */
  push(chunk: Buffer): Buffer[] | string {
    this.enqueue(chunk);
    const out: Buffer[] = [];
    for (;;) {
      if (this.need < 0) {
        if (this.buffered < 4) break;
        const length = this.take(4).readUInt32BE(0);
        if (length > this.maxBytes) return `message of ${length} bytes exceeds the ${this.maxBytes}-byte limit`;
        this.need = length;
      }
      if (this.buffered < this.need) break;
      out.push(this.take(this.need));
      this.need = -1;
    }
    return out;
  }

  private enqueue(chunk: Buffer): void {
    this.buffered += chunk.length;
    if (chunk.length >= COALESCE_BELOW) {
      this.spare = null; // later small chunks start a new buffer, after this one in order
      this.chunks.push(chunk);
      return;
    }
    if (this.spare === null || this.spareUsed + chunk.length > this.spare.length) {
      this.spare = Buffer.allocUnsafe(COALESCE_BYTES);
      this.spareUsed = 0;
      this.chunks.push(this.spare.subarray(0, 0));
    }
    chunk.copy(this.spare, this.spareUsed);
    this.spareUsed += chunk.length;
    // the last queued chunk is the spare's filled part (it may have been partly taken already)
    const last = this.chunks.length - 1;
    const queued = this.chunks[last]!;
    const from = queued.byteOffset - this.spare.byteOffset;
    this.chunks[last] = this.spare.subarray(from, this.spareUsed);
  }

  private take(n: number): Buffer {
    if (n === 0) return Buffer.alloc(0); // an empty message may end the last chunk: no chunk to cut
    const first = this.chunks[this.head]!;
    let out: Buffer;
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.shift();
      else this.chunks[this.head] = first.subarray(n);
    } else {
      out = Buffer.allocUnsafe(n); // n was checked against the limit and is all present
      let off = 0;
      while (off < n) {
        const c = this.chunks[this.head]!;
        const k = Math.min(c.length, n - off);
        c.copy(out, off, 0, k);
        off += k;
        if (k === c.length) this.shift();
        else this.chunks[this.head] = c.subarray(k);
      }
    }
    this.buffered -= n;
    return out;
  }

  /** Drops the head chunk in O(1), compacting the array now and then. */
  private shift(): void {
    if (this.chunks[this.head] !== undefined && this.isSpareTail(this.head)) this.spare = null;
    this.head++;
    if (this.head === this.chunks.length) {
      this.chunks = [];
      this.head = 0;
    } else if (this.head >= 1024 && this.head * 2 >= this.chunks.length) {
      this.chunks = this.chunks.slice(this.head);
      this.head = 0;
    }
  }

  /** True if chunk `i` is the coalescing buffer's queued part (the last chunk, in the spare). */
  private isSpareTail(i: number): boolean {
    return this.spare !== null && i === this.chunks.length - 1 && this.chunks[i]!.buffer === this.spare.buffer;
  }
}
