// Range fingerprints that an adversary who can mint items cannot make collide: a per-session
// salt both sides contribute to, salted item digests summed mod 2^256, hashed with the count.
//
// Why not XOR of item hashes: XOR is addition in GF(2)^256, so from ~257 minted items anyone
// can solve a linear system for a subset whose XOR equals any target (Meyer, "Range-Based Set
// Reconciliation", section V). Why not an unsalted sum mod 2^256 (Negentropy, Willow): finding
// k items whose hashes sum to a target is Wagner's generalized birthday problem, far below
// 2^128 work for large k, so a writer under an `open` policy could prepare two sets that two
// honest nodes would take as equal. Here every item digest is SHA-256(salt || item hash) under
// a salt that exists only once both sides' fresh nonces are known: the items were signed (and
// their hashes fixed) before it, so nobody can prepare a collision, and to anyone outside the
// session the digests are independent random values (SHA-256 as a PRF keyed by the salt; the
// input has a fixed length, so length extension does not apply). A collision of the 16-byte
// fingerprint then happens with probability 2^-128 per comparison. The peer in the session
// learns the salt, but it can lie about its fingerprints anyway: it can delay, not forge.

import { randomBytes } from 'node:crypto';
import { assertBytes, compareBytes, concatBytes, utf8 } from '../util/bytes.ts';
import { sha256, sha256Into } from '../util/sha256.ts';
import { copyItemHash, type ReconcileItem } from './items.ts';

/** Bytes of each side's nonce. */
export const NONCE_BYTES = 32;
/** Bytes of a session salt. */
export const SALT_BYTES = 32;
/** Bytes of a fingerprint on the wire (the first half of a SHA-256). */
export const FINGERPRINT_BYTES = 16;

const SALT_TAG = utf8('signet/reconcile-salt/v1');
const FINGERPRINT_TAG = utf8('signet/reconcile-fingerprint/v1');

/** A fresh random nonce for one session, to send in the hello. */
export function newNonce(): Uint8Array {
  return new Uint8Array(randomBytes(NONCE_BYTES));
}

/** One side of a session: its node id and the nonce it sent. */
export interface SaltShare {
  id: string;
  nonce: Uint8Array;
}

/**
 * The session salt: SHA-256("signet/reconcile-salt/v1" || nonce of the lower node id || nonce of
 * the other), the same on both sides whichever is `local`. Unpredictable to everyone outside
 * the session as long as one side's nonce was fresh.
 * @throws TypeError / RangeError for a nonce that is not NONCE_BYTES long, or equal ids.
 */
export function sessionSalt(local: SaltShare, remote: SaltShare): Uint8Array {
  assertBytes(local.nonce, 'local.nonce', NONCE_BYTES);
  assertBytes(remote.nonce, 'remote.nonce', NONCE_BYTES);
  if (typeof local.id !== 'string' || typeof remote.id !== 'string') throw new TypeError('"id" expected string');
  if (local.id === remote.id) throw new RangeError('"remote.id" expected another node than "local.id"');
  const [low, high] = local.id < remote.id ? [local, remote] : [remote, local];
  return new Uint8Array(sha256(concatBytes(SALT_TAG, low.nonce, high.nonce)));
}

const LIMBS = 8; // 256 bits as 8 little-endian 32-bit limbs

/**
 * Fingerprints of index ranges of one sorted snapshot under one salt. Built once per session:
 * one salted digest per item (the session's cost, ~1 µs an item) and their running sums, after
 * which any range's fingerprint costs one subtraction and one SHA-256.
 */
export class Fingerprints {
  /** prefix[LIMBS*i ..] = sum of the digests of items [0, i) mod 2^256. */
  private readonly prefix: Uint32Array;
  private readonly input: Uint8Array;
  private readonly sumOffset: number;

  /** @throws TypeError / RangeError unless `salt` is SALT_BYTES long. */
  constructor(hashes: readonly ReconcileItem[], salt: Uint8Array) {
    assertBytes(salt, 'salt', SALT_BYTES);
    const n = hashes.length;
    // First every digest, in place at prefix[LIMBS*(i+1)..], then the running sums over them:
    // two tight loops (the hashing dominates: ~0.7 µs an item, mostly call overhead).
    const prefix = new Uint32Array(LIMBS * (n + 1));
    const bytes = new Uint8Array(prefix.buffer);
    // Nothing allocated per item (this runs over every held update as a session opens): each
    // hash is copied in place behind the salt, and each digest lands in one scratch array.
    const item = new Uint8Array(SALT_BYTES + 32);
    const digest = new Uint8Array(32);
    item.set(salt);
    for (let i = 0; i < n; i++) {
      copyItemHash(hashes[i]!, item, SALT_BYTES);
      sha256Into(item, digest);
      bytes.set(digest, 32 * (i + 1));
    }
    if (!LITTLE_ENDIAN) swapWords(bytes);
    for (let o = 0; o < LIMBS * n; o += LIMBS) {
      let carry = 0;
      for (let k = o; k < o + LIMBS; k++) {
        const s = prefix[k]! + prefix[k + LIMBS]! + carry;
        prefix[k + LIMBS] = s; // stored mod 2^32
        carry = s > 0xffffffff ? 1 : 0;
      }
    }
    this.prefix = prefix;
    // Hashed per range: tag || salt || sum (32 bytes LE) || count (8 bytes LE).
    this.input = concatBytes(FINGERPRINT_TAG, salt, new Uint8Array(32 + 8));
    this.sumOffset = FINGERPRINT_TAG.length + SALT_BYTES;
  }

  /** Fingerprint of items [lo, hi) (lo <= hi): FINGERPRINT_BYTES bytes. */
  of(lo: number, hi: number): Uint8Array {
    const { prefix, input } = this;
    let borrow = 0;
    let o = this.sumOffset;
    for (let k = 0; k < LIMBS; k++, o += 4) {
      let d = prefix[LIMBS * hi + k]! - prefix[LIMBS * lo + k]! - borrow;
      borrow = d < 0 ? 1 : 0;
      if (d < 0) d += 0x100000000;
      input[o] = d & 0xff;
      input[o + 1] = (d >>> 8) & 0xff;
      input[o + 2] = (d >>> 16) & 0xff;
      input[o + 3] = (d >>> 24) & 0xff;
    }
    const count = hi - lo;
    writeU32(input, o, count >>> 0);
    writeU32(input, o + 4, Math.floor(count / 0x100000000));
    const digest = sha256(input);
    return new Uint8Array(digest.buffer, digest.byteOffset, FINGERPRINT_BYTES);
  }

  /** True when `fingerprint` is ours for items [lo, hi). */
  matches(lo: number, hi: number, fingerprint: Uint8Array): boolean {
    return compareBytes(this.of(lo, hi), fingerprint) === 0;
  }
}

/** Digests are little-endian 256-bit numbers; a Uint32Array view reads them so only on a
 *  little-endian machine. Elsewhere each 4-byte word is reversed first. */
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

function swapWords(bytes: Uint8Array): void {
  for (let i = 0; i + 3 < bytes.length; i += 4) {
    const [a, b] = [bytes[i]!, bytes[i + 1]!];
    bytes[i] = bytes[i + 3]!;
    bytes[i + 1] = bytes[i + 2]!;
    bytes[i + 2] = b;
    bytes[i + 3] = a;
  }
}

function writeU32(out: Uint8Array, at: number, value: number): void {
  out[at] = value & 0xff;
  out[at + 1] = (value >>> 8) & 0xff;
  out[at + 2] = (value >>> 16) & 0xff;
  out[at + 3] = (value >>> 24) & 0xff;
}
