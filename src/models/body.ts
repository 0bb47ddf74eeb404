// A Model body read from its signed bytes: ['set', key, value, ttl?] or ['del', key]. The value
// is located, never decoded, so a peer's value is materialised only when someone reads it.
import { MAX_TTL_MS } from '../limits.ts';
import { decodeScanned, readHead, skipScanned, type Value } from '../envelope/cbor.ts';
import type { Update } from '../envelope/update.ts';

/** Longest key, in UTF-16 code units. Past it: local writes throw, received updates are `bad-shape`. */
export const MAX_KEY_LENGTH = 1024;

/** A model body read from its bytes. */
export interface Body {
  op: 'set' | 'del';
  key: string;
  /** ms, or undefined: no expiry. */
  ttl: number | undefined;
  /** The value's extent in the body bytes (empty for a delete). */
  valueStart: number;
  valueEnd: number;
}

/** CBOR text "set" and "del": a body's first item, compared as bytes. */
const OPS: ReadonlyArray<['set' | 'del', Uint8Array]> = [['set', Uint8Array.of(0x63, 0x73, 0x65, 0x74)], ['del', Uint8Array.of(0x63, 0x64, 0x65, 0x6c)]];
const utf8 = new TextDecoder('utf-8', { ignoreBOM: true }); // a leading U+FEFF is part of the key

/** Reads the body's shape from its CBOR bytes (already accepted by the guard) without decoding
 *  the value; null if the shape is wrong. */
export function readBody(bytes: Uint8Array): Body | null {
  const top = readHead(bytes, 0);
  if (top === null || top[0] !== 4 || top[2] !== 1) return null;
  const op = OPS.find(([, tag]) => tag.every((b, i) => bytes[1 + i] === b))?.[0];
  if (op === undefined || (op === 'del' ? top[1] !== 2 : top[1] !== 3 && top[1] !== 4)) return null;
  const k = readHead(bytes, 5);
  if (k === null || k[0] !== 3) return null;
  const keyStart = 5 + k[2];
  const key = utf8.decode(bytes.subarray(keyStart, keyStart + k[1]));
  if (key.length > MAX_KEY_LENGTH) return null;
  const valueStart = keyStart + k[1];
  if (op === 'del') return { op, key, ttl: undefined, valueStart, valueEnd: valueStart };
  const valueEnd = skipScanned(bytes, valueStart);
  if (top[1] === 3) return { op, key, ttl: undefined, valueStart, valueEnd };
  const ttl = readHead(bytes, valueEnd);
  if (ttl === null || ttl[0] !== 0 || ttl[1] < 1 || ttl[1] > MAX_TTL_MS) return null;
  return { op, key, ttl: ttl[1], valueStart, valueEnd };
}

/** Where the value starts in the bytes of a body known to be ['set', key, value] (no ttl): after
 *  the op (4 bytes) and the key; it runs to the end. */
export function plainValueStart(bytes: Uint8Array): number {
  const k = readHead(bytes, 5)!;
  return 5 + k[2] + k[1];
}

/** When the write expires (µs): its version + ttl; Infinity without a ttl. */
export const expiryOf = (update: Update, body: Body): number => (body.ttl === undefined ? Infinity : update.version + body.ttl * 1000);

/** The body's value, decoded; undefined for a delete. */
export const valueOfBody = (update: Update, body: Body): Value | undefined =>
  body.op === 'del' ? undefined : decodeScanned(update.bodyBytes.subarray(body.valueStart, body.valueEnd));
