// Convergence property: 5-8 models, a few thousand random operations (set, delete, TTL set,
// concurrent writes to a small key set, purge), random pairwise syncs in random order, some
// of them overlapping; after a final all-pairs round every model holds the same state, the
// same stateHash, and exactly what last-writer-wins over every write ever made says.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Identity, Model, compareUpdates, type Update } from '../../src/index.ts';
import { Prng, testSeed } from '../helpers/prng.ts';
import { testClock, syncOnce } from '../core/helpers.ts';

const KEYS = ['a', 'b', 'c', 'd', 'e', 'f', '__proto__', 'constructor'];

function expected(writes: Update[], now: number): Record<string, unknown> {
  const win = new Map<string, Update>();
  for (const u of writes) {
    const key = (u.body as [string, string])[1];
    const cur = win.get(key);
    if (!cur || compareUpdates(u, cur) > 0) win.set(key, u);
  }
  const out: Array<[string, unknown]> = [];
  for (const [key, u] of win) {
    const body = u.body as [string, string, unknown, number?];
    if (body[0] !== 'set') continue;
    if (body[3] !== undefined && u.version + body[3] * 1000 <= now) continue;
    out.push([key, body[2]]);
  }
  return Object.fromEntries(out.sort(([a], [b]) => (a < b ? -1 : 1)));
}

const sorted = (m: Model) => Object.fromEntries(m.entries().sort(([a], [b]) => (a < b ? -1 : 1)));

async function run(seed: number, ops: number): Promise<void> {
  const rng = new Prng(seed);
  const clock = testClock();
  const count = 5 + rng.int(4);
  const models: Model[] = [];
  for (let i = 0; i < count; i++) models.push(new Model({ identity: Identity.fromSecretKey(rng.bytes(32)), now: clock.now }));
  await Promise.all(models.map((m) => m.ready));
  const writes: Update[] = [];
  const pair = (): [Model, Model] => {
    const i = rng.int(count);
    let j = rng.int(count - 1);
    if (j >= i) j++;
    return [models[i]!, models[j]!];
  };
  try {
    for (let op = 0; op < ops; op++) {
      // time moves by 0..400 µs: often not at all, so versions from different sources tie
      if (rng.int(3) === 0) clock.t += rng.int(400);
      const m = rng.pick(models);
      const key = rng.pick(KEYS);
      const r = rng.int(100);
      if (r < 40) writes.push(m.set(key, rng.int(1000)));
      else if (r < 55) writes.push(m.delete(key));
      else if (r < 72) writes.push(m.set(key, rng.int(1000), { ttl: 1 + rng.int(300) }));
      else if (r < 75) m.purge();
      else if (r < 90) await syncOnce(...pair());
      else {
        // two or three syncs at once (they may share a model), with a write racing them
        const syncs = Array.from({ length: 2 + rng.int(2) }, () => syncOnce(...pair()));
        writes.push(rng.pick(models).set(rng.pick(KEYS), rng.int(1000)));
        await Promise.all(syncs);
      }
    }
    // final: all pairs, twice (the first pass completes model 0, the second spreads it)
    for (let pass = 0; pass < 2; pass++) {
      for (let i = 0; i < count; i++) for (let j = i + 1; j < count; j++) await syncOnce(models[i]!, models[j]!);
    }
    const want = expected(writes, clock.now());
    const hash = models[0]!.stateHash();
    for (const [i, m] of models.entries()) {
      assert.equal(sorted(m), want, `model ${i} holds what last-writer-wins says`);
      assert.is(m.stateHash(), hash, `model ${i} stateHash`);
      // (clocks may differ: a source whose every write was superseded before it spread is
      // never sent on, since history() is the newest update per key)
    }
    // time passes for everyone: TTL entries expire alike, purge on one changes no read
    clock.t += 301_000;
    models[0]!.purge();
    const later = expected(writes, clock.now());
    for (const m of models) assert.equal(sorted(m), later);
    // past the tombstone horizon every node may collect tombstones and expired entries
    clock.t += 8 * 24 * 3600 * 1_000_000;
    for (const m of models) m.purge();
    for (const m of models) {
      assert.equal(sorted(m), later);
      assert.is(m.stateHash(), models[0]!.stateHash());
    }
    assert.is(({} as { polluted?: unknown }).polluted, undefined);
  } catch (err) {
    console.error(`convergence failed with seed ${seed} (replay: SIGNET_SEED=${seed})`);
    throw err;
  } finally {
    for (const m of models) m.dispose();
  }
}

test('convergence: random writes, deletes, TTLs, purges and pairwise syncs end in one state', async () => {
  const seed = testSeed();
  await run(seed, 3000);
});

test('convergence: a few more short seeded runs', async () => {
  const base = testSeed();
  for (let k = 1; k <= 5; k++) await run((base + k * 7919) >>> 0, 600);
});

test.run();
