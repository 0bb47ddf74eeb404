// The `noble` signature backend: @noble/ed25519, pure JavaScript. Portable reference.
// noble's own verify uses a different rule (ZIP-215 / cofactored), so the cofactorless
// equation [S]B = R + [k]A is written here with its point API.
import * as ed from '@noble/ed25519';
import { sha512 } from '@noble/hashes/sha2.js';
import { concatBytes } from '../util/bytes.ts';

ed.hashes.sha512 = sha512;
const L = ed.Point.CURVE().n;

function leToBigInt(bytes: Uint8Array): bigint {
  let n = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(bytes[i]!);
  return n;
}

/** Check 5 of the acceptance rule: the cofactorless group equation over the raw bytes received.
 *  Assumes checks 1-4 passed; returns false (never throws) on undecodable points. */
export function verifyNobleSync(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean {
  try {
    const A = ed.Point.fromBytes(publicKey, false);
    const R = ed.Point.fromBytes(signature.subarray(0, 32), false);
    const S = leToBigInt(signature.subarray(32, 64));
    if (S >= L) return false;
    const k = leToBigInt(sha512(concatBytes(signature.subarray(0, 32), publicKey, message))) % L;
    const SB = ed.Point.BASE.multiply(S, false);
    return SB.equals(R.add(A.multiply(k, false)));
  } catch {
    return false;
  }
}

/** Same as {@link verifyNobleSync}; noble has no thread pool, so this runs on the event loop. */
export async function verifyNoble(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): Promise<boolean> {
  return verifyNobleSync(signature, message, publicKey);
}

/** RFC 8032 signature by noble (byte-identical to the native one: Ed25519 is deterministic). */
export function signNoble(seed: Uint8Array, message: Uint8Array): Uint8Array {
  return ed.sign(message, seed);
}

/** Public key of a 32-byte seed, by noble. */
export function publicKeyNoble(seed: Uint8Array): Uint8Array {
  return ed.getPublicKey(seed);
}
