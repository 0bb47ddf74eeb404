// The signed update: payload = CBOR [format, dataset, source public key, version, body],
// signed as "signet/update/v1" || payload; envelope = CBOR [payload bytes, signature].
import { createHash } from 'node:crypto';
import type { Identity } from '../identity/identity.ts';
import { nodeIdOf, type NodeId } from '../identity/node-id.ts';
import { DOMAIN, domainBytes, verifySignature, type SignatureBackend } from '../identity/signature.ts';
import { ENVELOPE_OVERHEAD_BYTES, MAX_BODY_DEPTH, MAX_DATASET_LENGTH, MAX_UPDATE_BYTES, MAX_UPDATE_BYTES_CEILING } from '../limits.ts';
import { assertInteger, assertString, concatBytes, utf8 } from '../util/bytes.ts';
import { assertValue } from './value.ts';
import { cborHead, checkCbor, decodeScanned, encodeCbor, readHead, scanCbor, type Value } from './cbor.ts';

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
  /** The body's CBOR bytes as signed (a view into `bytes`). */
  readonly bodyBytes: Uint8Array;
  /** SHA-256 of the signed payload: names this update (dedupe, equivocation, LWW ties). */
  readonly hash: Uint8Array;
  /** `hash` in hex: the update's key in maps and stores. */
  readonly hashHex: string;
  /** The envelope bytes exactly as signed and sent. */
  readonly bytes: Uint8Array;
  /** The signed payload (a view into `bytes`). */
  readonly payload: Uint8Array;
  /** The 64-byte Ed25519 signature (a view into `bytes`). */
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
  /** Signature backend for {@link openUpdate}. Default `native`. */
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

/** The payload's fixed prefix, canonically encoded: [1, dataset, publicKey, version, ...
 *  (the body follows). Received payloads must start with exactly these bytes, so the header
 *  has one encoding and the body's size is measured exactly. */
function payloadHeader(dataset: string, publicKey: Uint8Array, version: number): Uint8Array {
  const name = utf8(dataset);
  return concatBytes(Uint8Array.of(0x85, UPDATE_FORMAT), cborHead(3, name.length), name, cborHead(2, 32), publicKey, cborHead(0, version));
}

/** Length of a minimal CBOR head for argument `n`. */
const minimalHeadLength = (n: number): number => (n < 24 ? 1 : n < 0x100 ? 2 : n < 0x10000 ? 3 : n < 0x100000000 ? 5 : 9);
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
  const keyStart = pos + 2;
  pos += 34;
  const version = readHead(payload, pos);
  if (version === null || version[0] !== 0 || version[1] < 1) return fail('bad-version', 'version is not a positive safe integer');
  if (version[2] !== minimalHeadLength(version[1])) return fail('bad-shape', 'payload header is not canonically encoded');
  return { dataset, keyStart, version: version[1], bodyStart: pos + version[2] };
}

/**
 * A parsed update, compact because a model holds one per key: one owned buffer (the envelope
 * bytes, then the 32-byte payload hash) and a few numbers and shared strings. The byte fields
 * are views made when read; the body is decoded when read.
 */
class ParsedUpdate implements Update {
  readonly hashHex: string;
  constructor(
    readonly dataset: string,
    readonly source: NodeId,
    readonly version: number,
    /** Envelope bytes followed by the payload's SHA-256. */
    private readonly buf: Uint8Array,
    /** Where the payload starts in the envelope, and its length. */
    private readonly payloadStart: number,
    private readonly payloadLength: number,
    /** Offsets in the payload of the source key and of the body. */
    private readonly keyStart: number,
    private readonly bodyStart: number,
  ) {
    this.hashHex = Buffer.from(buf.buffer, buf.byteOffset + buf.length - 32, 32).toString('hex');
  }

  get bytes(): Uint8Array {
    return this.buf.subarray(0, this.buf.length - 32);
  }

  get hash(): Uint8Array {
    return this.buf.subarray(this.buf.length - 32);
  }

  get payload(): Uint8Array {
    return this.buf.subarray(this.payloadStart, this.payloadStart + this.payloadLength);
  }

  get publicKey(): Uint8Array {
    const at = this.payloadStart + this.keyStart;
    return this.buf.subarray(at, at + 32);
  }

  get bodyBytes(): Uint8Array {
    return this.buf.subarray(this.payloadStart + this.bodyStart, this.payloadStart + this.payloadLength);
  }

  get signature(): Uint8Array {
    const end = this.buf.length - 32;
    return this.buf.subarray(end - 64, end);
  }

  get body(): Value {
    return decodeScanned(this.bodyBytes);
  }
}

/**
 * Parses envelope bytes and checks everything but the signature: size, CBOR structure,
 * shape, format, dataset, version, body size and decode budget. Copies the bytes once and
 * decodes nothing: the body stays bytes until read. Never throws on any input.
 */
export function parseUpdate(input: Uint8Array, options?: UpdateOptions): UpdateResult {
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
  const header = readHeader(payloadIn);
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
  // then its payload's hash.
  const buf = new Uint8Array(input.length + 32);
  buf.set(input);
  buf.set(createHash('sha256').update(payloadIn).digest(), input.length);
  const source = nodeIdOf(buf.subarray(payloadStart + header.keyStart, payloadStart + header.keyStart + 32));
  // The dataset name a stream expects is one string shared by all its updates.
  const dataset = options?.dataset ?? header.dataset;
  const update = new ParsedUpdate(dataset, source, header.version, buf, payloadStart, head[1], header.keyStart, header.bodyStart);
  return { ok: true, update };
}

/** Verifies an update's signature over "signet/update/v1" || payload, as received. */
export function verifyUpdate(update: Update, options?: { backend?: SignatureBackend }): Promise<boolean> {
  return verifySignature(update.signature, domainBytes(DOMAIN.update, update.payload), update.publicKey, options);
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
  assertInteger(fields.version, 'version', 1, Number.MAX_SAFE_INTEGER);
  assertValue(fields.body, 'body');
  let body: Uint8Array;
  try {
    body = encodeCbor(fields.body);
  } catch (err) {
    throw new TypeError(`"body" cannot be encoded: ${(err as Error).message}`);
  }
  if (body.length > maxBody) throw new RangeError(`"body" is ${body.length} bytes; the limit is ${maxBody}`);
  const problem = checkCbor(body, { maxDepth: MAX_BODY_DEPTH });
  if (problem !== null) throw new RangeError(`"body" is not acceptable: ${problem}`);
  const payload = concatBytes(payloadHeader(fields.dataset, identity.publicKey, fields.version), body);
  const signature = identity.sign(domainBytes(DOMAIN.update, payload));
  const bytes = concatBytes(Uint8Array.of(0x82), cborHead(2, payload.length), payload, Uint8Array.of(0x58, 0x40), signature);
  const parsed = parseUpdate(bytes, { dataset: fields.dataset, maxUpdateBytes: maxBody });
  if (!parsed.ok) throw new RangeError(`update would be rejected by peers: ${parsed.reason}: ${parsed.detail}`);
  return parsed.update;
}
