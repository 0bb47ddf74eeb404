// The clock means "the highest version seen from this source", never "everything below it": an
// update below its source's clock that we do not hold is judged by the model (applied unless it
// is superseded or stale), equivocation is found at any version we hold, and a source that holds
// nothing any more is forgotten (clock, latest, digest), so memory follows what is held.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Events, Identity, MemoryStore, Model, signUpdate } from '../../src/index.ts';
import { identity, testClock, fakeOrigin, T0, verifyCounter } from './helpers.ts';

const S = identity(0x81);
const V = identity(0x82);

const set = (version: number, key: string, value: unknown, signer = S) =>
  signUpdate(signer, { dataset: 'default', version, body: ['set', key, value] });

test('an older update that was withheld is applied when it arrives after a newer one; the clock stays at the newer', async () => {
  const clock = testClock();
  const victim = new Model({ identity: V, now: clock.now });
  await victim.ready;
  const older = set(T0 - 2000, 'x', 'withheld');
  const newer = set(T0 - 1000, 'y', 'relayed');
  assert.is((await victim.ingest(newer.bytes, fakeOrigin())).status, 'applied');
  const origin = fakeOrigin();
  assert.is((await victim.ingest(older.bytes, origin)).status, 'applied');
  assert.is(victim.get('x'), 'withheld');
  assert.is(victim.clock.get(S.id), newer.version, 'the clock is the highest version seen');
  assert.is(origin.faults.length, 0);
  // Held now: a second copy is old and is not verified again.
  const verified = verifyCounter.calls;
  assert.is((await victim.ingest(older.bytes, fakeOrigin())).status, 'old');
  assert.is(verifyCounter.calls, verified);
  victim.dispose();
});

test('an older update its key no longer needs (it loses last-writer-wins) is old, not verified', async () => {
  const clock = testClock();
  const m = new Model({ identity: V, now: clock.now });
  await m.ready;
  const first = set(T0 - 2000, 'k', 1);
  const second = set(T0 - 1000, 'k', 2);
  await m.ingest(second.bytes, fakeOrigin());
  const verified = verifyCounter.calls;
  assert.is((await m.ingest(first.bytes, fakeOrigin())).status, 'old');
  assert.is(verifyCounter.calls, verified, 'refused before verification');
  assert.is(m.get('k'), 2);
  m.dispose();
});

test('an equivocation below the latest version is detected when both sides meet, whatever came in between', async () => {
  const clock = testClock();
  const a = new Model({ identity: V, now: clock.now });
  await a.ready;
  const u1 = set(T0 - 2000, 'p', 1);
  const u2 = set(T0 - 2000, 'q', 2); // same source and version, another payload
  const u3 = set(T0 - 1000, 'r', 3);
  await a.ingest(u1.bytes, fakeOrigin());
  await a.ingest(u3.bytes, fakeOrigin());
  const seen: string[] = [];
  a.on('equivocation', (e) => seen.push(e.updates.map((u) => u.hashHex).sort().join(',')));
  assert.is((await a.ingest(u2.bytes, fakeOrigin())).status, 'applied');
  assert.equal(seen, [[u1.hashHex, u2.hashHex].sort().join(',')]);
  assert.is(a.equivocations().length, 1);
  assert.is(a.get('p'), 1);
  assert.is(a.get('q'), 2, 'both sides apply (different keys): every node that holds both agrees');
  a.dispose();
});

test('an equivocation against an update since superseded is still caught: the rival is held again as evidence and stored', async () => {
  const clock = testClock();
  const store = new MemoryStore();
  const a = new Model({ identity: V, now: clock.now, store });
  await a.ready;
  const u1 = set(T0 - 3000, 'p', 1);
  const u2 = set(T0 - 3000, 'p', 2); // same key: one of them loses
  const [winner, loser] = u1.hashHex > u2.hashHex ? [u1, u2] : [u2, u1];
  await a.ingest(loser.bytes, fakeOrigin());
  await a.ingest(set(T0 - 1000, 'z', 0).bytes, fakeOrigin());
  assert.is((await a.ingest(winner.bytes, fakeOrigin())).status, 'applied');
  assert.is(a.equivocations().length, 1);
  assert.ok(a.reconcileSet().some((u) => u.hashHex === loser.hashHex), 'the losing side stays in the reconciled set');
  a.dispose();
  const again = new Model({ identity: V, now: clock.now, store });
  await again.ready;
  assert.is(again.equivocations().length, 1, 'the evidence survives a restart');
  again.dispose();
});

test('sources that hold nothing are forgotten: 1,000 throwaway writers of one key leave one clock entry', async () => {
  const clock = testClock();
  const m = new Model({ identity: V, now: clock.now });
  await m.ready;
  // 1,000 distinct sources, each overwriting the one key in turn.
  let last = '';
  for (let i = 0; i < 1000; i++) {
    const w = identityOf(i);
    const u = signUpdate(w, { dataset: 'default', version: T0 - 100_000 + i, body: ['set', 'k', i] });
    assert.is((await m.ingest(u.bytes, fakeOrigin())).status, 'applied');
    last = w.id;
  }
  assert.is(m.get('k'), 999);
  assert.equal([...m.clock.keys()], [last], 'only the source that still holds something');
  assert.is(m.heldCount, 1);
  assert.is(m.reconcileSet().length, 1);
  // What a forgotten source sent before is still old (it loses to what the key holds).
  const replay = signUpdate(identityOf(5), { dataset: 'default', version: T0 - 100_000 + 5, body: ['set', 'k', 5] });
  assert.is((await m.ingest(replay.bytes, fakeOrigin())).status, 'old');
  m.dispose();
});

test('Events: an event withheld below the clock is delivered once; a compacted one is never delivered again, even after a restart', async () => {
  const clock = testClock();
  const store = new MemoryStore();
  const e = new Events({ identity: V, now: clock.now, maxHistory: 2, store });
  await e.ready;
  const heard: unknown[] = [];
  e.on('tick', (data: unknown) => heard.push(data));
  const ev = (version: number, n: number) => signUpdate(S, { dataset: 'default', version, body: ['emit', 'tick', n] });
  const e1 = ev(T0 - 4000, 1);
  const e2 = ev(T0 - 3000, 2);
  const e3 = ev(T0 - 2000, 3);
  const e4 = ev(T0 - 1000, 4);
  await e.ingest(e2.bytes, fakeOrigin());
  await e.ingest(e3.bytes, fakeOrigin()); // e1 withheld so far
  assert.is((await e.ingest(e1.bytes, fakeOrigin())).status, 'old', 'full, and it would be evicted at once');
  await e.ingest(e4.bytes, fakeOrigin()); // compacts e2
  await new Promise((resolve) => setImmediate(resolve)); // announced once its commit settled
  assert.equal(heard, [2, 3, 4]);
  assert.is((await e.ingest(e2.bytes, fakeOrigin())).status, 'old', 'compacted: never again');
  e.dispose();
  const again = new Events({ identity: V, now: clock.now, maxHistory: 2, store });
  await again.ready;
  assert.is((await again.ingest(e2.bytes, fakeOrigin())).status, 'old', 'the compaction floor survives a restart');
  again.dispose();

  const roomy = new Events({ identity: V, now: clock.now, maxHistory: 10 });
  await roomy.ready;
  const got: unknown[] = [];
  roomy.on('tick', (data: unknown) => got.push(data));
  await roomy.ingest(e3.bytes, fakeOrigin());
  assert.is((await roomy.ingest(e1.bytes, fakeOrigin())).status, 'applied', 'withheld, then delivered');
  assert.is((await roomy.ingest(e1.bytes, fakeOrigin())).status, 'old');
  assert.equal(got, [3, 1]);
  roomy.dispose();
});

/** The i-th of many distinct identities (a seed per index). */
function identityOf(i: number): Identity {
  const seed = new Uint8Array(32).fill(0x5a);
  new DataView(seed.buffer).setUint32(0, i + 1);
  return Identity.fromSecretKey(seed);
}

test.run();
