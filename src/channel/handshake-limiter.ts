// HandshakeLimiter: caps handshakes in progress per remote address and in total, so a flood of
// half-open connections costs a listener bounded memory and no DH (a Node/listener concern).
import { MAX_PENDING_HANDSHAKES, MAX_PENDING_HANDSHAKES_PER_ADDRESS } from '../limits.ts';
import { assertInteger, assertString } from '../util/bytes.ts';

/** Options of {@link HandshakeLimiter}. */
export interface HandshakeLimiterOptions {
  /** Handshakes in progress from one address. Default MAX_PENDING_HANDSHAKES_PER_ADDRESS (4). */
  perAddress?: number;
  /** Handshakes in progress in total. Default MAX_PENDING_HANDSHAKES (128). */
  total?: number;
}

/** Releases a slot; calling it more than once has no further effect. */
export type ReleaseHandshake = () => void;

/**
 * Counts pending handshakes. A listener calls `tryAcquire(remoteAddress)` on each accepted
 * connection, closes the connection unread when it returns null, and releases the slot when the
 * handshake settles (success or failure).
 */
export class HandshakeLimiter {
  private readonly perAddress: number;
  private readonly max: number;
  private readonly byAddress = new Map<string, number>();
  private count = 0;

  /** @throws TypeError / RangeError for a limit that is not an integer >= 1. */
  constructor(options: HandshakeLimiterOptions = {}) {
    this.perAddress = options.perAddress ?? MAX_PENDING_HANDSHAKES_PER_ADDRESS;
    this.max = options.total ?? MAX_PENDING_HANDSHAKES;
    assertInteger(this.perAddress, 'perAddress', 1, 2 ** 31 - 1);
    assertInteger(this.max, 'total', 1, 2 ** 31 - 1);
  }

  /** Handshakes in progress in total. */
  get pending(): number {
    return this.count;
  }

  /** Handshakes in progress from `address`. */
  pendingFor(address: string): number {
    return this.byAddress.get(address) ?? 0;
  }

  /**
   * A slot for a handshake from `address`, or null when either limit is reached.
   * @throws TypeError / RangeError unless `address` is a non-empty string.
   */
  tryAcquire(address: string): ReleaseHandshake | null {
    assertString(address, 'address', 1024);
    const current = this.byAddress.get(address) ?? 0;
    if (this.count >= this.max || current >= this.perAddress) return null;
    this.byAddress.set(address, current + 1);
    this.count++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.count--;
      const left = (this.byAddress.get(address) ?? 1) - 1;
      if (left === 0) this.byAddress.delete(address);
      else this.byAddress.set(address, left);
    };
  }
}
