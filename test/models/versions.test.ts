// Model keepVersions (plasmid's full history): versions(key) oldest first, bounded per key,
// replicated to replicas that keep them too, stored and reloaded; a model without the option
// converges with one that has it, and the two never resend older versions to each other.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Model, MemoryStore } from '../../src/index.ts';
import { MAX_KEPT_VERSIONS } from '../../src/models/model.ts';
import { identity, testClock, syncOnce, updates } from '../core/helpers.ts';
import { makeModel, type ModelTestOptions, session } from './fixtures.ts';

const A = identity(0x91);
const B = identity(0x92);
const C = identity(0x93);

const model = (id = A, options: ModelTestOptions = {}): Promise<Model> => makeModel(id, options);

const values = (m: Model, key: string) => m.versions(key).map((r) => r.value);

test('versions(key): every version oldest first, tombstones included; without keepVersions only the winner', async () => {
  const clock = testClock();
  const a = await model(A, { now: clock.now, keepVersions: true });
  a.set('k', 1);
  clock.advanceMs(1);
  a.set('k', 2, { ttl: 10 });
  clock.advanceMs(1);
  a.delete('k');
  const vs = a.versions('k');
  assert.equal(vs.map((r) => [r.value, r.deleted, r.ttl]), [[1, false, undefined], [2, false, 10], [undefined, true, undefined]]);
  assert.ok(vs[0]!.version < vs[1]!.version && vs[1]!.version < vs[2]!.version);
  assert.equal(vs.map((r) => r.source), [A.id, A.id, A.id]);
  assert.is(vs[1]!.expiresAt, vs[1]!.version + 10_000);
  assert.is(a.get('k'), undefined);
  assert.equal(a.versions('missing'), []);
  const plain = await model(B, { now: clock.now });
  plain.set('k', 1);
  clock.advanceMs(1);
  plain.set('k', 2);
  assert.equal(values(plain, 'k'), [2]);
  assert.is(plain.heldCount, 1);
});

test('bounded per key: maxVersions kept (the winner always), the oldest dropped from memory and store; limits checked', async () => {
  const clock = testClock();
  const store = new MemoryStore();
  const a = await model(A, { now: clock.now, keepVersions: true, maxVersions: 3, store });
  for (let i = 0; i < 5; i++) {
    a.set('k', i);
    clock.advanceMs(1);
  }
  a.set('other', 'x');
  await updates(a, 1);
  assert.equal(values(a, 'k'), [2, 3, 4]);
  assert.is(a.heldCount, 4);
  assert.is(store.size('default'), 4);
  // default: the ceiling
  const b = await model(B, { now: clock.now, keepVersions: true });
  for (let i = 0; i < MAX_KEPT_VERSIONS + 1; i++) {
    b.set('k', i);
    clock.advanceMs(1);
  }
  assert.is(b.versions('k').length, MAX_KEPT_VERSIONS);
  assert.is(b.versions('k')[0]!.value, 1, 'limit+1: the oldest went');
  await model(C, { keepVersions: true, maxVersions: MAX_KEPT_VERSIONS });
  assert.throws(() => new Model({ identity: C, keepVersions: true, maxVersions: MAX_KEPT_VERSIONS + 1 }), RangeError);
  assert.throws(() => new Model({ identity: C, keepVersions: true, maxVersions: 0 }), RangeError);
  assert.throws(() => new Model({ identity: C, maxVersions: 5 }), TypeError);
  assert.throws(() => new Model({ identity: C, keepVersions: 'yes' as unknown as boolean }), TypeError);
});

test('a replica that keeps versions receives the older ones; one that does not converges on the winner; no resend after', async () => {
  const clock = testClock();
  const a = await model(A, { now: clock.now, keepVersions: true });
  for (let i = 0; i < 5; i++) {
    a.set('k', i);
    clock.advanceMs(1);
  }
  a.set('j', 'only');
  const keeper = await model(B, { now: clock.now, keepVersions: true });
  const plain = await model(C, { now: clock.now });
  await syncOnce(a, keeper);
  await syncOnce(a, plain);
  assert.equal(values(keeper, 'k'), [0, 1, 2, 3, 4]);
  assert.equal(values(plain, 'k'), [4]);
  for (const m of [keeper, plain]) assert.is(m.stateHash(), a.stateHash());
  const set = (m: Model) => m.reconcileSet().map((u) => u.hashHex).join();
  assert.is(set(plain), set(a), 'only winners are reconciled: the same set with and without keepVersions');
  assert.is(set(keeper), set(a));
  // Later sessions between any two send nothing: no older version is offered again and again.
  assert.equal(await session(a, plain), [0, 0]);
  assert.equal(await session(keeper, plain), [0, 0]);
  assert.equal(await session(a, keeper), [0, 0]);
  // A plain model writes the newest version; the keeper adds it to its versions.
  clock.advanceMs(1);
  plain.set('k', 'from-plain');
  await syncOnce(plain, keeper);
  assert.equal(values(keeper, 'k'), [0, 1, 2, 3, 4, 'from-plain']);
  assert.is(keeper.get('k'), 'from-plain');
});

test('an older version arriving late is kept (and not a change); one older than a full window is old', async () => {
  const clock = testClock();
  const src = await model(A, { now: clock.now });
  const us = [];
  for (let i = 0; i < 4; i++) {
    us.push(src.set('k', i));
    clock.advanceMs(1);
  }
  const m = await model(B, { now: clock.now, keepVersions: true, maxVersions: 3 });
  const changes: unknown[] = [];
  m.on('change', (c) => changes.push(c.value));
  assert.is((await m.ingest(us[3]!.bytes)).status, 'applied');
  assert.is((await m.ingest(us[1]!.bytes)).status, 'applied');
  assert.is((await m.ingest(us[2]!.bytes)).status, 'applied');
  assert.is((await m.ingest(us[0]!.bytes)).status, 'old', 'older than every version the full window keeps');
  assert.equal(values(m, 'k'), [1, 2, 3]);
  assert.equal(changes, [3], 'older versions do not change the key');
});

test('stored and reloaded; reopened without keepVersions, the older versions leave the store', async () => {
  const clock = testClock();
  const store = new MemoryStore();
  const a = await model(A, { now: clock.now, keepVersions: true, store });
  for (let i = 0; i < 4; i++) {
    a.set('k', i);
    clock.advanceMs(1);
  }
  await updates(a, 1);
  a.dispose();
  const again = await model(A, { now: clock.now, keepVersions: true, store });
  assert.equal(values(again, 'k'), [0, 1, 2, 3]);
  again.dispose();
  const plain = await model(A, { now: clock.now, store });
  assert.equal(values(plain, 'k'), [3]);
  assert.is(store.size('default'), 1);
});

test('purge takes every version of a purged key', async () => {
  const clock = testClock();
  const a = await model(A, { now: clock.now, keepVersions: true, tombstoneHorizonMs: 0 });
  a.set('k', 1);
  clock.advanceMs(1);
  a.set('k', 2);
  clock.advanceMs(1);
  a.delete('k');
  clock.advanceMs(1);
  assert.is(a.purge(), 3);
  assert.equal(a.versions('k'), []);
  assert.is(a.heldCount, 0);
});

test.run();
