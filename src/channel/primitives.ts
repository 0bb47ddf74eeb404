// Noise primitives from node:crypto only (spec section 4): X25519 DH, ChaCha20-Poly1305 with
// the Noise nonce layout, and the hash functions (SHA-256; BLAKE2b for vectors) with HMAC/HKDF.
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  type KeyObject,
} from 'node:crypto';
import { assertBytes } from '../util/bytes.ts';

/** DHLEN for Curve25519 (spec 12.1). */
export const DHLEN = 32;
/** Length of a ChaCha20-Poly1305 key. */
export const KEYLEN = 32;
/** Length of the Poly1305 tag appended to every ciphertext. */
export const TAGLEN = 16;

const PKCS8_X25519 = Buffer.from('302e020100300506032b656e04220420', 'hex');
const SPKI_X25519 = Buffer.from('302a300506032b656e032100', 'hex');

/** An X25519 key pair: the raw 32-byte public key and the private key as an opaque KeyObject. */
export interface KeyPair {
  readonly publicKey: Uint8Array;
  readonly privateKey: KeyObject;
}

function rawPublicKey(privateKey: KeyObject): Uint8Array {
  const der = createPublicKey(privateKey).export({ format: 'der', type: 'spki' });
  return new Uint8Array(der.subarray(der.length - DHLEN));
}

/**
 * GENERATE_KEYPAIR(): a fresh X25519 key pair from the node:crypto CSPRNG.
 */
export function generateKeyPair(): KeyPair {
  const { privateKey } = generateKeyPairSync('x25519');
  return { privateKey, publicKey: rawPublicKey(privateKey) };
}

/**
 * The X25519 key pair of a raw 32-byte private key (not pre-clamped: X25519 clamps).
 * Test vectors and the test-only key hook use this; production keys come from {@link generateKeyPair}.
 * @throws TypeError / RangeError unless `privateKey` is 32 bytes.
 */
export function keyPairFromPrivate(privateKey: Uint8Array): KeyPair {
  assertBytes(privateKey, 'privateKey', DHLEN);
  const key = createPrivateKey({ key: Buffer.concat([PKCS8_X25519, privateKey]), format: 'der', type: 'pkcs8' });
  return { privateKey: key, publicKey: rawPublicKey(key) };
}

/**
 * DH(key pair, public key): the X25519 shared secret, or null when OpenSSL refuses the
 * public key (an all-zero result from a small-order point; spec 12.1 allows rejecting it).
 */
export function dh(keyPair: KeyPair, publicKey: Uint8Array): Buffer | null {
  try {
    const pub = createPublicKey({ key: Buffer.concat([SPKI_X25519, publicKey]), format: 'der', type: 'spki' });
    return diffieHellman({ privateKey: keyPair.privateKey, publicKey: pub });
  } catch {
    return null;
  }
}

/** A Noise hash function (spec section 4.3) with its HMAC. */
export interface NoiseHash {
  /** The name used in protocol names: `SHA256` or `BLAKE2b`. */
  readonly name: 'SHA256' | 'BLAKE2b';
  /** HASHLEN: 32 or 64. */
  readonly hashLen: 32 | 64;
  /** HASH(parts[0] || parts[1] || ...). */
  hash(...parts: Uint8Array[]): Buffer;
  /** HMAC-HASH(key, parts[0] || ...), with the hash's own block length (RFC 2104). */
  hmac(key: Uint8Array, ...parts: Uint8Array[]): Buffer;
}

function nodeHash(name: 'SHA256' | 'BLAKE2b', algorithm: string, hashLen: 32 | 64): NoiseHash {
  return Object.freeze({
    name,
    hashLen,
    hash(...parts: Uint8Array[]): Buffer {
      const h = createHash(algorithm);
      for (const p of parts) h.update(p);
      return h.digest();
    },
    hmac(key: Uint8Array, ...parts: Uint8Array[]): Buffer {
      const h = createHmac(algorithm, key);
      for (const p of parts) h.update(p);
      return h.digest();
    },
  });
}

/** SHA-256: the hash signet uses on the wire. */
export const SHA256: NoiseHash = nodeHash('SHA256', 'sha256', 32);
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
 */
export function hkdf(hash: NoiseHash, chainingKey: Uint8Array, ikm: Uint8Array, outputs: 2): [Buffer, Buffer];
export function hkdf(hash: NoiseHash, chainingKey: Uint8Array, ikm: Uint8Array, outputs: 3): [Buffer, Buffer, Buffer];
export function hkdf(hash: NoiseHash, chainingKey: Uint8Array, ikm: Uint8Array, outputs: 2 | 3): Buffer[] {
  const tempKey = hash.hmac(chainingKey, ikm);
  const out1 = hash.hmac(tempKey, BYTE_1);
  const out2 = hash.hmac(tempKey, out1, BYTE_2);
  if (outputs === 2) return [out1, out2];
  return [out1, out2, hash.hmac(tempKey, out2, BYTE_3)];
}

/** The 12-byte ChaChaPoly nonce: 4 zero bytes || 64-bit little-endian counter (spec 12.3). */
export function nonceBytes(n: bigint): Buffer {
  const nonce = Buffer.alloc(12);
  nonce.writeBigUInt64LE(n, 4);
  return nonce;
}

/**
 * ENCRYPT(k, n, ad, plaintext) over several plaintext parts without joining them first;
 * returns the ciphertext parts followed by the 16-byte tag (concatenate for the message).
 */
export function encryptParts(key: Uint8Array, n: bigint, ad: Uint8Array, parts: readonly Uint8Array[]): Buffer[] {
  const cipher = createCipheriv('chacha20-poly1305', key, nonceBytes(n), { authTagLength: TAGLEN });
  let length = 0;
  for (const p of parts) length += p.length;
  cipher.setAAD(ad, { plaintextLength: length });
  const out: Buffer[] = [];
  for (const p of parts) out.push(cipher.update(p));
  cipher.final();
  out.push(cipher.getAuthTag());
  return out;
}

/**
 * DECRYPT(k, n, ad, ciphertext): the plaintext, or null when authentication fails (no
 * byte of an unauthenticated plaintext is ever returned).
 */
export function decrypt(key: Uint8Array, n: bigint, ad: Uint8Array, ciphertext: Uint8Array): Buffer | null {
  if (ciphertext.length < TAGLEN) return null;
  const split = ciphertext.length - TAGLEN;
  const decipher = createDecipheriv('chacha20-poly1305', key, nonceBytes(n), { authTagLength: TAGLEN });
  decipher.setAAD(ad, { plaintextLength: split });
  decipher.setAuthTag(ciphertext.subarray(split));
  const plaintext = decipher.update(ciphertext.subarray(0, split));
  try {
    decipher.final();
  } catch {
    return null;
  }
  return plaintext;
}

/**
 * DECRYPT over a ciphertext held in several parts (as received), without joining them: the
 * plaintext as parts (never joined either), or null when authentication fails or the parts
 * are shorter than a tag. No part is returned unless the whole ciphertext authenticated.
 */
export function decryptParts(key: Uint8Array, n: bigint, ad: Uint8Array, parts: readonly Uint8Array[]): Buffer[] | null {
  let total = 0;
  for (const p of parts) total += p.length;
  if (total < TAGLEN) return null;
  const split = total - TAGLEN;
  const tag = Buffer.allocUnsafe(TAGLEN);
  const decipher = createDecipheriv('chacha20-poly1305', key, nonceBytes(n), { authTagLength: TAGLEN });
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
}
