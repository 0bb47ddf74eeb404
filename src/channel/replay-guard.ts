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
  /**
   * Every remembered key by expiry: a binary min-heap of (expiresAt, key) in two arrays. Expiries
   * come from peers' timestamps, so they are not in insertion order: without it, a full memory of
   * live keys was scanned whole at every handshake. An entry whose key was forgotten early, or
   * recorded again since, is skipped when it surfaces; the heap is rebuilt from `seen` once such
   * entries are more than half of it.
   */
  private expiries: number[] = [];
  private keys: string[] = [];

  constructor(private readonly capacity: number = MESSAGE_1_REPLAY_MEMORY) {}

  /** Keys currently remembered. */
  get size(): number {
    return this.seen.size;
  }

  /**
   * Records `ephemeral` until `expiresAt` (inclusive; same clock and unit as `now`). False when it
   * is already recorded and not expired (a replay). Expired keys are forgotten first; when the
   * memory is full of live keys, the oldest is forgotten early (policy: bounded memory over a
   * perfect record; forgetting re-opens a replay of that one key inside its window, costing us a
   * DH and a reply). O(log n) per call.
   */
  firstSight(ephemeral: Uint8Array, now: number, expiresAt: number): boolean {
    const key = Buffer.from(ephemeral.buffer, ephemeral.byteOffset, ephemeral.length).toString('latin1');
    const known = this.seen.get(key);
    if (known !== undefined && known >= now) return false;
    this.seen.delete(key);
    while (this.expiries.length > 0 && this.expiries[0]! < now) {
      const [expiry, oldest] = this.pop();
      if (this.seen.get(oldest) === expiry) this.seen.delete(oldest);
    }
    if (this.seen.size >= this.capacity) this.seen.delete(this.seen.keys().next().value!);
    this.seen.set(key, expiresAt);
    this.push(expiresAt, key);
    if (this.expiries.length > 2 * this.seen.size + 64) this.rebuild();
    return true;
  }

  private push(expiry: number, key: string): void {
    const e = this.expiries;
    const k = this.keys;
    let i = e.length;
    e.push(expiry);
    k.push(key);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (e[parent]! <= expiry) break;
      e[i] = e[parent]!;
      k[i] = k[parent]!;
      i = parent;
    }
    e[i] = expiry;
    k[i] = key;
  }

  private pop(): [number, string] {
    const e = this.expiries;
    const k = this.keys;
    const top: [number, string] = [e[0]!, k[0]!];
    const lastE = e.pop()!;
    const lastK = k.pop()!;
    if (e.length > 0) this.siftDown(0, lastE, lastK);
    return top;
  }

  /** Places (expiry, key) at `i` or below, moving smaller children up. */
  private siftDown(i: number, expiry: number, key: string): void {
    const e = this.expiries;
    const k = this.keys;
    const n = e.length;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= n) break;
      if (child + 1 < n && e[child + 1]! < e[child]!) child++;
      if (e[child]! >= expiry) break;
      e[i] = e[child]!;
      k[i] = k[child]!;
      i = child;
    }
    e[i] = expiry;
    k[i] = key;
  }

  /** The heap of exactly the remembered keys. */
  private rebuild(): void {
    this.expiries = [...this.seen.values()];
    this.keys = [...this.seen.keys()];
    for (let i = (this.expiries.length >> 1) - 1; i >= 0; i--) this.siftDown(i, this.expiries[i]!, this.keys[i]!);
  }
}
