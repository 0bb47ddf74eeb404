// PhiAccrualDetector with an injected clock (every `now` is a number chosen here): phi rising with
// silence, conviction at a computed moment (just before / just after), recovery, bootstrap from
// the first-heartbeat estimate, the window bound, one long pause, and hostile arguments.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { PhiAccrualDetector, type PhiAccrualOptions } from '../../src/mesh/phi-accrual.ts';
import {
  PHI_ACCEPTABLE_HEARTBEAT_PAUSE_MS,
  PHI_FIRST_HEARTBEAT_ESTIMATE_MS,
  PHI_MAX_SAMPLE_SIZE,
  PHI_MAX_SAMPLE_SIZE_CEILING,
  PHI_MIN_STD_DEVIATION_MS,
  PHI_THRESHOLD,
} from '../../src/limits.ts';
import { Prng } from '../helpers/prng.ts';

const LOG10_2 = Math.log10(2);
/** Where phi = 8 lies, in standard deviations past mean + pause: the real root of
 *  0.070566·y³ + 1.5976·y = ln(10^8 - 1) = 18.42068..., solved by hand (Cardano). */
const Y_AT_8 = 5.225986644;

/** A detector fed `count` heartbeats `interval` ms apart, starting at `start`; returns the last time. */
function feed(d: PhiAccrualDetector, count: number, interval: number, start = 0): number {
  let t = start;
  for (let i = 0; i < count; i++, t += interval) d.heartbeat(t);
  return t - interval;
}

/** The earliest time (to 1e-6 ms) at which d.phi reaches `threshold`, by bisection on phi alone. */
function bisectCrossing(d: PhiAccrualDetector, threshold: number): number {
  let lo = d.lastHeartbeat!;
  let hi = lo + 1;
  while (d.phi(hi) < threshold) hi = lo + (hi - lo) * 2;
  while (hi - lo > 1e-6) {
    const mid = (lo + hi) / 2;
    if (d.phi(mid) < threshold) lo = mid;
    else hi = mid;
  }
  return hi;
}

// ---- phi and silence -----------------------------------------------------------------------------

test('before any heartbeat: phi 0, available, no conviction time (a member not yet heard from is not suspected)', () => {
  const d = new PhiAccrualDetector();
  assert.is(d.phi(0), 0);
  assert.is(d.phi(1e12), 0);
  assert.ok(d.isAvailable(1e12));
  assert.is(d.unavailableAt(), undefined);
  assert.is(d.lastHeartbeat, undefined);
  assert.is(d.sampleCount, 0);
});

test('phi never falls with silence and rises strictly once above 0, passing log10(2) exactly at mean + acceptable pause', () => {
  const d = new PhiAccrualDetector();
  const last = feed(d, 50, 1000);
  assert.is(d.mean, 1000);
  let previous = 0;
  for (let late = 0; late <= 20_000; late += 100) {
    const phi = d.phi(last + late);
    // Far before mean + pause, e^z underflows and phi is exactly 0.
    assert.ok(previous > 0 ? phi > previous : phi >= previous, `phi(${late}) = ${phi} after ${previous}`);
    previous = phi;
  }
  assert.ok(Math.abs(d.phi(last + 1000 + PHI_ACCEPTABLE_HEARTBEAT_PAUSE_MS) - LOG10_2) < 1e-12);
  assert.ok(d.phi(last + 1000) < 0.01, 'on time: barely any suspicion');
  assert.ok(previous > 1000, `20 s late: phi ${previous}`);
});

test('steady heartbeats with jitter keep phi low: 10,000 arrivals 1000 ± 50 ms, phi below 1 at every arrival', () => {
  const rng = new Prng(7);
  const d = new PhiAccrualDetector();
  let t = 0;
  let worst = 0;
  for (let i = 0; i < 10_000; i++) {
    t += 950 + rng.int(101);
    worst = Math.max(worst, d.phi(t));
    assert.ok(d.isAvailable(t));
    assert.ok(d.heartbeat(t));
  }
  assert.ok(worst < 1, `worst phi at arrival ${worst}`);
  assert.is(d.sampleCount, PHI_MAX_SAMPLE_SIZE);
});

// ---- conviction at the threshold --------------------------------------------------------------

test('threshold crossing at the computed moment: mean 1000, deviation floored to 100, no pause: available at +1522 ms, not at +1523', () => {
  // 20 heartbeats exactly 1000 ms apart into a window of 10: the seeded intervals have aged out,
  // the deviation is 0, so the floor (100) applies; phi = 8 at 1000 + 5.2259866·100 = 1522.6 ms.
  const d = new PhiAccrualDetector({ maxSampleSize: 10, minStdDeviationMs: 100, acceptableHeartbeatPauseMs: 0 });
  const last = feed(d, 20, 1000);
  assert.is(d.mean, 1000);
  assert.is(d.stdDeviation, 0);
  const at = d.unavailableAt()!;
  assert.ok(Math.abs(at - (last + 1000 + Y_AT_8 * 100)) < 1e-6, `unavailableAt ${at - last} after the last heartbeat`);

  assert.ok(d.isAvailable(last + 1522));
  assert.ok(d.phi(last + 1522) < PHI_THRESHOLD);
  assert.not.ok(d.isAvailable(last + 1523));
  assert.ok(d.phi(last + 1523) > PHI_THRESHOLD);
  assert.not.ok(d.isAvailable(at), 'a timer set for unavailableAt() finds the member unavailable');
  assert.ok(d.isAvailable(at - 1e-6));
});

test('threshold crossing agrees with bisection on phi alone, for thresholds 0.5 to 50 and the default options', () => {
  for (const threshold of [1e-3, 0.5, 1, 3, PHI_THRESHOLD, 16, 50, 400]) {
    const d = new PhiAccrualDetector({ threshold });
    const rng = new Prng(Math.round(threshold * 1000));
    let t = 0;
    for (let i = 0; i < 300; i++) d.heartbeat((t += 900 + rng.int(201)));
    const at = d.unavailableAt()!;
    assert.ok(Math.abs(at - bisectCrossing(d, threshold)) < 1e-5, `threshold ${threshold}`);
    assert.ok(Math.abs(d.phi(at) - threshold) < 1e-9 * threshold, `phi(unavailableAt) = ${d.phi(at)} for ${threshold}`);
    assert.ok(d.isAvailable(at - 0.001) && !d.isAvailable(at));
  }
});

test('recovery: a convicted member that sends a heartbeat is available again at once', () => {
  const d = new PhiAccrualDetector();
  const last = feed(d, 100, 1000);
  assert.not.ok(d.isAvailable(last + 30_000));
  assert.ok(d.heartbeat(last + 30_000));
  assert.ok(d.isAvailable(last + 30_000));
  assert.ok(d.phi(last + 30_000) < 0.01);
  assert.ok(d.isAvailable(last + 31_000));
});

test('one long pause does not poison the estimate: the interval that ends a conviction is not recorded', () => {
  const d = new PhiAccrualDetector();
  const last = feed(d, 100, 1000);
  const before = { mean: d.mean, sd: d.stdDeviation, n: d.sampleCount, at: d.unavailableAt()! - last };

  d.heartbeat(last + 60_000); // one minute of silence, convicted long before
  assert.is(d.mean, before.mean);
  assert.is(d.stdDeviation, before.sd);
  assert.is(d.sampleCount, before.n);
  assert.ok(Math.abs(d.unavailableAt()! - (last + 60_000) - before.at) < 1e-9, 'the next conviction comes as soon as before');

  // A pause inside the allowance is recorded: that is the detector adapting.
  const resumed = last + 60_000;
  d.heartbeat(resumed + 2500);
  assert.is(d.sampleCount, before.n + 1);
  assert.ok(d.mean > before.mean);
});

// ---- bootstrap ---------------------------------------------------------------------------------

test('first heartbeat: the window is seeded with estimate ± estimate/4, so one heartbeat then silence still convicts', () => {
  const d = new PhiAccrualDetector();
  assert.ok(d.heartbeat(5000));
  const est = PHI_FIRST_HEARTBEAT_ESTIMATE_MS;
  assert.is(d.sampleCount, 2);
  assert.is(d.mean, est);
  assert.is(d.stdDeviation, est / 4);
  assert.is(d.lastHeartbeat, 5000);
  assert.ok(Math.abs(d.phi(5000 + est + PHI_ACCEPTABLE_HEARTBEAT_PAUSE_MS) - LOG10_2) < 1e-12);
  const at = d.unavailableAt()!;
  assert.ok(Math.abs(at - (5000 + est + PHI_ACCEPTABLE_HEARTBEAT_PAUSE_MS + Y_AT_8 * (est / 4))) < 1e-6);
  assert.ok(d.isAvailable(at - 1));
  assert.not.ok(d.isAvailable(at + 1));
});

test('first heartbeat: a larger estimate convicts later; the seeds age out as real intervals arrive', () => {
  const slow = new PhiAccrualDetector({ firstHeartbeatEstimateMs: 10_000 });
  const fast = new PhiAccrualDetector({ firstHeartbeatEstimateMs: 500 });
  slow.heartbeat(0);
  fast.heartbeat(0);
  assert.ok(slow.unavailableAt()! > fast.unavailableAt()! + 9000);

  // The 500 ms guess is wrong (real interval 1000), but within the pause allowance: the real
  // intervals are recorded and the mean walks to 1000.
  feed(fast, 400, 1000);
  assert.is(fast.mean, 1000);
});

test('bootstrap with few samples: two real intervals still leave the seeds dominating the deviation', () => {
  const d = new PhiAccrualDetector();
  feed(d, 3, 1000); // seeds 750, 1250 and two intervals of 1000
  assert.is(d.sampleCount, 4);
  assert.is(d.mean, 1000);
  assert.ok(Math.abs(d.stdDeviation - Math.sqrt((250 ** 2 * 2) / 4)) < 1e-9);
});

// ---- the window bound ----------------------------------------------------------------------------

test(`window: at ${PHI_MAX_SAMPLE_SIZE} samples the first seed is dropped, at ${PHI_MAX_SAMPLE_SIZE} + 1 the second (limit and limit+1)`, () => {
  const d = new PhiAccrualDetector();
  // k heartbeats hold 2 seeds + (k - 1) intervals.
  feed(d, PHI_MAX_SAMPLE_SIZE - 1, 1000);
  assert.is(d.sampleCount, PHI_MAX_SAMPLE_SIZE);
  assert.ok(Math.abs(d.stdDeviation - Math.sqrt((2 * 250 ** 2) / PHI_MAX_SAMPLE_SIZE)) < 1e-9, 'both seeds in');
  d.heartbeat((PHI_MAX_SAMPLE_SIZE - 1) * 1000);
  assert.is(d.sampleCount, PHI_MAX_SAMPLE_SIZE);
  assert.ok(Math.abs(d.mean - (1000 + 250 / PHI_MAX_SAMPLE_SIZE)) < 1e-9, '750 gone, 1250 still in');
  d.heartbeat(PHI_MAX_SAMPLE_SIZE * 1000);
  assert.is(d.sampleCount, PHI_MAX_SAMPLE_SIZE);
  assert.is(d.mean, 1000);
  assert.is(d.stdDeviation, 0);
});

test('window: after 1,000,000 heartbeats the window still holds maxSampleSize intervals, and the running stats match the window exactly', () => {
  const size = PHI_MAX_SAMPLE_SIZE;
  const d = new PhiAccrualDetector();
  const rng = new Prng(42);
  const recent: number[] = [];
  let t = 0;
  d.heartbeat(t);
  for (let i = 0; i < 1_000_000; i++) {
    // Mostly 1000 ± 100, sometimes a 1 ms burst or a 3 s lag: a peer choosing its own timing.
    const roll = rng.int(100);
    const interval = roll === 0 ? 1 : roll === 1 ? 3000 + rng.next() : 900 + rng.int(201) + rng.next();
    t += interval;
    const recorded = d.isAvailable(t);
    d.heartbeat(t);
    if (recorded) {
      recent.push(interval);
      if (recent.length > size) recent.shift();
    }
    assert.ok(d.sampleCount <= size);
  }
  assert.is(d.sampleCount, size);
  assert.is(recent.length, size);
  const mean = recent.reduce((a, b) => a + b, 0) / size;
  const sd = Math.sqrt(recent.reduce((a, b) => a + (b - mean) ** 2, 0) / size);
  assert.ok(Math.abs(d.mean - mean) < 1e-9 * mean, `mean ${d.mean} vs ${mean}`);
  assert.ok(Math.abs(d.stdDeviation - sd) < 1e-6 * sd, `sd ${d.stdDeviation} vs ${sd}`);
});

test('window: a change of scale (10,000 s intervals, then 1 s ones) leaves no rounding residue once two windows have passed', () => {
  const d = new PhiAccrualDetector({ firstHeartbeatEstimateMs: 1e7 });
  const rng = new Prng(3);
  let t = 0;
  for (let i = 0; i < 500; i++) d.heartbeat((t += 1e7 + rng.next() * 1e6));
  assert.ok(d.stdDeviation > 1e5);
  for (let i = 0; i < 2 * PHI_MAX_SAMPLE_SIZE; i++) d.heartbeat((t += 1000));
  assert.is(d.mean, 1000);
  assert.is(d.stdDeviation, 0);
});

// ---- pathological times ---------------------------------------------------------------------------

test('the same timestamp twice is one heartbeat: ignored (false), nothing recorded', () => {
  const d = new PhiAccrualDetector();
  const last = feed(d, 10, 1000);
  const n = d.sampleCount;
  const at = d.unavailableAt();
  assert.is(d.heartbeat(last), false);
  assert.is(d.sampleCount, n);
  assert.is(d.lastHeartbeat, last);
  assert.is(d.unavailableAt(), at);
  assert.ok(d.heartbeat(last + 1000));
  assert.is(d.sampleCount, n + 1);
});

test('time going backwards: heartbeat throws RangeError naming "now" and changes nothing; queries answer as of the last heartbeat', () => {
  const d = new PhiAccrualDetector();
  const last = feed(d, 10, 1000);
  const n = d.sampleCount;
  assert.throws(() => d.heartbeat(last - 1), (e: unknown) => e instanceof RangeError && /"now" went backwards/.test(e.message));
  assert.is(d.sampleCount, n);
  assert.is(d.lastHeartbeat, last);
  assert.is(d.phi(last - 5000), d.phi(last));
  assert.ok(d.isAvailable(last - 5000));
});

test('extreme silences give finite-or-infinite phi, never NaN, and no conviction before the last heartbeat', () => {
  const d = new PhiAccrualDetector();
  feed(d, 10, 1000);
  for (const now of [1e6, 1e15, 1e100, Number.MAX_VALUE]) {
    const phi = d.phi(now);
    assert.ok(phi > PHI_THRESHOLD && !Number.isNaN(phi), `phi(${now}) = ${phi}`);
    assert.not.ok(d.isAvailable(now));
  }
  // A threshold below phi at the heartbeat itself (about 8e-6 here) convicts at the last
  // heartbeat, not before it.
  const eager = new PhiAccrualDetector({ threshold: 1e-6, acceptableHeartbeatPauseMs: 0 });
  eager.heartbeat(100);
  assert.ok(eager.phi(100) > 1e-6);
  assert.is(eager.unavailableAt(), 100);
  assert.not.ok(eager.isAvailable(100));
});

// ---- hostile arguments -----------------------------------------------------------------------------

const HOSTILE_NOW: [string, unknown, ErrorConstructor][] = [
  ['NaN', NaN, RangeError],
  ['Infinity', Infinity, RangeError],
  ['-Infinity', -Infinity, RangeError],
  ['a string', '1000', TypeError],
  ['a bigint', 1000n, TypeError],
  ['undefined', undefined, TypeError],
  ['null', null, TypeError],
  ['an object', { valueOf: () => 1000 }, TypeError],
];

test('every method taking `now` refuses non-numbers (TypeError) and non-finite numbers (RangeError), naming "now"', () => {
  const d = new PhiAccrualDetector();
  feed(d, 5, 1000);
  for (const [what, now, type] of HOSTILE_NOW) {
    for (const call of [
      () => d.heartbeat(now as number),
      () => d.phi(now as number),
      () => d.isAvailable(now as number),
    ]) {
      assert.throws(call, (e: unknown) => e instanceof type && /"now"/.test((e as Error).message), what);
    }
  }
  assert.is(d.sampleCount, 6, 'nothing recorded');
});

test('options: each bad value throws naming the option; the edges are accepted (limit and limit+1)', () => {
  const bad: [PhiAccrualOptions | unknown, string, ErrorConstructor][] = [
    [null, 'options', TypeError],
    [5, 'options', TypeError],
    [{ threshold: 0 }, 'threshold', RangeError],
    [{ threshold: -1 }, 'threshold', RangeError],
    [{ threshold: NaN }, 'threshold', RangeError],
    [{ threshold: Infinity }, 'threshold', RangeError],
    [{ threshold: '8' }, 'threshold', TypeError],
    [{ maxSampleSize: 0 }, 'maxSampleSize', RangeError],
    [{ maxSampleSize: 1.5 }, 'maxSampleSize', RangeError],
    [{ maxSampleSize: PHI_MAX_SAMPLE_SIZE_CEILING + 1 }, 'maxSampleSize', RangeError],
    [{ maxSampleSize: '200' }, 'maxSampleSize', TypeError],
    [{ minStdDeviationMs: 0 }, 'minStdDeviationMs', RangeError],
    [{ minStdDeviationMs: NaN }, 'minStdDeviationMs', RangeError],
    [{ acceptableHeartbeatPauseMs: -1 }, 'acceptableHeartbeatPauseMs', RangeError],
    [{ acceptableHeartbeatPauseMs: Infinity }, 'acceptableHeartbeatPauseMs', RangeError],
    [{ firstHeartbeatEstimateMs: 0 }, 'firstHeartbeatEstimateMs', RangeError],
    [{ firstHeartbeatEstimateMs: null }, 'firstHeartbeatEstimateMs', TypeError],
  ];
  for (const [options, name, type] of bad) {
    assert.throws(
      () => new PhiAccrualDetector(options as PhiAccrualOptions),
      (e: unknown) => e instanceof type && (e as Error).message.includes(`"${name}"`),
      `${JSON.stringify(options)} -> ${type.name} naming ${name}`,
    );
  }
  const edge = new PhiAccrualDetector({ maxSampleSize: PHI_MAX_SAMPLE_SIZE_CEILING, acceptableHeartbeatPauseMs: 0, minStdDeviationMs: 1e-9 });
  assert.is(edge.maxSampleSize, PHI_MAX_SAMPLE_SIZE_CEILING);
  const one = new PhiAccrualDetector({ maxSampleSize: 1 });
  feed(one, 5, 1000);
  assert.is(one.sampleCount, 1);
  assert.is(one.mean, 1000);
});

test('defaults come from limits.ts', () => {
  const d = new PhiAccrualDetector();
  assert.equal(
    [d.threshold, d.maxSampleSize, d.minStdDeviationMs, d.acceptableHeartbeatPauseMs, d.firstHeartbeatEstimateMs],
    [PHI_THRESHOLD, PHI_MAX_SAMPLE_SIZE, PHI_MIN_STD_DEVIATION_MS, PHI_ACCEPTABLE_HEARTBEAT_PAUSE_MS, PHI_FIRST_HEARTBEAT_ESTIMATE_MS],
  );
});

test.run();
