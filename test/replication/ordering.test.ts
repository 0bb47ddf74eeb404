// History ordering (plasmid's `ordering`): 'depth' sends the sources furthest behind first, one
// run each; 'breadth' takes one update per source in turn. Both keep each source oldest first
// (a cut leaves a prefix, never a gap) and converge to the same state. Seeded: replay with SIGNET_SEED.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Identity, Model, signUpdate, type Update } from '../../src/index.ts';
import { breadthOrder, historyBatches, scuttleDepthOrder } from '../../src/replication/batches.ts';
import { frameTap } from '../helpers/wire.ts';
import { Prng, seeded as seededBy, testSeed } from '../helpers/prng.ts';
import { closed, synced } from '../helpers/streams.ts';

const seed = testSeed();
const prng = new Prng(seed);
const VERSION = 1_700_000_000_000_000;

const seeded = (fn: () => Promise<void> | void): Promise<void> => seededBy(seed, fn);

const sources = [Identity.generate(), Identity.generate(), Identity.generate(), Identity.generate()];
/** `counts[i]` updates from source i, distinct keys, bodies of `pad` bytes. */
function makeUpdates(counts: number[], pad = 40): Update[] {
  const out: Update[] = [];
  counts.forEach((n, i) => {
    for (let v = 1; v <= n; v++) out.push(signUpdate(sources[i]!, { dataset: 'default', version: VERSION + v, body: ['set', `s${i}/k${v}`, 'x'.repeat(pad)] }));
  });
  return out;
}
const shuffle = <T>(items: T[]): T[] => prng.shuffle(items);
const index = (u: Update): number => sources.findIndex((s) => s.id === u.source);

/** Versions of each source ascend along `order` (the per-source prefix rule). */
function assertOldestFirst(order: readonly Update[]): void {
  const last = new Map<string, number>();
  for (const u of order) {
    assert.ok(u.version > (last.get(u.source) ?? 0), `source ${index(u)} v${u.version - VERSION} after v${(last.get(u.source) ?? 0) - VERSION}`);
    last.set(u.source, u.version);
  }
}

// ---- batches.ts directly ---------------------------------------------------------------------------

test('breadthOrder: one update per source per round, deepest source first in a round, oldest first per source', () => {
  const counts = [1, 4, 2, 0];
  const order = breadthOrder(shuffle(makeUpdates(counts)));
  // rounds: [s1 s2 s0] [s1 s2] [s1] [s1]
  assert.equal(order.map(index), [1, 2, 0, 1, 2, 1, 1]);
  assert.equal(order.map((u) => u.version - VERSION), [1, 1, 1, 2, 2, 3, 4]);
  assert.equal(breadthOrder([]), []);
});

test('breadthOrder and scuttleDepthOrder hold the same updates; each keeps every source oldest first', () =>
  seeded(() => {
    for (let round = 0; round < 30; round++) {
      const owed = shuffle(makeUpdates(sources.map(() => prng.int(30)), 10));
      const depth = scuttleDepthOrder(owed);
      const breadth = breadthOrder(owed);
      assert.is(breadth.length, owed.length);
      assert.equal(new Set(breadth), new Set(owed));
      assertOldestFirst(depth);
      assertOldestFirst(breadth);
      // every prefix of breadth holds, per source, at most one update more than any other source still owed
      const seen = new Map<string, number>();
      for (const u of breadth) {
        seen.set(u.source, (seen.get(u.source) ?? 0) + 1);
        const owedOf = (s: string): number => owed.filter((o) => o.source === s).length;
        for (const [s, n] of seen) {
          for (const t of sources) {
            if (t.id === s) continue;
            const m = seen.get(t.id) ?? 0;
            if (m < owedOf(t.id)) assert.ok(n <= m + 1, `source ${index(u)} got ${n} while another still owed had ${m}`);
          }
        }
      }
    }
  }));

test('historyBatches: ordering picks the order; the default is depth; both fit the MTU', () => {
  const owed = shuffle(makeUpdates([3, 9, 5, 1], 100));
  const mtu = 700;
  for (const ordering of ['depth', 'breadth'] as const) {
    const batches = [...historyBatches(owed, mtu, ordering)];
    for (const b of batches) assert.ok(b.reduce((n, u) => n + u.bytes.length, 0) <= mtu || b.length === 1);
    assert.equal(batches.flat(), ordering === 'depth' ? scuttleDepthOrder(owed) : breadthOrder(owed));
  }
  assert.equal([...historyBatches(owed, mtu)].flat(), scuttleDepthOrder(owed));
});

// ---- on the wire -------------------------------------------------------------------------------------

async function holding(updates: Update[]): Promise<Model> {
  const m = new Model({ identity: Identity.generate() });
  const results = await Promise.all([...updates].sort((x, y) => x.version - y.version).map((u) => m.ingest(u.bytes)));
  for (const r of results) assert.is(r.status, 'applied');
  return m;
}

/** Replicates a copy of `owed` to an empty model with `ordering`: the first history batch (as
 *  updates), the whole history order, and the receiver's state hash. */
async function replicate(owed: Update[], ordering: 'depth' | 'breadth' | undefined, mtu: number): Promise<{ first: Update[]; all: Update[]; state: string; sender: string }> {
  const a = await holding(owed);
  const b = new Model({ identity: Identity.generate() });
  const sa = a.createStream({ name: 'a', mtu, ...(ordering ? { ordering } : {}) });
  const sb = b.createStream({ name: 'b' });
  const { tap, seen } = frameTap();
  try {
    sa.pipe(tap).pipe(sb).pipe(sa);
    await Promise.all([synced(sa), synced(sb)]);
    const byBytes = (bytes: Uint8Array): Update => owed.find((u) => Buffer.from(u.bytes).equals(bytes))!;
    const history = seen.slice(1, seen.findIndex((m) => m.type === 'sync'));
    assert.ok(history.length >= 3 && history.every((m) => m.type === 'updates'), seen.map((m) => m.type).join(','));
    const batches = history.map((m) => (m as { updates: Uint8Array[] }).updates.map(byBytes));
    return { first: batches[0]!, all: batches.flat(), state: b.stateHash(), sender: a.stateHash() };
  } finally {
    a.dispose();
    b.dispose();
    await Promise.all([closed(sa), closed(sb)]);
  }
}

test('on the wire: a small MTU sends depth (the deepest source alone) or breadth (every source) first; both converge alike', async () => {
  const counts = [4, 12, 6, 3];
  const owed = makeUpdates(counts, 200);
  const one = owed[0]!.bytes.length;
  const mtu = one * 4 + 10; // four updates per batch
  const depth = await replicate(owed, 'depth', mtu);
  const fallback = await replicate(owed, undefined, mtu);
  const breadth = await replicate(owed, 'breadth', mtu);

  assert.equal(depth.first.map(index), [1, 1, 1, 1], 'depth: the source furthest behind, alone');
  assert.equal(depth.first.map((u) => u.version - VERSION), [1, 2, 3, 4]);
  assert.equal(fallback.all, depth.all, 'the default is depth');
  assert.equal(new Set(breadth.first.map(index)), new Set([0, 1, 2, 3]), 'breadth: every source advances in the first batch');
  assert.equal(breadth.first.map((u) => u.version - VERSION), [1, 1, 1, 1], 'each source\'s oldest first');
  assert.is(breadth.all.length, owed.length);
  assertOldestFirst(depth.all);
  assertOldestFirst(breadth.all);
  assert.not.equal(depth.all, breadth.all);

  assert.is(depth.state, depth.sender);
  assert.is(breadth.state, breadth.sender);
  assert.is(breadth.state, depth.state, 'the same final state either way');
});

test('createStream refuses an unknown ordering', () => {
  const m = new Model({ identity: Identity.generate() });
  try {
    assert.throws(() => m.createStream({ ordering: 'widest' as 'depth' }), (e: Error) => e instanceof RangeError && /"ordering"/.test(e.message));
    assert.throws(() => m.createStream({ ordering: 1 as unknown as 'depth' }), (e: Error) => e instanceof TypeError && /"ordering"/.test(e.message));
  } finally {
    m.dispose();
  }
});

test.run();
