// The optional `sodium-native` (libsodium) binding, loaded once. A binary that is missing or
// fails to load leaves `sodium()` returning null; callers fall back to node:crypto.
import { createRequire } from 'node:module';

/** The part of sodium-native's API signet uses (buffers are written in place). */
export interface SodiumNative {
  crypto_sign_BYTES: number;
  crypto_sign_PUBLICKEYBYTES: number;
  crypto_sign_SECRETKEYBYTES: number;
  crypto_sign_SEEDBYTES: number;
  crypto_sign_seed_keypair(publicKey: Uint8Array, secretKey: Uint8Array, seed: Uint8Array): void;
  crypto_sign_detached(signature: Uint8Array, message: Uint8Array, secretKey: Uint8Array): void;
  crypto_sign_verify_detached(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean;
  crypto_scalarmult(q: Uint8Array, n: Uint8Array, p: Uint8Array): void;
  crypto_scalarmult_base(q: Uint8Array, n: Uint8Array): void;
  crypto_aead_chacha20poly1305_ietf_encrypt(c: Uint8Array, m: Uint8Array, ad: Uint8Array | null, nsec: null, npub: Uint8Array, k: Uint8Array): number;
  crypto_aead_chacha20poly1305_ietf_decrypt(m: Uint8Array, nsec: null, c: Uint8Array, ad: Uint8Array | null, npub: Uint8Array, k: Uint8Array): number;
  crypto_aead_chacha20poly1305_ietf_ABYTES: number;
  crypto_hash_sha256(out: Uint8Array, message: Uint8Array): void;
  randombytes_buf(buffer: Uint8Array): void;
  sodium_memzero(buffer: Uint8Array): void;
}

/** Set `SIGNET_NO_SODIUM=1` to run as if sodium-native were not installed (tests, diagnosis). */
export const SODIUM_DISABLED_ENV = 'SIGNET_NO_SODIUM';

let loaded: SodiumNative | null | undefined;
let loadError: string | undefined;

/** The loaded binding, or null when it is absent, fails to load, or is disabled by the environment. */
export function sodium(): SodiumNative | null {
  if (loaded !== undefined) return loaded;
  loaded = null;
  if (process.env[SODIUM_DISABLED_ENV] === '1') {
    loadError = `disabled by ${SODIUM_DISABLED_ENV}=1`;
    return loaded;
  }
  try {
    const binding = createRequire(import.meta.url)('sodium-native') as SodiumNative;
    if (typeof binding.crypto_sign_verify_detached === 'function') loaded = binding;
    else loadError = 'sodium-native loaded without crypto_sign_verify_detached';
  } catch (err) {
    loadError = (err as Error).message.split('\n')[0];
  }
  return loaded;
}

/** Why `sodium()` is null (for `signet status` and diagnostics), or undefined when it loaded. */
export function sodiumLoadError(): string | undefined {
  sodium();
  return loadError;
}

/** The path `require('sodium-native')` resolves to from this module (for worker threads), or null. */
export function sodiumModulePath(): string | null {
  if (sodium() === null) return null;
  try {
    return createRequire(import.meta.url).resolve('sodium-native');
  } catch {
    return null;
  }
}
