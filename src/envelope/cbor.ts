// signet's one CBOR codec: cbor-x configured once (records off, no tags, size limits on),
// behind a hand-written structural guard that runs over the raw bytes before cbor-x sees them.
import { Decoder, Encoder, setSizeLimits, type Options } from 'cbor-x';

/** What may appear in signet CBOR: plain data, maps with text keys only. */
export type Value = null | boolean | number | string | Uint8Array | Value[] | { [key: string]: Value };

/** Limits for {@link decodeCbor}. */
export interface CborLimits {
  /** Deepest array/map nesting accepted. */
  maxDepth: number;
}

/** A decode result: data from a peer is never an exception. */
export type CborResult = { ok: true; value: Value } | { ok: false; reason: 'bad-shape'; detail: string };

/** Most items in one array or pairs in one map that cbor-x will build (process-wide setting). */
export const CBOR_MAX_ITEMS = 1 << 20;
// cbor-x's limit setter is the `setSizeLimits` export (README names it so in 1.6; test/envelope proves it is in force).
setSizeLimits({ maxArraySize: CBOR_MAX_ITEMS, maxMapSize: CBOR_MAX_ITEMS, maxObjectSize: CBOR_MAX_ITEMS });

const options = {
  useRecords: false, // records would decode through generated code (new Function): never
  structuredClone: false, // no shared references or cycles
  mapsAsObjects: true, // safe: the guard admits only text keys, no duplicates, no prototype names
  tagUint8Array: false, // byte strings as plain major type 2, never tag 64
  useFloat32: 0, // never round floats
  variableMapSize: true, // minimal map headers
  copyBuffers: true, // decoded byte strings do not pin the input buffer
  int64AsNumber: true, // 8-byte integers as numbers (the guard admits only safe integers), never BigInt
} as const;
// int64AsNumber is honoured by cbor-x's decoder but missing from its Options type.
const encoder = new Encoder(options as Options);
const decoder = new Decoder(options as Options);

/** Keys that would reach an object prototype if assigned naively. */
export const FORBIDDEN_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);
const utf8Fatal = new TextDecoder('utf-8', { fatal: true });

/**
 * Checks that `bytes` hold exactly one well-formed CBOR item made only of signet's types:
 * unsigned/negative integers, byte and text strings (valid UTF-8), arrays, maps with unique
 * text keys (none of {@link FORBIDDEN_KEYS}), false/true/null and finite floats; definite
 * lengths only; no tags; nesting at most `maxDepth`. Every claimed length is compared with
 * the bytes actually left before anything is read or allocated. Iterative: deep input
 * cannot overflow the stack. Returns null when acceptable, else why not.
 */
export function checkCbor(bytes: Uint8Array, maxDepth: number): string | null {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = 0;
  // Stack of open containers: items still owed, and (for maps) keys seen, and whether the next item is a key.
  const stack: Array<{ left: number; keys: Set<string> | null; expectKey: boolean }> = [];
  let done = false;
  while (!done) {
    if (pos >= bytes.length) return 'truncated';
    const parent = stack[stack.length - 1];
    const isKey = parent !== undefined && parent.keys !== null && parent.expectKey;
    const initial = bytes[pos++]!;
    const major = initial >> 5;
    const info = initial & 31;
    let arg: number;
    if (info < 24) arg = info;
    else if (info === 24 || info === 25 || info === 26 || info === 27) {
      const size = 1 << (info - 24);
      if (pos + size > bytes.length) return 'truncated';
      if (major === 7) {
        if (info === 24) return 'simple value';
        const f = info === 25 ? halfToFloat(view.getUint16(pos)) : info === 26 ? view.getFloat32(pos) : view.getFloat64(pos);
        if (!Number.isFinite(f)) return 'non-finite float';
        arg = 0;
      } else if (info === 27) {
        const big = view.getBigUint64(pos);
        arg = big > BigInt(Number.MAX_SAFE_INTEGER) ? Infinity : Number(big);
      } else arg = info === 24 ? bytes[pos]! : info === 25 ? view.getUint16(pos) : view.getUint32(pos);
      pos += size;
    } else if (info === 31) return 'indefinite length';
    else return 'reserved additional information';

    if (isKey && major !== 3) return 'map key is not a text string';
    switch (major) {
      case 0:
      case 1: // a negative integer is -1 - arg: -1 - MAX_SAFE_INTEGER is not safe
        if (arg > Number.MAX_SAFE_INTEGER - major) return 'integer outside the safe range';
        break;
      case 2:
      case 3: {
        if (arg > bytes.length - pos) return `string length ${arg} exceeds the ${bytes.length - pos} bytes left`;
        if (major === 3) {
          let text: string;
          try {
            text = utf8Fatal.decode(bytes.subarray(pos, pos + arg));
          } catch {
            return 'invalid UTF-8';
          }
          if (isKey) {
            if (FORBIDDEN_KEYS.has(text)) return `forbidden key ${JSON.stringify(text)}`;
            if (parent!.keys!.has(text)) return 'duplicate map key';
            parent!.keys!.add(text);
          }
        }
        pos += arg;
        break;
      }
      case 4:
      case 5: {
        const items = major === 4 ? arg : arg * 2;
        if (items > bytes.length - pos) return `container of ${arg} items exceeds the ${bytes.length - pos} bytes left`;
        if (stack.length >= maxDepth) return `nesting deeper than ${maxDepth}`;
        if (items > 0) {
          stack.push({ left: items, keys: major === 5 ? new Set() : null, expectKey: true });
          continue; // the container's first item comes next; it is not yet complete
        }
        break;
      }
      case 6:
        return 'tags are not accepted';
      case 7:
        if (info < 20 || info === 23) return info === 23 ? 'undefined is not accepted' : 'simple value';
        break;
    }
    // One item completed: pop every container it completes.
    for (;;) {
      const top = stack[stack.length - 1];
      if (top === undefined) {
        done = true;
        break;
      }
      top.left--;
      if (top.keys !== null) top.expectKey = !top.expectKey;
      if (top.left > 0) break;
      stack.pop();
    }
  }
  return pos === bytes.length ? null : 'trailing bytes';
}

function halfToFloat(h: number): number {
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  const sign = h & 0x8000 ? -1 : 1;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/** Guard then decode. Never throws on any input. */
export function decodeCbor(bytes: Uint8Array, limits: CborLimits): CborResult {
  const problem = checkCbor(bytes, limits.maxDepth);
  if (problem !== null) return { ok: false, reason: 'bad-shape', detail: problem };
  try {
    return { ok: true, value: decoder.decode(bytes) as Value };
  } catch (err) {
    // cbor-x throws (RangeError on deep nesting, Error on limits); the guard should have caught it first.
    return { ok: false, reason: 'bad-shape', detail: `cbor: ${(err as Error).message}` };
  }
}

/** Encodes a value with the one configured encoder (a fresh copy, safe to keep). */
export function encodeCbor(value: unknown): Uint8Array {
  const out = encoder.encode(value);
  return new Uint8Array(out.buffer.slice(out.byteOffset, out.byteOffset + out.byteLength));
}

/** The configured cbor-x decoder without the guard: for tests that prove the limits are in force. */
export const rawDecoderForTests = decoder;

/** Minimal CBOR head for major type `major` and argument `n` (a safe integer). */
export function cborHead(major: number, n: number): Uint8Array {
  const m = major << 5;
  if (n < 24) return Uint8Array.of(m | n);
  if (n < 0x100) return Uint8Array.of(m | 24, n);
  if (n < 0x10000) return Uint8Array.of(m | 25, n >> 8, n & 0xff);
  if (n < 0x100000000) return Uint8Array.of(m | 26, n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff);
  const out = new Uint8Array(9);
  out[0] = m | 27;
  new DataView(out.buffer).setBigUint64(1, BigInt(n));
  return out;
}

/** Reads a definite-length head at `pos`: [major, argument, head length], or null if truncated,
 *  indefinite or wider than a safe integer. */
export function readHead(bytes: Uint8Array, pos: number): [number, number, number] | null {
  if (pos >= bytes.length) return null;
  const major = bytes[pos]! >> 5;
  const info = bytes[pos]! & 31;
  if (info < 24) return [major, info, 1];
  if (info > 27) return null;
  const size = 1 << (info - 24);
  if (pos + 1 + size > bytes.length) return null;
  let n = 0;
  for (let i = 1; i <= size; i++) n = n * 256 + bytes[pos + i]!;
  return Number.isSafeInteger(n) ? [major, n, 1 + size] : null;
}
