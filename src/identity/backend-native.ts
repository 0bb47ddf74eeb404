// The `native` signature backend: node:crypto (OpenSSL) Ed25519. The fast path; verify
// runs on the libuv pool through node's callback form, off the event loop.
import { createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { KEY_CACHE_SIZE } from '../limits.ts';

// DER prefixes that wrap a raw 32-byte key as SPKI / PKCS#8 (RFC 8410).
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

const keyCache = new Map<string, KeyObject>();

/** The cached public KeyObject for a raw 32-byte key (least recently used evicted). */
export function publicKeyObject(publicKey: Uint8Array): KeyObject {
  const cacheKey = Buffer.from(publicKey.buffer, publicKey.byteOffset, publicKey.length).toString('latin1');
  let key = keyCache.get(cacheKey);
  if (key !== undefined) {
    keyCache.delete(cacheKey);
  } else {
    key = createPublicKey({ key: Buffer.concat([SPKI_PREFIX, publicKey]), format: 'der', type: 'spki' });
    if (keyCache.size >= KEY_CACHE_SIZE) keyCache.delete(keyCache.keys().next().value!);
  }
  keyCache.set(cacheKey, key);
  return key;
}

/** A private KeyObject from a 32-byte Ed25519 seed. */
export function privateKeyObject(seed: Uint8Array): KeyObject {
  return createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' });
}

/** Cofactorless verification by OpenSSL, asynchronously on the libuv pool. */
export function verifyNative(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): Promise<boolean> {
  const key = publicKeyObject(publicKey);
  return new Promise((resolve) => {
    verify(null, message, key, signature, (err, ok) => resolve(!err && ok));
  });
}

/** Synchronous form of {@link verifyNative}, for benchmarks and tight loops. */
export function verifyNativeSync(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean {
  try {
    return verify(null, message, publicKeyObject(publicKey), signature);
  } catch {
    return false;
  }
}

/** RFC 8032 signature by OpenSSL. */
export function signNative(key: KeyObject, message: Uint8Array): Uint8Array {
  return new Uint8Array(sign(null, message, key));
}
