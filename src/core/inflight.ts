// The verifications in flight, by exact envelope: one table of open addressing, keyed by the
// envelope's signature and payload hash held as bytes, so that no key is made per update.
import { randomBytes } from 'node:crypto';
import { copySigned, SIGNED_KEY_BYTES, type Update } from '../envelope/update.ts';
import { MAX_SIGNATURES_PER_HASH } from '../limits.ts';

/** Slots of a new table. */
const INITIAL_SLOTS = 64;

/**
 * What is being verified, by exact envelope: two envelopes share an entry only if both their
 * signatures and their payload hashes are equal, so a forged copy of an update never shares (and
 * sinks) the verdict on the genuine one.
 *
 * Why not a `Map` keyed by a string of those 96 bytes (what this replaced): every arrival made a
 * 112-byte string that lived as long as its verification, long enough to be promoted, and the
 * Map's table was rebuilt every few hundred insertions as deletions filled it; measured, about
 * 14 MB of V8's old space per 100,000 updates received, garbage that raised a replica's peak RSS.
 * Here the keys are copied into one byte array of 96 bytes per slot, the values sit in one
 * array, and a deletion shifts its probe run back (linear probing without tombstones), so the
 * table only grows when it holds more at once.
 *
 * Where a key lives depends on its payload hash alone: two words of it, mixed with multipliers
 * drawn at random per table. A peer chooses payloads, but not their SHA-256, so not which of them
 * meet in one probe run. It does choose signature bytes, for free: copies of one payload under
 * many signatures (forgeries, all sent before the first verdict cuts the connection) would share
 * one run, and every operation would walk it (measured by a hostile review: 8,192 such copies
 * blocked the event loop for 7 s when the signature's first word took part in the slot). So at
 * most MAX_SIGNATURES_PER_HASH envelopes of one payload are held; `set` refuses another, which is
 * then verified on its own, without dedupe.
 */
export class InflightTable<V> {
  private slots = INITIAL_SLOTS;
  private shift = 32 - Math.log2(INITIAL_SLOTS);
  private keys = new Uint8Array(INITIAL_SLOTS * SIGNED_KEY_BYTES);
  private values: Array<V | undefined> = new Array<V | undefined>(INITIAL_SLOTS).fill(undefined);
  private count = 0;
  private readonly multipliers: Uint32Array;
  /** The key being looked up, copied out of its update. */
  private readonly probe = new Uint8Array(SIGNED_KEY_BYTES);
  /** Set by find(): keys of the probe's payload hash under other signatures in its run. */
  private sameHashSeen = 0;

  /** @param random source of the slot multipliers (tests pass a fixed one). */
  constructor(random: (n: number) => Uint8Array = randomBytes) {
    const bytes = random(8);
    if (!(bytes instanceof Uint8Array) || bytes.length !== 8) throw new RangeError('"random" expected to return 8 bytes');
    this.multipliers = new Uint32Array(2);
    for (let i = 0; i < 2; i++) this.multipliers[i] = (bytes[4 * i]! | (bytes[4 * i + 1]! << 8) | (bytes[4 * i + 2]! << 16) | (bytes[4 * i + 3]! << 24)) | 1;
  }

  /** Entries held. */
  get size(): number {
    return this.count;
  }

  /** The value of `update`'s envelope, or undefined. */
  get(update: Update): V | undefined {
    const slot = this.find(update);
    return slot < 0 ? undefined : this.values[slot];
  }

  /** Sets the value of `update`'s envelope (`value` must not be undefined). @returns false, and
   *  holds nothing, if MAX_SIGNATURES_PER_HASH envelopes of its payload are held already. */
  set(update: Update, value: V): boolean {
    const slot = this.find(update);
    if (slot >= 0) {
      this.values[slot] = value;
      return true;
    }
    if (this.sameHashSeen >= MAX_SIGNATURES_PER_HASH) return false;
    if (2 * (this.count + 1) > this.slots) this.resize(this.slots * 2);
    this.place(this.probe, 0, value);
    this.count++;
    return true;
  }

  /** Removes `update`'s envelope. @returns whether it was there. */
  delete(update: Update): boolean {
    let hole = this.find(update);
    if (hole < 0) return false;
    this.count--;
    // Backward shift: move later members of the run into the hole where their home allows.
    const mask = this.slots - 1;
    let next = (hole + 1) & mask;
    while (this.values[next] !== undefined) {
      const home = this.home(this.keys, next * SIGNED_KEY_BYTES);
      // `next` may move to `hole` if its home is not in the cyclic range (hole, next].
      if (((next - home) & mask) >= ((next - hole) & mask)) {
        this.keys.copyWithin(hole * SIGNED_KEY_BYTES, next * SIGNED_KEY_BYTES, (next + 1) * SIGNED_KEY_BYTES);
        this.values[hole] = this.values[next];
        hole = next;
      }
      next = (next + 1) & mask;
    }
    this.values[hole] = undefined;
    if (this.slots > INITIAL_SLOTS && 8 * this.count < this.slots) this.resize(this.slots / 2);
    return true;
  }

  /** The slot holding `update`'s envelope, or -1; leaves its key in `probe`, and in
   *  `sameHashSeen` how many keys of its payload hash (other signatures) the run holds. */
  private find(update: Update): number {
    const probe = this.probe;
    copySigned(update, probe, 0);
    const mask = this.slots - 1;
    this.sameHashSeen = 0;
    for (let slot = this.home(probe, 0); this.values[slot] !== undefined; slot = (slot + 1) & mask) {
      if (!this.sameHashAt(slot)) continue;
      if (this.sameSignatureAt(slot)) return slot;
      this.sameHashSeen++;
    }
    return -1;
  }

  /** The key in `slot` has the payload hash of `probe` (the last 32 bytes). */
  private sameHashAt(slot: number): boolean {
    const keys = this.keys;
    const probe = this.probe;
    const at = slot * SIGNED_KEY_BYTES;
    for (let i = SIGNED_KEY_BYTES - 1; i >= 64; i--) if (keys[at + i] !== probe[i]) return false;
    return true;
  }

  /** The key in `slot` has the signature of `probe` (the first 64 bytes). */
  private sameSignatureAt(slot: number): boolean {
    const keys = this.keys;
    const probe = this.probe;
    const at = slot * SIGNED_KEY_BYTES;
    for (let i = 0; i < 64; i++) if (keys[at + i] !== probe[i]) return false;
    return true;
  }

  /** The first slot to try for the key at `at` in `bytes`: from its payload hash alone. */
  private home(bytes: Uint8Array, at: number): number {
    const m = this.multipliers;
    const h = Math.imul(word(bytes, at + 64), m[0]!) + Math.imul(word(bytes, at + 68), m[1]!);
    return (h >>> this.shift) & (this.slots - 1);
  }

  /** Puts a key known to be absent into the first free slot of its run. */
  private place(key: Uint8Array, at: number, value: V): void {
    const mask = this.slots - 1;
    let slot = this.home(key, at);
    while (this.values[slot] !== undefined) slot = (slot + 1) & mask;
    const keys = this.keys;
    const to = slot * SIGNED_KEY_BYTES;
    for (let i = 0; i < SIGNED_KEY_BYTES; i++) keys[to + i] = key[at + i]!;
    this.values[slot] = value;
  }

  private resize(slots: number): void {
    const keys = this.keys;
    const values = this.values;
    this.slots = slots;
    this.shift = 32 - Math.log2(slots);
    this.keys = new Uint8Array(slots * SIGNED_KEY_BYTES);
    this.values = new Array<V | undefined>(slots).fill(undefined);
    for (let i = 0; i < values.length; i++) {
      const value = values[i];
      if (value !== undefined) this.place(keys, i * SIGNED_KEY_BYTES, value);
    }
  }
}

/** The 32-bit little-endian word at `at`. */
function word(bytes: Uint8Array, at: number): number {
  return bytes[at]! | (bytes[at + 1]! << 8) | (bytes[at + 2]! << 16) | (bytes[at + 3]! << 24);
}
