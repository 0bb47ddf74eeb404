// Noise primitives (spec section 4): X25519 DH and ChaCha20-Poly1305 with the Noise nonce layout
// (the hash functions with HMAC/HKDF are in hashes.ts, re-exported here). Two interchangeable sets give
// the same bytes: libsodium (`sodium-native`, optional; the default where it loads) and node:crypto
// (the fallback, always present). Measured on this machine (bench/channel.ts, /tmp scratch runs):
// X25519 37 µs (sodium) vs 40 µs (node, JWK key import + diffieHellman; the DER import it replaced
// cost 126 µs), key generation 19 vs 42 µs, ChaCha20-Poly1305 seal+open of 300 B 2.2 vs 12.5 µs
// (node builds a cipher object per frame), but of 64 KiB 97 vs 79 µs (see SODIUM_AEAD_MAX_BYTES).
import {
  createCipheriv,
  createDecipheriv,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  KeyObject,
} from 'node:crypto';
import { assertBytes } from '../util/bytes.ts';
import { sodium, type SodiumNative } from '../util/sodium.ts';

export { BLAKE2B, hashByName, hkdf, NODE_SHA256, SHA256, SODIUM_SHA256, type NoiseHash } from './hashes.ts';

/**
 * A copy of `bytes` in a new plain Uint8Array. Not `bytes.slice()`: on a Buffer that is a view of
 * the same memory. Not `Uint8Array.from(bytes)`: that walks the iterator, several times slower.
 */
export function copyBytes(bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(bytes.length);
  out.set(bytes);
  return out;
}

/** DHLEN for Curve25519 (spec 12.1). */
export const DHLEN = 32;
/** Length of a ChaCha20-Poly1305 key. */
export const KEYLEN = 32;
/** Length of the Poly1305 tag appended to every ciphertext. */
export const TAGLEN = 16;
/** Length of the ChaChaPoly nonce (spec 12.3). */
export const NONCELEN = 12;

const PKCS8_X25519 = Buffer.from('302e020100300506032b656e04220420', 'hex');

/**
 * An X25519 key pair: the raw 32-byte public key and the private key, held the way the primitive
 * set that made it works with it (node:crypto: an opaque KeyObject; libsodium: 32 raw bytes).
 * Either set accepts either form (converting, slowly, the one it did not make).
 */
export interface KeyPair {
  readonly publicKey: Uint8Array;
  readonly privateKey: KeyObject | Uint8Array;
}

/**
 * One set of DH and cipher primitives. Every set gives the same bytes and the same verdicts for
 * the same inputs (test/channel/backends.test.ts proves it on the vectors and on edge cases).
 */
export interface NoisePrimitives {
  /** `sodium` (libsodium through sodium-native) or `node` (node:crypto, OpenSSL). */
  readonly name: 'sodium' | 'node';
  /** GENERATE_KEYPAIR(): a fresh X25519 key pair from the CSPRNG. Never cached, never reused. */
  generateKeyPair(): KeyPair;
  /**
   * The key pair of a raw 32-byte private key (not pre-clamped: X25519 clamps). Test vectors and
   * the test-only key hooks use it; production keys come from {@link NoisePrimitives.generateKeyPair}.
   * @throws TypeError / RangeError unless `privateKey` is 32 bytes.
   */
  keyPairFromPrivate(privateKey: Uint8Array): KeyPair;
  /**
   * DH(key pair, public key): the X25519 shared secret, or null when the public key is refused (a
   * result of all zeros, from a small-order point: spec 12.1 allows rejecting it; both sets
   * refuse exactly those) or is not 32 bytes.
   */
  dh(keyPair: KeyPair, publicKey: Uint8Array): Uint8Array | null;
  /**
   * ENCRYPT(k, nonce, ad, parts joined): writes ciphertext || tag into `out` from `at` on
   * (plaintext length + 16 bytes, which the caller has made room for); returns that length.
   */
  encryptInto(key: Uint8Array, nonce: Uint8Array, ad: Uint8Array, parts: readonly Uint8Array[], out: Uint8Array, at: number): number;
  /**
   * DECRYPT(k, nonce, ad, parts joined): the plaintext as parts (views of buffers of its own,
   * never of the input), or null when authentication fails or the input is shorter than a tag.
   * No byte of an unauthenticated plaintext is ever returned.
   */
  decryptParts(key: Uint8Array, nonce: Uint8Array, ad: Uint8Array, parts: readonly Uint8Array[]): Uint8Array[] | null;
}

function totalLength(parts: readonly Uint8Array[]): number {
  let length = 0;
  for (const p of parts) length += p.length;
  return length;
}

// ---- node:crypto ---------------------------------------------------------------------------

/** A public KeyObject from a raw X25519 key. JWK import: about 7 µs, where DER (SPKI) costs ~80 µs. */
function nodePublicKey(publicKey: Uint8Array): KeyObject {
  const x = Buffer.from(publicKey.buffer, publicKey.byteOffset, publicKey.length).toString('base64url');
  return createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x }, format: 'jwk' });
}

function rawPublicKey(privateKey: KeyObject): Uint8Array {
  return new Uint8Array(Buffer.from(createPublicKey(privateKey).export({ format: 'jwk' }).x!, 'base64url'));
}

function nodePrivateKey(privateKey: KeyObject | Uint8Array): KeyObject {
  if (privateKey instanceof KeyObject) return privateKey;
  return createPrivateKey({ key: Buffer.concat([PKCS8_X25519, privateKey]), format: 'der', type: 'pkcs8' });
}

/** The node:crypto set (OpenSSL): the fallback when libsodium is absent, and the reference. */
export const NODE_PRIMITIVES: NoisePrimitives = Object.freeze({
  name: 'node' as const,
  generateKeyPair(): KeyPair {
    const { privateKey } = generateKeyPairSync('x25519');
    return { privateKey, publicKey: rawPublicKey(privateKey) };
  },
  keyPairFromPrivate(privateKey: Uint8Array): KeyPair {
    assertBytes(privateKey, 'privateKey', DHLEN);
    const key = nodePrivateKey(privateKey);
    return { privateKey: key, publicKey: rawPublicKey(key) };
  },
  dh(keyPair: KeyPair, publicKey: Uint8Array): Uint8Array | null {
    if (publicKey.length !== DHLEN) return null;
    try {
      return diffieHellman({ privateKey: nodePrivateKey(keyPair.privateKey), publicKey: nodePublicKey(publicKey) });
    } catch {
      return null; // OpenSSL refuses an all-zero shared secret
    }
  },
  encryptInto(key: Uint8Array, nonce: Uint8Array, ad: Uint8Array, parts: readonly Uint8Array[], out: Uint8Array, at: number): number {
    const cipher = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: TAGLEN });
    cipher.setAAD(ad, { plaintextLength: totalLength(parts) });
    const start = at;
    for (const p of parts) {
      const c = cipher.update(p);
      out.set(c, at);
      at += c.length;
    }
    cipher.final();
    out.set(cipher.getAuthTag(), at);
    return at + TAGLEN - start;
  },
  decryptParts(key: Uint8Array, nonce: Uint8Array, ad: Uint8Array, parts: readonly Uint8Array[]): Uint8Array[] | null {
    const total = totalLength(parts);
    if (total < TAGLEN) return null;
    const split = total - TAGLEN;
    const tag = Buffer.allocUnsafe(TAGLEN);
    const decipher = createDecipheriv('chacha20-poly1305', key, nonce, { authTagLength: TAGLEN });
    decipher.setAAD(ad, { plaintextLength: split });
    const out: Buffer[] = [];
    let at = 0;
    for (const p of parts) {
      const ctEnd = Math.min(p.length, Math.max(0, split - at));
      if (ctEnd > 0) out.push(decipher.update(p.subarray(0, ctEnd)));
      for (let i = ctEnd; i < p.length; i++) tag[at + i - split] = p[i]!;
      at += p.length;
    }
    decipher.setAuthTag(tag);
    try {
      decipher.final();
    } catch {
      return null;
    }
    return out;
  },
});

// ---- libsodium -----------------------------------------------------------------------------

/**
 * Plaintexts of this many bytes or more are sealed and opened by node:crypto even in the libsodium
 * set: one call to libsodium wins by its lower fixed cost (300 B: 2.2 vs 12.5 µs seal+open), but
 * OpenSSL's ChaCha20 (AVX-512 on this machine) wins on long inputs (64 KiB: 97 vs 79 µs); the
 * measured crossover lies between 24 and 32 KiB. Same bytes either way.
 */
export const SODIUM_AEAD_MAX_BYTES = 32 * 1024;

function sodiumPrimitives(na: SodiumNative): NoisePrimitives {
  const rawPrivate = (privateKey: KeyObject | Uint8Array): Uint8Array =>
    privateKey instanceof KeyObject ? Buffer.from(privateKey.export({ format: 'jwk' }).d!, 'base64url') : privateKey;
  const fromPrivate = (privateKey: Uint8Array): KeyPair => {
    const publicKey = Buffer.allocUnsafeSlow(DHLEN);
    na.crypto_scalarmult_base(publicKey, privateKey);
    return { privateKey, publicKey };
  };
  return Object.freeze({
    name: 'sodium' as const,
    generateKeyPair(): KeyPair {
      const privateKey = Buffer.allocUnsafeSlow(DHLEN);
      na.randombytes_buf(privateKey);
      return fromPrivate(privateKey);
    },
    keyPairFromPrivate(privateKey: Uint8Array): KeyPair {
      assertBytes(privateKey, 'privateKey', DHLEN);
      return fromPrivate(Buffer.from(privateKey)); // a copy: the caller's bytes may be wiped or reused
    },
    dh(keyPair: KeyPair, publicKey: Uint8Array): Uint8Array | null {
      if (publicKey.length !== DHLEN) return null;
      const shared = Buffer.allocUnsafeSlow(DHLEN);
      try {
        // libsodium returns -1 (sodium-native throws) for a small-order point or an all-zero result
        na.crypto_scalarmult(shared, rawPrivate(keyPair.privateKey), publicKey);
      } catch {
        return null;
      }
      return shared;
    },
    encryptInto(key: Uint8Array, nonce: Uint8Array, ad: Uint8Array, parts: readonly Uint8Array[], out: Uint8Array, at: number): number {
      if (totalLength(parts) >= SODIUM_AEAD_MAX_BYTES) return NODE_PRIMITIVES.encryptInto(key, nonce, ad, parts, out, at);
      // Joins the plaintext where the ciphertext goes, then encrypts in place (libsodium allows c = m).
      let end = at;
      for (const p of parts) {
        out.set(p, end);
        end += p.length;
      }
      const length = end - at;
      const buffer = out.buffer;
      const m = new Uint8Array(buffer, out.byteOffset + at, length);
      const c = new Uint8Array(buffer, out.byteOffset + at, length + TAGLEN);
      na.crypto_aead_chacha20poly1305_ietf_encrypt(c, m, ad, null, nonce, key);
      return length + TAGLEN;
    },
    decryptParts(key: Uint8Array, nonce: Uint8Array, ad: Uint8Array, parts: readonly Uint8Array[]): Uint8Array[] | null {
      if (totalLength(parts) - TAGLEN >= SODIUM_AEAD_MAX_BYTES) return NODE_PRIMITIVES.decryptParts(key, nonce, ad, parts);
      let c: Uint8Array;
      let m: Uint8Array;
      if (parts.length === 1) {
        c = parts[0]!;
        if (c.length < TAGLEN) return null;
        m = Buffer.allocUnsafeSlow(c.length - TAGLEN); // the received bytes are never written to
      } else {
        const total = totalLength(parts);
        if (total < TAGLEN) return null;
        c = Buffer.allocUnsafeSlow(total); // one copy of a frame that spanned chunks...
        let at = 0;
        for (const p of parts) {
          c.set(p, at);
          at += p.length;
        }
        m = c.subarray(0, total - TAGLEN); // ...decrypted in place (libsodium checks the tag first)
      }
      try {
        na.crypto_aead_chacha20poly1305_ietf_decrypt(m, null, c, ad, nonce, key);
      } catch {
        return null;
      }
      return [m];
    },
  });
}

const loaded = sodium();
/** The libsodium set, or null when sodium-native is absent, broken or disabled (SIGNET_NO_SODIUM=1). */
export const SODIUM_PRIMITIVES: NoisePrimitives | null = loaded === null ? null : sodiumPrimitives(loaded);

/** The set the channel uses unless a test injects another: libsodium where it loads, else node:crypto. */
export const DEFAULT_PRIMITIVES: NoisePrimitives = SODIUM_PRIMITIVES ?? NODE_PRIMITIVES;

/** GENERATE_KEYPAIR() with the default set. */
export function generateKeyPair(): KeyPair {
  return DEFAULT_PRIMITIVES.generateKeyPair();
}

/**
 * The key pair of a raw private key, with the default set. Test vectors and test-only hooks only.
 * @throws TypeError / RangeError unless `privateKey` is 32 bytes.
 */
export function keyPairFromPrivate(privateKey: Uint8Array): KeyPair {
  return DEFAULT_PRIMITIVES.keyPairFromPrivate(privateKey);
}

/** DH() with the default set: the shared secret, or null when the public key is refused. */
export function dh(keyPair: KeyPair, publicKey: Uint8Array): Uint8Array | null {
  return DEFAULT_PRIMITIVES.dh(keyPair, publicKey);
}

// ---- ChaChaPoly with the default set (one-shot forms) ---------------------------------------

/** The 12-byte ChaChaPoly nonce: 4 zero bytes || 64-bit little-endian counter (spec 12.3). */
export function nonceBytes(n: bigint): Buffer {
  const nonce = Buffer.alloc(NONCELEN);
  nonce.writeBigUInt64LE(n, 4);
  return nonce;
}

/**
 * ENCRYPT(k, n, ad, plaintext) over several plaintext parts, with `primitives` (default set
 * unless given): ciphertext || tag in one buffer.
 */
export function encryptParts(
  key: Uint8Array, n: bigint, ad: Uint8Array, parts: readonly Uint8Array[], primitives: NoisePrimitives = DEFAULT_PRIMITIVES,
): Buffer {
  const out = Buffer.allocUnsafe(totalLength(parts) + TAGLEN);
  primitives.encryptInto(key, nonceBytes(n), ad, parts, out, 0);
  return out;
}

/**
 * DECRYPT(k, n, ad, ciphertext): the plaintext, or null when authentication fails (no
 * byte of an unauthenticated plaintext is ever returned).
 */
export function decrypt(
  key: Uint8Array, n: bigint, ad: Uint8Array, ciphertext: Uint8Array, primitives: NoisePrimitives = DEFAULT_PRIMITIVES,
): Uint8Array | null {
  const parts = primitives.decryptParts(key, nonceBytes(n), ad, [ciphertext]);
  if (parts === null) return null;
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
}
