// Builders for hostile inputs (corpus.ts lists them): the identities involved, framing, hellos
// and envelopes assembled byte by byte, validly signed bodies the decode budget refuses.
import { createHash } from 'node:crypto';
import { Identity } from '../../src/index.ts';
import { cborHead, encodeCbor } from '../../src/envelope/cbor.ts';
import { signUpdate } from '../../src/envelope/update.ts';
import { DOMAIN, domainBytes } from '../../src/identity/signature.ts';
import { base32 } from '../../src/identity/node-id.ts';
import { MAX_UPDATE_BYTES } from '../../src/limits.ts';
import { encodeHello, MSG_HELLO, MSG_UPDATES, PROTOCOL_VERSION } from '../../src/replication/messages.ts';
import { concatBytes, utf8 } from '../../src/util/bytes.ts';
import { NONCE_BYTES } from '../../src/reconcile/index.ts';

// ---- who is who ---------------------------------------------------------------------------

/** The node under attack. */
export const self = Identity.fromSecretKey(new Uint8Array(32).fill(0x11));
/** The hostile peer on the other end of the stream (its hello names it). */
export const peer = Identity.fromSecretKey(new Uint8Array(32).fill(0x5e));
/** A legitimate writer: its signatures are valid. */
export const writer = Identity.fromSecretKey(new Uint8Array(32).fill(0x77));
/** The source forged updates claim to come from. */
export const victim = Identity.fromSecretKey(new Uint8Array(32).fill(0x3c));
/** Who actually signs forged updates. */
export const forger = Identity.fromSecretKey(new Uint8Array(32).fill(0xf0));

/** The model's clock in tests (µs): signed versions lie below it, so none is `future`. */
export const NOW = 1_700_000_000_000_000;
export const DATASET = 'default';

// ---- builders -------------------------------------------------------------------------------

/** CBOR text string. */
export const text = (s: string): Uint8Array => {
  const b = utf8(s);
  return concatBytes(cborHead(3, b.length), b);
};

/** A 4-byte big-endian length prefix and the bytes: one frame on the wire. */
export function framed(message: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(4 + message.length);
  out.writeUInt32BE(message.length, 0);
  out.set(message, 4);
  return out;
}

/** A valid hello from `peer` (empty digest, no meta). */
export const validHello = (id = peer.id): Buffer =>
  encodeHello({ dataset: DATASET, id, digest: new Map(), meta: null, readable: true, writable: true });

/** A hello message (no prefix) from `peer` whose meta is the given raw CBOR bytes. */
export function helloWithMeta(meta: Uint8Array, fields: { dataset?: Uint8Array; digest?: Uint8Array } = {}): Uint8Array {
  // [0, version, dataset, id, digest, meta, flags, maxUpdateBytes, nonce]
  return concatBytes(cborHead(4, 9), cborHead(0, MSG_HELLO), cborHead(0, PROTOCOL_VERSION), fields.dataset ?? text(DATASET),
    text(peer.id), fields.digest ?? cborHead(4, 0), meta, cborHead(0, 3), cborHead(0, MAX_UPDATE_BYTES), cborHead(2, NONCE_BYTES), new Uint8Array(NONCE_BYTES));
}

/** An updates message (no prefix) holding the given envelopes as byte strings. */
export function updatesMessage(envelopes: Uint8Array[]): Uint8Array {
  const parts: Uint8Array[] = [cborHead(4, 2), cborHead(0, MSG_UPDATES), cborHead(4, envelopes.length)];
  for (const e of envelopes) parts.push(cborHead(2, e.length), e);
  return concatBytes(...parts);
}

/** cbor-x refuses arrays of more than 2^20 items (CBOR_MAX_ITEMS) when it decodes, so the old
 *  decoder's worst case came in chunks just under that: [[item x 1048575], [item x ...], ...]. */
const CHUNK_ITEMS = 2 ** 20 - 1;

/** About `bytes` bytes of single-byte items (0x40: an empty byte string, 184 heap bytes each
 *  once decoded) as an array of arrays of at most CHUNK_ITEMS items. */
export function tinyItems(bytes: number, item = 0x40): Uint8Array {
  const chunks = Math.ceil(bytes / (CHUNK_ITEMS + 5));
  const parts: Uint8Array[] = [cborHead(4, chunks)];
  let left = bytes - 1 - 5 * chunks;
  for (let i = 0; i < chunks; i++) {
    const n = Math.min(CHUNK_ITEMS, left);
    parts.push(repeated(item, n));
    left -= n;
  }
  return concatBytes(...parts);
}

/** [type, ...fields, list]: a typed message around `list`. */
export const typed = (type: number, list: Uint8Array, ...fields: Uint8Array[]): Uint8Array =>
  concatBytes(cborHead(4, 2 + fields.length), cborHead(0, type), ...fields, list);

/** A payload [1, dataset, publicKey, version, body] around raw body bytes. */
export function rawPayload(publicKey: Uint8Array, version: number, body: Uint8Array, dataset = DATASET): Uint8Array {
  const name = utf8(dataset);
  return concatBytes(Uint8Array.of(0x85, 0x01), cborHead(3, name.length), name, cborHead(2, 32), publicKey, cborHead(0, version), body);
}

/** An envelope [payload, signature] around `payload`, signed for real by `signer` (signUpdate
 *  would refuse what the decode budget refuses, so hostile-but-signed bodies are built by hand). */
export function envelopeOf(payload: Uint8Array, signer: Identity): Uint8Array {
  const signature = signer.sign(domainBytes(DOMAIN.update, payload));
  return concatBytes(Uint8Array.of(0x82), cborHead(2, payload.length), payload, Uint8Array.of(0x58, 0x40), signature);
}

/** ['set', key, value] with the value as raw CBOR bytes. */
export const setBody = (key: string, value: Uint8Array): Uint8Array => concatBytes(Uint8Array.of(0x83), text('set'), text(key), value);

/** An array of `n` copies of one single-byte item (0xa0 empty map, 0x80 empty array, 0x40 empty byte string). */
export function repeated(item: number, n: number): Uint8Array {
  const head = cborHead(4, n);
  const out = new Uint8Array(head.length + n).fill(item);
  out.set(head, 0);
  return out;
}

/** A body of about `bytes` bytes: ['set', key, [item x n]], signed validly by `signer`. */
export function signedRepeated(item: number, bytes: number, key: string, version: number, signer: Identity = writer): Uint8Array {
  const overhead = setBody(key, new Uint8Array(0)).length + 5;
  return envelopeOf(rawPayload(signer.publicKey, version, setBody(key, repeated(item, bytes - overhead))), signer);
}

/** `depth` nested arrays around an empty one: [[[...[]...]]]. */
export function nested(depth: number): Uint8Array {
  const out = new Uint8Array(depth + 1).fill(0x81);
  out[depth] = 0x80;
  return out;
}

/** UTF-8-like bytes of a lone surrogate (WTF-8): what a careless encoder writes for '\uD800'. */
export const LONE_HIGH = [0xed, 0xa0, 0x80];
export const LONE_LOW = [0xed, 0xb0, 0x80];
export const textBytes = (bytes: number[]): Uint8Array => concatBytes(cborHead(3, bytes.length), Uint8Array.from(bytes));

/** A hello naming `n` sources, each [id, version 1, 8-byte prefix] (65 bytes a source). */
export function helloWithDigest(n: number): Uint8Array {
  const entry = 1 + 2 + 52 + 1 + 1 + 8;
  const head = cborHead(4, n);
  const digest = new Uint8Array(head.length + n * entry);
  digest.set(head, 0);
  const key = new Uint8Array(32);
  const view = new DataView(key.buffer);
  let at = head.length;
  for (let i = 0; i < n; i++) {
    view.setUint32(0, i);
    digest[at] = 0x83;
    digest.set(text(base32(key)), at + 1);
    digest[at + 55] = 0x01;
    digest[at + 56] = 0x48;
    view.setUint32(28, i);
    digest.set(key.subarray(24), at + 57);
    at += entry;
  }
  return helloWithMeta(Uint8Array.of(0xf6), { digest });
}

/** `count` updates that claim `victim` as their source, signed by `forger`, each with a body
 *  of about `bodyBytes` of ordinary data, framed `perMessage` to an updates message. */
export function forgedWire(count: number, bodyBytes: number, perMessage: number): Buffer {
  const frames: Buffer[] = [];
  let batch: Uint8Array[] = [];
  const filler = 'x'.repeat(bodyBytes - 40);
  for (let i = 0; i < count; i++) {
    const body = encodeCbor(['set', `k${i}`, filler]);
    batch.push(envelopeOf(rawPayload(victim.publicKey, NOW - 1_000_000 + i, body), forger));
    if (batch.length === perMessage || i === count - 1) {
      frames.push(framed(updatesMessage(batch)));
      batch = [];
    }
  }
  return Buffer.concat(frames);
}

/** Deterministic garbage. */
export function garbage(seed: number, n: number): Uint8Array {
  // SHA-256 in counter mode: fast for megabytes, same bytes on every run.
  const out = new Uint8Array(n);
  for (let i = 0, block = 0; i < n; i += 32, block++) {
    const h = createHash('sha256').update(`${seed}:${block}`).digest();
    out.set(h.subarray(0, Math.min(32, n - i)), i);
  }
  return out;
}

/** An updates message of exactly `total` bytes holding garbage envelopes of `size` bytes
 *  (the last one takes what is left, so it may be a little larger). */
export function garbageEnvelopes(total: number, size: number): Uint8Array {
  const per = cborHead(2, size).length + size;
  const guess = Math.floor((total - 8) / per);
  const head = concatBytes(cborHead(4, 2), cborHead(0, MSG_UPDATES), cborHead(4, guess));
  const lastSize = total - head.length - (guess - 1) * per - cborHead(2, size).length;
  const out = new Uint8Array(total);
  out.set(head, 0);
  const pool = garbage(7, 64 * per);
  let at = head.length;
  for (let i = 0; i < guess; i++) {
    const n = i === guess - 1 ? lastSize : size;
    const h = cborHead(2, n);
    out.set(h, at);
    at += h.length;
    out.set(pool.subarray((i % 64) * size, (i % 64) * size + Math.min(n, size)), at);
    at += n;
  }
  if (at !== total) throw new Error(`garbageEnvelopes: built ${at} bytes, wanted ${total}`);
  return out;
}

/** A valid signed update by `writer` with a body of exactly `bodyBytes` (a text value padded to fit). */
export function signedOfBodySize(bodyBytes: number, version: number, key = 'k'): Uint8Array {
  const prefix = setBody(key, new Uint8Array(0)).length;
  // value: text head (1, 2, 3 or 5 bytes) + characters; pick the head width that makes it exact.
  for (const head of [1, 2, 3, 5]) {
    const chars = bodyBytes - prefix - head;
    if (chars >= 0 && cborHead(3, chars).length === head) {
      const u = signUpdate(writer, { dataset: DATASET, version, body: ['set', key, 'v'.repeat(chars)] }, { maxUpdateBytes: Math.max(MAX_UPDATE_BYTES, bodyBytes) });
      if (u.bodyBytes.length !== bodyBytes) throw new Error(`signedOfBodySize: body of ${u.bodyBytes.length} bytes`);
      return u.bytes;
    }
  }
  throw new Error(`signedOfBodySize: no text fits ${bodyBytes} bytes`);
}

/** A frame whose length prefix claims `claimed` bytes, followed by `present` bytes of garbage. */
export const claimedFrame = (claimed: number, present: number): Uint8Array => {
  const out = new Uint8Array(4 + present);
  new DataView(out.buffer).setUint32(0, claimed);
  out.set(garbage(3, present), 4);
  return out;
};
