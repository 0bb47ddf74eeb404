// The signed update: payload = CBOR [format, dataset, source public key, version, body],
// signed as "signet/update/v1" || payload; envelope = CBOR [payload bytes, signature].
import type { Identity } from '../identity/identity.ts';
import { nodeIdOf, type NodeId } from '../identity/node-id.ts';
import { DOMAIN, domainBytes, verifyInDomain, type SignatureBackend } from '../identity/signature.ts';
import { ENVELOPE_OVERHEAD_BYTES, MAX_BODY_DEPTH, MAX_DATASET_LENGTH, MAX_UPDATE_BYTES, MAX_UPDATE_BYTES_CEILING } from '../limits.ts';
import { assertInteger, assertString, concatBytes, utf8 } from '../util/bytes.ts';
import { assertValue } from './value.ts';
import { cborHead, checkCbor, decodeScanned, encodeCborTransient, minimalHeadLength, readHead, scanCbor, writeHead, type Value } from './cbor.ts';
import { sha256Into } from '../util/sha256.ts';
import { StoreError } from '../errors.ts';

/** Payload format version; also named by the signing tag `signet/update/v1`. */
export const UPDATE_FORMAT = 1;

/** A parsed update. Its signature has been verified only if it came from {@link openUpdate}
 *  or passed {@link verifyUpdate}; {@link parseUpdate} alone checks shape only. */
export interface Update {
  /** Dataset the source signed this for. */
  readonly dataset: string;
  /** sourceId = nodeIdOf(publicKey): derived, never taken from the wire. */
  readonly source: NodeId;
  readonly publicKey: Uint8Array;
  /** Per-source, strictly increasing, a positive safe integer (microseconds for fresh writes). */
  readonly version: number;
  /** The body, decoded from {@link bodyBytes} on each read (held updates keep bytes only, so
   *  their memory is their wire size; decoding is bounded by the decode budget). */
  readonly body: Value;
  /** The body's CBOR bytes as signed (made when read: a view, or a copy for a compact update). */
  readonly bodyBytes: Uint8Array;
  /** SHA-256 of the signed payload: names this update (dedupe, equivocation, LWW ties). */
  readonly hash: Uint8Array;
  /** `hash` in hex, made when read: the update's key in stores. */
  readonly hashHex: string;
  /** The envelope bytes exactly as signed and sent (made when read; do not modify them). */
  readonly bytes: Uint8Array;
  /** `bytes.length`, without making them. */
  readonly byteLength: number;
  /** The signed payload (made when read). */
  readonly payload: Uint8Array;
  /** The 64-byte Ed25519 signature (made when read). */
  readonly signature: Uint8Array;
}

/** The smallest well-formed envelope: a 1-character dataset, version < 24 and a 1-byte body
 *  ([payload head 2 + payload 40, signature head 2 + 64] + 1). A replication message whose
 *  envelopes are smaller is malformed, which bounds their number by the message size. */
export const MIN_ENVELOPE_BYTES = 1 + 2 + (1 + 1 + 2 + 34 + 1 + 1) + 2 + 64;

/** Why an update was rejected. */
export type UpdateReason = 'bad-shape' | 'too-large' | 'wrong-dataset' | 'bad-version' | 'bad-signature';
/** Result of opening an update: bad data from a peer is a result, never an exception. */
export type UpdateResult = { ok: true; update: Update } | { ok: false; reason: UpdateReason; detail: string };

/** Options for parsing and opening updates. */
export interface UpdateOptions {
  /** If set, an update for any other dataset is rejected `wrong-dataset`. */
  dataset?: string;
  /** Largest body in bytes. Default {@link MAX_UPDATE_BYTES}, at most {@link MAX_UPDATE_BYTES_CEILING}. */
  maxUpdateBytes?: number;
  /** Signature backend for {@link openUpdate}. Default {@link defaultSignatureBackend}(): `sodium` where it loads, else `native`. */
  backend?: SignatureBackend;
}

const fail = (reason: UpdateReason, detail: string): UpdateResult => ({ ok: false, reason, detail });

/** Checks a dataset name: 1..MAX_DATASET_LENGTH characters, no control characters. */
export function isDatasetName(name: unknown): name is string {
  // eslint-disable-next-line no-control-regex
  return typeof name === 'string' && name.length > 0 && name.length <= MAX_DATASET_LENGTH && !/[\u0000-\u001f\u007f]/.test(name);
}

function maxBodyOf(options?: UpdateOptions): number {
  const max = options?.maxUpdateBytes ?? MAX_UPDATE_BYTES;
  assertInteger(max, 'maxUpdateBytes', 1, MAX_UPDATE_BYTES_CEILING);
  return max;
}

const utf8Fatal = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

type Header = { dataset: string; keyStart: number; version: number; bodyStart: number };

/** Reads the payload's header [1, dataset, publicKey, version, ... without decoding the body.
 *  Every head must be minimal, so the header has one encoding and the body's size is exact. */
function readHeader(payload: Uint8Array): Header | UpdateResult {
  if (payload[0] !== 0x85) return fail('bad-shape', 'payload is not a 5-element array');
  if (payload[1] !== UPDATE_FORMAT) return fail('bad-shape', `unsupported format (first byte 0x${(payload[1] ?? 0).toString(16)})`);
  let pos = 2;
  const name = readHead(payload, pos);
  if (name === null || name[0] !== 3 || name[1] > MAX_DATASET_LENGTH * 3 || name[1] > payload.length - pos - name[2]) {
    return fail('bad-shape', 'dataset name is not a valid string');
  }
  if (name[2] !== minimalHeadLength(name[1])) return fail('bad-shape', 'payload header is not canonically encoded');
  let dataset: string;
  try {
    dataset = utf8Fatal.decode(payload.subarray(pos + name[2], pos + name[2] + name[1]));
  } catch {
    return fail('bad-shape', 'dataset name is not valid UTF-8');
  }
  if (!isDatasetName(dataset)) return fail('bad-shape', 'dataset name is not a valid string');
  pos += name[2] + name[1];
  if (payload[pos] !== 0x58 || payload[pos + 1] !== 32 || payload.length - pos - 2 < 32) {
    return fail('bad-shape', 'source public key is not 32 bytes');
  }
  return readVersion(payload, dataset, pos + 2);
}

/** The rest of the header after the public key at `keyStart`: the version. */
function readVersion(payload: Uint8Array, dataset: string, keyStart: number): Header | UpdateResult {
  const pos = keyStart + 32;
  const version = readHead(payload, pos);
  if (version === null || version[0] !== 0 || version[1] < 1) return fail('bad-version', 'version is not a positive safe integer');
  if (version[2] !== minimalHeadLength(version[1])) return fail('bad-shape', 'payload header is not canonically encoded');
  return { dataset, keyStart, version: version[1], bodyStart: pos + version[2] };
}

/** What every update of one source in one dataset shares, built once and shared: the dataset
 *  name, the source id (derived from the key, never taken from the wire) and the payload's
 *  header up to and including the public key, exactly as signed. */
interface SourceContext {
  readonly dataset: string;
  readonly source: NodeId;
  /** Payload bytes [0x85, 1, dataset head, dataset, 0x58, 0x20, public key (32)]. */
  readonly header: Uint8Array;
}

/** Source contexts by their header bytes (latin1). Bounded: updates are parsed before they are
 *  verified, so anyone can mint keys; past the bound the cache starts again (held updates keep
 *  their own context, so nothing held depends on the cache). */
const contexts = new Map<string, SourceContext>();
/** Source contexts cached before the cache starts again. */
const MAX_CACHED_CONTEXTS = 4096;

/** The contexts parsed last, most recent first: a payload that starts with one of their headers
 *  byte for byte has that header, already checked and decoded (no string is made for it). */
const recentContexts: SourceContext[] = [];
/** Contexts {@link recentContexts} keeps. */
const RECENT_CONTEXTS = 8;

/** The recent context whose header `payload` starts with, or undefined. */
function recentContext(payload: Uint8Array): SourceContext | undefined {
  search: for (let c = 0; c < recentContexts.length; c++) {
    const ctx = recentContexts[c]!;
    const h = ctx.header;
    if (payload.length <= h.length) continue;
    // Back to front: headers of one dataset differ in the key, at the end.
    for (let i = h.length - 1; i >= 0; i--) if (payload[i] !== h[i]) continue search;
    if (c > 0) {
      recentContexts.splice(c, 1);
      recentContexts.unshift(ctx);
    }
    return ctx;
  }
  return undefined;
}

function rememberContext(ctx: SourceContext): void {
  recentContexts.unshift(ctx);
  if (recentContexts.length > RECENT_CONTEXTS) recentContexts.pop();
}

function contextOf(payload: Uint8Array, dataset: string, headerLength: number): SourceContext {
  const id = latin1(payload, 0, headerLength);
  let ctx = contexts.get(id);
  if (ctx === undefined) {
    const header = payload.slice(0, headerLength);
    ctx = { dataset, source: nodeIdOf(header.subarray(headerLength - 32)), header };
    if (contexts.size >= MAX_CACHED_CONTEXTS) contexts.clear();
    contexts.set(id, ctx);
  }
  return ctx;
}

/** A Buffer over the whole ArrayBuffer read last by {@link latin1}: envelopes and records share
 *  chunks, so most reads reuse it rather than make a Buffer each (Buffer.from's objects are
 *  pretenured: measured 9 MB of old-space garbage per 100,000 updates received). It keeps the
 *  buffer read last alive, one at most. */
let latin1Source: ArrayBufferLike | null = null;
let latin1View: Buffer = Buffer.alloc(0);

/** Bytes [start, end) of `bytes` as a one-byte (latin1) string: one char per byte. */
function latin1(bytes: Uint8Array, start: number, end: number): string {
  const from = bytes.byteOffset + start;
  const to = bytes.byteOffset + end;
  // A caller's resizable or growable buffer may have grown since the view was made over it.
  if (bytes.buffer !== latin1Source || to > latin1View.length) {
    latin1Source = bytes.buffer;
    latin1View = Buffer.from(bytes.buffer);
  }
  if (to > latin1View.length) return Buffer.from(bytes.buffer, from, end - start).toString('latin1'); // still short: read it as is
  return latin1View.toString('latin1', from, to);
}

/**
 * Arrays made when a compact update is read (its envelope, body, signature, hash) are views into
 * shared zero-filled chunks, as Node's Buffer pool does: one allocation per chunk rather than a
 * backing store per array (which costs more than the copy). Each view is its own byte range,
 * written in full before it is returned; larger arrays get their own buffer.
 */
const POOL_BYTES = 16 * 1024;
let pool = Buffer.from(new ArrayBuffer(POOL_BYTES));
let poolUsed = 0;

/** A writable Buffer over a fresh range of `n` bytes, and the Uint8Array view to hand out. */
function allocate(n: number): [Buffer, number, Uint8Array] {
  if (n > POOL_BYTES >> 3) {
    const own = new Uint8Array(n);
    return [Buffer.from(own.buffer, 0, n), 0, own];
  }
  if (poolUsed + n > POOL_BYTES) {
    pool = Buffer.from(new ArrayBuffer(POOL_BYTES));
    poolUsed = 0;
  }
  const at = poolUsed;
  poolUsed = (poolUsed + n + 7) & ~7;
  return [pool, at, new Uint8Array(pool.buffer, pool.byteOffset + at, n)];
}

/** Versions are held as two small integers (each a V8 Smi, stored in the object), not as one
 *  number above the Smi range (which V8 would box in a separate 16-byte heap number). */
const VERSION_SPLIT = 2 ** 30;
/** Bytes after the body in a compact record: 0x58 0x40, the signature, the payload hash. */
const RECORD_TAIL = 2 + 64 + 32;
/** Bytes before each record in its chunk: the record's length, u32 little-endian. */
const RECORD_HEAD = 4;
/** Bytes of a backed update's record: the body's length (u32 little-endian), its first byte, the
 *  first SIGNATURE_CHECK bytes of SHA-256(signature), then the payload hash. Shorter than any
 *  compact record (a body is at least one byte). */
const SIGNATURE_CHECK = 8;
const BACKED_RECORD = 4 + 1 + SIGNATURE_CHECK + 32;

/**
 * @internal Where backed updates' envelopes live (see {@link backUpdate}): a store that holds them,
 * read synchronously. One per dataset and store. `read` returns the envelope put under the
 * update's name (source, version, hash), or undefined; `label` names the dataset in errors;
 * `lost`, if given, is told of every read the store answered with nothing or with other bytes
 * (it lost or altered the envelope; not a read that threw), with the StoreError the read then
 * throws. It must not throw.
 */
export class EnvelopeBacking {
  constructor(
    readonly read: (update: Update) => Uint8Array | undefined,
    readonly label: string,
    readonly lost?: (update: Update, error: StoreError) => void,
  ) {}
}

/** A backed update's record, built here before it is written to a chunk. */
const backedScratch = new Uint8Array(BACKED_RECORD);
/** The SHA-256 of a payload or signature read back, compared with what is held. */
const readBackHash = new Uint8Array(32);
/** Bytes of one chunk of compact records. A record over a quarter of it gets a chunk of its own. */
export const RECORD_CHUNK_BYTES = 16 * 1024;

/**
 * Compact records of held updates, end to end, each after its length. Records live here, outside
 * V8's heap (a backing store is allocated to the byte), rather than as strings in it: V8 lets its
 * old generation grow to a multiple of what is live before a full collection, so every byte held
 * in the heap cost a replica's peak RSS several (bench/e2e.ts replica sync).
 *
 * Bytes in a chunk are written once. An update let go by its last holder leaves a hole; once less
 * than half of a chunk that is no longer filled holds held records, those move to the chunk being
 * filled ({@link relocate}). So chunks hold at most twice the bytes of the records held (plus the
 * chunk being filled), and an update that is no longer held keeps its bytes where they are, valid
 * for whoever still has it.
 */
class RecordChunk {
  readonly bytes: Uint8Array;
  readonly view: DataView;
  used = 0;
  /** Bytes (heads included) of the records here whose update is held (refs > 0). */
  held = 0;
  /** Updates whose record was written here, held or not (see relocate). */
  owners: ParsedUpdate[] = [];

  constructor(size: number) {
    this.bytes = new Uint8Array(size);
    this.view = new DataView(this.bytes.buffer);
  }
}

/** The chunk being filled. */
let filling = new RecordChunk(RECORD_CHUNK_BYTES);

/** A chunk with room for a record of `n` bytes after its head. */
function chunkFor(n: number): RecordChunk {
  const size = RECORD_HEAD + n;
  if (size > RECORD_CHUNK_BYTES >> 2) return new RecordChunk(size);
  // A full chunk that holds less than half its size in held records is emptied into the next
  // (at most half a chunk, so it fits; the loop checks room again after it).
  while (filling.used + size > RECORD_CHUNK_BYTES) {
    const full = filling;
    filling = new RecordChunk(RECORD_CHUNK_BYTES);
    if (full.held < RECORD_CHUNK_BYTES >> 1) relocate(full);
  }
  return filling;
}

/** Moves the held records of `chunk` to the chunk being filled. */
function relocate(chunk: RecordChunk): void {
  const owners = chunk.owners;
  chunk.owners = [];
  chunk.held = 0;
  for (let i = 0; i < owners.length; i++) owners[i]!.moveFrom(chunk);
}

/** Copies `n` bytes of `from` at `fromAt` into `to` at `toAt`: a short run by a loop (a
 *  `subarray` view for `set` would be a heap object per record written). */
function copyBytes(from: Uint8Array, fromAt: number, to: Uint8Array, toAt: number, n: number): void {
  if (n > 256) {
    to.set(from.subarray(fromAt, fromAt + n), toAt);
    return;
  }
  for (let i = 0; i < n; i++) to[toAt + i] = from[fromAt + i]!;
}

/** Bytes [start, end) of `bytes` as a new array that no other read shares. */
function copyOut(bytes: Uint8Array, start: number, end: number): Uint8Array {
  const [, , out] = allocate(end - start);
  out.set(bytes.subarray(start, end));
  return out;
}

/**
 * A parsed update, compact because a model holds one per key. Two forms:
 * - fresh (as parsed or signed): one owned buffer, the envelope bytes then the payload's
 *   SHA-256; its byte fields are views into it;
 * - compact (once held a while, see {@link holdCompact}): a record in a shared chunk (see
 *   RecordChunk): the body, the envelope's `0x58 0x40`, the signature and the hash, with the
 *   dataset, source and public key shared with every other update of its source
 *   ({@link SourceContext}). The envelope is rebuilt bit for bit when read: its heads are
 *   minimal (checked at parse for the payload header, and before compacting for the envelope's
 *   own head), so it has one encoding. Every byte field read from it is a new array.
 * - backed (once held, stored, and past a window: see {@link backUpdate}): a short record of the
 *   body's length, its first byte, a check of the signature (8 bytes of its SHA-256) and the
 *   hash; the envelope is read back from the store that holds it (its {@link EnvelopeBacking})
 *   on each read of a byte field, and checked: the bytes must frame an envelope of this length
 *   whose payload has this hash and whose signature this check. Every byte field read
 *   from it is a new array. The holder that backed it turns it compact again before it lets it
 *   go (see {@link unbackUpdate}), so the store may drop it while others still have it.
 * Either way the body is decoded when read, and the version is two small integers.
 */
class ParsedUpdate implements Update {
  constructor(
    private readonly ctx: SourceContext,
    /** Fresh: envelope bytes then the payload hash. Compact: the chunk of its record. */
    private data: Uint8Array | RecordChunk,
    private readonly vhi: number,
    private readonly vlo: number,
  ) {}

  /** @internal Fresh: what a layer above read from the body bytes (see {@link bodyMemo}), dropped
   *  on compaction. Backed: the {@link EnvelopeBacking} its envelope is read from. (One slot:
   *  a model holds one update per key.) */
  memo: unknown = undefined;
  /** Compact: where the record starts in its chunk. */
  private at = 0;
  /** @internal Holders of this update (see holdCompact, releaseHeld). */
  refs = 0;

  get dataset(): string {
    return this.ctx.dataset;
  }

  get source(): NodeId {
    return this.ctx.source;
  }

  get version(): number {
    return this.vhi * VERSION_SPLIT + this.vlo;
  }

  /** Compact: the record's length. */
  private recordLength(d: RecordChunk): number {
    return d.view.getUint32(this.at - RECORD_HEAD, true);
  }

  /** Where the record, or the fresh buffer, ends: the payload hash is the 32 bytes before. */
  private end(d: Uint8Array | RecordChunk): number {
    return d instanceof RecordChunk ? this.at + this.recordLength(d) : d.length;
  }

  get hashHex(): string {
    const d = this.data;
    const b = d instanceof RecordChunk ? d.bytes : d;
    const end = this.end(d);
    return Buffer.from(b.buffer, b.byteOffset + end - 32, 32).toString('hex');
  }

  /** Where the payload starts in the envelope (after 0x82 and the payload's head). */
  private payloadStart(d: Uint8Array): number {
    const info = d[1]! & 31;
    return info < 24 ? 2 : 2 + (1 << (info - 24));
  }

  get bytes(): Uint8Array {
    const d = this.data;
    return d instanceof RecordChunk ? this.envelopeOf(d) : d.subarray(0, d.length - 32);
  }

  get byteLength(): number {
    const d = this.data;
    if (!(d instanceof RecordChunk)) return d.length - 32;
    const payloadLength = this.ctx.header.length + minimalHeadLength(this.version) + this.bodyLength();
    return 1 + minimalHeadLength(payloadLength) + payloadLength + 66;
  }

  /** True in the backed form. */
  private get backed(): boolean {
    return this.memo instanceof EnvelopeBacking;
  }

  /** The envelope of a compact or backed update, as a new array. */
  private envelopeOf(d: RecordChunk): Uint8Array {
    return this.backed ? this.readBack() : this.rebuild(d);
  }

  /** Where the body starts in an envelope of this update. */
  private bodyStart(envelope: Uint8Array): number {
    return this.payloadStart(envelope) + this.ctx.header.length + minimalHeadLength(this.version);
  }

  /** The envelope of a backed update, read from its store and checked against what is held.
   *  @throws StoreError if the store cannot read it, holds nothing under its name, or holds
   *  other bytes. */
  private readBack(): Uint8Array {
    const backing = this.memo as EnvelopeBacking;
    let bytes: Uint8Array | undefined;
    try {
      bytes = backing.read(this);
    } catch (err) {
      // Not an answer about the update (I/O, a closed store): nothing is known lost.
      throw new StoreError(`${backing.label}: update ${this.hashHex} cannot be read back from the store (${(err as Error).message})`, { cause: err });
    }
    if (bytes === undefined) {
      throw this.lostBy(backing, new StoreError(`${backing.label}: the store no longer holds update ${this.hashHex} (source ${this.source}, version ${this.version}); it was altered or damaged`));
    }
    if (!this.isEnvelope(bytes)) {
      throw this.lostBy(backing, new StoreError(`${backing.label}: the store holds other bytes under update ${this.hashHex} (source ${this.source}, version ${this.version}); it was altered or damaged`));
    }
    return bytes;
  }

  /** Tells the backing's owner that this update could not be read back. @returns the error. */
  private lostBy(backing: EnvelopeBacking, error: StoreError): StoreError {
    backing.lost?.(this, error);
    return error;
  }

  /** True if `bytes` frame an envelope of this update's length whose payload has its hash and
   *  whose signature has its signature check: the envelope that was verified, bit for bit. */
  private isEnvelope(bytes: Uint8Array): boolean {
    const n = bytes.length;
    if (n !== this.byteLength || bytes[0] !== 0x82 || bytes[n - 66] !== 0x58 || bytes[n - 65] !== 0x40) return false;
    const head = readHead(bytes, 1);
    if (head === null || head[0] !== 2 || 1 + head[2] + head[1] + 66 !== n) return false;
    const d = this.data as RecordChunk;
    const end = this.end(d);
    sha256Into(bytes.subarray(1 + head[2], n - 66), readBackHash);
    for (let i = 0; i < 32; i++) if (readBackHash[i] !== d.bytes[end - 32 + i]) return false;
    sha256Into(bytes.subarray(n - 64), readBackHash);
    const check = end - 32 - SIGNATURE_CHECK;
    for (let i = 0; i < SIGNATURE_CHECK; i++) if (readBackHash[i] !== d.bytes[check + i]) return false;
    return true;
  }

  get hash(): Uint8Array {
    const d = this.data;
    if (!(d instanceof RecordChunk)) return d.subarray(d.length - 32);
    const end = this.end(d);
    return copyOut(d.bytes, end - 32, end);
  }

  get payload(): Uint8Array {
    const data = this.data;
    const d = data instanceof RecordChunk ? this.envelopeOf(data) : data;
    // A fresh buffer ends with the signature's 66 bytes, then the hash's 32; an envelope without the hash.
    return d.subarray(this.payloadStart(d), d.length - 66 - (data instanceof RecordChunk ? 0 : 32));
  }

  get publicKey(): Uint8Array {
    const d = this.data;
    const h = this.ctx.header;
    if (d instanceof RecordChunk) return h.slice(h.length - 32); // a copy: the context is shared
    const at = this.payloadStart(d) + h.length - 32;
    return d.subarray(at, at + 32);
  }

  get bodyBytes(): Uint8Array {
    const d = this.data;
    if (!(d instanceof RecordChunk)) return d.subarray(this.bodyStart(d), d.length - 32 - 66);
    if (!this.backed) return copyOut(d.bytes, this.at, this.end(d) - RECORD_TAIL);
    const envelope = this.readBack();
    return envelope.subarray(this.bodyStart(envelope), envelope.length - 66);
  }

  /** @internal `bodyBytes.length` without making them. */
  bodyLength(): number {
    const d = this.data;
    if (!(d instanceof RecordChunk)) return d.length - 32 - 66 - this.bodyStart(d);
    return this.backed ? d.view.getUint32(this.at, true) : this.recordLength(d) - RECORD_TAIL;
  }

  /** @internal The body's first byte (its CBOR head), without making the body. */
  bodyHead(): number {
    const d = this.data;
    if (!(d instanceof RecordChunk)) return d[this.bodyStart(d)]!;
    return d.bytes[this.backed ? this.at + 4 : this.at]!;
  }

  get signature(): Uint8Array {
    const d = this.data;
    if (!(d instanceof RecordChunk)) return d.subarray(d.length - 96, d.length - 32);
    if (this.backed) return this.readBack().subarray(-64);
    const end = this.end(d);
    return copyOut(d.bytes, end - 96, end - 32);
  }

  get body(): Value {
    return decodeScanned(this.bodyBytes);
  }

  /** The envelope from a compact record: [payload bytes, signature] with minimal heads, in a
   *  new range on each read (so writing into one read never changes another). */
  private rebuild(d: RecordChunk): Uint8Array {
    const h = this.ctx.header;
    const version = this.version;
    const length = this.recordLength(d);
    const payloadLength = h.length + minimalHeadLength(version) + length - RECORD_TAIL;
    const [buf, start, out] = allocate(1 + minimalHeadLength(payloadLength) + payloadLength + 66);
    buf[start] = 0x82;
    let at = start + 1 + writeHead(buf, start + 1, 2, payloadLength);
    buf.set(h, at);
    at += h.length;
    at += writeHead(buf, at, 0, version);
    buf.set(d.bytes.subarray(this.at, this.at + length - 32), at);
    return out;
  }

  /** @internal Byte `i` of the payload hash. */
  hashByte(i: number): number {
    const d = this.data;
    return d instanceof RecordChunk ? d.bytes[this.end(d) - 32 + i]! : d[d.length - 32 + i]!;
  }

  /** @internal Byte order of this update's payload hash and `other`'s (each hash found once). */
  compareHash(other: ParsedUpdate): number {
    const a = this.data;
    const b = other.data;
    const ab = a instanceof RecordChunk ? a.bytes : a;
    const bb = b instanceof RecordChunk ? b.bytes : b;
    const at = this.end(a) - 32;
    const bt = other.end(b) - 32;
    for (let i = 0; i < 32; i++) {
      const d = ab[at + i]! - bb[bt + i]!;
      if (d !== 0) return d;
    }
    return 0;
  }

  /** Writes the payload hash into `out` at `at`, making no array (see ReconcileItem.copyHash). */
  copyHash(out: Uint8Array, at: number): void {
    const d = this.data;
    const b = d instanceof RecordChunk ? d.bytes : d;
    const end = this.end(d);
    for (let i = 0; i < 32; i++) out[at + i] = b[end - 32 + i]!;
  }

  /** @internal The payload hash as a 32-character latin1 string (an in-memory map key). */
  hashId(): string {
    const d = this.data;
    const end = this.end(d);
    return latin1(d instanceof RecordChunk ? d.bytes : d, end - 32, end);
  }

  /** @internal Writes the signature then the payload hash (fresh and compact forms end with
   *  both) into `out` at `at`: 96 bytes that name this exact envelope, signature included. */
  copySigned(out: Uint8Array, at: number): void {
    const d = this.data;
    const end = this.end(d);
    if (d instanceof RecordChunk && this.backed) {
      const envelope = this.readBack();
      for (let i = 0; i < 64; i++) out[at + i] = envelope[envelope.length - 64 + i]!;
      for (let i = 0; i < 32; i++) out[at + 64 + i] = d.bytes[end - 32 + i]!;
      return;
    }
    const b = d instanceof RecordChunk ? d.bytes : d;
    for (let i = 0; i < SIGNED_KEY_BYTES; i++) out[at + i] = b[end - SIGNED_KEY_BYTES + i]!;
  }

  /** @internal Switches to the compact form; a no-op if compact already, or if the envelope's
   *  own head is not minimal (it could not be rebuilt bit for bit: the update stays fresh). */
  compact(): void {
    const d = this.data;
    if (d instanceof RecordChunk) return;
    const start = this.payloadStart(d);
    const payloadLength = d.length - 32 - 66 - start;
    if (start - 1 !== minimalHeadLength(payloadLength)) return;
    this.place(d, start + this.ctx.header.length + minimalHeadLength(this.version), d.length);
    this.memo = undefined;
  }

  /** Writes bytes [from, to) of `source` as this update's record, in the chunk being filled. */
  private place(source: Uint8Array, from: number, to: number): void {
    const n = to - from;
    const chunk = chunkFor(n);
    const at = chunk.used + RECORD_HEAD;
    chunk.view.setUint32(chunk.used, n, true);
    copyBytes(source, from, chunk.bytes, at, to - from);
    chunk.used = at + n;
    chunk.owners.push(this);
    if (this.refs > 0) chunk.held += RECORD_HEAD + n;
    this.data = chunk;
    this.at = at;
  }

  /** Replaces this update's record by bytes [from, from + n) of `source` (a copy outside every
   *  chunk), in the chunk being filled; the record it had (if any) counts as let go. */
  private replaceRecord(source: Uint8Array, from: number, n: number): void {
    // First the room: filling it may move this update's current record, which is still its own.
    const chunk = chunkFor(n);
    const old = this.data;
    const oldLength = old instanceof RecordChunk ? this.recordLength(old) : 0;
    const at = chunk.used + RECORD_HEAD;
    chunk.view.setUint32(chunk.used, n, true);
    copyBytes(source, from, chunk.bytes, at, n);
    chunk.used = at + n;
    chunk.owners.push(this);
    if (this.refs > 0) chunk.held += RECORD_HEAD + n;
    this.data = chunk;
    this.at = at;
    if (old instanceof RecordChunk && this.refs > 0) {
      old.held -= RECORD_HEAD + oldLength;
      if (old !== filling && old.held < old.bytes.length >> 1) relocate(old);
    }
  }

  /** @internal See {@link backUpdate}. */
  back(backing: EnvelopeBacking): boolean {
    if (this.refs !== 1 || this.backed) return false;
    const d = this.data;
    if (!(d instanceof RecordChunk)) {
      // Rebuilt from the record alone, an envelope has minimal heads (see compact()).
      const start = this.payloadStart(d);
      if (start - 1 !== minimalHeadLength(d.length - 32 - 66 - start)) return false;
    }
    const record = backedScratch;
    const bodyLength = this.bodyLength();
    record[0] = bodyLength & 0xff;
    record[1] = (bodyLength >>> 8) & 0xff;
    record[2] = (bodyLength >>> 16) & 0xff;
    record[3] = bodyLength >>> 24;
    record[4] = this.bodyHead();
    // The signature is not covered by the payload hash: a check of it comes back too. Both forms
    // end with the signature then the hash.
    const end = this.end(d);
    sha256Into((d instanceof RecordChunk ? d.bytes : d).subarray(end - 96, end - 32), readBackHash);
    copyBytes(readBackHash, 0, record, 5, SIGNATURE_CHECK);
    this.copyHash(record, 5 + SIGNATURE_CHECK);
    this.memo = backing;
    this.replaceRecord(record, 0, BACKED_RECORD);
    return true;
  }

  /** @internal See {@link unbackUpdate}. @throws StoreError as a read of its bytes would. */
  unback(backing: EnvelopeBacking): void {
    if (this.memo !== backing) return;
    const envelope = this.readBack();
    const d = this.data as RecordChunk;
    const end = this.end(d);
    // The compact record: the envelope from the body on, then the hash.
    const start = this.bodyStart(envelope);
    const record = new Uint8Array(envelope.length - start + 32);
    record.set(envelope.subarray(start));
    record.set(d.bytes.subarray(end - 32, end), envelope.length - start);
    this.memo = undefined;
    this.replaceRecord(record, 0, record.length);
  }

  /** @internal Moves a held record out of `chunk` (see relocate); a no-op for one not held there. */
  moveFrom(chunk: RecordChunk): void {
    if (this.data !== chunk || this.refs === 0) return;
    this.place(chunk.bytes, this.at, this.at + this.recordLength(chunk));
  }

  /** @internal One more holder. A compact update held again after it was let go moves to the chunk
   *  being filled (its old chunk no longer counts it, and may have dropped it from its owners). */
  hold(): void {
    if (this.refs++ > 0) return;
    const d = this.data;
    if (d instanceof RecordChunk) this.place(d.bytes, this.at, this.at + this.recordLength(d));
  }

  /** @internal One holder fewer. */
  release(): void {
    if (this.refs === 0 || --this.refs > 0) return;
    const d = this.data;
    if (!(d instanceof RecordChunk)) return;
    d.held -= RECORD_HEAD + this.recordLength(d);
    if (d !== filling && d.held < d.bytes.length >> 1) relocate(d);
  }

  /** @internal The chunk of a compact update's record (tests), or null. */
  chunk(): RecordChunk | null {
    return this.data instanceof RecordChunk ? this.data : null;
  }

  /** @internal True in the compact or backed form (its bytes in a chunk record). */
  get isCompact(): boolean {
    return this.data instanceof RecordChunk;
  }

  /** @internal True in the backed form. */
  get isBacked(): boolean {
    return this.backed;
  }
}

/** Updates held most recently, compacted once they leave this window: an update a node has just
 *  applied is the one it is about to store, read as a view of its fresh buffer. */
const recent: ParsedUpdate[] = [];
let recentNext = 0;
/** Held updates kept fresh (the window of {@link holdCompact}). A held update is stored in the
 *  same turn as it is held (the store reads its bytes then), before the next one is held: a
 *  window of one keeps that read a view. A longer one kept fresh buffers alive long enough to be
 *  promoted to V8's old space and swept only by full collections: 1024 to 128 promoted less
 *  (--trace-gc-nvp), and 128 to 1 took about 20 MB off a replica's peak RSS in its initial sync
 *  of 100,000 keys with the same CPU per update, live and in sync (node /tmp/rss/drive.mjs and
 *  /tmp/ab.mjs, paired runs). */
export const FRESH_WINDOW: number = 1;

/**
 * Marks an update as held by one more holder (a HeldSet): it is compacted (see ParsedUpdate) once
 * FRESH_WINDOW other updates have been held after it, if it is still held then. Every call is
 * matched by one {@link releaseHeld} when that holder lets it go. A no-op for an Update that
 * parseUpdate did not make.
 */
export function holdCompact(update: Update): void {
  if (!(update instanceof ParsedUpdate)) return;
  update.hold();
  if (update.isCompact || update.refs > 1) return;
  if (FRESH_WINDOW === 0) return update.compact();
  if (recent.length < FRESH_WINDOW) {
    recent.push(update);
    return;
  }
  const leaving = recent[recentNext]!;
  if (leaving.refs > 0) leaving.compact();
  recent[recentNext] = update;
  recentNext = (recentNext + 1) % FRESH_WINDOW;
}

/**
 * @internal Marks an update as held by one more holder, like {@link holdCompact}, but leaves it
 * fresh: the holder backs it ({@link backUpdate}) or compacts it ({@link compactUpdate}) itself,
 * soon (a model backed by a store, once the store has committed it: going from fresh to backed
 * directly never writes a compact record it would drop at once).
 */
export function holdFresh(update: Update): void {
  if (update instanceof ParsedUpdate) update.hold();
}

/** @internal For tests: the size of the chunk holding a compact update's record and the bytes of
 *  held records in it, or null for a fresh update. */
export function recordChunkOf(update: Update): { size: number; held: number; filling: boolean } | null {
  if (!(update instanceof ParsedUpdate)) return null;
  const chunk = update.chunk();
  return chunk === null ? null : { size: chunk.bytes.length, held: chunk.held, filling: chunk === filling };
}

/** A holder let go of an update it passed to {@link holdCompact}. */
export function releaseHeld(update: Update): void {
  if (update instanceof ParsedUpdate) update.release();
}

/**
 * @internal Backs a held update by `backing` (a store that has committed it): from now on only its
 * hash, body length and first body byte stay in memory, and its envelope is read back from the
 * store when asked for. A no-op returning false unless the caller is its only holder and it is in
 * memory (fresh with minimal heads, or compact). The caller must turn it back
 * ({@link unbackUpdate}) before it lets it go or the store drops it.
 */
export function backUpdate(update: Update, backing: EnvelopeBacking): boolean {
  return update instanceof ParsedUpdate && update.back(backing);
}

/** @internal Turns an update that `backing` backs compact again, its record read back from the
 *  store (a no-op for any other). @throws StoreError if the store no longer holds it intact. */
export function unbackUpdate(update: Update, backing: EnvelopeBacking): void {
  if (update instanceof ParsedUpdate) update.unback(backing);
}

/** True if the update is in the backed form (its envelope read from a store). */
export function isBacked(update: Update): boolean {
  return update instanceof ParsedUpdate && update.isBacked;
}

/** Compacts an update now (tests; {@link holdCompact} does it in due course). */
export function compactUpdate(update: Update): void {
  if (update instanceof ParsedUpdate) update.compact();
}

/** True if the update is in the compact form. */
export function isCompact(update: Update): boolean {
  return update instanceof ParsedUpdate && update.isCompact;
}

/** Byte `i` (0..31) of an update's payload hash, without making an array. */
export function hashByte(update: Update, i: number): number {
  return update instanceof ParsedUpdate ? update.hashByte(i) : update.hash[i]!;
}

/** The payload hash as a 32-character latin1 string: a cheap in-memory key (stores use hex). */
export function hashId(update: Update): string {
  return update instanceof ParsedUpdate ? update.hashId() : Buffer.from(update.hash).toString('latin1');
}

/**
 * A value derived from the update's body bytes, made by `read` once and kept with the update while
 * it is fresh (the pipeline reads the same body at its policy check, apply and announce; a
 * compacted update drops it, so held updates cost no more). `read` must be a pure function of
 * the bytes, and one caller's: the memo is one slot per update.
 */
export function bodyMemo<T>(update: Update, read: (bodyBytes: Uint8Array) => T): T {
  // Only a fresh update keeps a memo (a backed one's slot names its store).
  if (!(update instanceof ParsedUpdate) || update.isCompact) return read(update.bodyBytes);
  if (update.memo === undefined) update.memo = read(update.bodyBytes);
  return update.memo as T;
}

/** The body's length in bytes, without making the body (a compact update would copy it). */
export function bodyLength(update: Update): number {
  return update instanceof ParsedUpdate ? update.bodyLength() : update.bodyBytes.length;
}

/** The body's first byte (its CBOR head), without making the body; -1 for an empty body. */
export function bodyHead(update: Update): number {
  if (update instanceof ParsedUpdate) return update.bodyLength() > 0 ? update.bodyHead() : -1;
  return update.bodyBytes[0] ?? -1;
}

/** Bytes of {@link copySigned}'s key: the signature (64), then the payload hash (32). */
export const SIGNED_KEY_BYTES = 96;

/** Writes `update`'s signature then its payload hash into `out` at `at` (96 bytes), making no
 *  array for a fresh or compact update: a key for this exact envelope (two envelopes of one
 *  payload with different signatures differ). */
export function copySigned(update: Update, out: Uint8Array, at: number): void {
  if (update instanceof ParsedUpdate) return update.copySigned(out, at);
  out.set(update.signature, at);
  out.set(update.hash, at + 64);
}

/** {@link copySigned}'s 96 bytes as a latin1 string. */
export function signedId(update: Update): string {
  const key = new Uint8Array(SIGNED_KEY_BYTES);
  copySigned(update, key, 0);
  return Buffer.from(key.buffer).toString('latin1');
}

/** Byte order of two updates' payload hashes: negative, zero (same hash) or positive. */
export function compareHashes(a: Update, b: Update): number {
  if (a instanceof ParsedUpdate && b instanceof ParsedUpdate) return a.compareHash(b);
  for (let i = 0; i < 32; i++) {
    const d = hashByte(a, i) - hashByte(b, i);
    if (d !== 0) return d;
  }
  return 0;
}

/** True if two updates have the same payload hash (are the same update). */
export const sameHash = (a: Update, b: Update): boolean => a === b || compareHashes(a, b) === 0;

/**
 * Parses envelope bytes and checks everything but the signature: size, CBOR structure,
 * shape, format, dataset, version, body size and decode budget. Copies the bytes once and
 * decodes nothing: the body stays bytes until read. Never throws on any input.
 */
export function parseUpdate(input: Uint8Array, options?: UpdateOptions): UpdateResult {
  return parse(input, options, false);
}

/**
 * @internal {@link parseUpdate} of a fresh envelope nobody else holds, followed in its buffer by
 * 32 bytes reserved for it (room for its hash): kept without a copy, those 32 bytes included. Any
 * other input is copied, as ever. Not exported from the package: a caller that kept writing to
 * the bytes, or handed the 32 bytes after them to anyone else, would change the update.
 */
export function parseAdoptedUpdate(input: Uint8Array, options?: UpdateOptions): UpdateResult {
  return parse(input, options, true);
}

function parse(input: Uint8Array, options: UpdateOptions | undefined, adopt: boolean): UpdateResult {
  const maxBody = maxBodyOf(options);
  if (!(input instanceof Uint8Array)) return fail('bad-shape', 'envelope is not bytes');
  if (input.length > maxBody + ENVELOPE_OVERHEAD_BYTES) return fail('too-large', `envelope of ${input.length} bytes`);
  // Envelope: 0x82, byte string (payload), 0x58 0x40, 64 signature bytes, nothing after.
  const head = readHead(input, 1);
  if (input[0] !== 0x82 || head === null || head[0] !== 2) return fail('bad-shape', 'envelope is not [payload bytes, signature bytes]');
  const payloadStart = 1 + head[2];
  if (head[1] !== input.length - payloadStart - 66 || input[input.length - 66] !== 0x58 || input[input.length - 65] !== 0x40) {
    return fail('bad-shape', 'envelope lengths do not add up to [payload, 64-byte signature]');
  }
  const payloadIn = input.subarray(payloadStart, payloadStart + head[1]);
  const known = recentContext(payloadIn);
  const header = known !== undefined ? readVersion(payloadIn, known.dataset, known.header.length - 32) : readHeader(payloadIn);
  if ('ok' in header) return header;
  const bodyLength = payloadIn.length - header.bodyStart;
  if (bodyLength > maxBody) return fail('too-large', `body of ${bodyLength} bytes; the limit is ${maxBody}`);
  if (options?.dataset !== undefined && header.dataset !== options.dataset) {
    return fail('wrong-dataset', `update for dataset ${JSON.stringify(header.dataset)}`);
  }
  const scan = scanCbor(payloadIn, header.bodyStart, { maxDepth: MAX_BODY_DEPTH });
  if (!scan.ok) return fail(scan.overBudget ? 'too-large' : 'bad-shape', `body: ${scan.detail}`);
  if (scan.end !== payloadIn.length) return fail('bad-shape', 'payload: trailing bytes');
  // One owned copy (Buffer#slice would return a view into the peer's message): the envelope,
  // then its payload's hash. An envelope handed over with room for the hash is kept as it is.
  let buf: Uint8Array;
  if (adopt && input.byteOffset + input.length + 32 <= input.buffer.byteLength) {
    buf = new Uint8Array(input.buffer, input.byteOffset, input.length + 32);
  } else {
    buf = new Uint8Array(input.length + 32);
    buf.set(input);
  }
  sha256Into(payloadIn, buf.subarray(input.length));
  let ctx = known;
  if (ctx === undefined) {
    // The dataset name a stream expects is one string shared by all its updates.
    ctx = contextOf(payloadIn, options?.dataset ?? header.dataset, header.keyStart + 32);
    rememberContext(ctx);
  }
  const hi = Math.floor(header.version / VERSION_SPLIT);
  const update = new ParsedUpdate(ctx, buf, hi, header.version - hi * VERSION_SPLIT);
  return { ok: true, update };
}

/** Verifies an update's signature over "signet/update/v1" || payload, as received. */
export function verifyUpdate(update: Update, options?: { backend?: SignatureBackend }): Promise<boolean> {
  return verifyInDomain(update.signature, DOMAIN.update, update.payload, update.publicKey, options);
}

/** {@link parseUpdate}, then the signature. Never rejects on any input bytes. */
export async function openUpdate(input: Uint8Array, options?: UpdateOptions): Promise<UpdateResult> {
  const parsed = parseUpdate(input, options);
  if (!parsed.ok) return parsed;
  if (!(await verifyUpdate(parsed.update, options))) return fail('bad-signature', 'signature does not verify');
  return parsed;
}

/** What a source signs. */
export interface UpdateFields {
  dataset: string;
  version: number;
  body: unknown;
}

/**
 * Signs an update. The result passes every check a receiving node applies (it is parsed
 * back before it is returned), so a local write can never produce what peers reject.
 * @throws TypeError / RangeError on a bad dataset, version or body (too large, too deep,
 * a type CBOR cannot carry here: undefined, Map, Date, bigint, non-finite numbers, a
 * `__proto__`/`constructor`/`prototype` key).
 */
export function signUpdate(identity: Identity, fields: UpdateFields, options?: UpdateOptions): Update {
  const maxBody = maxBodyOf(options);
  assertString(fields.dataset, 'dataset', MAX_DATASET_LENGTH);
  if (!isDatasetName(fields.dataset)) throw new RangeError('"dataset" must not contain control characters');
  const version = fields.version;
  assertInteger(version, 'version', 1, Number.MAX_SAFE_INTEGER);
  assertValue(fields.body, 'body');
  let body: Uint8Array;
  try {
    body = encodeCborTransient(fields.body);
  } catch (err) {
    throw new TypeError(`"body" cannot be encoded: ${(err as Error).message}`);
  }
  if (body.length > maxBody) throw new RangeError(`"body" is ${body.length} bytes; the limit is ${maxBody}`);
  const problem = checkCbor(body, { maxDepth: MAX_BODY_DEPTH });
  if (problem !== null) throw new RangeError(`"body" is not acceptable: ${problem}`);
  const ctx = signingContext(identity, fields.dataset);
  const header = ctx.header;
  const payloadLength = header.length + minimalHeadLength(version) + body.length;
  const length = 1 + minimalHeadLength(payloadLength) + payloadLength + 2 + 64;
  if (length > maxBody + ENVELOPE_OVERHEAD_BYTES) throw new RangeError(`update would be rejected by peers: envelope of ${length} bytes`);
  // Built in place as parseUpdate would hold it (envelope, then the payload's hash): every part
  // was checked above or made here with minimal heads, so parsing it back would find nothing new.
  const buf = new Uint8Array(length + 32);
  buf[0] = 0x82;
  const payloadStart = 1 + writeHead(buf, 1, 2, payloadLength);
  buf.set(header, payloadStart);
  const versionAt = payloadStart + header.length;
  buf.set(body, versionAt + writeHead(buf, versionAt, 0, version));
  const payload = buf.subarray(payloadStart, payloadStart + payloadLength);
  buf[length - 66] = 0x58;
  buf[length - 65] = 0x40;
  buf.set(identity.sign(domainBytes(DOMAIN.update, payload)), length - 64);
  sha256Into(payload, buf.subarray(length));
  const hi = Math.floor(version / VERSION_SPLIT);
  return new ParsedUpdate(ctx, buf, hi, version - hi * VERSION_SPLIT);
}

/** Per identity, its source context in each dataset it signed for (a few, bounded anyway). */
const signingContexts = new WeakMap<Identity, Map<string, SourceContext>>();
/** Datasets remembered per identity before its map starts again. */
const MAX_SIGNING_CONTEXTS = 64;

/** The context of `identity`'s updates in `dataset`, made once rather than per write. Its header
 *  is the payload's fixed prefix, canonically encoded: [1, dataset, publicKey, (the version and
 *  the body follow). Received payloads must start with exactly such bytes (readHeader), so the
 *  header has one encoding and the body's size is measured exactly. */
function signingContext(identity: Identity, dataset: string): SourceContext {
  let byDataset = signingContexts.get(identity);
  if (byDataset === undefined) signingContexts.set(identity, (byDataset = new Map()));
  let ctx = byDataset.get(dataset);
  if (ctx === undefined) {
    const name = utf8(dataset);
    const header = concatBytes(Uint8Array.of(0x85, UPDATE_FORMAT), cborHead(3, name.length), name, cborHead(2, 32), identity.publicKey);
    ctx = contextOf(header, dataset, header.length);
    if (byDataset.size >= MAX_SIGNING_CONTEXTS) byDataset.clear();
    byDataset.set(dataset, ctx);
  }
  return ctx;
}
