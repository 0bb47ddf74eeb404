// Backoff with injected randomness: the ceiling doubles up to maxMs, every delay lies in
// [0, ceiling] for many seeds (and covers it), reset() starts over, and bad options or a bad
// random source throw naming the argument.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Backoff, type BackoffOptions } from '../../src/mesh/backoff.ts';
import { RECONNECT_BASE_MS, RECONNECT_MAX_MS } from '../../src/limits.ts';
import { Prng } from '../helpers/prng.ts';

/** The largest double below 1: the top of what a random source may return. */
const TOP = 1 - 2 ** -53;
const always = (r: number) => () => r;

test('grows: with the top random draw the delays are the ceilings 500, 1000, ... doubling to 30,000 and staying there', () => {
  const b = new Backoff({ random: always(TOP) });
  const delays = Array.from({ length: 10 }, () => b.next());
  assert.equal(delays, [500, 1000, 2000, 4000, 8000, 16_000, 30_000, 30_000, 30_000, 30_000]);
  assert.is(b.attempts, 10);
});

test('caps at max: 10,000 attempts never pass maxMs, the ceiling does not overflow', () => {
  const b = new Backoff({ random: always(TOP) });
  for (let i = 0; i < 10_000; i++) assert.ok(b.next() <= RECONNECT_MAX_MS);
  assert.is(b.next(), RECONNECT_MAX_MS);
  assert.is(b.nextCeilingMs, RECONNECT_MAX_MS);
  assert.is(b.attempts, 10_001);
});

test('the bottom random draw gives 0 at every step (full jitter: an immediate retry is possible)', () => {
  const b = new Backoff({ random: always(0) });
  for (let i = 0; i < 20; i++) assert.is(b.next(), 0);
});

test('jitter stays in [0, min(max, base·2^n)] for 1,000 seeds x 20 attempts, integer, and covers the range', () => {
  const base = 100;
  const max = 10_000;
  const seen = Array.from({ length: 20 }, () => ({ min: Infinity, max: -Infinity, sum: 0 }));
  for (let seed = 1; seed <= 1000; seed++) {
    const rng = new Prng(seed);
    const b = new Backoff({ baseMs: base, maxMs: max, random: () => rng.next() });
    for (let n = 0; n < 20; n++) {
      const ceiling = Math.min(max, base * 2 ** n);
      assert.is(b.nextCeilingMs, ceiling);
      const delay = b.next();
      assert.ok(Number.isInteger(delay) && delay >= 0 && delay <= ceiling, `seed ${seed}, attempt ${n}: ${delay} not in [0, ${ceiling}]`);
      const s = seen[n]!;
      s.min = Math.min(s.min, delay);
      s.max = Math.max(s.max, delay);
      s.sum += delay;
    }
  }
  for (let n = 0; n < 20; n++) {
    const ceiling = Math.min(max, base * 2 ** n);
    const s = seen[n]!;
    assert.ok(s.min <= ceiling * 0.01 && s.max >= ceiling * 0.99, `attempt ${n}: seen [${s.min}, ${s.max}] of [0, ${ceiling}]`);
    const mean = s.sum / 1000;
    assert.ok(Math.abs(mean - ceiling / 2) < ceiling * 0.05, `attempt ${n}: mean ${mean}, expected about ${ceiling / 2}`);
  }
});

test('two nodes backing off from the same failure do not retry in lockstep', () => {
  const a = new Prng(1);
  const c = new Prng(2);
  const x = new Backoff({ random: () => a.next() });
  const y = new Backoff({ random: () => c.next() });
  let same = 0;
  for (let i = 0; i < 20; i++) if (x.next() === y.next()) same++;
  assert.ok(same <= 1, `${same} of 20 delays equal`);
});

test('reset() after a success starts again from the base ceiling', () => {
  const b = new Backoff({ random: always(TOP) });
  for (let i = 0; i < 8; i++) b.next();
  b.reset();
  assert.is(b.attempts, 0);
  assert.is(b.nextCeilingMs, RECONNECT_BASE_MS);
  assert.is(b.next(), RECONNECT_BASE_MS);
  assert.is(b.next(), 2 * RECONNECT_BASE_MS);
  b.reset();
  b.reset(); // idempotent
  assert.is(b.next(), RECONNECT_BASE_MS);
});

test('maxMs equal to baseMs: a constant ceiling', () => {
  const b = new Backoff({ baseMs: 700, maxMs: 700, random: always(TOP) });
  for (let i = 0; i < 5; i++) assert.is(b.next(), 700);
});

test('options: bad values throw naming the option; the edges are accepted (limit and limit+1)', () => {
  const bad: [unknown, string, ErrorConstructor][] = [
    [null, 'options', TypeError],
    ['fast', 'options', TypeError],
    [{ baseMs: 0 }, 'baseMs', RangeError],
    [{ baseMs: -1 }, 'baseMs', RangeError],
    [{ baseMs: 1.5 }, 'baseMs', RangeError],
    [{ baseMs: NaN }, 'baseMs', RangeError],
    [{ baseMs: '500' }, 'baseMs', TypeError],
    [{ baseMs: null }, 'baseMs', TypeError],
    [{ baseMs: 1000, maxMs: 999 }, 'maxMs', RangeError],
    [{ maxMs: 2 ** 31 }, 'maxMs', RangeError],
    [{ maxMs: Infinity }, 'maxMs', RangeError],
    [{ random: 0.5 }, 'random', TypeError],
    [{ random: null }, 'random', TypeError],
  ];
  for (const [options, name, type] of bad) {
    assert.throws(
      () => new Backoff(options as BackoffOptions),
      (e: unknown) => e instanceof type && (e as Error).message.includes(`"${name}"`),
      `${String(JSON.stringify(options))} -> ${type.name} naming ${name}`,
    );
  }
  const widest = new Backoff({ baseMs: 1, maxMs: 2 ** 31 - 1, random: always(TOP) });
  for (let i = 0; i < 40; i++) widest.next();
  assert.is(widest.next(), 2 ** 31 - 1, 'the largest delay setTimeout honours');
});

test('a random source returning anything but a number in [0, 1) throws naming "random", and the attempt is not counted', () => {
  const cases: [unknown, ErrorConstructor][] = [
    [1, RangeError],
    [-0.001, RangeError],
    [NaN, RangeError],
    [Infinity, RangeError],
    ['0.5', TypeError],
    [undefined, TypeError],
  ];
  for (const [value, type] of cases) {
    const b = new Backoff({ random: () => value as number });
    assert.throws(() => b.next(), (e: unknown) => e instanceof type && /"random"/.test((e as Error).message), String(value));
    assert.is(b.attempts, 0);
    assert.is(b.nextCeilingMs, RECONNECT_BASE_MS);
  }
});

test('defaults come from limits.ts', () => {
  const b = new Backoff();
  assert.is(b.baseMs, RECONNECT_BASE_MS);
  assert.is(b.maxMs, RECONNECT_MAX_MS);
  const delay = b.next(); // Math.random
  assert.ok(Number.isInteger(delay) && delay >= 0 && delay <= RECONNECT_BASE_MS);
});

test.run();
