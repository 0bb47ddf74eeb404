// The item order and bounds of reconciliation: the same order as compareUpdates, bounds that
// separate neighbours, binary search that agrees with a linear scan, snapshot input checks.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Update } from '../../src/envelope/update.ts';
import { compareUpdates } from '../../src/core/order.ts';
import {
  compareBounds,
  compareItems,
  compareToBound,
  ItemSnapshot,
  INFINITY_BOUND,
  MIN_BOUND,
  separatingBound,
  type ReconcileItem,
} from '../../src/reconcile/items.ts';
import { Prng, testSeed } from '../helpers/prng.ts';
import { sources, T0 } from './helpers.ts';

const seed = testSeed();
const prng = new Prng(seed);
const from = sources(prng, 3);
const say = (what: string) => `${what} (seed ${seed}; replay with SIGNET_SEED=${seed})`;

/** Items that often share a version, a source and even hash prefixes, to reach every branch. */
function crowdedItem(): ReconcileItem {
  const hash = prng.bytes(32);
  if (prng.next() < 0.5) hash.fill(0, 0, prng.int(32));
  return { version: T0 + prng.int(4), source: prng.pick(from), hash };
}

test('compareItems orders exactly as compareUpdates (version, source, hash)', () => {
  for (let i = 0; i < 2000; i++) {
    const a = crowdedItem();
    const b = prng.next() < 0.1 ? { ...a } : crowdedItem();
    const expected = Math.sign(compareUpdates(a as unknown as Update, b as unknown as Update));
    assert.is(Math.sign(compareItems(a, b)), expected, say('order differs'));
  }
});

test('separatingBound lies above the lower neighbour and at or below the upper one, shortest form', () => {
  for (let i = 0; i < 2000; i++) {
    const [x, y] = [crowdedItem(), crowdedItem()];
    const c = compareItems(x, y);
    if (c === 0) continue;
    const [below, above] = c < 0 ? [x, y] : [y, x];
    const bound = separatingBound(below, above);
    assert.ok(compareToBound(below, bound) < 0, say('lower neighbour not below the bound'));
    assert.ok(compareToBound(above, bound) >= 0, say('upper neighbour below the bound'));
    if (bound.prefix.length > 0) {
      assert.is.not(bound.prefix.at(-1), 0, say('prefix ends in a zero byte'));
      // one byte shorter would no longer separate
      const shorter = { version: bound.version, prefix: bound.prefix.subarray(0, -1) };
      assert.ok(compareToBound(below, shorter) >= 0, say('prefix not the shortest'));
    }
  }
});

test('compareBounds reads prefixes as zero-padded; MIN and INFINITY bound everything', () => {
  const b = (version: number, ...prefix: number[]) => ({ version, prefix: new Uint8Array(prefix) });
  assert.is(compareBounds(b(5, 1, 2), b(5, 1, 2, 0, 0)), 0);
  assert.ok(compareBounds(b(5, 1, 2), b(5, 1, 2, 1)) < 0);
  assert.ok(compareBounds(b(5, 9), b(6)) < 0);
  assert.ok(compareBounds(MIN_BOUND, b(0, 1)) < 0);
  assert.ok(compareBounds(b(Number.MAX_SAFE_INTEGER, 255), INFINITY_BOUND) < 0);
  const item = crowdedItem();
  assert.ok(compareToBound(item, MIN_BOUND) >= 0);
  assert.ok(compareToBound(item, INFINITY_BOUND) < 0);
});

test('ItemSnapshot sorts a copy, and lowerBound agrees with a linear scan', () => {
  // Up to 31 of 32 hash bytes zeroed: two items may come out equal, which a set cannot hold (the
  // snapshot refuses it, as a test below checks); the 300 are drawn distinct.
  const byKey = new Map<string, ReconcileItem>();
  while (byKey.size < 300) {
    const item = crowdedItem();
    byKey.set(`${item.version}/${item.source}/${Buffer.from(item.hash).toString('hex')}`, item);
  }
  const items = [...byKey.values()];
  const input = items.slice();
  const snapshot = new ItemSnapshot(items);
  assert.equal(items, input, 'the caller\'s array is not reordered');
  for (let i = 1; i < snapshot.size; i++) assert.ok(compareItems(snapshot.items[i - 1]!, snapshot.items[i]!) < 0);
  items.length = 0;
  assert.is(snapshot.size, 300, 'later changes to the caller\'s array are not seen');
  for (let k = 0; k < 500; k++) {
    const probe = crowdedItem();
    const bound = prng.next() < 0.5 ? { version: probe.version, prefix: new Uint8Array(0) } : separatingBound({ ...probe, version: probe.version - 1 }, probe);
    const from = prng.int(snapshot.size + 1);
    let linear = from;
    while (linear < snapshot.size && compareToBound(snapshot.items[linear]!, bound) < 0) linear++;
    assert.is(snapshot.lowerBound(bound, from), linear, say('lowerBound'));
  }
  assert.is(snapshot.lowerBound(INFINITY_BOUND), snapshot.size);
  assert.is(snapshot.lowerBound(MIN_BOUND), 0);
});

test('ItemSnapshot refuses malformed items and the same item twice, naming the index', () => {
  const good = crowdedItem();
  const cases: Array<[unknown, RegExp]> = [
    [null, /items\[1\]/],
    [{ ...good, version: -1 }, /items\[1\]\.version/],
    [{ ...good, version: 2 ** 53 }, /items\[1\]\.version/],
    [{ ...good, version: 1.5 }, /items\[1\]\.version/],
    [{ ...good, source: 'not-a-node-id' }, /items\[1\]\.source/],
    [{ ...good, source: good.source.toUpperCase() }, /items\[1\]\.source/],
    [{ ...good, hash: new Uint8Array(31) }, /items\[1\]\.hash/],
    [{ ...good, hash: 'ab'.repeat(32) }, /items\[1\]\.hash/],
    [{ ...good }, /same item twice/],
  ];
  for (const [bad, message] of cases) {
    assert.throws(() => new ItemSnapshot([good, bad as ReconcileItem]), message);
  }
  assert.throws(() => new ItemSnapshot('items' as unknown as ReconcileItem[]), TypeError);
});

test.run();
