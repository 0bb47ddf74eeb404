// Message 1 replay guard: psk0 authenticates message 1 but cannot make it fresh, so a recorded
// one opens again. The responder remembers the ephemeral keys of the messages 1 it accepted.
//
// How it works with the timestamp inside message 1 (timestamp-payload.ts): a responder refuses a
// message 1 whose timestamp is more than the freshness window (HANDSHAKE_FRESHNESS_MS) from its
// clock, so a recording can only be replayed while its timestamp is in the window. This memory
// closes that gap within one process: each accepted ephemeral is kept until its timestamp leaves
// the window (`expiresAt` = timestamp + window), the whole time a replay of it could pass the
// freshness check. What neither covers: a recording replayed inside its window to another member
// process, or to this one after a restart, or after the memory was full (see MESSAGE_1_REPLAY_MEMORY);
// that costs the responder a DH and a reply, never a session (the replayer cannot finish).

import { MESSAGE_1_REPLAY_MEMORY } from '../limits.ts';

export { MESSAGE_1_REPLAY_MEMORY };

/** Bounded set of 32-byte ephemeral public keys, each remembered until its expiry time. */
export class ReplayGuard {
  /** key -> expiresAt (ms), in insertion order. */
  private readonly seen = new Map<string, number>();

  constructor(private readonly capacity: number = MESSAGE_1_REPLAY_MEMORY) {}

  /** Keys currently remembered. */
  get size(): number {
    return this.seen.size;
  }

  /**
   * Records `ephemeral` until `expiresAt` (inclusive; same clock and unit as `now`). False when it
   * is already recorded and not expired (a replay). When the memory is full, expired keys go first;
   * if none has expired, the oldest is forgotten early (policy: bounded memory over a perfect record;
   * forgetting re-opens a replay of that one key inside its window, costing us a DH and a reply).
   */
  firstSight(ephemeral: Uint8Array, now: number, expiresAt: number): boolean {
    const key = Buffer.from(ephemeral.buffer, ephemeral.byteOffset, ephemeral.length).toString('latin1');
    const known = this.seen.get(key);
    if (known !== undefined && known >= now) return false;
    this.seen.delete(key);
    for (const [oldest, expiry] of this.seen) { // cheap: expired keys at the front
      if (expiry >= now) break;
      this.seen.delete(oldest);
    }
    if (this.seen.size >= this.capacity) {
      for (const [k, expiry] of this.seen) if (expiry < now) this.seen.delete(k); // only when full: any expired key
      if (this.seen.size >= this.capacity) this.seen.delete(this.seen.keys().next().value!);
    }
    this.seen.set(key, expiresAt);
    return true;
  }
}
