// Node ids: base32(sha256(publicKey)), RFC 4648 alphabet, lower case, no padding, 52
// characters. The id is derived, never claimed, so nobody can take another node's id.
import { createHash } from 'node:crypto';
import { assertBytes } from '../util/bytes.ts';
import { KEY_CACHE_SIZE } from '../limits.ts';

/** A node id: 52 lower-case base32 characters naming sha256(publicKey). */
export type NodeId = string;

/** Length of every node id. */
export const NODE_ID_LENGTH = 52;
const ALPHABET = 'abcdefghijklmnopqrstuvwxyz234567';
const NODE_ID_PATTERN = /^[a-z2-7]{51}[aq]$/; // 256 bits = 51 chars + 1 bit: the last char is that bit then 4 zero bits

/** RFC 4648 section 6 base32, lower case, without padding. */
export function base32(bytes: Uint8Array): string {
  let out = '';
  let buffer = 0;
  let bits = 0;
  for (const byte of bytes) {
    buffer = ((buffer << 8) | byte) & 0xffff;
    bits += 8;
    while (bits >= 5) {
      out += ALPHABET[(buffer >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += ALPHABET[(buffer << (5 - bits)) & 31];
  return out;
}

const idCache = new Map<string, NodeId>();

/**
 * The node id of an Ed25519 public key.
 * @throws TypeError / RangeError unless `publicKey` is 32 bytes.
 */
export function nodeIdOf(publicKey: Uint8Array): NodeId {
  assertBytes(publicKey, 'publicKey', 32);
  const cacheKey = Buffer.from(publicKey.buffer, publicKey.byteOffset, 32).toString('latin1');
  let id = idCache.get(cacheKey);
  if (id === undefined) {
    id = base32(createHash('sha256').update(publicKey).digest());
    if (idCache.size >= KEY_CACHE_SIZE) idCache.delete(idCache.keys().next().value!);
    idCache.set(cacheKey, id);
  }
  return id;
}

/** True when `value` has the exact form of a node id (52 chars, canonical last character). */
export function isNodeId(value: unknown): value is NodeId {
  return typeof value === 'string' && NODE_ID_PATTERN.test(value);
}

/** A short prefix of an id, for people to read; never used to decide trust. */
export const shortId = (id: NodeId): string => id.slice(0, 8);
