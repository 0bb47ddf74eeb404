// Noise hash functions (spec section 4.3) with their HMAC and the spec's HKDF: SHA-256 on the wire
// (libsodium where it loads, else node:crypto: the same bytes), BLAKE2b-512 for the vectors only.
import { createHash, createHmac } from 'node:crypto';
import { sodium, type SodiumNative } from '../util/sodium.ts';

/** A Noise hash function (spec section 4.3) with its HMAC. */
export interface NoiseHash {
  /** The name used in protocol names: `SHA256` or `BLAKE2b`. */
  readonly name: 'SHA256' | 'BLAKE2b';
  /** HASHLEN: 32 or 64. */
  readonly hashLen: 32 | 64;
  /** HASH(parts[0] || parts[1] || ...): a new array of HASHLEN bytes. */
  hash(...parts: Uint8Array[]): Uint8Array;
  /** HMAC-HASH(key, parts[0] || ...), with the hash's own block length (RFC 2104): a new array of HASHLEN bytes. */
  hmac(key: Uint8Array, ...parts: Uint8Array[]): Uint8Array;
}

function nodeHash(name: 'SHA256' | 'BLAKE2b', algorithm: string, hashLen: 32 | 64): NoiseHash {
  return Object.freeze({
    name,
    hashLen,
    hash(...parts: Uint8Array[]): Uint8Array {
      const h = createHash(algorithm);
      for (const p of parts) h.update(p);
      return h.digest();
    },
    hmac(key: Uint8Array, ...parts: Uint8Array[]): Uint8Array {
      const h = createHmac(algorithm, key);
      for (const p of parts) h.update(p);
      return h.digest();
    },
  });
}

/** SHA-256 by node:crypto (OpenSSL): the fallback, and the reference the libsodium form is tested against. */
export const NODE_SHA256: NoiseHash = nodeHash('SHA256', 'sha256', 32);

/** SHA-256's block length (RFC 2104's B). */
const BLOCK = 64;
/**
 * Inputs up to this many bytes are hashed by libsodium from a scratch buffer the parts are joined
 * into; longer ones go to node:crypto (same bytes), so the scratch stays small. A handshake hashes
 * at most about 200 bytes at once.
 */
export const SODIUM_HASH_MAX_BYTES = 4096;

/** K0 ^ ipad and K0 ^ opad for an all-zero K0 (RFC 2104): the key's bytes are XORed in. */
const IPAD = new Uint8Array(BLOCK).fill(0x36);
const OPAD = new Uint8Array(BLOCK).fill(0x5c);

type Sha256Binding = SodiumNative & { crypto_hash_sha256?(out: Uint8Array, message: Uint8Array): void };

/**
 * SHA-256 and HMAC-SHA256 (RFC 2104) built on libsodium's one-shot crypto_hash_sha256: one native
 * call per hash, two per HMAC (inner, outer), where node:crypto builds a Hash or Hmac object per
 * call. Measured here (/tmp scratch runs): HMAC of a 32-byte key over 33 bytes 1.3 µs vs 2.1 µs
 * (createHmac), hash of 65 bytes 0.6 µs vs 1.5 µs (createHash). libsodium writes into long-lived
 * arrays and the result is copied out (`slice`): a fresh 32-byte array handed to native code
 * would first be moved off V8's heap (~0.3 µs a call). Key-derived bytes and the message (DH
 * outputs) are zeroed in the scratch arrays after each HMAC.
 */
function sodiumSha256(hashInto: (out: Uint8Array, message: Uint8Array) => void): NoiseHash {
  // Plain Uint8Arrays, not Buffers: their fill and subarray are V8's own, several times cheaper.
  const scratch = new Uint8Array(BLOCK + SODIUM_HASH_MAX_BYTES);
  /** (K0 ^ opad) || inner digest: the outer hash's whole input. */
  const outer = new Uint8Array(BLOCK + 32);
  const innerDigest = outer.subarray(BLOCK);
  const digest = new Uint8Array(32);
  /** Joins `parts` into scratch from `at`; the end offset, or -1 when they do not fit. */
  const join = (parts: readonly Uint8Array[], at: number): number => {
    for (const p of parts) {
      if (at + p.length > scratch.length) return -1;
      scratch.set(p, at);
      at += p.length;
    }
    return at;
  };
  const sha256 = (...parts: Uint8Array[]): Uint8Array => {
    const end = join(parts, 0);
    if (end < 0) return NODE_SHA256.hash(...parts);
    hashInto(digest, scratch.subarray(0, end));
    return digest.slice();
  };
  return Object.freeze({
    name: 'SHA256' as const,
    hashLen: 32 as const,
    hash: sha256,
    hmac(key: Uint8Array, ...parts: Uint8Array[]): Uint8Array {
      const k = key.length > BLOCK ? sha256(key) : key; // RFC 2104: a longer key is hashed first
      scratch.set(IPAD);
      outer.set(OPAD);
      for (let i = 0; i < k.length; i++) {
        scratch[i]! ^= k[i]!;
        outer[i]! ^= k[i]!;
      }
      const end = join(parts, BLOCK);
      if (end < 0) {
        scratch.fill(0, 0, BLOCK);
        outer.fill(0, 0, BLOCK);
        return NODE_SHA256.hmac(key, ...parts);
      }
      hashInto(innerDigest, scratch.subarray(0, end));
      hashInto(digest, outer);
      const out = digest.slice();
      scratch.fill(0, 0, end);
      outer.fill(0);
      digest.fill(0);
      return out;
    },
  });
}

const binding = sodium() as Sha256Binding | null;
const hashInto = typeof binding?.crypto_hash_sha256 === 'function' ? binding.crypto_hash_sha256.bind(binding) : null;

/** SHA-256 by libsodium, or null when sodium-native is absent, disabled (SIGNET_NO_SODIUM=1) or lacks it. */
export const SODIUM_SHA256: NoiseHash | null = hashInto === null ? null : sodiumSha256(hashInto);

/** SHA-256: the hash signet uses on the wire (libsodium where it loads, else node:crypto; same bytes). */
export const SHA256: NoiseHash = SODIUM_SHA256 ?? NODE_SHA256;
/** BLAKE2b-512 (node:crypto `blake2b512`, block length 128): for the published vectors only. */
export const BLAKE2B: NoiseHash = nodeHash('BLAKE2b', 'blake2b512', 64);

/** The hash named in a protocol name. @throws RangeError for any other name. */
export function hashByName(name: string): NoiseHash {
  if (name === 'SHA256') return SHA256;
  if (name === 'BLAKE2b') return BLAKE2B;
  throw new RangeError(`"hash" expected SHA256 or BLAKE2b, got ${name}`);
}

const BYTE_1 = Uint8Array.of(1);
const BYTE_2 = Uint8Array.of(2);
const BYTE_3 = Uint8Array.of(3);

/**
 * HKDF(chaining_key, input_key_material, num_outputs) exactly as Noise spec section 4.3
 * defines it (HMAC-HASH chain, not RFC 5869's salt/info form): 2 or 3 outputs of HASHLEN.
 * Costs num_outputs + 1 HMAC calls.
 */
export function hkdf(hash: NoiseHash, chainingKey: Uint8Array, ikm: Uint8Array, outputs: 2): [Uint8Array, Uint8Array];
export function hkdf(hash: NoiseHash, chainingKey: Uint8Array, ikm: Uint8Array, outputs: 3): [Uint8Array, Uint8Array, Uint8Array];
export function hkdf(hash: NoiseHash, chainingKey: Uint8Array, ikm: Uint8Array, outputs: 2 | 3): Uint8Array[] {
  const tempKey = hash.hmac(chainingKey, ikm);
  const out1 = hash.hmac(tempKey, BYTE_1);
  const out2 = hash.hmac(tempKey, out1, BYTE_2);
  const out = outputs === 2 ? [out1, out2] : [out1, out2, hash.hmac(tempKey, out2, BYTE_3)];
  tempKey.fill(0); // secret, and used by nothing else
  return out;
}
