// The `sodium` signature backend: libsodium Ed25519 through the optional sodium-native binding
// (about 2x node:crypto here). Sync verify and sign; the async form runs on a worker pool.
import { sodium, sodiumLoadError, type SodiumNative } from '../util/sodium.ts';
import { VerifyPool } from './verify-pool.ts';
import { concatBytes } from '../util/bytes.ts';

/** True when sodium-native loaded (and `SIGNET_NO_SODIUM=1` is not set). */
export function sodiumAvailable(): boolean {
  return sodium() !== null;
}

/** The binding, or a RangeError naming why the `sodium` backend cannot be used. */
export function requireSodium(): SodiumNative {
  const binding = sodium();
  if (binding === null) {
    throw new RangeError(`"backend" 'sodium' is not available (${sodiumLoadError() ?? 'sodium-native did not load'}); use 'native' or 'noble', or install sodium-native`);
  }
  return binding;
}

/**
 * Check 5 of the acceptance rule by libsodium's crypto_sign_verify_detached: it recomputes
 * R' = [S]B - [k]A and compares its encoding with the R bytes received, so after checks 1-4
 * (canonical R) it is the cofactorless equation. libsodium's own checks (S < L, canonical A,
 * small-order blocklist) are a subset of signet's checks 1-4, which run first; the differential
 * test proves the verdicts equal. Never throws.
 */
export function verifySodiumSync(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean {
  try {
    return requireSodium().crypto_sign_verify_detached(signature, message, publicKey);
  } catch {
    return false;
  }
}

/** Same verdict as {@link verifySodiumSync}, as a promise, computed now on the event loop. */
export function verifySodiumInline(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): Promise<boolean> {
  return Promise.resolve(verifySodiumSync(signature, message, publicKey));
}

let pool: VerifyPool | null | undefined;

/** The process's verification pool (started on first use), or null without sodium or worker threads. */
export function sodiumPool(): VerifyPool | null {
  if (pool !== undefined) return pool;
  const binding = sodium();
  pool = binding === null ? null : new VerifyPool({ fallback: verifySodiumSync });
  return pool;
}

/**
 * Same verdict as {@link verifySodiumSync} on the message `prefix || message`, off the event
 * loop: batched to a pool of worker threads (one per core but one), each calling libsodium, the
 * event loop taking up to CALLER_RUNS_MS per turn of the loop while every worker is full (see
 * VerifyPool); the pool
 * packs the two parts where the request waits, without joining them. A worker that dies re-runs
 * its requests inline, so every promise resolves with the sync verdict. Never rejects.
 */
export function verifySodiumParts(signature: Uint8Array, prefix: Uint8Array, message: Uint8Array, publicKey: Uint8Array): Promise<boolean> {
  const p = sodiumPool();
  if (p !== null) return p.verifyParts(signature, prefix, message, publicKey);
  return verifySodiumInline(signature, prefix.length === 0 ? message : concatBytes(prefix, message), publicKey);
}

/** A libsodium signer for one seed: the 64-byte secret key is derived once and zeroed on dispose. */
export interface SodiumSigner {
  readonly publicKey: Uint8Array;
  /** RFC 8032 signature (byte-identical to node:crypto's and noble's: Ed25519 is deterministic). */
  sign(message: Uint8Array): Uint8Array;
  /** Zeroes the secret key; the signer must not be used afterwards. */
  dispose(): void;
}

/**
 * A signer for a 32-byte seed, or null when sodium is not available. The seed is only read.
 * @throws RangeError unless `seed` is 32 bytes (checked by the caller's input guard too).
 */
export function sodiumSigner(seed: Uint8Array): SodiumSigner | null {
  const binding = sodium();
  if (binding === null) return null;
  const publicKey = new Uint8Array(binding.crypto_sign_PUBLICKEYBYTES);
  const secretKey = new Uint8Array(binding.crypto_sign_SECRETKEYBYTES);
  binding.crypto_sign_seed_keypair(publicKey, secretKey, seed);
  return {
    publicKey,
    sign(message) {
      const signature = new Uint8Array(binding.crypto_sign_BYTES);
      binding.crypto_sign_detached(signature, message, secretKey);
      return signature;
    },
    dispose() {
      binding.sodium_memzero(secretKey);
    },
  };
}
