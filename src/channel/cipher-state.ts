// CipherState (Noise spec section 5.1): a key k and a 64-bit nonce n, encrypting with
// ChaChaPoly. Nonce 2^64-1 is reserved; reaching it ends the session (NonceExhaustedError).
import { DecryptError, NonceExhaustedError } from '../errors.ts';
import { decrypt, decryptParts, encryptParts, KEYLEN, TAGLEN } from './primitives.ts';

/** The reserved nonce 2^64-1: no message is ever encrypted or decrypted with it (spec 5.1). */
export const MAX_NONCE = 2n ** 64n - 1n;
const EMPTY = new Uint8Array(0);
const ZEROS_32 = new Uint8Array(32);

/** Noise CipherState: `k` (32 bytes or empty) and the nonce `n`. */
export class CipherState {
  private k: Uint8Array | null = null;
  private n = 0n;

  /** InitializeKey(key): sets k (null = empty) and n = 0. */
  initializeKey(key: Uint8Array | null): void {
    this.k = key === null ? null : Uint8Array.from(key.subarray(0, KEYLEN));
    this.n = 0n;
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

  private checkNonce(): void {
    if (this.n >= MAX_NONCE) throw new NonceExhaustedError('nonce reached 2^64-1; the session must end');
  }

  /**
   * EncryptWithAd(ad, plaintext) over plaintext parts (joined on the wire); with no key,
   * the parts unchanged. Returns the output parts (ciphertext parts then the tag).
   * @throws NonceExhaustedError when n has reached 2^64-1.
   */
  encryptPartsWithAd(ad: Uint8Array, parts: readonly Uint8Array[]): Uint8Array[] {
    if (this.k === null) return [...parts];
    this.checkNonce();
    const out = encryptParts(this.k, this.n, ad, parts);
    this.n++;
    return out;
  }

  /**
   * EncryptWithAd(ad, plaintext): ciphertext || tag, or the plaintext when there is no key.
   * @throws NonceExhaustedError when n has reached 2^64-1.
   */
  encryptWithAd(ad: Uint8Array, plaintext: Uint8Array): Uint8Array {
    if (this.k === null) return plaintext;
    return Buffer.concat(this.encryptPartsWithAd(ad, [plaintext]));
  }

  /**
   * DecryptWithAd(ad, ciphertext): the plaintext, or the input when there is no key. On an
   * authentication failure n is not incremented (spec 5.1) and nothing is returned.
   * @throws DecryptError on authentication failure; NonceExhaustedError at n = 2^64-1.
   */
  decryptWithAd(ad: Uint8Array, ciphertext: Uint8Array): Uint8Array {
    if (this.k === null) return ciphertext;
    this.checkNonce();
    const plaintext = decrypt(this.k, this.n, ad, ciphertext);
    if (plaintext === null) throw new DecryptError(`decryption failed at nonce ${this.n}`);
    this.n++;
    return plaintext;
  }

  /**
   * DecryptWithAd over a ciphertext received in parts (no join). Same rules as {@link decryptWithAd}.
   * @throws DecryptError on authentication failure; NonceExhaustedError at n = 2^64-1.
   */
  decryptPartsWithAd(ad: Uint8Array, parts: readonly Uint8Array[]): Uint8Array[] {
    if (this.k === null) return [...parts];
    this.checkNonce();
    const plaintext = decryptParts(this.k, this.n, ad, parts);
    if (plaintext === null) throw new DecryptError(`decryption failed at nonce ${this.n}`);
    this.n++;
    return plaintext;
  }

  /** Rekey(): k = first 32 bytes of ENCRYPT(k, 2^64-1, empty, 32 zero bytes) (spec 4.2). */
  rekey(): void {
    if (this.k === null) return;
    const out = encryptParts(this.k, MAX_NONCE, EMPTY, [ZEROS_32]);
    this.k = Uint8Array.from(out[0]!.subarray(0, KEYLEN));
  }

  /** Bytes a ciphertext adds to its plaintext under this state (16 with a key, else 0). */
  overhead(): number {
    return this.k === null ? 0 : TAGLEN;
  }
}
