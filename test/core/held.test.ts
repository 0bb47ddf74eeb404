// HeldSet, the held updates by source and version (sorted arrays per source, late arrivals merged
// in, gaps closed): random adds and removes in every order agree with a plain reference map, and
// inOrder() is the total order.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Update } from '../../src/index.ts';
import { HeldSet } from '../../src/core/held.ts';
import { compareUpdates } from '../../src/core/order.ts';
import { Prng } from '../helpers/prng.ts';
import { identity } from './helpers.ts';
import { signUpdate } from '../../src/envelope/update.ts';

const SOURCES = ['a'.repeat(52), 'b'.repeat(52), 'c'.repeat(52)];
/** A stand-in update: what HeldSet reads (source, version, hash). */
function fake(prng: Prng, source: string, version: number): Update {
  return { source, version, hash: prng.bytes(32) } as unknown as Update;
}

function check(held: HeldSet, reference: Map<Update, true>, label: string): void {
  assert.is(held.size, reference.size, `${label}: size`);
  const want = [...reference.keys()].sort(compareUpdates);
  const got = held.inOrder();
  assert.is(got.length, want.length, `${label}: inOrder length`);
  for (let i = 0; i < want.length; i++) assert.ok(got[i] === want[i], `${label}: inOrder[${i}]`);
  for (const u of want) {
    assert.ok(held.has(u), `${label}: has`);
    assert.ok(held.at(u.source, u.version).includes(u), `${label}: at`);
    // Same source and version, another hash: not held (unless the reference holds that one).
    const hash = Uint8Array.from(u.hash, (b, i) => (i === 31 ? b ^ 1 : b));
    const twin = { source: u.source, version: u.version, hash } as unknown as Update;
    assert.is(held.has(twin), want.some((w) => w.source === u.source && w.version === u.version && w.hash.every((b, i) => b === hash[i])), `${label}: has (twin)`);
  }
  assert.equal(new Set(held.sources), new Set(want.map((u) => u.source)), `${label}: sources`);
}

for (const seed of [1, 2, 3, 4]) {
  test(`random adds (in order, late, equivocating) and removes agree with a reference (seed ${seed})`, () => {
    const prng = new Prng(seed);
    const held = new HeldSet();
    const reference = new Map<Update, true>();
    const top = new Map<string, number>();
    for (let step = 0; step < 6000; step++) {
      const r = prng.next();
      const source = SOURCES[prng.int(SOURCES.length)]!;
      if (r < 0.55) {
        // mostly in order, sometimes late (below what the source holds), sometimes equivocating
        const last = top.get(source) ?? 1_700_000_000_000_000;
        const kind = prng.next();
        const version = kind < 0.7 ? last + 1 + prng.int(3) : kind < 0.9 ? last - 1 - prng.int(500) : last;
        top.set(source, Math.max(last, version));
        const u = fake(prng, source, version);
        held.add(u);
        reference.set(u, true);
      } else if (r < 0.6 && reference.size > 0) {
        // the same update again (another object with the same hash): a no-op
        const u = [...reference.keys()][prng.int(reference.size)]!;
        held.add({ source: u.source, version: u.version, hash: u.hash.slice() } as unknown as Update);
      } else if (reference.size > 0) {
        const u = [...reference.keys()][prng.int(reference.size)]!;
        // removal by hash: another object with the same hash removes it too
        const gone = held.remove(prng.next() < 0.5 ? u : ({ source: u.source, version: u.version, hash: u.hash.slice() } as unknown as Update));
        reference.delete(u);
        assert.is(gone, ![...reference.keys()].some((x) => x.source === u.source), `step ${step}: remove reports an emptied source`);
        assert.not.ok(held.has(u));
      }
      if (step % 500 === 0) check(held, reference, `seed ${seed} step ${step}`);
    }
    check(held, reference, `seed ${seed} end`);
    for (const u of [...reference.keys()]) {
      held.remove(u);
      reference.delete(u);
    }
    check(held, reference, `seed ${seed} emptied`);
  });
}

test('real updates: held, removed and found again whether fresh or compacted', () => {
  const held = new HeldSet();
  const alice = identity(0xa1);
  const updates = Array.from({ length: 3000 }, (_, i) => signUpdate(alice, { dataset: 'd', version: 3000 - i, body: ['set', `k${i % 50}`, i] }));
  for (const u of updates) held.add(u); // all late but the first
  assert.is(held.size, 3000);
  for (const u of updates) assert.ok(held.has(u));
  assert.equal(held.inOrder().map((u) => u.version), updates.map((u) => u.version).reverse());
  for (const u of updates.slice(0, 2000)) held.remove(u);
  assert.is(held.size, 1000);
  assert.equal(held.inOrder().map((u) => u.version), updates.slice(2000).map((u) => u.version).reverse());
});

test.run();
