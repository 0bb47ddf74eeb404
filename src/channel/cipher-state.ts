// CipherState (Noise spec section 5.1): a key k and a 64-bit nonce n, encrypting with
// ChaChaPoly. Nonce 2^64-1 is reserved; reaching it ends the session (NonceExhaustedError).
import { DecryptError, NonceExhaustedError } from '../errors.ts';
import { copyBytes, DEFAULT_PRIMITIVES, KEYLEN, NONCELEN, TAGLEN, type NoisePrimitives } from './primitives.ts';

/** The reserved nonce 2^64-1: no message is ever encrypted or decrypted with it (spec 5.1). */
export const MAX_NONCE = 2n ** 64n - 1n;
const EMPTY = new Uint8Array(0);
const ZEROS_32 = new Uint8Array(32);

/** Noise CipherState: `k` (32 bytes or empty) and the nonce `n`. */
export class CipherState {
  private k: Uint8Array | null = null;
  private n = 0n;
  /** The 12-byte nonce of `n`, rewritten before each use (one buffer per state, not per frame). */
  private readonly nonceBuffer = Buffer.alloc(NONCELEN);

  /** @param primitives the cipher implementation (default: libsodium where it loads, else node:crypto). */
  constructor(private readonly primitives: NoisePrimitives = DEFAULT_PRIMITIVES) {}

  /** InitializeKey(key): sets k (null = empty) and n = 0. */
  initializeKey(key: Uint8Array | null): void {
    this.k = key === null ? null : copyBytes(key.subarray(0, KEYLEN));
    this.n = 0n;
  }

  /** A copy of k (null when empty), for SymmetricState.snapshot(). */
  copyKey(): Uint8Array | null {
    return this.k === null ? null : copyBytes(this.k);
  }

  /** HasKey(): true if k is non-empty. */
  hasKey(): boolean {
    return this.k !== null;
  }

  /** The next nonce to be used. */
  get nonce(): bigint {
    return this.n;
  }

  /**
   * SetNonce(nonce). Tests use it to reach the reserved nonce without 2^64 messages.
   * @throws RangeError unless 0 <= nonce <= 2^64-1.
   */
  setNonce(nonce: bigint): void {
    if (typeof nonce !== 'bigint' || nonce < 0n || nonce > MAX_NONCE) {
      throw new RangeError(`"nonce" expected a bigint in [0, 2^64-1], got ${String(nonce)}`);
    }
    this.n = nonce;
  }

  /** The nonce bytes of n. @throws NonceExhaustedError when n has reached 2^64-1. */
  private nextNonce(): Buffer {
    if (this.n >= MAX_NONCE) throw new NonceExhaustedError('nonce reached 2^64-1; the session must end');
    this.nonceBuffer.writeBigUInt64LE(this.n, 4);
    return this.nonceBuffer;
  }

  /**
   * EncryptWithAd(ad, plaintext parts joined), written into `out` at `at`: ciphertext || tag,
   * plaintext length + 16 bytes (the caller made room); returns that length. With no key, the
   * parts are copied unchanged and their length returned.
   * @throws NonceExhaustedError when n has reached 2^64-1 (nothing is written).
   */
  encryptIntoWithAd(ad: Uint8Array, parts: readonly Uint8Array[], out: Uint8Array, at: number): number {
    if (this.k === null) {
      let end = at;
      for (const p of parts) {
        out.set(p, end);
        end += p.length;
      }
      return end - at;
    }
    const written = this.primitives.encryptInto(this.k, this.nextNonce(), ad, parts, out, at);
    this.n++;
    return written;
  }

  /**
   * EncryptWithAd(ad, plaintext): ciphertext || tag, or the plaintext when there is no key.
   * @throws NonceExhaustedError when n has reached 2^64-1.
   */
  encryptWithAd(ad: Uint8Array, plaintext: Uint8Array): Uint8Array {
    if (this.k === null) return plaintext;
    const out = Buffer.allocUnsafe(plaintext.length + TAGLEN);
    this.encryptIntoWithAd(ad, [plaintext], out, 0);
    return out;
  }

  /**
   * DecryptWithAd(ad, ciphertext): the plaintext, or the input when there is no key. On an
   * authentication failure n is not incremented (spec 5.1) and nothing is returned.
   * @throws DecryptError on authentication failure; NonceExhaustedError at n = 2^64-1.
   */
  decryptWithAd(ad: Uint8Array, ciphertext: Uint8Array): Uint8Array {
    if (this.k === null) return ciphertext;
    const plaintext = this.decryptPartsWithAd(ad, [ciphertext]);
    return plaintext.length === 1 ? plaintext[0]! : Buffer.concat(plaintext);
  }

  /**
   * DecryptWithAd over a ciphertext received in parts (no join by the caller); the plaintext in
   * parts of buffers of its own (the received bytes are never written to). Same rules as
   * {@link decryptWithAd}.
   * @throws DecryptError on authentication failure; NonceExhaustedError at n = 2^64-1.
   */
  decryptPartsWithAd(ad: Uint8Array, parts: readonly Uint8Array[]): Uint8Array[] {
    if (this.k === null) return [...parts];
    const plaintext = this.primitives.decryptParts(this.k, this.nextNonce(), ad, parts);
    if (plaintext === null) throw new DecryptError(`decryption failed at nonce ${this.n}`);
    this.n++;
    return plaintext;
  }

  /** Rekey(): k = first 32 bytes of ENCRYPT(k, 2^64-1, empty, 32 zero bytes) (spec 4.2). */
  rekey(): void {
    if (this.k === null) return;
    const nonce = Buffer.alloc(NONCELEN);
    nonce.writeBigUInt64LE(MAX_NONCE, 4);
    const out = Buffer.allocUnsafe(ZEROS_32.length + TAGLEN);
    this.primitives.encryptInto(this.k, nonce, EMPTY, [ZEROS_32], out, 0);
    this.k = copyBytes(out.subarray(0, KEYLEN));
  }

  /** Bytes a ciphertext adds to its plaintext under this state (16 with a key, else 0). */
  overhead(): number {
    return this.k === null ? 0 : TAGLEN;
  }
}
