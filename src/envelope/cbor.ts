// signet's one CBOR codec: cbor-x configured once (records off, no tags, size limits on),
// behind a hand-written structural guard that runs over the raw bytes before cbor-x sees them.
import { isUtf8 } from 'node:buffer';
import { Decoder, Encoder, setSizeLimits, type Options } from 'cbor-x';
import { DECODE_SLACK_BYTES, MAX_DECODE_EXPANSION } from '../limits.ts';

/** What may appear in signet CBOR: plain data, maps with text keys only. */
export type Value = null | boolean | number | string | Uint8Array | Value[] | { [key: string]: Value };

/** Limits for {@link checkCbor}, {@link scanCbor} and {@link decodeCbor}. */
export interface CborLimits {
  /** Deepest array/map nesting accepted. */
  maxDepth: number;
  /**
   * Decode budget: the estimated heap the decoded value may take ({@link decodedCost}), as a
   * multiple of the wire bytes read so far, plus {@link DECODE_SLACK_BYTES}. Checked after
   * every item, so the guard's own work is bounded by the budget too. Default
   * {@link MAX_DECODE_EXPANSION}.
   */
  maxExpansion?: number;
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
const utf8Fatal = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Estimated heap bytes of decoded values, per item kind: what V8 spends on each once cbor-x
 * has built it (measured on Node 20; see test/envelope/cbor.test.ts). The budget is
 * deterministic: every node computes the same cost for the same bytes, so every node accepts
 * or refuses alike.
 */
export const DECODED_COST = {
  /** Every item: its slot in the parent container (or the reference to a top-level value). */
  slot: 8,
  /** An integer outside V8's small-integer range, or any float: a heap number. */
  heapNumber: 16,
  /** A non-empty text string: header plus its bytes (the empty string is shared). */
  text: 16,
  /** A byte string: a Uint8Array and its own ArrayBuffer (copyBuffers), plus its bytes. */
  bytes: 184,
  /** An array: object and elements header (elements counted as slots). */
  array: 32,
  /** A map decoded as a plain object (keys counted as text, pairs as two slots). */
  map: 56,
} as const;

/** The result of scanning one CBOR item: where it ends and its estimated decoded cost, or why it is refused. */
export type CborScan = { ok: true; end: number; cost: number } | { ok: false; detail: string; overBudget?: true };

/**
 * Scans exactly one well-formed CBOR item of signet's types starting at `start`: unsigned and
 * negative integers, byte and text strings (valid UTF-8), arrays, maps with unique text keys
 * (none of {@link FORBIDDEN_KEYS}), false/true/null and finite floats; definite lengths only;
 * no tags; nesting at most `maxDepth`. Every claimed length is compared with the bytes
 * actually left before anything is read or allocated, and the estimated decoded size
 * ({@link DECODED_COST}) is checked against the budget after every item, so neither the
 * scan's work nor a later decode can grow past a constant times the bytes read. Iterative:
 * deep input cannot overflow the stack. Never throws.
 */
export function scanCbor(bytes: Uint8Array, start: number, limits: CborLimits): CborScan {
  const maxDepth = limits.maxDepth;
  const expansion = limits.maxExpansion ?? MAX_DECODE_EXPANSION;
  let view: DataView | null = null; // made only for floats and 8-byte heads
  let pos = start;
  let cost = 0;
  // Stack of open containers: items still owed, and (for maps) keys seen, and whether the next item is a key.
  const stack: Array<{ left: number; keys: Set<string> | null; expectKey: boolean }> = [];
  for (;;) {
    if (pos >= bytes.length) return fail('truncated');
    const parent = stack[stack.length - 1];
    const isKey = parent !== undefined && parent.keys !== null && parent.expectKey;
    const initial = bytes[pos++]!;
    const major = initial >> 5;
    const info = initial & 31;
    let arg: number;
    cost += DECODED_COST.slot;
    if (info < 24) arg = info;
    else if (info === 24 || info === 25 || info === 26 || info === 27) {
      const size = 1 << (info - 24);
      if (pos + size > bytes.length) return fail('truncated');
      if (major === 7) {
        if (info === 24) return fail('simple value');
        view ??= new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
        const f = info === 25 ? halfToFloat(view.getUint16(pos)) : info === 26 ? view.getFloat32(pos) : view.getFloat64(pos);
        if (!Number.isFinite(f)) return fail('non-finite float');
        cost += DECODED_COST.heapNumber;
        arg = 0;
      } else if (info === 27) {
        view ??= new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
        const big = view.getBigUint64(pos);
        arg = big > BigInt(Number.MAX_SAFE_INTEGER) ? Infinity : Number(big);
      } else {
        arg = bytes[pos]!;
        for (let i = 1; i < size; i++) arg = arg * 256 + bytes[pos + i]!;
      }
      // One encoding per value: a head wider than needed is refused (decoders disagree on them).
      if (major !== 7 && arg < (info === 24 ? 24 : info === 25 ? 0x100 : info === 26 ? 0x10000 : 0x100000000)) return fail('non-minimal head');
      pos += size;
    } else if (info === 31) return fail('indefinite length');
    else return fail('reserved additional information');

    if (isKey && major !== 3) return fail('map key is not a text string');
    switch (major) {
      case 0:
      case 1: // a negative integer is -1 - arg: -1 - MAX_SAFE_INTEGER is not safe
        if (arg > Number.MAX_SAFE_INTEGER - major) return fail('integer outside the safe range');
        if (arg >= 2 ** 30) cost += DECODED_COST.heapNumber;
        break;
      case 2:
      case 3: {
        if (arg > bytes.length - pos) return fail(`string length ${arg} exceeds the ${bytes.length - pos} bytes left`);
        if (major === 3) {
          if (arg > 0) cost += DECODED_COST.text + arg;
          if (!isKey) {
            // Checked, not decoded: ASCII byte by byte, anything else as a whole.
            let ascii = true;
            for (let i = pos, end = pos + arg; i < end; i++) {
              if (bytes[i]! > 0x7f) {
                ascii = false;
                break;
              }
            }
            if (!ascii && !isUtf8(bytes.subarray(pos, pos + arg))) return fail('invalid UTF-8');
          } else {
            let text: string;
            try {
              text = utf8Fatal.decode(bytes.subarray(pos, pos + arg));
            } catch {
              return fail('invalid UTF-8');
            }
            if (FORBIDDEN_KEYS.has(text)) return fail(`forbidden key ${JSON.stringify(text)}`);
            if (parent!.keys!.has(text)) return fail('duplicate map key');
            parent!.keys!.add(text);
          }
        } else cost += DECODED_COST.bytes + arg;
        pos += arg;
        break;
      }
      case 4:
      case 5: {
        const items = major === 4 ? arg : arg * 2;
        if (items > bytes.length - pos) return fail(`container of ${arg} items exceeds the ${bytes.length - pos} bytes left`);
        // cbor-x refuses to build more (process-wide setSizeLimits): refuse here, or a value
        // accepted now could never be read back.
        if (arg > CBOR_MAX_ITEMS) return { ok: false, overBudget: true, detail: `container of ${arg} items; the limit is ${CBOR_MAX_ITEMS}` };
        if (stack.length >= maxDepth) return fail(`nesting deeper than ${maxDepth}`);
        cost += major === 4 ? DECODED_COST.array : DECODED_COST.map;
        if (items > 0) {
          if (cost > expansion * (pos - start) + DECODE_SLACK_BYTES) return overBudget(cost, pos - start, expansion);
          stack.push({ left: items, keys: major === 5 ? new Set() : null, expectKey: true });
          continue; // the container's first item comes next; it is not yet complete
        }
        break;
      }
      case 6:
        return fail('tags are not accepted');
      case 7:
        if (info < 20 || info === 23) return fail(info === 23 ? 'undefined is not accepted' : 'simple value');
        break;
    }
    if (cost > expansion * (pos - start) + DECODE_SLACK_BYTES) return overBudget(cost, pos - start, expansion);
    // One item completed: pop every container it completes.
    for (;;) {
      const top = stack[stack.length - 1];
      if (top === undefined) return { ok: true, end: pos, cost };
      top.left--;
      if (top.keys !== null) top.expectKey = !top.expectKey;
      if (top.left > 0) break;
      stack.pop();
    }
  }
}

function fail(detail: string): CborScan {
  return { ok: false, detail };
}

function overBudget(cost: number, read: number, expansion: number): CborScan {
  return { ok: false, overBudget: true, detail: `decodes to more than ${expansion} x its ${read} bytes + ${DECODE_SLACK_BYTES} (estimated ${cost} bytes)` };
}

/**
 * Checks that `bytes` hold exactly one acceptable CBOR item ({@link scanCbor}) and nothing
 * after it. `limits` may be just the maximum depth. Returns null when acceptable, else why not.
 */
export function checkCbor(bytes: Uint8Array, limits: CborLimits | number): string | null {
  const scan = scanCbor(bytes, 0, typeof limits === 'number' ? { maxDepth: limits } : limits);
  if (!scan.ok) return scan.detail;
  return scan.end === bytes.length ? null : 'trailing bytes';
}

function halfToFloat(h: number): number {
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  const sign = h & 0x8000 ? -1 : 1;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/** Decodes bytes that {@link scanCbor} accepted (no guard: callers scanned them already). */
export function decodeScanned(bytes: Uint8Array): Value {
  return decoder.decode(bytes) as Value;
}

/** Guard then decode. Never throws on any input. */
export function decodeCbor(bytes: Uint8Array, limits: CborLimits): CborResult {
  const problem = checkCbor(bytes, limits);
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

/** Encodes a value with the one configured encoder, without a copy: a view into the encoder's
 *  shared 8 KiB buffer, which keeping would pin. For bytes about to be copied somewhere else. */
export function encodeCborTransient(value: unknown): Uint8Array {
  return encoder.encode(value);
}

/** The configured cbor-x decoder without the guard: for tests that prove the limits are in force. */
export const rawDecoderForTests = decoder;

/** Length of a minimal CBOR head for argument `n` (a safe integer). */
export const minimalHeadLength = (n: number): number => (n < 24 ? 1 : n < 0x100 ? 2 : n < 0x10000 ? 3 : n < 0x100000000 ? 5 : 9);

/** Writes a minimal CBOR head for major type `major` and argument `n` (a safe integer) at
 *  `out[at]`, without allocating; returns its length. */
export function writeHead(out: Uint8Array, at: number, major: number, n: number): number {
  const size = minimalHeadLength(n);
  if (size === 1) {
    out[at] = (major << 5) | n;
    return 1;
  }
  out[at] = (major << 5) | (size === 2 ? 24 : size === 3 ? 25 : size === 5 ? 26 : 27);
  for (let i = size - 1, v = n; i >= 1; i--, v = Math.floor(v / 256)) out[at + i] = v % 256;
  return size;
}

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

/** End of the item at `pos` in bytes that {@link scanCbor} already accepted (no checks, no allocation). */
export function skipScanned(bytes: Uint8Array, pos: number): number {
  let left = 1;
  while (left > 0) {
    const major = bytes[pos]! >> 5;
    left--;
    if (major === 7) {
      const info = bytes[pos]! & 31; // floats: 2, 4 or 8 bytes after the initial byte
      pos += info < 24 ? 1 : 1 + (1 << (info - 24));
      continue;
    }
    // A scanned head is definite and safe: read in place (this runs per item of every body read).
    const info = bytes[pos]! & 31;
    let arg = info;
    let size = 1;
    if (info >= 24) {
      size = 1 + (1 << (info - 24));
      arg = 0;
      for (let i = 1; i < size; i++) arg = arg * 256 + bytes[pos + i]!;
    }
    pos += size;
    if (major === 2 || major === 3) pos += arg;
    else if (major === 4) left += arg;
    else if (major === 5) left += 2 * arg;
  }
  return pos;
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
