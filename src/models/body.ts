// A Model body read from its signed bytes: ['set', key, value, ttl?] or ['del', key]. The value
// is located, never decoded, so a peer's value is materialised only when someone reads it.
import { MAX_TTL_MS } from '../limits.ts';
import { decodeScanned, readHead, skipScanned, type Value } from '../envelope/cbor.ts';
import { bodyMemo, type Update } from '../envelope/update.ts';

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

const utf8 = new TextDecoder('utf-8', { ignoreBOM: true }); // a leading U+FEFF is part of the key

/** Reads the body's shape from its CBOR bytes (already accepted by the guard) without decoding
 *  the value; null if the shape is wrong. The result is shared (see {@link bodyOf}): read only. */
export function readBody(bytes: Uint8Array): Readonly<Body> | null {
  // A 2-, 3- or 4-element array (one-byte head), then the text "set" or "del" (0x63 + 3 bytes).
  const top = bytes[0]!;
  if (bytes.length < 6 || top < 0x82 || top > 0x84 || bytes[1] !== 0x63 || bytes[3] !== 0x65) return null;
  let op: 'set' | 'del';
  if (bytes[2] === 0x73 && bytes[4] === 0x74 && top !== 0x82) op = 'set';
  else if (bytes[2] === 0x64 && bytes[4] === 0x6c && top === 0x82) op = 'del';
  else return null;
  const k = readHead(bytes, 5);
  if (k === null || k[0] !== 3) return null;
  const keyStart = 5 + k[2];
  const key = utf8.decode(bytes.subarray(keyStart, keyStart + k[1]));
  if (key.length > MAX_KEY_LENGTH) return null;
  const valueStart = keyStart + k[1];
  if (op === 'del') return { op, key, ttl: undefined, valueStart, valueEnd: valueStart };
  const valueEnd = skipScanned(bytes, valueStart);
  if (top === 0x83) return { op, key, ttl: undefined, valueStart, valueEnd };
  const ttl = readHead(bytes, valueEnd);
  if (ttl === null || ttl[0] !== 0 || ttl[1] < 1 || ttl[1] > MAX_TTL_MS) return null;
  return { op, key, ttl: ttl[1], valueStart, valueEnd };
}

/** {@link readBody} of an update's body bytes, read once while the update is fresh (see bodyMemo):
 *  the pipeline asks for it at the policy check, at apply and at announce. */
export function bodyOf(update: Update): Readonly<Body> | null {
  return bodyMemo(update, readBody);
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
