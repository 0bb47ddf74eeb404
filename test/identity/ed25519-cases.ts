// Ed25519 test inputs shared by the differential tests: little-endian helpers, every encoding
// of the small-order points, and which backends this process can compare.
import * as ed from '@noble/ed25519';
import { SMALL_ORDER_ENCODINGS } from '../../src/identity/signature-rule.ts';
import { verifySignatureSync, type SignatureBackend } from '../../src/identity/signature.ts';
import { sodiumAvailable } from '../../src/identity/backend-sodium.ts';
import { sodiumLoadError, SODIUM_DISABLED_ENV } from '../../src/util/sodium.ts';
import { fromHex } from '../../src/util/bytes.ts';

export const L = ed.Point.CURVE().n;
export const P = 2n ** 255n - 19n;

export const le32 = (n: bigint): Uint8Array => {
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++) out[i] = Number((n >> BigInt(8 * i)) & 0xffn);
  return out;
};
export const leToBig = (b: Uint8Array): bigint => b.reduceRight((acc, x) => (acc << 8n) | BigInt(x), 0n);

/**
 * The backends the differential tests compare: all three. sodium-native is an optional
 * dependency, so it may be left out only on purpose (SIGNET_NO_SODIUM=1); a sodium that
 * silently failed to load fails the tests instead of shrinking them.
 */
export function backendsUnderTest(): SignatureBackend[] {
  if (sodiumAvailable()) return ['native', 'noble', 'sodium'];
  if (process.env[SODIUM_DISABLED_ENV] === '1') return ['native', 'noble'];
  throw new Error(`sodium-native did not load (${sodiumLoadError()}); set ${SODIUM_DISABLED_ENV}=1 to test without it`);
}

/** Each backend's synchronous verdict on one input, keyed by backend name. */
export function verdicts(sig: Uint8Array, msg: Uint8Array, pk: Uint8Array): Record<string, boolean> {
  return Object.fromEntries(backendsUnderTest().map((backend) => [backend, verifySignatureSync(sig, msg, pk, { backend })]));
}

/** The verdicts object in which every backend under test says `ok`. */
export function every(ok: boolean): Record<string, boolean> {
  return Object.fromEntries(backendsUnderTest().map((backend) => [backend, ok]));
}

/** Every encoding of a small-order point: canonical, y + p where it fits, and x=0 with the sign bit. */
export function smallOrderEncodings(): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const hex of SMALL_ORDER_ENCODINGS) {
    const enc = fromHex(hex);
    out.push(enc);
    const y = leToBig(enc) & ((1n << 255n) - 1n);
    const sign = enc[31]! & 0x80;
    if (y + P < 2n ** 255n) {
      const nc = le32(y + P);
      nc[31]! |= sign;
      out.push(nc);
    }
    if (y === 1n || y === P - 1n) {
      const flipped = enc.slice();
      flipped[31]! ^= 0x80;
      out.push(flipped);
    }
  }
  return out;
}
