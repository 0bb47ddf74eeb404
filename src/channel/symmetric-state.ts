// SymmetricState (Noise spec section 5.2): the chaining key ck, the handshake hash h and a
// CipherState; mixKey, mixHash, mixKeyAndHash, encryptAndHash, decryptAndHash, split.
import { CipherState } from './cipher-state.ts';
import { hkdf, type NoiseHash } from './hashes.ts';
import { copyBytes, DEFAULT_PRIMITIVES, KEYLEN, type NoisePrimitives } from './primitives.ts';
import { utf8 } from '../util/bytes.ts';

const EMPTY = new Uint8Array(0);
/** h (= ck) after InitializeSymmetric, per hash and protocol name: a public constant of the name. */
const initialHashes = new Map<string, Uint8Array>();

/** Truncates a HASHLEN output to a 32-byte cipher key (spec 5.2: needed when HASHLEN = 64). */
const truncateKey = (key: Uint8Array): Uint8Array => key.subarray(0, KEYLEN);

/** A copy of a SymmetricState's (ck, h, k) taken right after InitializeKey (n = 0): see leading-psk.ts. */
export interface SymmetricSnapshot {
  readonly ck: Uint8Array;
  readonly h: Uint8Array;
  readonly k: Uint8Array | null;
}

/** Noise SymmetricState. */
export class SymmetricState {
  private readonly cs: CipherState;
  private ck: Uint8Array;
  private h: Uint8Array;

  /**
   * InitializeSymmetric(protocol_name): h = name padded with zeros to HASHLEN if it fits,
   * else HASH(name); ck = h; k empty. The result depends on the name only, so it is computed
   * once per protocol name and hash (one HASH call saved per handshake).
   * @param primitives the cipher implementation of the CipherStates (default set unless given).
   */
  constructor(readonly hash: NoiseHash, protocolName: string, private readonly primitives: NoisePrimitives = DEFAULT_PRIMITIVES) {
    this.cs = new CipherState(primitives);
    const cacheKey = `${hash.name} ${protocolName}`;
    let h = initialHashes.get(cacheKey);
    if (h === undefined) {
      const name = utf8(protocolName);
      if (name.length <= hash.hashLen) {
        h = new Uint8Array(hash.hashLen);
        h.set(name);
      } else {
        h = hash.hash(name);
      }
      initialHashes.set(cacheKey, h);
    }
    this.h = h; // never written in place: every mixHash makes a new h
    this.ck = h;
  }

  /** MixKey(input_key_material): ck, temp_k = HKDF(ck, ikm, 2); InitializeKey(temp_k). */
  mixKey(inputKeyMaterial: Uint8Array): void {
    const [ck, tempK] = hkdf(this.hash, this.ck, inputKeyMaterial, 2);
    this.ck = ck;
    this.cs.initializeKey(truncateKey(tempK));
  }

  /** MixHash(data): h = HASH(h || data). */
  mixHash(data: Uint8Array): void {
    this.h = this.hash.hash(this.h, data);
  }

  /** MixKeyAndHash(input_key_material): ck, temp_h, temp_k = HKDF(ck, ikm, 3); MixHash(temp_h); InitializeKey(temp_k). */
  mixKeyAndHash(inputKeyMaterial: Uint8Array): void {
    const [ck, tempH, tempK] = hkdf(this.hash, this.ck, inputKeyMaterial, 3);
    this.ck = ck;
    this.mixHash(tempH);
    this.cs.initializeKey(truncateKey(tempK));
  }

  /**
   * (ck, h, k) as copies, for a state every handshake of a protocol, prologue and psk reaches.
   * @throws Error once the key has been used (n > 0): the nonce is not part of a snapshot.
   */
  snapshot(): SymmetricSnapshot {
    if (this.cs.nonce !== 0n) throw new Error('snapshot of a SymmetricState whose key has been used');
    return { ck: copyBytes(this.ck), h: copyBytes(this.h), k: this.cs.copyKey() };
  }

  /** Takes on a {@link snapshot}'s (ck, h, k) with n = 0; the snapshot itself is only read. */
  restore(state: SymmetricSnapshot): void {
    this.ck = copyBytes(state.ck);
    this.h = copyBytes(state.h);
    this.cs.initializeKey(state.k);
  }

  /** GetHandshakeHash(): h. */
  getHandshakeHash(): Uint8Array {
    return copyBytes(this.h);
  }

  /** True once a key has been mixed in (so `s` is sent encrypted). */
  hasKey(): boolean {
    return this.cs.hasKey();
  }

  /** EncryptAndHash(plaintext): ciphertext = EncryptWithAd(h, plaintext); MixHash(ciphertext). */
  encryptAndHash(plaintext: Uint8Array): Uint8Array {
    const ciphertext = this.cs.encryptWithAd(this.h, plaintext);
    this.mixHash(ciphertext);
    return ciphertext;
  }

  /**
   * DecryptAndHash(ciphertext): plaintext = DecryptWithAd(h, ciphertext); MixHash(ciphertext).
   * @throws DecryptError when the ciphertext does not authenticate.
   */
  decryptAndHash(ciphertext: Uint8Array): Uint8Array {
    const plaintext = this.cs.decryptWithAd(this.h, ciphertext);
    this.mixHash(ciphertext);
    return plaintext;
  }

  /** Split(): temp_k1, temp_k2 = HKDF(ck, empty, 2); two CipherStates (initiator→responder first). */
  split(): [CipherState, CipherState] {
    const [k1, k2] = hkdf(this.hash, this.ck, EMPTY, 2);
    const c1 = new CipherState(this.primitives);
    const c2 = new CipherState(this.primitives);
    c1.initializeKey(truncateKey(k1));
    c2.initializeKey(truncateKey(k2));
    return [c1, c2];
  }
}
