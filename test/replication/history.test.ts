// History order on the wire (src/replication/batches.ts and the stream that uses it): batches
// never exceed the MTU except a single oversize update, sources furthest behind go first
// (scuttle-depth), each source oldest first, and a stream cut mid-history leaves the peer a
// prefix of every source, never a gap. Seeded: print the seed on failure, replay with SIGNET_SEED.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Identity, Model, signUpdate, type Update } from '../../src/index.ts';
import { historyBatches, scuttleDepthOrder } from '../../src/replication/batches.ts';
import type { Message } from '../../src/replication/messages.ts';
import { frameTap } from '../helpers/wire.ts';
import { Prng, seeded as seededBy, testSeed } from '../helpers/prng.ts';
import { closed, synced, until } from '../helpers/streams.ts';

const seed = testSeed();
const prng = new Prng(seed);
const VERSION = 1_700_000_000_000_000;

const seeded = (fn: () => Promise<void> | void): Promise<void> => seededBy(seed, fn);

const sources = [Identity.generate(), Identity.generate(), Identity.generate(), Identity.generate()];
/** `counts[i]` updates from source i, distinct keys, random body sizes up to `maxPad`. */
function makeUpdates(counts: number[], maxPad = 600, dataset = 'default'): Update[] {
  const out: Update[] = [];
  counts.forEach((n, i) => {
    for (let v = 1; v <= n; v++) {
      out.push(signUpdate(sources[i]!, { dataset, version: VERSION + v, body: ['set', `s${i}/k${v}`, 'x'.repeat(prng.int(maxPad))] }));
    }
  });
  return out;
}
const shuffle = <T>(items: T[]): T[] => prng.shuffle(items);
const size = (batch: readonly Uint8Array[] | readonly Update[]) =>
  batch.reduce((n, u) => n + (u instanceof Uint8Array ? u.length : u.bytes.length), 0);

/** Checks order: sources contiguous, deeper (more owed) first, ties by id; versions ascending. */
function assertScuttleDepth(order: readonly { source: string; version: number }[], owedBySource: Map<string, number>) {
  const runs: string[] = [];
  for (const u of order) if (runs[runs.length - 1] !== u.source) runs.push(u.source);
  assert.is(new Set(runs).size, runs.length, 'each source sent in one run');
  for (let i = 1; i < runs.length; i++) {
    const [a, b] = [owedBySource.get(runs[i - 1]!)!, owedBySource.get(runs[i]!)!];
    assert.ok(a > b || (a === b && runs[i - 1]! < runs[i]!), `source owed ${a} before source owed ${b}`);
  }
  for (let i = 1; i < order.length; i++) {
    if (order[i]!.source === order[i - 1]!.source) assert.ok(order[i]!.version > order[i - 1]!.version, 'oldest first per source');
  }
}

// ---- batches.ts directly ---------------------------------------------------------------------------

test('historyBatches: every batch fits the MTU, the concatenation is the scuttle-depth order, nothing lost', () =>
  seeded(() => {
    for (let round = 0; round < 30; round++) {
      const counts = sources.map(() => prng.int(40));
      const owed = shuffle(makeUpdates(counts, 900));
      const mtu = 200 + prng.int(4000);
      const batches = [...historyBatches(owed, mtu)];
      for (const b of batches) {
        assert.ok(b.length > 0);
        assert.ok(size(b) <= mtu || b.length === 1, `batch of ${b.length} updates, ${size(b)} bytes > mtu ${mtu}`);
      }
      // batches are full: the next batch's first update would not have fitted
      for (let i = 1; i < batches.length; i++) assert.ok(size(batches[i - 1]!) + batches[i]![0]!.bytes.length > mtu);
      const flat = batches.flat();
      assert.equal(flat, scuttleDepthOrder(owed));
      assert.is(flat.length, owed.length);
      assert.is(new Set(flat).size, owed.length);
      const owedBy = new Map<string, number>();
      for (const u of owed) owedBy.set(u.source, (owedBy.get(u.source) ?? 0) + 1);
      assertScuttleDepth(flat, owedBy);
    }
  }));

test('historyBatches: a single update larger than the MTU goes alone; its neighbours still fit', () => {
  const small = makeUpdates([3, 0, 0, 0], 10);
  const big = signUpdate(sources[1]!, { dataset: 'default', version: VERSION + 1, body: ['set', 'big', 'y'.repeat(3000)] });
  const mtu = 600;
  const batches = [...historyBatches([...small, big], mtu)];
  const alone = batches.find((b) => b.includes(big))!;
  assert.equal(alone, [big]);
  assert.ok(big.bytes.length > mtu);
  for (const b of batches) if (b !== alone) assert.ok(size(b) <= mtu);
  assert.equal([...historyBatches([], mtu)], [], 'nothing owed, no batch');
});

test('scuttleDepthOrder: deepest source first, ties by source id, versions ascending', () => {
  const owed = shuffle(makeUpdates([2, 7, 7, 4], 5));
  const order = scuttleDepthOrder(owed);
  const runs = [...new Set(order.map((u) => u.source))];
  const [s7a, s7b] = [sources[1]!.id, sources[2]!.id].sort();
  assert.equal(runs, [s7a, s7b, sources[3]!.id, sources[0]!.id]);
  assertScuttleDepth(order, new Map(sources.map((s, i) => [s.id, [2, 7, 7, 4][i]!])));
});

// ---- on the wire -------------------------------------------------------------------------------------

const updatesIn = (ms: Message[]) => ms.flatMap((m) => (m.type === 'updates' ? m.updates : []));

/** Sources interleaved, each in version order (a source's updates must arrive in order). */
const interleaved = (updates: Update[]) => [...updates].sort((x, y) => x.version - y.version || prng.int(3) - 1);

/** A model holding `updates` (ingested, so verified like any peer's). */
async function holding(updates: Update[]): Promise<Model> {
  const m = new Model({ identity: Identity.generate() });
  const results = await Promise.all(updates.map((u) => m.ingest(u.bytes)));
  for (const r of results) assert.is(r.status, 'applied');
  return m;
}

test('on the wire: history batches fit the MTU, deepest source first, then SYNC, then live batches that fit too', () =>
  seeded(async () => {
    const counts = [5, 30, 12, 0];
    const owed = makeUpdates(counts, 700);
    const a = await holding(interleaved(owed));
    const b = new Model({ identity: Identity.generate() });
    const mtu = 2048;
    const sa = a.createStream({ name: 'a', mtu });
    const sb = b.createStream({ name: 'b' });
    const { tap, seen } = frameTap();
    sa.pipe(tap).pipe(sb).pipe(sa);
    await Promise.all([synced(sa), synced(sb)]);
    const types = seen.map((m) => m.type);
    assert.is(types[0], 'hello');
    const syncAt = types.indexOf('sync');
    assert.ok(syncAt > 1 && types.slice(1, syncAt).every((t) => t === 'updates'), types.join(','));
    const history = seen.slice(1, syncAt) as Array<{ type: 'updates'; updates: Uint8Array[] }>;
    assert.ok(history.length > 5, `${history.length} batches`);
    for (const m of history) assert.ok(size(m.updates) <= mtu || m.updates.length === 1, `batch of ${size(m.updates)} bytes`);
    const sent = updatesIn(history).map((bytes) => owed.find((u) => Buffer.from(u.bytes).equals(bytes))!);
    assert.is(sent.length, owed.length);
    assertScuttleDepth(sent, new Map(sources.map((s, i) => [s.id, counts[i]!])));
    assert.is(sent[0]!.source, sources[1]!.id, 'the source furthest behind goes first');
    assert.is(b.stateHash(), a.stateHash());

    // live writes made in one tick are batched within the MTU as well
    const before = seen.length;
    for (let i = 0; i < 40; i++) a.set(`live${i}`, 'z'.repeat(prng.int(300)));
    // After the writes: before them both clocks lack a.id, and the condition would hold at once.
    await until(b, 'update', () => b.clock.get(a.id) === a.clock.get(a.id), 'live writes arrive');
    const live = seen.slice(before) as Array<{ type: 'updates'; updates: Uint8Array[] }>;
    assert.ok(live.every((m) => m.type === 'updates'));
    assert.is(updatesIn(live).length, 40);
    for (const m of live) assert.ok(size(m.updates) <= mtu || m.updates.length === 1);
    a.dispose();
    b.dispose();
    await Promise.all([closed(sa), closed(sb)]);
  }));

test('on the wire: scuttle-depth is measured against what the peer already holds', async () => {
  const counts = [6, 20, 10, 0];
  const owed = makeUpdates(counts, 50);
  const a = await holding(owed);
  // b already holds the first 17 of source 1: it owes b only 3 from there
  const b = await holding(owed.filter((u) => u.source === sources[1]!.id && u.version <= VERSION + 17));
  const sa = a.createStream({ name: 'a', mtu: 512 });
  const sb = b.createStream({ name: 'b' });
  const { tap, seen } = frameTap();
  sa.pipe(tap).pipe(sb).pipe(sa);
  await Promise.all([synced(sa), synced(sb)]);
  const sent = updatesIn(seen).map((bytes) => owed.find((u) => Buffer.from(u.bytes).equals(bytes))!);
  assert.is(sent.length, 6 + 3 + 10);
  assert.equal([...new Set(sent.map((u) => u.source))], [sources[2]!.id, sources[0]!.id, sources[1]!.id]);
  assert.is(sb.stats.old, 0, 'nothing b had was sent again');
  a.dispose();
  b.dispose();
  await Promise.all([closed(sa), closed(sb)]);
});

for (const cutAfter of [1, 2, 5, 9]) {
  test(`a stream cut after ${cutAfter} history batch(es) leaves a per-source prefix, no gap; reconnecting sends only the rest`, () =>
    seeded(async () => {
      const counts = [8, 25, 14, 3];
      const owed = makeUpdates(counts, 800);
      const a = await holding(interleaved(owed));
      const b = new Model({ identity: Identity.generate() });
      const mtu = 1500;
      const sa = a.createStream({ name: 'a', mtu });
      const sb = b.createStream({ name: 'b' });
      // hello, then `cutAfter` updates batches; everything after is lost
      const { tap, passed } = frameTap((i) => i <= cutAfter);
      sa.pipe(tap).pipe(sb).pipe(sa);
      await until(tap, 'data', () => passed.length === cutAfter + 1, 'the frames before the cut');
      const delivered = updatesIn(passed).length;
      assert.ok(delivered > 0 && delivered < owed.length, `${delivered} of ${owed.length} delivered`);
      await until(b, 'update', () => b.keys().length === delivered, 'delivered updates applied');
      sa.destroy();
      sb.destroy();
      await Promise.all([closed(sa), closed(sb)]);

      // per source: b holds exactly the updates up to its clock, a prefix of a's, no gap
      for (const s of sources) {
        const mine = owed.filter((u) => u.source === s.id).sort((x, y) => x.version - y.version);
        const have = b.clock.get(s.id) ?? 0;
        const prefix = mine.filter((u) => u.version <= have);
        for (const u of mine) assert.is(b.has(`s${sources.indexOf(s)}/k${u.version - VERSION}`), u.version <= have, `source ${sources.indexOf(s)} v${u.version - VERSION} (clock ${have - VERSION})`);
        assert.is(prefix.length === 0 ? 0 : prefix[prefix.length - 1]!.version, have === 0 ? 0 : have);
      }
      assert.is(b.keys().length, delivered);

      // reconnect: only what is missing is sent
      const sa2 = a.createStream({ name: 'a2', mtu });
      const sb2 = b.createStream({ name: 'b2' });
      sa2.pipe(sb2).pipe(sa2);
      await Promise.all([synced(sa2), synced(sb2)]);
      assert.is(sa2.stats.sent, owed.length - delivered);
      assert.is(sb2.stats.old, 0);
      assert.is(b.stateHash(), a.stateHash());
      a.dispose();
      b.dispose();
      await Promise.all([closed(sa2), closed(sb2)]);
    }));
}

test.run();
