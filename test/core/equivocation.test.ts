// Equivocation: two different validly signed updates with one source and version. Every node
// that sees both keeps both as evidence, emits 'equivocation', and resolves the same way.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Model, MemoryStore, signUpdate, type Equivocation, type Update } from '../../src/index.ts';
import { compareBytes, toHex } from '../../src/util/bytes.ts';
import { identity, testClock, fakeOrigin, syncOnce, T0 } from './helpers.ts';

const S = identity(0x5e); // the equivocating source
const X = identity(0x11);
const Y = identity(0x22);
const Z = identity(0x33);
const V = T0 - 1_000_000;

const disposeAll: Array<{ dispose(): void }> = [];
test.after.each(() => {
  for (const m of disposeAll.splice(0)) m.dispose();
});

async function nodes(options: { quarantine?: boolean } = {}) {
  const clock = testClock();
  const make = (id: typeof X) => {
    const store = new MemoryStore();
    const m = new Model({ identity: id, now: clock.now, store, ...options });
    const seen: Equivocation[] = [];
    m.on('equivocation', (e) => seen.push(e));
    disposeAll.push(m);
    return { m, store, seen };
  };
  const x = make(X);
  const y = make(Y);
  const z = make(Z);
  await Promise.all([x.m.ready, y.m.ready, z.m.ready]);
  return { x, y, z, clock };
}

const hashes = (e: Equivocation) => e.updates.map((u) => toHex(u.hash)).sort();

function pairOf(bodies: [unknown, unknown]): [Update, Update] {
  const u1 = signUpdate(S, { dataset: 'default', version: V, body: bodies[0] });
  const u2 = signUpdate(S, { dataset: 'default', version: V, body: bodies[1] });
  return [u1, u2];
}

test('same key: both nodes converge to the higher-hash update, same stateHash, both emit the evidence', async () => {
  const { x, y } = await nodes();
  const [u1, u2] = pairOf([['set', 'k', 'one'], ['set', 'k', 'two']]);
  assert.is((await x.m.ingest(u1.bytes, fakeOrigin())).status, 'applied');
  assert.is((await y.m.ingest(u2.bytes, fakeOrigin())).status, 'applied');
  assert.is.not(x.m.stateHash(), y.m.stateHash());
  await syncOnce(x.m, y.m);
  const winner = compareBytes(u1.hash, u2.hash) > 0 ? 'one' : 'two';
  assert.is(x.m.get('k'), winner);
  assert.is(y.m.get('k'), winner);
  assert.is(x.m.stateHash(), y.m.stateHash());
  for (const node of [x, y]) {
    assert.is(node.seen.length, 1);
    const e = node.seen[0]!;
    assert.is(e.source, S.id);
    assert.is(e.version, V);
    assert.equal(hashes(e), [toHex(u1.hash), toHex(u2.hash)].sort());
    assert.equal(node.m.equivocations().length, 1);
    assert.not.ok(node.m.isQuarantined(S.id));
    assert.is(node.m.latestUpdates(S.id).length, 2, 'both kept as evidence');
  }
  // the source's clock entry agrees; its later genuine updates still apply without quarantine
  assert.is(x.m.clock.get(S.id), V);
  const next = signUpdate(S, { dataset: 'default', version: V + 1, body: ['set', 'k', 'three'] });
  assert.is((await x.m.ingest(next.bytes, fakeOrigin())).status, 'applied');
  await syncOnce(x.m, y.m);
  assert.is(y.m.get('k'), 'three');
  assert.is(x.m.stateHash(), y.m.stateHash());
});

test('different keys: both writes survive on both nodes, evidence on both', async () => {
  const { x, y } = await nodes();
  const [u1, u2] = pairOf([['set', 'a', 1], ['set', 'b', 2]]);
  await x.m.ingest(u1.bytes, fakeOrigin());
  await y.m.ingest(u2.bytes, fakeOrigin());
  await syncOnce(x.m, y.m);
  for (const node of [x, y]) {
    assert.equal(node.m.toJSON(), { a: 1, b: 2 });
    assert.is(node.seen.length, 1);
    assert.equal(hashes(node.seen[0]!), [toHex(u1.hash), toHex(u2.hash)].sort());
  }
  assert.is(x.m.stateHash(), y.m.stateHash());
});

test('arrival order does not matter: ingesting both in either order gives the same state', async () => {
  const { x, y } = await nodes();
  const [u1, u2] = pairOf([['set', 'k', 'one'], ['set', 'k', 'two']]);
  await x.m.ingest(u1.bytes, fakeOrigin());
  await x.m.ingest(u2.bytes, fakeOrigin());
  await y.m.ingest(u2.bytes, fakeOrigin());
  await y.m.ingest(u1.bytes, fakeOrigin());
  assert.is(x.m.stateHash(), y.m.stateHash());
  assert.is(x.seen.length, 1);
  assert.is(y.seen.length, 1);
  // a third copy of either is old data, not new evidence
  assert.equal(await x.m.ingest(u1.bytes, fakeOrigin()), { status: 'old' });
  assert.is(x.m.equivocations().length, 1);
});

test('a third node learns of the equivocation from a node that holds both', async () => {
  const { x, y, z } = await nodes();
  const [u1, u2] = pairOf([['set', 'k', 'one'], ['set', 'k', 'two']]);
  await x.m.ingest(u1.bytes, fakeOrigin());
  await y.m.ingest(u2.bytes, fakeOrigin());
  await syncOnce(x.m, y.m);
  await syncOnce(x.m, z.m);
  assert.is(z.m.stateHash(), x.m.stateHash());
  assert.is(z.seen.length, 1, 'the evidence is passed on');
  assert.equal(hashes(z.seen[0]!), [toHex(u1.hash), toHex(u2.hash)].sort());
});

test('quarantine: further updates from the equivocating source are refused (quarantined), evidence passed on', async () => {
  const { x, y, z, clock } = await nodes({ quarantine: true });
  const [u1, u2] = pairOf([['set', 'k', 'one'], ['set', 'k', 'two']]);
  await x.m.ingest(u1.bytes, fakeOrigin());
  await y.m.ingest(u2.bytes, fakeOrigin());
  await syncOnce(x.m, y.m);
  assert.is(x.m.stateHash(), y.m.stateHash());
  for (const node of [x, y]) {
    assert.ok(node.m.isQuarantined(S.id));
    assert.is(node.seen.length, 1);
  }
  const before = { hash: x.m.stateHash(), clock: x.m.clock.get(S.id), stored: x.store.size('default') };
  const next = signUpdate(S, { dataset: 'default', version: V + 1, body: ['set', 'k', 'three'] });
  const origin = fakeOrigin();
  assert.equal(await x.m.ingest(next.bytes, origin), { status: 'rejected', reason: 'quarantined' });
  assert.is(origin.faults.length, 0, 'refused, but no fault of a peer that relays it (it may not know yet)');
  assert.equal({ hash: x.m.stateHash(), clock: x.m.clock.get(S.id), stored: x.store.size('default') }, before);
  // a third node with quarantine on learns of it and quarantines too
  await syncOnce(x.m, z.m);
  assert.ok(z.m.isQuarantined(S.id), 'the evidence reached z');
  assert.is(z.m.stateHash(), x.m.stateHash());
  // other sources are unaffected
  clock.advanceMs(10);
  y.m.set('other', 1);
  await syncOnce(y.m, x.m);
  assert.is(x.m.get('other'), 1);
});

test('restart keeps both pieces of evidence in the store', async () => {
  const { x } = await nodes();
  const [u1, u2] = pairOf([['set', 'k', 'one'], ['set', 'k', 'two']]);
  await x.m.ingest(u1.bytes, fakeOrigin());
  await x.m.ingest(u2.bytes, fakeOrigin());
  const again = new Model({ identity: X, store: x.store, now: () => T0 });
  disposeAll.push(again);
  await again.ready;
  assert.is(again.stateHash(), x.m.stateHash());
  assert.is(again.clock.get(S.id), V);
});

test.run();
