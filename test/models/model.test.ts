// Model semantics: last-writer-wins in any arrival order, TTL, tombstones and their horizon,
// change events and the changes() iterator, local writes that throw, restart from a store.
import { once } from 'node:events';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Model, MemoryStore, signUpdate, compareUpdates, owner, WriteError, type Change, type Update } from '../../src/index.ts';
import { MAX_KEY_LENGTH } from '../../src/models/model.ts';
import { encodeCbor } from '../../src/envelope/cbor.ts';
import { MAX_TTL_MS } from '../../src/limits.ts';
import { Prng, testSeed } from '../helpers/prng.ts';
import { identity, testClock, fakeOrigin, syncOnce, updates, T0 } from '../core/helpers.ts';
import { makeModel, type ModelTestOptions } from './fixtures.ts';

const A = identity(0x41);
const B = identity(0x42);
const C = identity(0x43);
const D = identity(0x44);

const model = (id = A, options: ModelTestOptions = {}): Promise<Model> => makeModel(id, options);

test('last-writer-wins by (version, source, hash) whatever the arrival order', async () => {
  const seed = testSeed();
  const rng = new Prng(seed);
  const sources = [A, B, C];
  // per source the versions increase; across sources they collide on purpose
  const updatesBySource = sources.map((s) => Array.from({ length: 6 }, (_, v) => signUpdate(s, {
    dataset: 'default',
    version: T0 + (v + 1) * 10,
    body: rng.int(4) === 0 ? ['del', `k${rng.int(3)}`] : ['set', `k${rng.int(3)}`, `${s.id.slice(0, 4)}-${v}`],
  })));
  const flat = updatesBySource.flat();
  const want = new Map<string, Update>();
  for (const u of flat) {
    const k = (u.body as string[])[1]!;
    if (!want.has(k) || compareUpdates(u, want.get(k)!) > 0) want.set(k, u);
  }
  let firstHash: string | null = null;
  for (let round = 0; round < 6; round++) {
    const m = await model(D);
    // a random interleaving that keeps each source's own order (as streams deliver)
    const queues = updatesBySource.map((q) => [...q]);
    while (queues.some((q) => q.length > 0)) {
      const q = rng.pick(queues.filter((x) => x.length > 0));
      await m.ingest(q.shift()!.bytes, fakeOrigin());
    }
    for (const [k, u] of want) {
      assert.is(m.updateOf(k)?.source, u.source, `seed ${seed}: ${k}`);
      assert.is(m.updateOf(k)?.version, u.version);
      const body = u.body as [string, string, string?];
      assert.is(m.get(k), body[0] === 'set' ? body[2] : undefined);
    }
    firstHash ??= m.stateHash();
    assert.is(m.stateHash(), firstHash, `seed ${seed}: same state hash in every order`);
  }
  // a tie on version between two sources goes to the higher source id, on every node
  const [lo, hi] = [A, B].sort((x, y) => (x.id < y.id ? -1 : 1)) as [typeof A, typeof A];
  const x = signUpdate(lo, { dataset: 'default', version: T0, body: ['set', 'tie', 'lo'] });
  const y = signUpdate(hi, { dataset: 'default', version: T0, body: ['set', 'tie', 'hi'] });
  const m1 = await model(C);
  const m2 = await model(D);
  await m1.ingest(x.bytes, fakeOrigin());
  await m1.ingest(y.bytes, fakeOrigin());
  await m2.ingest(y.bytes, fakeOrigin());
  await m2.ingest(x.bytes, fakeOrigin());
  assert.is(m1.get('tie'), 'hi');
  assert.is(m2.get('tie'), 'hi');
});

test('TTL: absent on every node once now passes version + ttl; purge removes it from memory and store', async () => {
  const clock = testClock();
  const store = new MemoryStore();
  const a = await model(A, { now: clock.now, store, tombstoneHorizonMs: 0 });
  const b = await model(B, { now: clock.now });
  const u = a.set('session', 'token', { ttl: 100 });
  a.set('forever', 1);
  await updates(a, 2);
  await syncOnce(a, b);
  for (const m of [a, b]) {
    assert.is(m.get('session'), 'token');
    assert.ok(m.has('session'));
  }
  const hashBefore = a.stateHash();
  clock.t = u.version + 100_000 - 1; // one µs before expiry
  assert.ok(a.has('session'));
  assert.ok(b.has('session'));
  clock.t += 1; // exactly version + ttl
  for (const m of [a, b]) {
    assert.not.ok(m.has('session'));
    assert.is(m.get('session'), undefined);
    assert.equal(m.keys(), ['forever']);
    assert.equal(m.toJSON(), { forever: 1 });
  }
  assert.is(a.stateHash(), b.stateHash());
  assert.is.not(a.stateHash(), hashBefore);
  assert.is(store.size('default'), 2);
  assert.is(a.purge(), 1);
  assert.is(a.updateOf('session'), undefined);
  assert.is(store.size('default'), 1);
  assert.is(a.stateHash(), b.stateHash(), 'purging an expired entry changes no state hash');
  assert.is(a.purge(), 0);
  // an expired update replicated to a fresh node reads as absent there too
  const c = await model(C, { now: clock.now });
  await syncOnce(b, c);
  assert.not.ok(c.has('session'));
  assert.is(c.stateHash(), a.stateHash());
});

test('TTL: purging an expired entry does not let an older write it had beaten come back', async () => {
  // T's old write reached C only; S's TTL write (which beats it) reached A and B only.
  const clock = testClock();
  const t = await model(identity(0x54), { now: clock.now });
  const s = await model(identity(0x53), { now: clock.now });
  const a = await model(A, { now: clock.now });
  const b = await model(B, { now: clock.now });
  const c = await model(C, { now: clock.now });
  t.set('k', 'old');
  await syncOnce(t, c);
  clock.advanceMs(1);
  s.set('k', 'fresh', { ttl: 10 });
  await syncOnce(s, a);
  await syncOnce(s, b);
  clock.advanceMs(20); // expired everywhere
  a.purge(); // a forgets it early; b does not purge
  await syncOnce(c, a); // a is offered T's old write
  await syncOnce(b, c); // c learns S's (expired) write, which beats T's
  for (const [x, y] of [[a, b], [a, c], [b, c]] as const) await syncOnce(x, y);
  for (const m of [a, b, c]) assert.not.ok(m.has('k'), 'expired on every node, nothing resurrected');
  assert.is(a.stateHash(), b.stateHash());
  assert.is(a.stateHash(), c.stateHash());
});

test('tombstones replicate, beat older writes, and are collected after tombstoneHorizonMs', async () => {
  const clock = testClock();
  const store = new MemoryStore();
  const a = await model(A, { now: clock.now, store, tombstoneHorizonMs: 1000 });
  const b = await model(B, { now: clock.now });
  const early = signUpdate(C, { dataset: 'default', version: T0 - 10, body: ['set', 'k', 'stale'] });
  a.set('k', 'v');
  await updates(a);
  clock.advanceMs(1);
  const del = a.delete('k');
  await updates(a);
  await syncOnce(a, b);
  assert.not.ok(b.has('k'));
  assert.is(b.updateOf('k')?.version, del.version, 'b holds the tombstone');
  assert.equal(b.updateOf('k')?.body, ['del', 'k']);
  // an older write arriving later does not resurrect the key
  assert.is((await b.ingest(early.bytes, fakeOrigin())).status, 'old'); // loses to the tombstone held: not even verified
  assert.not.ok(b.has('k'));
  assert.is(store.size('default'), 1, 'the superseded set was dropped from the store');
  // kept until the horizon, collected at it
  clock.t = del.version + 1000 * 1000 - 1;
  assert.is(a.purge(), 0);
  assert.is(store.size('default'), 1);
  clock.t += 1;
  assert.is(a.purge(), 1);
  assert.is(a.updateOf('k'), undefined);
  assert.is(store.size('default'), 0);
});

test('per-key listeners fire however they were added, with no change listener, after keys changed unwatched', async () => {
  const b = await model(B);
  const got: string[] = [];
  const first = updates(b);
  b.set('early', 0); // nothing listens yet: nothing is decoded or looked up
  await first;
  b.addListener('change:a', (v: unknown) => got.push(`addListener ${String(v)}`));
  b.prependListener('change:b', (v: unknown) => got.push(`prependListener ${String(v)}`));
  b.once('change:c', (v: unknown) => got.push(`once ${String(v)}`));
  b.prependOnceListener('change:d', (v: unknown) => got.push(`prependOnceListener ${String(v)}`));
  const viaEvents = once(b, 'change:e');
  b.on(`peer-change:f`, (v: unknown, peer: string) => got.push(`peer-change ${String(v)} ${peer === B.id}`));
  assert.is(b.listenerCount('change'), 0);
  const landed = updates(b, 7);
  for (const [k, v] of [['a', 1], ['b', 2], ['c', 3], ['c', 4], ['d', 5], ['e', 6]] as const) b.set(k, v);
  b.set(`${B.id}/f`, 7);
  await landed;
  assert.equal(got, ['addListener 1', 'prependListener 2', 'once 3', 'prependOnceListener 5', 'peer-change 7 true']);
  assert.equal((await viaEvents)[0], 6);
  b.dispose();
});

test('a per-key listener added by a change listener gets that change too', async () => {
  const b = await model(B);
  const got: unknown[] = [];
  b.once('change', () => b.on('change:k', (v: unknown) => got.push(v)));
  const landed = updates(b, 2);
  b.set('k', 1);
  b.set('k', 2);
  await landed;
  assert.equal(got, [1, 2]);
  b.dispose();
});

test('change events, change:<key> events and the changes() iterator', async () => {
  const clock = testClock();
  const a = await model(A, { now: clock.now });
  const b = await model(B, { now: clock.now });
  const seen: Change[] = [];
  const perKey: unknown[] = [];
  b.on('change', (c: Change) => seen.push(c));
  b.on('change:x', (value: unknown, u: Update) => perKey.push([value, u.source]));
  const ac = new AbortController();
  const iterated: Array<[string, unknown]> = [];
  const iterating = (async () => {
    for await (const c of b.changes({ signal: ac.signal })) {
      iterated.push([c.key, c.value]);
      if (iterated.length === 4) ac.abort();
    }
  })();
  a.set('x', 1);
  clock.advanceMs(1);
  a.set('y', 2);
  await syncOnce(a, b);
  clock.advanceMs(1);
  b.delete('x');
  // an update that loses last-writer-wins changes nothing and emits nothing
  const loser = signUpdate(C, { dataset: 'default', version: T0 - 5, body: ['set', 'y', 'loses'] });
  assert.is((await b.ingest(loser.bytes, fakeOrigin())).status, 'old');
  clock.advanceMs(1);
  b.set('z', 3);
  await iterating;
  assert.equal(iterated, [['x', 1], ['y', 2], ['x', undefined], ['z', 3]]);
  assert.equal(seen.map((c) => [c.key, c.value]), [['x', 1], ['y', 2], ['x', undefined], ['z', 3]]);
  assert.equal(perKey, [[1, A.id], [undefined, B.id]]);
  // the iterator ends when the model is disposed
  const c = await model(C, { now: clock.now });
  const ended = (async () => {
    const got: string[] = [];
    for await (const ch of c.changes()) got.push(ch.key);
    return got;
  })();
  const changed = once(c, 'change');
  c.set('one', 1);
  await changed;
  c.dispose();
  assert.equal(await ended, ['one']);
});

test('local writes that break a limit or the policy throw', async () => {
  const clock = testClock();
  const m = await model(A, { now: clock.now, maxUpdateBytes: 100 });
  // key length at the limit and limit + 1 (with a roomy model)
  const roomy = await model(B, { now: clock.now });
  roomy.set('k'.repeat(MAX_KEY_LENGTH), 1);
  assert.throws(() => roomy.set('k'.repeat(MAX_KEY_LENGTH + 1), 1), RangeError);
  assert.throws(() => roomy.delete('k'.repeat(MAX_KEY_LENGTH + 1)), RangeError);
  assert.throws(() => roomy.set(42 as unknown as string, 1), TypeError);
  assert.throws(() => roomy.set('k', undefined), TypeError);
  assert.throws(() => roomy.set('k', () => 1), TypeError);
  assert.throws(() => roomy.set('k', 1, { ttl: 0 }), RangeError);
  assert.throws(() => roomy.set('k', 1, { ttl: 1.5 }), RangeError);
  // ttl at MAX_TTL_MS (the largest the codec writes as an integer) and one over
  assert.is(roomy.set('long', 1, { ttl: MAX_TTL_MS }).body instanceof Array, true);
  assert.is(roomy.get('long'), 1);
  assert.throws(() => roomy.set('long', 2, { ttl: MAX_TTL_MS + 1 }), /"ttl" expected .*4294967295/);
  // body size at maxUpdateBytes and one byte over
  const fill = (n: number) => 'x'.repeat(n);
  let n = 0;
  while (encodeCbor(['set', 'k', fill(n + 1)]).length <= 100) n++;
  assert.is(encodeCbor(['set', 'k', fill(n)]).length, 100);
  m.set('k', fill(n));
  assert.throws(() => m.set('k', fill(n + 1)), RangeError);
  assert.is(m.get('k'), fill(n));
  // policy
  const owned = await model(C, { now: clock.now, policy: owner(), dataset: 'owned' });
  owned.set(`${C.id}/mine`, 1);
  for (const write of [() => owned.set('elsewhere', 1), () => owned.delete(`${A.id}/theirs`)]) {
    try {
      write();
      assert.unreachable('should throw');
    } catch (err) {
      assert.instance(err, WriteError);
      assert.is((err as WriteError).code, 'ERR_WRITE');
    }
  }
  assert.equal(owned.keys(), [`${C.id}/mine`]);
  assert.is(owned.clock.get(C.id), owned.updateOf(`${C.id}/mine`)!.version, 'a refused write moves no clock');
  // before ready, after dispose
  const loading = new Model({ identity: D, store: new MemoryStore() });
  assert.throws(() => loading.set('k', 1), (e: WriteError) => e.code === 'ERR_WRITE');
  await loading.ready;
  loading.dispose();
  assert.throws(() => loading.set('k', 1), (e: WriteError) => e.code === 'ERR_WRITE');
});

test('restart from a MemoryStore: same state, and the next own version is higher than any signed before', async () => {
  const clock = testClock();
  const store = new MemoryStore();
  const a = await model(A, { now: clock.now, store });
  const b = await model(B, { now: clock.now });
  b.set('from-b', 'b');
  await syncOnce(b, a);
  let last = 0;
  for (let i = 0; i < 5; i++) {
    last = a.set(`k${i % 2}`, i, i === 4 ? { ttl: 60_000 } : undefined).version; // k0 is overwritten: its old update dropped
    a.delete('gone');
  }
  const lastDel = a.updateOf('gone')!.version;
  await syncOnce(a, b); // everything above is durable once announced; a sync waits for it
  const hash = a.stateHash();
  const json = a.toJSON();
  a.dispose();
  // the wall clock has gone backwards on restart: versions must still increase
  const again = await model(A, { now: () => T0 - 1_000_000, store });
  assert.is(again.stateHash(), hash);
  assert.equal(again.toJSON(), json);
  assert.is(again.clock.get(A.id), Math.max(last, lastDel));
  const next = again.set('after', 1);
  assert.ok(next.version > Math.max(last, lastDel), `${next.version} > ${Math.max(last, lastDel)}`);
  // and peers accept it (not old data)
  assert.is((await b.ingest(next.bytes, fakeOrigin())).status, 'applied');
});

test.run();
