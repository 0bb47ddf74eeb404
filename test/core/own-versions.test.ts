// A node never signs two different updates with one version, even across restarts: its store
// keeps a reserved high-water mark ahead of its newest write, and the wall clock keeps new
// versions above old ones even when the store is lost. Stored data is parsed, optionally
// re-verified, and a damaged record refuses the store instead of being skipped.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Model, MemoryStore, StoreError, limits, type Update } from '../../src/index.ts';
import { identity, testClock, fakeOrigin, T0 } from './helpers.ts';

const A = identity(0xa1);

test('a write signed but never stored (killed before its batch committed) is not reused: the next version is above the reservation', async () => {
  const clock = testClock();
  const store = new MemoryStore();
  const a = new Model({ identity: A, now: clock.now, store });
  await a.ready;
  const first = a.set('k', 1);
  await new Promise((r) => setImmediate(r));
  assert.equal((await store.load('default')).meta, [['ownVersion', first.version + limits.OWN_VERSION_RESERVE_MICROS]]);
  // the next writes, within half the reservation, write no new reservation
  const quick = a.set('k', 2);
  assert.ok(quick.version < first.version + limits.OWN_VERSION_RESERVE_MICROS / 2);
  a.dispose();
  // the process "dies" having signed a write whose batch never committed: simulate it by a
  // signed version the store never saw, and reopen with the clock turned back
  const lost = quick.version + 10;
  clock.t = T0 - 5_000_000; // the wall clock went back 5 s
  const again = new Model({ identity: A, now: clock.now, store });
  await again.ready;
  const next = again.set('k', 3);
  assert.ok(next.version > lost, `next ${next.version} above the lost ${lost}`);
  assert.ok(next.version > first.version + limits.OWN_VERSION_RESERVE_MICROS, 'above the stored reservation');
  again.dispose();
});

test('a lost store: the wall-clock floor of nextVersion still keeps new versions above old ones', async () => {
  const clock = testClock();
  const a = new Model({ identity: A, now: clock.now, store: new MemoryStore() });
  await a.ready;
  const old: Update[] = [a.set('x', 1), a.set('x', 2), a.set('x', 3)];
  a.dispose();
  clock.advanceMs(1); // any later moment: a fresh store, the same identity
  const b = new Model({ identity: A, now: clock.now, store: new MemoryStore() });
  await b.ready;
  const fresh = b.set('x', 4);
  assert.ok(old.every((u) => fresh.version > u.version));
  b.dispose();
});

test('a stored record that does not parse refuses the store (StoreError naming it), never skipped', async () => {
  const store = new MemoryStore();
  const a = new Model({ identity: A, now: testClock().now, store });
  await a.ready;
  a.set('k', 1);
  await new Promise((r) => setImmediate(r));
  a.dispose();
  store.commitSync('default', { put: [['bad', Uint8Array.of(1, 2, 3)]], drop: [], clock: [] });
  const b = new Model({ identity: A, now: testClock().now, store });
  const err = await b.ready.then(() => null, (e: unknown) => e);
  assert.ok(err instanceof StoreError, String(err));
  assert.is((err as StoreError).code, 'ERR_STORE');
  assert.match((err as Error).message, /damaged/);
  b.dispose();
});

test('verifyOnOpen: a stored envelope whose signature was altered refuses the store; without it, stored data is trusted', async () => {
  const clock = testClock();
  const store = new MemoryStore();
  const a = new Model({ identity: A, now: clock.now, store });
  await a.ready;
  const b = identity(0xa3);
  const peer = new Model({ identity: b, now: clock.now });
  await peer.ready;
  const u = peer.set('p', 1);
  assert.is((await a.ingest(u.bytes, fakeOrigin())).status, 'applied');
  a.set('k', 1);
  await new Promise((r) => setImmediate(r));
  a.dispose();
  peer.dispose();
  // alter one signature bit in the stored copy of the peer's update
  const state = await store.load('default');
  const altered = state.updates.map((bytes) => {
    if (!Buffer.from(bytes).includes(Buffer.from(b.publicKey))) return bytes;
    const copy = bytes.slice();
    copy[copy.length - 5]! ^= 1;
    return copy;
  });
  const tampered = new MemoryStore();
  tampered.commitSync('default', { put: altered.map((x, i) => [`h${i}`, x]), drop: [], clock: state.clock, meta: state.meta });
  const strict = new Model({ identity: A, now: clock.now, store: tampered, verifyOnOpen: true });
  const err = await strict.ready.then(() => null, (e: unknown) => e);
  assert.ok(err instanceof StoreError);
  assert.match((err as Error).message, /does not verify/);
  assert.match((err as Error).message, new RegExp(b.id));
  strict.dispose();
  const trusting = new Model({ identity: A, now: clock.now, store: tampered });
  await trusting.ready;
  assert.is(trusting.get('p'), 1, 'the local store is trusted by default');
  trusting.dispose();
});

test.run();
