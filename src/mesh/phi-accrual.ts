// The phi-accrual failure detector (Hayashibara et al. 2004) for one monitored member: a bounded
// window of heartbeat intervals, their running mean and deviation, and the suspicion level phi.
import {
  PHI_ACCEPTABLE_HEARTBEAT_PAUSE_MS,
  PHI_FIRST_HEARTBEAT_ESTIMATE_MS,
  PHI_MAX_SAMPLE_SIZE,
  PHI_MAX_SAMPLE_SIZE_CEILING,
  PHI_MIN_STD_DEVIATION_MS,
  PHI_THRESHOLD,
} from '../limits.ts';
import { assertInteger } from '../util/bytes.ts';

/** Options of a PhiAccrualDetector; every duration is in milliseconds. */
export interface PhiAccrualOptions {
  /** Phi at or above which the member is unavailable. Default PHI_THRESHOLD (8: convicted
   *  once the model gives a live member a 10^-8 chance of being this late). */
  threshold?: number;
  /** Intervals kept (allocated once, 8 bytes each); past it the oldest is forgotten.
   *  Default PHI_MAX_SAMPLE_SIZE; at most PHI_MAX_SAMPLE_SIZE_CEILING. */
  maxSampleSize?: number;
  /** Floor on the standard deviation, so perfectly regular heartbeats do not make phi jump
   *  to the threshold on the first millisecond of lateness. Default PHI_MIN_STD_DEVIATION_MS. */
  minStdDeviationMs?: number;
  /** Lateness tolerated before phi starts to rise in earnest (a GC pause, a lost round): added
   *  to the mean. Default PHI_ACCEPTABLE_HEARTBEAT_PAUSE_MS. */
  acceptableHeartbeatPauseMs?: number;
  /** Interval assumed before any is measured: the first heartbeat seeds the window with
   *  estimate ± estimate/4, so a member heard from once is still convicted if it falls silent.
   *  Set it to the expected heartbeat interval. Default PHI_FIRST_HEARTBEAT_ESTIMATE_MS. */
  firstHeartbeatEstimateMs?: number;
}

// Logistic approximation of the standard normal CDF (Bowling et al. 2009, "A logistic
// approximation to the cumulative normal distribution"; the one Akka uses):
//   Φ(y) ≈ 1 / (1 + e^-z),   z = y·(A + B·y²),
// absolute error below 1.4e-4 everywhere. It needs one exp instead of an erf series, and its
// tail 1 - Φ(y) ≈ 1 / (1 + e^z) has a closed-form logarithm, so
//   phi = -log10(1 - Φ(y)) = log10(1 + e^z) = softplus(z) / ln 10,
// which we evaluate without overflow for any y. Far in the tail the approximation is not the
// normal distribution (it decays like e^-z, not e^-y²/2); that is fine, as phi is a suspicion
// scale, not a probability anyone relies on, and it stays strictly increasing in y.
const A = 1.5976;
const B = 0.070566;

/** log(1 + e^z) without overflow (z + log1p(e^-z) for positive z). */
const softplus = (z: number): number => (z > 0 ? z + Math.log1p(Math.exp(-z)) : Math.log1p(Math.exp(z)));

/** The y at which phi reaches `threshold`: the one real root of B·y³ + A·y = ln(10^t - 1). */
function yAtThreshold(threshold: number): number {
  // z = ln(10^t - 1), written so that it neither overflows (t > 308) nor loses t (t < 1e-16).
  const x = threshold * Math.LN10;
  const z = x > 1 ? x + Math.log1p(-Math.exp(-x)) : Math.log(Math.expm1(x));
  // Depressed cubic y³ + p·y + q = 0 with p > 0, so one real root (Cardano). Its two cube-root
  // terms u, v satisfy u·v = -p/3; taking u on the side of -q/2 avoids cancellation.
  const p = A / B;
  const q = -z / B;
  const root = Math.sqrt((q * q) / 4 + (p * p * p) / 27);
  const u = Math.cbrt(-q / 2 + (q <= 0 ? root : -root));
  return u - p / (3 * u);
}

/**
 * A phi-accrual failure detector for one member (Hayashibara et al., "The φ Accrual Failure
 * Detector", 2004; parameters after Akka's PhiAccrualFailureDetector). Each heartbeat arrival
 * adds the interval since the previous one to a window of at most `maxSampleSize` intervals;
 * phi(now) = -log10(P(an interval longer than now - last heartbeat)), the intervals taken as
 * normal with the window's mean + acceptableHeartbeatPauseMs and its standard deviation
 * (at least minStdDeviationMs).
 *
 * The clock is the caller's: every method takes `now` in ms, which must come from a monotonic
 * clock (`performance.now()`, not `Date.now()`, which steps). Memory is fixed at construction,
 * whatever the member's timing.
 *
 * @throws TypeError / RangeError from the constructor on a bad option, naming it.
 */
export class PhiAccrualDetector {
  readonly threshold: number;
  readonly maxSampleSize: number;
  readonly minStdDeviationMs: number;
  readonly acceptableHeartbeatPauseMs: number;
  readonly firstHeartbeatEstimateMs: number;

  /** Ring buffer of intervals: `count` of them, the oldest at `head` once full. */
  private readonly intervals: Float64Array;
  private count = 0;
  private head = 0;
  /** Running mean of the window and sum of squared deviations from it (Welford's update,
   *  extended to replace the oldest interval once the window is full). */
  private meanMs = 0;
  private m2 = 0;
  /** Replacements since the stats were last recomputed from the window. */
  private sinceExact = 0;
  private last: number | undefined;
  /** Elapsed time since the last heartbeat at which phi reaches the threshold. */
  private convictAfter = Infinity;
  /** Where the threshold lies in standard deviations past mean + pause (depends on threshold only). */
  private readonly yThreshold: number;

  constructor(options: PhiAccrualOptions = {}) {
    if (typeof options !== 'object' || options === null) {
      throw new TypeError(`"options" expected an object, got ${options === null ? 'null' : typeof options}`);
    }
    const {
      threshold = PHI_THRESHOLD,
      maxSampleSize = PHI_MAX_SAMPLE_SIZE,
      minStdDeviationMs = PHI_MIN_STD_DEVIATION_MS,
      acceptableHeartbeatPauseMs = PHI_ACCEPTABLE_HEARTBEAT_PAUSE_MS,
      firstHeartbeatEstimateMs = PHI_FIRST_HEARTBEAT_ESTIMATE_MS,
    } = options;
    this.threshold = checkNumber(threshold, 'threshold', 0, false);
    assertInteger(maxSampleSize, 'maxSampleSize', 1, PHI_MAX_SAMPLE_SIZE_CEILING);
    this.maxSampleSize = maxSampleSize;
    this.minStdDeviationMs = checkNumber(minStdDeviationMs, 'minStdDeviationMs', 0, false);
    this.acceptableHeartbeatPauseMs = checkNumber(acceptableHeartbeatPauseMs, 'acceptableHeartbeatPauseMs', 0, true);
    this.firstHeartbeatEstimateMs = checkNumber(firstHeartbeatEstimateMs, 'firstHeartbeatEstimateMs', 0, false);
    this.intervals = new Float64Array(this.maxSampleSize);
    this.yThreshold = yAtThreshold(this.threshold);
  }

  /**
   * Records a heartbeat arriving at `now`. Returns false, changing nothing, for a second
   * heartbeat at the same `now` (two arrivals within the clock's resolution are one). The
   * interval that ends a period of unavailability is not added to the window (the member is
   * back, but one long pause must not widen the estimate for the next maxSampleSize intervals).
   * @throws TypeError / RangeError if `now` is not a finite number; RangeError if it is
   *   earlier than the last heartbeat (the clock is not monotonic: a caller's bug).
   */
  heartbeat(now: number): boolean {
    checkNow(now);
    if (this.last === undefined) {
      // Seed the window with two intervals whose mean is the estimate and whose deviation is a
      // quarter of it (wide, as nothing is known yet). They age out like real samples.
      const spread = this.firstHeartbeatEstimateMs / 4;
      this.add(this.firstHeartbeatEstimateMs - spread);
      this.add(this.firstHeartbeatEstimateMs + spread);
    } else {
      if (now < this.last) throw new RangeError(`"now" went backwards: ${now} < last heartbeat ${this.last}`);
      if (now === this.last) return false;
      if (this.isAvailable(now)) this.add(now - this.last);
    }
    this.last = now;
    this.convictAfter = this.mean + this.acceptableHeartbeatPauseMs + this.yThreshold * this.deviation();
    return true;
  }

  /**
   * Suspicion that the member has failed, given silence since its last heartbeat until `now`:
   * 0 before the first heartbeat (a member not yet heard from is not suspected), log10(2) when
   * exactly mean + pause has elapsed, rising without bound as silence goes on. A `now` before
   * the last heartbeat is answered as of that heartbeat.
   * @throws TypeError / RangeError if `now` is not a finite number.
   */
  phi(now: number): number {
    checkNow(now);
    if (this.last === undefined) return 0;
    const elapsed = Math.max(0, now - this.last);
    const y = (elapsed - this.mean - this.acceptableHeartbeatPauseMs) / this.deviation();
    return softplus(y * (A + B * y * y)) / Math.LN10;
  }

  /**
   * Whether phi(now) < threshold. Computed as `now < unavailableAt()` (phi only rises with
   * silence, so the threshold is inverted once per heartbeat): one comparison per call, and a
   * timer set for unavailableAt() always finds the member unavailable.
   * @throws TypeError / RangeError if `now` is not a finite number.
   */
  isAvailable(now: number): boolean {
    checkNow(now);
    return this.last === undefined || now < this.last + this.convictAfter;
  }

  /** The earliest `now` at which isAvailable(now) is false if no heartbeat arrives first;
   *  undefined before the first heartbeat. */
  unavailableAt(): number | undefined {
    return this.last === undefined ? undefined : this.last + Math.max(0, this.convictAfter);
  }

  /** When the last heartbeat arrived; undefined before the first. */
  get lastHeartbeat(): number | undefined {
    return this.last;
  }

  /** Intervals in the window (the two seeded ones included): never above maxSampleSize. */
  get sampleCount(): number {
    return this.count;
  }

  /** Mean interval of the window (ms); 0 before the first heartbeat. */
  get mean(): number {
    return this.meanMs;
  }

  /** Standard deviation of the window's intervals (ms), before the minStdDeviationMs floor. */
  get stdDeviation(): number {
    return this.count === 0 ? 0 : Math.sqrt(Math.max(0, this.m2 / this.count));
  }

  private deviation(): number {
    return Math.max(this.stdDeviation, this.minStdDeviationMs);
  }

  /** Adds an interval, replacing the oldest once the window is full. */
  private add(x: number): void {
    if (this.count < this.maxSampleSize) {
      this.intervals[(this.head + this.count) % this.maxSampleSize] = x;
      this.count++;
      const d = x - this.meanMs;
      this.meanMs += d / this.count;
      this.m2 += d * (x - this.meanMs);
      return;
    }
    const old = this.intervals[this.head]!;
    this.intervals[this.head] = x;
    this.head = (this.head + 1) % this.maxSampleSize;
    // Replacing old by x keeps count: the mean moves by (x - old)/n, and the sum of squared
    // deviations by (x - old)·(x - mean' + old - mean).
    const mean = this.meanMs + (x - old) / this.count;
    this.m2 += (x - old) * (x - mean + old - this.meanMs);
    this.meanMs = mean;
    // Rounding errors of these updates accumulate; recomputing from the window once per
    // window's worth of replacements keeps them bounded at O(1) amortised cost.
    if (++this.sinceExact >= this.maxSampleSize) this.recompute();
  }

  private recompute(): void {
    let total = 0;
    for (let i = 0; i < this.count; i++) total += this.intervals[i]!;
    const mean = total / this.count;
    let m2 = 0;
    for (let i = 0; i < this.count; i++) m2 += (this.intervals[i]! - mean) ** 2;
    this.meanMs = mean;
    this.m2 = m2;
    this.sinceExact = 0;
  }
}

function checkNow(now: unknown): void {
  checkNumber(now, 'now', -Infinity, true);
}

/** Throws TypeError unless `value` is a number, RangeError unless it is finite and above
 *  `min` (or equal to it, if `inclusive`). */
function checkNumber(value: unknown, name: string, min: number, inclusive: boolean): number {
  if (typeof value !== 'number') throw new TypeError(`"${name}" expected number, got ${value === null ? 'null' : typeof value}`);
  if (!Number.isFinite(value)) throw new RangeError(`"${name}" expected a finite number, got ${value}`);
  if (value < min || (!inclusive && value === min)) {
    throw new RangeError(`"${name}" expected a number ${inclusive ? '>=' : '>'} ${min}, got ${value}`);
  }
  return value;
}
