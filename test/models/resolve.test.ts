// Model resolve hook (simple-scuttle): a custom, pure merge rule applied alike on every node
// whatever the arrival order (seeded property test over several models and streams); rules
// that break the contract fail with ResolveError; superseded/reconciliation stay consistent.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Model, MemoryStore, signUpdate, type Update, type Identity } from '../../src/index.ts';
import { checkResolve, lastWriterWins, versionRecord, type ResolveFn, type VersionRecord } from '../../src/models/resolve.ts';
import { ResolveError } from '../../src/errors.ts';
import { Prng, testSeed } from '../helpers/prng.ts';
import { identity, testClock, fakeOrigin, syncOnce, connect, verifyCounter, updates, T0 } from '../core/helpers.ts';
import { disposeAfter, makeModel, type ModelTestOptions, session } from './fixtures.ts';

const A = identity(0xc1);
const B = identity(0xc2);
const C = identity(0xc3);
const D = identity(0xc4);

const model = (id: Identity, options: ModelTestOptions = {}): Promise<Model> => makeModel(id, options);

/** The highest number wins (a delete or a non-number counts as -Infinity); ties by last writer. */
const highest: ResolveFn = (current, incoming) => {
  const score = (r: VersionRecord) => (typeof r.value === 'number' ? r.value : -Infinity);
  const [a, b] = [score(current), score(incoming)];
  if (a !== b) return b > a ? incoming : current;
  return lastWriterWins(current, incoming);
};

/** The winner of `us` (one key) under `highest`, folded in the given order. */
const fold = (us: readonly Update[]): Update => us.map(versionRecord).reduce((w, r) => highest(w, r)).update;

test('property: random arrival orders over 5 models with a custom rule: the same winners everywhere, then by streams too', async () => {
  const seed = testSeed();
  const rng = new Prng(seed);
  const writers = [A, B, C, D];
  const keys = ['k0', 'k1', 'k2', 'k3', 'k4'];
  // Every writer signs 12 updates up front, versions colliding across writers on purpose.
  const all: Update[] = [];
  for (const w of writers) {
    for (let i = 0; i < 12; i++) {
      const key = rng.pick(keys);
      const body = rng.int(6) === 0 ? ['del', key] : ['set', key, rng.int(10)];
      all.push(signUpdate(w, { dataset: 'default', version: T0 + i * 1000 + rng.int(3), body }));
    }
  }
  const byKey = (us: readonly Update[]) => {
    const m = new Map<string, Update[]>();
    for (const u of us) {
      const k = (u.body as string[])[1]!;
      m.set(k, [...(m.get(k) ?? []), u]);
    }
    return m;
  };
  const want = new Map([...byKey(all)].map(([k, us]) => [k, fold(us)]));
  // Any order of folding gives the same winner (the rule is a total order): the oracle is sound.
  for (const us of byKey(all).values()) assert.is(fold([...us].reverse()).hashHex, fold(us).hashHex);
  const clock = testClock(T0 + 100_000);
  const models = await Promise.all([0xd0, 0xd1, 0xd2, 0xd3, 0xd4].map((b) => model(identity(b), { now: clock.now, resolve: highest })));
  for (const m of models) {
    const order = [...all];
    for (let i = order.length - 1; i > 0; i--) {
      const j = rng.int(i + 1);
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    for (const u of order) {
      const r = await m.ingest(u.bytes, fakeOrigin());
      assert.ok(r.status === 'applied' || r.status === 'old', `seed ${seed}: ${r.status}`);
    }
  }
  for (const m of models) {
    for (const [k, u] of want) assert.is(m.updateOf(k)?.hashHex, u.hashHex, `seed ${seed}: ${k} on ${m.id.slice(0, 4)}`);
  }
  assert.is(new Set(models.map((m) => m.stateHash())).size, 1, `seed ${seed}`);

  // Streams: fresh models each get a random part in a random order, then sessions between pairs.
  const fresh = await Promise.all([0xe0, 0xe1, 0xe2, 0xe3].map((b) => model(identity(b), { now: clock.now, resolve: highest })));
  const delivered: Update[] = [];
  for (const m of fresh) {
    const part = all.filter(() => rng.next() < 0.4);
    delivered.push(...part);
    for (const u of part.reverse()) await m.ingest(u.bytes, fakeOrigin());
  }
  for (let i = 0; i < 6; i++) {
    const a = rng.int(fresh.length);
    const b = (a + 1 + rng.int(fresh.length - 1)) % fresh.length;
    await syncOnce(fresh[a]!, fresh[b]!);
  }
  for (const m of fresh.slice(1)) await syncOnce(fresh[0]!, m);
  for (const m of fresh.slice(1)) await syncOnce(fresh[0]!, m);
  const wantDelivered = new Map([...byKey(delivered)].map(([k, us]) => [k, fold(us)]));
  for (const m of fresh) {
    for (const [k, u] of wantDelivered) assert.is(m.updateOf(k)?.hashHex, u.hashHex, `seed ${seed}: ${k} after streams`);
  }
  assert.is(new Set(fresh.map((m) => m.stateHash())).size, 1, `seed ${seed}: states differ after streams`);
  assert.is(new Set(fresh.map((m) => m.reconcileSet().map((u) => u.hashHex).join())).size, 1, `seed ${seed}: reconciled sets differ`);
  // Converged: a further session sends nothing either way (nothing offered forever).
  assert.equal(await session(fresh[1]!, fresh[2]!), [0, 0]);
});

test('a newer write that the rule says loses is old before verification, never applied or forwarded', async () => {
  const clock = testClock();
  const a = await model(A, { now: clock.now, resolve: highest });
  const b = await model(B, { now: clock.now, resolve: highest });
  const { sa, sb, synced, destroy } = connect(a, b);
  await synced;
  a.set('score', 10);
  await new Promise<void>((resolve) => b.once('update', () => resolve()));
  clock.advanceMs(5);
  const lower = signUpdate(C, { dataset: 'default', version: clock.now(), body: ['set', 'score', 3] });
  const calls = verifyCounter.calls;
  const r = await a.ingest(lower.bytes, fakeOrigin());
  assert.is(r.status, 'old');
  assert.is(verifyCounter.calls, calls, 'no verification for a sure loser');
  assert.is(a.get('score'), 10);
  assert.is(a.clock.get(C.id), undefined, 'the clock did not move');
  // a local write that loses: signed, but the key keeps the winner
  a.set('score', 2);
  assert.is(a.get('score'), 10);
  clock.advanceMs(1);
  a.set('score', 11);
  await new Promise<void>((resolve) => b.on('change:score', (v) => v === 11 && resolve()));
  assert.is(b.get('score'), 11);
  assert.is(sa.stats.sent, sb.stats.received);
  destroy();
});

test('a rule that picks a different winner when the arguments swap throws ResolveError from set(); nothing changes', async () => {
  const incomingAlways: ResolveFn = (_current, incoming) => incoming;
  const a = await model(A, { resolve: incomingAlways });
  a.set('k', 1);
  const version = a.clock.get(A.id);
  const err = (() => {
    try {
      a.set('k', 2);
    } catch (e) {
      return e;
    }
  })();
  assert.instance(err, ResolveError);
  assert.is((err as ResolveError).code, 'ERR_RESOLVE');
  assert.match((err as Error).message, /resolve\(a, b\) and resolve\(b, a\)/);
  assert.is(a.get('k'), 1);
  assert.is(a.clock.get(A.id), version, 'the refused write left no trace');
  // a rule returning something else than an argument
  const b = await model(B, { resolve: (c) => ({ ...c }) });
  b.set('k', 1);
  assert.throws(() => b.set('k', 2), (e: unknown) => e instanceof ResolveError);
});

test('from a peer, a broken rule is reported as error and the update is not applied; random rules are caught too', async () => {
  const clock = testClock();
  let flips = 0;
  const coin = new Prng(7);
  const random: ResolveFn = (current, incoming) => (flips++, coin.next() < 0.5 ? current : incoming);
  const m = await model(A, { now: clock.now, resolve: random });
  const errors: Error[] = [];
  m.on('error', (e) => errors.push(e));
  let caught = 0;
  for (let i = 0; i < 20; i++) {
    clock.advanceMs(1);
    const u = signUpdate(B, { dataset: 'default', version: clock.now(), body: ['set', 'k', i] });
    const r = await m.ingest(u.bytes, fakeOrigin());
    if (i > 0 && r.status === 'ignored') caught++;
  }
  assert.ok(flips > 0);
  assert.ok(caught > 0 && errors.length === caught, `${caught} ignored, ${errors.length} errors`);
  assert.ok(errors.every((e) => e instanceof ResolveError));
});

test('checkResolve: passes total orders, names the broken rule otherwise', async () => {
  const m = await model(A, { keepVersions: true });
  const clock = testClock();
  const w = await model(B, { now: clock.now });
  const us: Update[] = [];
  for (const v of [1, 2, 3, 'x', 2]) {
    us.push(w.set('k', v));
    clock.advanceMs(1);
  }
  us.push(w.delete('k'));
  for (const u of us) await m.ingest(u.bytes);
  const records = m.versions('k');
  assert.is(records.length, 6);
  checkResolve(lastWriterWins, records);
  checkResolve(highest, records);
  // rock-paper-scissors on values 1, 2, 3: symmetric, deterministic, not transitive
  const rps: ResolveFn = (c, i) => {
    const [x, y] = [c.value, i.value];
    if (typeof x !== 'number' || typeof y !== 'number' || x === y) return lastWriterWins(c, i);
    return (x % 3) + 1 === y ? c : i; // 1 beats 2, 2 beats 3, 3 beats 1
  };
  assert.throws(() => checkResolve(rps, records), (e: unknown) => e instanceof ResolveError && /transitive/.test((e as Error).message));
  const coin = new Prng(1);
  assert.throws(() => checkResolve((c, i) => (coin.next() < 0.5 ? c : i), records), (e: unknown) => e instanceof ResolveError);
  assert.throws(() => checkResolve(highest, new Array(65).fill(records[0])), RangeError);
});

test('restart from a store: the replay resolves by the rule again; a broken rule refuses to load', async () => {
  const clock = testClock();
  const store = new MemoryStore();
  const a = await model(A, { now: clock.now, resolve: highest, keepVersions: true, store });
  const stored = updates(a, 2);
  a.set('k', 5);
  clock.advanceMs(1);
  a.set('k', 1);
  await stored;
  assert.is(a.get('k'), 5);
  a.dispose();
  const again = await model(A, { now: clock.now, resolve: highest, keepVersions: true, store });
  assert.is(again.get('k'), 5, 'the rule, not the newest version, holds the key after a restart');
  assert.equal(again.versions('k').map((r) => r.value), [5, 1]);
  again.dispose();
  const broken = new Model({ identity: A, now: clock.now, resolve: (_c, i) => i, store });
  disposeAfter(broken);
  try {
    await broken.ready;
    assert.unreachable('loading with a broken rule must fail');
  } catch (err) {
    assert.instance(err, ResolveError);
  }
});

test('options: resolve must be a function', () => {
  assert.throws(() => new Model({ identity: A, resolve: 'max' as unknown as ResolveFn }), TypeError);
});

test.run();
