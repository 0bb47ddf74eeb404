// Issue 7 items 5, 8, 9 and 11: equivocation costs bounded time and memory, evidence travels
// over live links and survives a restart, and the tombstone horizon means the same on every node.
import { once } from 'node:events';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Model, MemoryStore, signUpdate, limits, type Equivocation, type Update } from '../../src/index.ts';
import { identity, testClock, fakeOrigin, connect, syncOnce, T0 } from './helpers.ts';

const S = identity(0x71); // a misbehaving source
const A = identity(0x72);
const B = identity(0x73);
const C = identity(0x74);
const V = T0 - 1_000_000;

const disposeAll: Array<{ dispose(): void }> = [];
test.after.each(() => {
  for (const m of disposeAll.splice(0)) m.dispose();
});

async function model(id = A, options: { store?: MemoryStore; quarantine?: boolean; tombstoneHorizonMs?: number; now?: () => number } = {}) {
  const m = new Model({ identity: id, now: options.now ?? testClock().now, ...options });
  disposeAll.push(m);
  await m.ready;
  return m;
}

const at = (version: number, key: string, value: unknown): Update => signUpdate(S, { dataset: 'default', version, body: ['set', key, value] });

test('issue 7 item 5: a source minting equivocations at one version costs linear time and bounded evidence; it is quarantined at the cap', async () => {
  const m = await model();
  const origin = fakeOrigin();
  const seen: Equivocation[] = [];
  m.on('equivocation', (e) => seen.push(e));
  const N = 2_000;
  const statuses = new Map<string, number>();
  for (let i = 0; i < N; i++) {
    const r = await m.ingest(at(V, `k${i}`, i).bytes, origin);
    const k = r.status === 'rejected' ? `rejected:${r.reason}` : r.status;
    statuses.set(k, (statuses.get(k) ?? 0) + 1);
  }
  // the first applies, MAX_EVIDENCE_PER_SOURCE more apply as evidence, the rest are refused
  assert.equal(Object.fromEntries(statuses), { applied: 1 + limits.MAX_EVIDENCE_PER_SOURCE, 'rejected:quarantined': N - 1 - limits.MAX_EVIDENCE_PER_SOURCE });
  assert.is(m.equivocations().length, limits.MAX_EVIDENCE_PER_SOURCE);
  assert.is(seen.length, limits.MAX_EVIDENCE_PER_SOURCE);
  assert.ok(m.isQuarantined(S.id));
  assert.is(m.latestUpdates(S.id).length, 1 + limits.MAX_EVIDENCE_PER_SOURCE, 'held updates at that version are bounded');
  assert.is(origin.faults.length, 0, 'relaying a quarantined source is no fault');
});

test('issue 7 item 5: one equivocation below the cap does not quarantine without the option', async () => {
  const m = await model();
  for (let i = 0; i < limits.MAX_EVIDENCE_PER_SOURCE; i++) {
    assert.is((await m.ingest(at(V, `k${i}`, i).bytes, fakeOrigin())).status, 'applied');
  }
  assert.is(m.equivocations().length, limits.MAX_EVIDENCE_PER_SOURCE - 1);
  assert.not.ok(m.isQuarantined(S.id), 'limit - 1 equivocations: not yet');
  assert.is((await m.ingest(at(V, 'last', 0).bytes, fakeOrigin())).status, 'applied');
  assert.ok(m.isQuarantined(S.id), 'at the limit');
});

test('issue 7 item 8: an equivocation at the latest version travels over live links A-B-C', async () => {
  const [a, b, c] = [await model(A), await model(B), await model(C)];
  const ab = connect(a, b);
  const bc = connect(b, c);
  await Promise.all([ab.synced, bc.synced]);
  const u1 = at(V, 'k', 'one');
  const u2 = at(V, 'k', 'two');
  const spread = Promise.all([once(b, 'update'), once(c, 'update')]);
  assert.is((await a.ingest(u1.bytes, fakeOrigin())).status, 'applied');
  await spread;
  assert.is(c.clock.get(S.id), V, 'the first update reached C live');
  // the second, same source and version, is handed to C only
  const evidence = Promise.all([once(a, 'equivocation'), once(b, 'equivocation')]);
  assert.is((await c.ingest(u2.bytes, fakeOrigin())).status, 'applied');
  await evidence;
  for (const m of [a, b, c]) {
    assert.is(m.equivocations().length, 1);
    assert.is(m.latestUpdates(S.id).length, 2);
  }
  assert.is(a.stateHash(), c.stateHash());
  assert.is(b.stateHash(), c.stateHash());
  ab.destroy();
  bc.destroy();
});

test('issue 7 item 9: evidence and quarantine survive a restart from the store (the losing update is kept)', async () => {
  const store = new MemoryStore();
  const clock = testClock();
  const first = await model(A, { store, quarantine: true, now: clock.now });
  const u1 = at(V, 'k', 'one');
  const u2 = at(V, 'k', 'two');
  assert.is((await first.ingest(u1.bytes, fakeOrigin())).status, 'applied');
  assert.is((await first.ingest(u2.bytes, fakeOrigin())).status, 'applied');
  assert.ok(first.isQuarantined(S.id));
  const hash = first.stateHash();
  // a newer write on the same key from another source supersedes the winner: evidence stays stored
  const t = signUpdate(B, { dataset: 'default', version: V + 10, body: ['set', 'k', 'later'] });
  assert.is((await first.ingest(t.bytes, fakeOrigin())).status, 'applied');
  const stored = (await store.load('default')).updates.length;
  assert.is(stored, 3, 'both sides of the equivocation and the later write');
  first.dispose();

  const again = await model(A, { store, quarantine: true, now: clock.now });
  assert.is(again.equivocations().length, 1);
  const ev = again.equivocations()[0]!;
  assert.equal(ev.updates.map((u) => u.hashHex).sort(), [u1.hashHex, u2.hashHex].sort());
  assert.ok(again.isQuarantined(S.id), 'still quarantined');
  const next = at(V + 20, 'x', 1);
  assert.equal(await again.ingest(next.bytes, fakeOrigin()), { status: 'rejected', reason: 'quarantined' });
  assert.is(again.get('k'), 'later');
  assert.is.not(again.stateHash(), hash);
  // and the evidence is passed on to a new peer
  const fresh = await model(C);
  await syncOnce(again, fresh);
  assert.is(fresh.equivocations().length, 1);
});

test('issue 7 item 11: a backdated write behind a purged tombstone is refused alike by nodes that purged and nodes that did not', async () => {
  const clock = testClock();
  const horizonMs = 1000;
  const store = new MemoryStore();
  const x = await model(A, { now: clock.now, tombstoneHorizonMs: horizonMs, store });
  const y = await model(B, { now: clock.now, tombstoneHorizonMs: horizonMs });
  const writer = identity(0x75);
  const del = signUpdate(writer, { dataset: 'default', version: T0 - 10_000, body: ['del', 'k'] });
  for (const m of [x, y]) assert.is((await m.ingest(del.bytes, fakeOrigin())).status, 'applied');
  clock.advanceMs(horizonMs);
  assert.is(x.purge(), 1, 'x purges the tombstone; y has not yet');
  assert.is(x.purgedThrough, del.version);
  // a fresh source signs a write older than the tombstone
  const fresh = identity(0x76);
  const back = signUpdate(fresh, { dataset: 'default', version: del.version - 1, body: ['set', 'k', 'revived'] });
  const ox = fakeOrigin();
  assert.equal(await x.ingest(back.bytes, ox), { status: 'old' }, 'x: stale behind its purge');
  assert.is(ox.faults.length, 0);
  assert.is(x.clock.get(fresh.id), undefined, 'clock untouched');
  assert.is((await y.ingest(back.bytes, fakeOrigin())).status, 'old', 'y: loses last-writer-wins to the tombstone it holds (old, not verified)');
  assert.not.ok(y.has('k'));
  assert.is(y.purge(), 1);
  await syncOnce(x, y);
  assert.not.ok(x.has('k'));
  assert.not.ok(y.has('k'));
  assert.is(x.stateHash(), y.stateHash(), 'no permanent split');
  // a write newer than the floor, or for a key still held, is not stale
  const newer = signUpdate(fresh, { dataset: 'default', version: del.version + 1, body: ['set', 'k', 'new'] });
  assert.is((await x.ingest(newer.bytes, fakeOrigin())).status, 'applied');
  // the floor survives a restart
  x.dispose();
  const x2 = await model(A, { now: clock.now, tombstoneHorizonMs: horizonMs, store });
  assert.is(x2.purgedThrough, del.version);
  const other = signUpdate(identity(0x77), { dataset: 'default', version: del.version - 5, body: ['set', 'gone', 1] });
  assert.equal(await x2.ingest(other.bytes, fakeOrigin()), { status: 'old' });
});

test.run();
