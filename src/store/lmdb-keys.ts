// LmdbStore's keys and values (the dataset prefix, envelope keys by hash or by source, version
// and hash, clock and meta keys, numbers) and the checks a batch passes before any of it is written.
import { isDatasetName } from '../envelope/update.ts';
import type { NodeId } from '../identity/node-id.ts';
import { MAX_STORE_NAME_LENGTH } from '../limits.ts';
import { assertBytes, assertString } from '../util/bytes.ts';
import type { StoreBatch, StoreUpdate, StoreUpdateName } from './store.ts';

/** Bytes of an envelope key after the dataset prefix when the update is named by its hash alone. */
export const HASH_KEY_BYTES = 32;
/** Bytes of an envelope key after the dataset prefix when the update is named by source, version
 *  and hash: the source id's 32 bytes (base32-decoded), the version (8 bytes, big-endian), the hash. */
export const ORDERED_KEY_BYTES = 32 + 8 + 32;

/** `[n: 1 byte][n UTF-16 code units, big-endian]`: injective and self-delimiting. */
export function text(s: string): Buffer {
  const out = Buffer.allocUnsafe(1 + 2 * s.length);
  writeText(out, 0, s);
  return out;
}

/** Writes {@link text}(s) at `at`; returns the offset after it. */
export function writeText(out: Buffer, at: number, s: string): number {
  out[at] = s.length;
  for (let i = 0; i < s.length; i++) out.writeUInt16BE(s.charCodeAt(i), at + 1 + 2 * i);
  return at + 1 + 2 * s.length;
}

/** The smallest key above every key that starts with `prefix` (its first byte is < 0xff). */
export function successor(prefix: Uint8Array): Buffer {
  const out = Buffer.from(prefix);
  let i = out.length - 1;
  while (out[i] === 0xff) i--;
  out[i]!++;
  return out.subarray(0, i + 1);
}

/** A number record: 8-byte big-endian float64 (a fresh buffer: lmdb-js reads it when it writes). */
export function number(value: number): Buffer {
  const out = Buffer.allocUnsafe(8);
  out.writeDoubleBE(value, 0);
  return out;
}

/** True for exactly 64 lowercase hex digits (an update hash as the hash-keyed form names it). */
export function isHashHex(s: string): boolean {
  if (s.length !== 64) return false;
  for (let i = 0; i < 64; i++) {
    const c = s.charCodeAt(i);
    if (!((c >= 48 && c <= 57) || (c >= 97 && c <= 102))) return false;
  }
  return true;
}

/** Value of a base32 character (RFC 4648, lower case), or -1. */
function base32Value(c: number): number {
  if (c >= 97 && c <= 122) return c - 97; // a-z
  if (c >= 50 && c <= 55) return c - 24; // 2-7
  return -1;
}

/**
 * Writes the 32 bytes a node id names (base32-decoded) at `out[at]`; returns false, having written
 * only into that range, unless `id` is a canonical node id (52 characters, the last one carrying a
 * single bit and four zero bits), so that two ids never share key bytes.
 */
export function writeNodeId(out: Uint8Array, at: number, id: NodeId): boolean {
  if (id.length !== 52) return false;
  let buffer = 0;
  let bits = 0;
  let o = at;
  for (let i = 0; i < 52; i++) {
    const v = base32Value(id.charCodeAt(i));
    if (v < 0) return false;
    buffer = ((buffer << 5) | v) & 0x3ff;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (buffer >>> bits) & 0xff;
    }
  }
  return (buffer & ((1 << bits) - 1)) === 0; // the 4 bits left over are zero
}

/** Writes a version (a safe integer >= 0) as 8 bytes big-endian at `out[at]`. */
export function writeVersion(out: Buffer, at: number, version: number): void {
  out.writeUInt32BE(Math.floor(version / 2 ** 32), at);
  out.writeUInt32BE(version % 2 ** 32, at + 4);
}

/** Reads a number record. `null` unless it is 8 bytes. */
export function readNumber(value: Uint8Array): number | null {
  if (value.length !== 8) return null;
  return new DataView(value.buffer, value.byteOffset, 8).getFloat64(0);
}

/** Reads {@link text} at `at` to the key's end. `null` unless the key ends exactly there. */
export function readText(key: Uint8Array, at: number): string | null {
  const n = key[at];
  if (n === undefined || key.length !== at + 1 + 2 * n) return null;
  let s = '';
  for (let i = 0; i < n; i++) s += String.fromCharCode((key[at + 1 + 2 * i]! << 8) | key[at + 2 + 2 * i]!);
  return s;
}

// ---- batches and keys ------------------------------------------------------------------------

/** `prefix` + text(name): a clock or meta key. */
export function suffixed(prefix: Buffer, name: string): Buffer {
  const key = Buffer.allocUnsafe(prefix.length + 1 + 2 * name.length);
  prefix.copy(key, 0);
  writeText(key, prefix.length, name);
  return key;
}

/** A checked batch's envelope writes, in order: the key and value of each put (then each drop,
 *  with a null value). */
export interface EnvelopeWrites {
  keys: Buffer[];
  values: Array<Uint8Array | null>;
}

/** Checks a whole batch before anything of it is written, and builds the keys of its puts and
 *  drops (each field of an update is read once: an Update's byte fields are made when read).
 *  @throws TypeError/RangeError naming the field. */
export function planBatch(prefix: Buffer, batch: StoreBatch): EnvelopeWrites {
  if (typeof batch !== 'object' || batch === null) throw new TypeError('"batch" expected an object');
  const put = list(batch.put, 'batch.put');
  const drop = list(batch.drop, 'batch.drop');
  const keys: Buffer[] = [];
  const values: Array<Uint8Array | null> = [];
  for (let i = 0; i < put.length; i++) {
    const item = put[i];
    if (Array.isArray(item)) {
      if (item.length !== 2) throw new TypeError('"batch.put" expected updates or [hash, bytes] pairs');
      const [hash, bytes] = item as [unknown, unknown];
      assertBytes(bytes, 'batch.put envelope');
      keys.push(hashKey(prefix, checkHashHex(hash)));
      values.push(bytes);
    } else {
      keys.push(orderedKey(prefix, item, 'batch.put'));
      const bytes = (item as StoreUpdate).bytes;
      assertBytes(bytes, 'batch.put envelope');
      values.push(bytes);
    }
  }
  for (let i = 0; i < drop.length; i++) {
    const item = drop[i];
    if (typeof item === 'string') {
      keys.push(hashKey(prefix, checkHashHex(item)));
      values.push(null);
      continue;
    }
    const key = orderedKey(prefix, item, 'batch.drop');
    // An envelope a format-1 store held is keyed by its hash alone (the format was carried
    // forward with its keys): an update dropped by name loses that key too, or an envelope
    // loaded from it and later superseded would stay on disk and come back at every load.
    keys.push(key, legacyKeyOf(prefix, key));
    values.push(null, null);
  }
  const clock = entries(batch.clock, 'batch.clock');
  for (let i = 0; i < clock.length; i++) {
    const [source, version] = clock[i]!;
    assertName(source, 'batch.clock source');
    if (typeof version !== 'number' || !Number.isSafeInteger(version) || version < 0) throw new RangeError(`"batch.clock version" expected a safe integer >= 0, got ${String(version)}`);
  }
  const meta = entries(batch.meta ?? [], 'batch.meta');
  for (let i = 0; i < meta.length; i++) {
    const [name, value] = meta[i]!;
    assertName(name, 'batch.meta name');
    if (typeof value !== 'number' || !Number.isFinite(value)) throw new TypeError(`"batch.meta value" expected a finite number, got ${String(value)}`);
  }
  return { keys, values };
}

/** The key of an update stored under its name (source, version, hash).
 *  @throws TypeError/RangeError naming the field. */
export function envelopeKeyOf(prefix: Buffer, update: StoreUpdateName): Buffer {
  return orderedKey(prefix, update, 'update');
}

/** The format-1 key (`prefix` + hash) of the update whose ordered key is `key`. */
function legacyKeyOf(prefix: Buffer, key: Buffer): Buffer {
  const legacy = Buffer.allocUnsafe(prefix.length + HASH_KEY_BYTES);
  prefix.copy(legacy, 0);
  key.copy(legacy, prefix.length, prefix.length + 40);
  return legacy;
}

/** `prefix` + the 32 bytes of a 64-digit hex hash (checked first). */
function hashKey(prefix: Buffer, hash: string): Buffer {
  const key = Buffer.allocUnsafe(prefix.length + HASH_KEY_BYTES);
  prefix.copy(key, 0);
  key.write(hash, prefix.length, HASH_KEY_BYTES, 'hex');
  return key;
}

function checkHashHex(hash: unknown): string {
  if (typeof hash !== 'string') throw new TypeError(`update hash expected a hex string, got ${typeof hash}`);
  if (!isHashHex(hash)) throw new RangeError(`update hash expected 64 lowercase hex digits, got length=${hash.length}`);
  return hash;
}

/** `prefix` + source (32) + version (8, big-endian) + hash (32) of an update name, checked as it
 *  is written. @throws TypeError/RangeError naming the field. */
function orderedKey(prefix: Buffer, u: unknown, name: string): Buffer {
  if (typeof u !== 'object' || u === null) throw new TypeError(`"${name}" expected updates (source, version, hash) or hashes, got ${u === null ? 'null' : typeof u}`);
  const { source, version, hash } = u as StoreUpdateName;
  const key = Buffer.allocUnsafe(prefix.length + ORDERED_KEY_BYTES);
  prefix.copy(key, 0);
  if (typeof source !== 'string' || !writeNodeId(key, prefix.length, source)) {
    throw new RangeError(`"${name} source" expected a node id (52 base32 characters), got ${typeof source === 'string' ? `length=${(source as string).length}` : typeof source}`);
  }
  if (typeof version !== 'number' || !Number.isSafeInteger(version) || version < 0) throw new RangeError(`"${name} version" expected a safe integer >= 0, got ${String(version)}`);
  writeVersion(key, prefix.length + 32, version);
  assertBytes(hash, `${name} hash`, 32);
  key.set(hash, prefix.length + 40);
  return key;
}

export function checkDataset(dataset: unknown): asserts dataset is string {
  if (typeof dataset !== 'string') throw new TypeError(`"dataset" expected string, got ${typeof dataset}`);
  if (!isDatasetName(dataset)) throw new RangeError('"dataset" expected 1..128 characters without control characters');
}

function assertName(value: unknown, name: string): asserts value is string {
  assertString(value, name, MAX_STORE_NAME_LENGTH);
}

function list(value: unknown, name: string): unknown[] {
  if (!Array.isArray(value)) throw new TypeError(`"${name}" expected an array`);
  return value;
}

function entries(value: unknown, name: string): Array<[unknown, unknown]> {
  const items = list(value, name);
  for (const item of items) if (!Array.isArray(item) || item.length !== 2) throw new TypeError(`"${name}" expected [key, value] pairs`);
  return items as Array<[unknown, unknown]>;
}
