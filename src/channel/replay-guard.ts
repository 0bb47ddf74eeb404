// Message 1 replay guard: psk0 authenticates message 1 but cannot make it fresh, so a recorded
// one opens again. The responder remembers the ephemeral keys of the messages 1 it accepted.

import { MESSAGE_1_REPLAY_MEMORY } from '../limits.ts';

export { MESSAGE_1_REPLAY_MEMORY };

/** Bounded first-in-first-out set of 32-byte ephemeral public keys. */
export class ReplayGuard {
  private readonly seen = new Set<string>();

  constructor(private readonly capacity: number = MESSAGE_1_REPLAY_MEMORY) {}

  /** Records `ephemeral`; false when it was already recorded (a replay). */
  firstSight(ephemeral: Uint8Array): boolean {
    const key = Buffer.from(ephemeral.buffer, ephemeral.byteOffset, ephemeral.length).toString('latin1');
    if (this.seen.has(key)) return false;
    if (this.seen.size >= this.capacity) this.seen.delete(this.seen.values().next().value!);
    this.seen.add(key);
    return true;
  }
}
