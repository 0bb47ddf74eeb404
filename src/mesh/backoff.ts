// Reconnect delays: exponential backoff with "full jitter", one instance per peer being redialled,
// with an injectable random source so tests (and simulations) are deterministic.
import { RECONNECT_BASE_MS, RECONNECT_MAX_MS } from '../limits.ts';
import { assertInteger } from '../util/bytes.ts';

/** Longest delay setTimeout honours (2^31 - 1 ms, about 24.8 days); past it Node fires after 1 ms. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Options of a Backoff. */
export interface BackoffOptions {
  /** Ceiling (ms) of the first delay; it doubles after each next(). Default RECONNECT_BASE_MS. */
  baseMs?: number;
  /** Highest ceiling (ms); at least baseMs, at most 2^31 - 1. Default RECONNECT_MAX_MS. */
  maxMs?: number;
  /** Uniform random numbers in [0, 1). Default Math.random. */
  random?: () => number;
}

/**
 * Exponential backoff with full jitter (Brooker, "Exponential Backoff And Jitter", AWS
 * Architecture Blog, 2015): the n-th delay since the last reset (n = 0, 1, ...) is uniform over
 * the integers [0, min(maxMs, baseMs·2^n)].
 *
 * Policy: full jitter rather than decorrelated jitter. A reconnect costs both ends a dial and a
 * Noise handshake, and the herd to break up is every node redialling a seed that just
 * restarted; in the blog's simulation full jitter got the work done with the fewest calls
 * (decorrelated finished slightly sooner). Its n-th delay depends only on n and one random draw,
 * so its range is exact and the state is one number; decorrelated jitter's range depends on the
 * previous draw. A draw near 0 retries at once, which is harmless: the ceiling doubles every time.
 *
 * @throws TypeError / RangeError from the constructor on a bad option, naming it.
 */
export class Backoff {
  readonly baseMs: number;
  readonly maxMs: number;
  private readonly random: () => number;
  private ceiling: number;
  private count = 0;

  constructor(options: BackoffOptions = {}) {
    if (typeof options !== 'object' || options === null) {
      throw new TypeError(`"options" expected an object, got ${options === null ? 'null' : typeof options}`);
    }
    const { baseMs = RECONNECT_BASE_MS, maxMs = RECONNECT_MAX_MS, random = Math.random } = options;
    assertInteger(baseMs, 'baseMs', 1, MAX_TIMER_MS);
    assertInteger(maxMs, 'maxMs', baseMs, MAX_TIMER_MS);
    if (typeof random !== 'function') throw new TypeError(`"random" expected a function, got ${typeof random}`);
    this.baseMs = baseMs;
    this.maxMs = maxMs;
    this.random = random;
    this.ceiling = baseMs;
  }

  /**
   * The delay (integer ms) before the next attempt, and one step up the exponential.
   * @throws TypeError / RangeError if `random` returns anything but a number in [0, 1).
   */
  next(): number {
    const r = this.random();
    if (typeof r !== 'number') throw new TypeError(`"random" expected to return a number, got ${typeof r}`);
    if (!(r >= 0 && r < 1)) throw new RangeError(`"random" expected to return a number in [0, 1), got ${r}`);
    // r < 1 keeps r·(ceiling + 1) below ceiling + 1 after rounding too (ceiling < 2^31), so
    // the delay is an integer in [0, ceiling], ceiling included.
    const delay = Math.floor(r * (this.ceiling + 1));
    this.ceiling = Math.min(this.maxMs, this.ceiling * 2); // stops at maxMs: no overflow however long
    this.count++;
    return delay;
  }

  /** Back to the first delay's ceiling; call it once a connection has succeeded. */
  reset(): void {
    this.ceiling = this.baseMs;
    this.count = 0;
  }

  /** Delays handed out since construction or the last reset(). */
  get attempts(): number {
    return this.count;
  }

  /** Ceiling (ms) of the delay the next call to next() will draw. */
  get nextCeilingMs(): number {
    return this.ceiling;
  }
}
