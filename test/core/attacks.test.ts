// Attacks on the receive pipeline: each asserts the model, the clock and the store are
// unchanged, the reason code, and the fault charged to the peer that sent it.
import { once } from 'node:events';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Identity, Model, MemoryStore, Events, signUpdate, owner, writers, limits, type IngestResult, type Rejection, type ReplicationStream } from '../../src/index.ts';
import { encodeHello, encodeUpdates } from '../../src/replication/messages.ts';
import { cborHead, encodeCbor } from '../../src/envelope/cbor.ts';
import { concatBytes } from '../../src/util/bytes.ts';
import { identity, testClock, fakeOrigin, forge, flipSignature, craft, payload, snapshot, storedModel, syncOnce, connect, verifyCounter, updates, T0 } from './helpers.ts';

const R = identity(0x01); // the receiving node
const S = identity(0x02); // an honest source
const M = identity(0x03); // mallory
const W = identity(0x04); // another writer
const MINE = `${R.id}/mine`; // a key the receiver may write under every policy used here

const disposeAll: Array<{ dispose(): void }> = [];
test.after.each(() => {
  for (const m of disposeAll.splice(0)) m.dispose();
});

async function receiver(options: Partial<ConstructorParameters<typeof Model>[0]> = {}) {
  const clock = testClock();
  const { model, store } = await storedModel({ identity: R, now: clock.now, ...options });
  disposeAll.push(model);
  const invalid: Rejection[] = [];
  model.on('invalid', (r) => invalid.push(r));
  model.set(MINE, 'seed'); // some prior state and a clock entry for R
  await updates(model);
  return { model, store, clock, invalid };
}

/** A raw peer: writes hand-made frames into `model`'s stream after a proper hello. */
function rawPeer(model: Model, as = M, options: Parameters<Model['createStream']>[0] = {}) {
  const stream = model.createStream(options);
  stream.resume(); // drain what the model sends us
  stream.write(encodeHello({ dataset: model.dataset, id: as.id, digest: new Map(), meta: null, readable: true, writable: true }));
  return stream;
}

const cut = (s: ReplicationStream) => once(s, 'cut').then(([e]) => e as { reason: string });

/** Resolves after the stream emitted `n` 'invalid' events. */
function invalidEvents(s: ReplicationStream, n: number): Promise<Rejection[]> {
  const seen: Rejection[] = [];
  return new Promise((resolve) => {
    const on = (r: Rejection) => {
      seen.push(r);
      if (seen.length === n) {
        s.off('invalid', on);
        resolve(seen);
      }
    };
    s.on('invalid', on);
  });
}

test('forged signature: rejected bad-signature, state/clock/store unchanged, one fault', async () => {
  const { model, store, invalid } = await receiver();
  const before = await snapshot(model, store);
  const origin = fakeOrigin();
  const r = await model.ingest(forge(S, M, { version: T0, body: ['set', 'k', 'evil'] }), origin);
  assert.equal(r, { status: 'rejected', reason: 'bad-signature' });
  assert.equal(await snapshot(model, store), before);
  assert.is(model.clock.get(S.id), undefined);
  assert.is(origin.faults.length, 1);
  assert.is(origin.faults[0]!.reason, 'bad-signature');
  assert.is(invalid.length, 1);
  assert.is(invalid[0]!.reason, 'bad-signature');
  // a genuine envelope with one signature bit flipped: the same
  const genuine = signUpdate(S, { dataset: 'default', version: T0, body: ['set', 'k', 'good'] });
  assert.equal(await model.ingest(flipSignature(genuine.bytes), origin), { status: 'rejected', reason: 'bad-signature' });
  assert.equal(await snapshot(model, store), before);
  assert.is(origin.faults.length, 2);
});

test('forged signature over a stream: the stream is cut off (bad-signature) after one fault', async () => {
  const { model, store } = await receiver();
  const before = await snapshot(model, store);
  const s = rawPeer(model);
  const gone = cut(s);
  s.write(encodeUpdates([forge(S, M, { version: T0, body: ['set', 'k', 'evil'] })]));
  assert.is((await gone).reason, 'bad-signature');
  assert.is(s.closeReason?.reason, 'bad-signature');
  assert.is(s.closeReason?.code, 'ERR_PROTOCOL');
  assert.is(s.faults, 1);
  assert.ok(s.destroyed);
  assert.equal(await snapshot(model, store), before);
});

test('clock poisoning: a forged far-future update for S moves nothing; S\'s genuine updates still apply', async () => {
  const { model, store, clock } = await receiver();
  const before = await snapshot(model, store);
  const origin = fakeOrigin();
  const calls = verifyCounter.calls;
  // beyond maxClockSkew: refused before verification, as 'future'
  const far = await model.ingest(forge(S, M, { version: Number.MAX_SAFE_INTEGER, body: ['set', 'k', 'evil'] }), origin);
  assert.equal(far, { status: 'rejected', reason: 'future' });
  assert.is(verifyCounter.calls, calls, 'a future update costs no verification');
  // within the skew (so it reaches verification): rejected by its signature
  const near = await model.ingest(forge(S, M, { version: T0 + limits.MAX_CLOCK_SKEW_MICROS, body: ['set', 'k', 'evil'] }), origin);
  assert.equal(near, { status: 'rejected', reason: 'bad-signature' });
  assert.equal(await snapshot(model, store), before);
  assert.is(model.clock.get(S.id), undefined);
  assert.equal(origin.faults.map((f) => f.reason), ['future', 'bad-signature']);

  // S's genuine updates, with ordinary versions, arrive and apply (directly and by replication)
  const honest = fakeOrigin();
  const g1 = signUpdate(S, { dataset: 'default', version: T0 + 1, body: ['set', 'k', 'good'] });
  assert.is((await model.ingest(g1.bytes, honest)).status, 'applied');
  assert.is(model.get('k'), 'good');
  assert.is(model.clock.get(S.id), T0 + 1);
  const source = new Model({ identity: S, now: () => clock.now() + 5 });
  disposeAll.push(source);
  await source.ready;
  source.set('k2', 'also good');
  await syncOnce(source, model);
  assert.is(model.get('k2'), 'also good');
  assert.is(model.clock.get(S.id), source.clock.get(S.id));
  assert.is(honest.faults.length, 0);
  assert.is(store.size('default'), 3); // mine, k, k2
});

test('a genuine update from just past the skew: verified, deferred (not a fault), clock untouched; applied once now reaches it', async () => {
  const { model, store, clock } = await receiver();
  const before = await snapshot(model, store);
  const origin = fakeOrigin();
  const ahead = signUpdate(S, { dataset: 'default', version: T0 + limits.MAX_CLOCK_SKEW_MICROS + 1_000_000, body: ['set', 'k', 'early'] });
  const deferred: unknown[] = [];
  model.on('deferred', (u) => deferred.push(u));
  assert.equal(await model.ingest(ahead.bytes, origin), { status: 'deferred' });
  assert.equal(await snapshot(model, store), before, 'nothing applied, stored or clocked');
  assert.is(origin.faults.length, 0, 'not the sender\'s fault');
  assert.is(deferred.length, 1);
  assert.is(model.deferredCount, 1);
  // the same update again (another peer relays it): held once
  assert.equal(await model.ingest(ahead.bytes, fakeOrigin()), { status: 'old' });
  assert.is(model.deferredCount, 1);
  // one µs before it is due it stays; at exactly now + maxClockSkew it applies
  clock.t = ahead.version - limits.MAX_CLOCK_SKEW_MICROS - 1;
  assert.is(model.flushDeferred(), 0);
  assert.equal(await snapshot(model, store), before);
  clock.t += 1;
  assert.is(model.flushDeferred(), 1);
  assert.is(model.get('k'), 'early');
  assert.is(model.clock.get(S.id), ahead.version);
  assert.is(model.deferredCount, 0);
});

test('deferral keeps order per source and is bounded: past MAX_DEFERRED_BYTES refused future, blamelessly; past MAX_DEFER_MICROS refused and counted', async () => {
  const { model, clock } = await receiver();
  const origin = fakeOrigin();
  const base = T0 + limits.MAX_CLOCK_SKEW_MICROS + 1_000;
  const later = signUpdate(S, { dataset: 'default', version: base + 10, body: ['set', 'a', 1] });
  assert.equal(await model.ingest(later.bytes, origin), { status: 'deferred' });
  const W = Identity.generate();
  // fill the budget with one source's big updates
  const big = 'x'.repeat(60_000);
  let held = 0;
  let refused: IngestResult | undefined;
  for (let i = 0; i < 40 && !refused; i++) {
    const r = await model.ingest(signUpdate(W, { dataset: 'default', version: base + 100 + i, body: ['set', `w${i}`, big] }).bytes, origin);
    if (r.status === 'deferred') held++;
    else refused = r;
  }
  assert.equal(refused, { status: 'rejected', reason: 'future' });
  assert.is(held, Math.floor((limits.MAX_DEFERRED_BYTES - later.bytes.length) / signUpdate(W, { dataset: 'default', version: base + 100, body: ['set', 'w0', big] }).bytes.length));
  assert.is(origin.faults.length, 0, 'a full deferral budget is nobody\'s fault');
  // beyond skew + MAX_DEFER_MICROS: refused before verification and counted
  const far = signUpdate(S, { dataset: 'default', version: T0 + limits.MAX_CLOCK_SKEW_MICROS + limits.MAX_DEFER_MICROS + 1, body: ['set', 'f', 1] });
  assert.equal(await model.ingest(far.bytes, fakeOrigin()), { status: 'rejected', reason: 'future' });
  const atLimit = signUpdate(S, { dataset: 'default', version: T0 + limits.MAX_CLOCK_SKEW_MICROS + limits.MAX_DEFER_MICROS, body: ['set', 'g', 1] });
  assert.equal(await model.ingest(atLimit.bytes, fakeOrigin()), { status: 'deferred' });
  // time passes: everything held applies, in version order per source
  const applied: number[] = [];
  model.on('update', (u) => applied.push(u.version));
  clock.t = atLimit.version;
  assert.is(model.flushDeferred(), held + 2);
  assert.equal(applied, [...applied].sort((x, y) => x - y), 'oldest first');
  assert.is(model.clock.get(S.id), atLimit.version);
  assert.is(model.clock.get(W.id), base + 100 + held - 1);
});

test('a future update over gossip: held without a fault, applied once it is due; the relay is never charged (issue 7 item 6)', async () => {
  const { model, clock } = await receiver();
  const source = new Model({ identity: S, now: () => clock.now() + 2 * limits.MAX_CLOCK_SKEW_MICROS });
  disposeAll.push(source);
  await source.ready;
  source.set('k', 'from the future');
  const first = connect(source, model, { a: { tail: false }, b: { tail: false } });
  const deferred = once(model, 'deferred');
  await first.closed;
  await deferred;
  assert.is(first.sb.faults, 0, 'not the sender\'s fault');
  assert.is(first.sb.stats.deferred, 1);
  assert.not.ok(model.has('k'));
  assert.is(model.clock.get(S.id), undefined);
  clock.advanceMs(limits.MAX_CLOCK_SKEW_MICROS / 1000 - 1); // 1 ms short
  assert.is(model.flushDeferred(), 0);
  clock.advanceMs(1); // now + skew reaches it
  assert.is(model.flushDeferred(), 1);
  assert.is(model.get('k'), 'from the future');
});

test('issue 7 item 6: a source timing updates into a 1 ms gap between two honest clocks cannot get the relay cut off', async () => {
  // relay B's clock is 1 ms ahead of receiver C's; the source signs versions that B accepts and C finds 1 ms too new
  const { model: c, clock } = await receiver();
  const b = new Model({ identity: identity(77), now: () => clock.now() + 1_000 });
  disposeAll.push(b);
  await b.ready;
  const due = T0 + limits.MAX_CLOCK_SKEW_MICROS + 1; // inside B's bound, 1 µs past C's
  for (let i = 0; i < limits.FAULT_BUDGET + 5; i++) {
    const u = signUpdate(S, { dataset: 'default', version: due + i, body: ['set', `k${i}`, i] });
    assert.is((await b.ingest(u.bytes, fakeOrigin())).status, 'applied');
  }
  const s = connect(b, c, { a: {}, b: {} });
  await s.synced;
  assert.is(s.sb.faults, 0);
  assert.is(s.sb.closeReason, null, 'the honest relay stays connected');
  assert.is(c.deferredCount, limits.FAULT_BUDGET + 5);
  clock.advanceMs(1);
  assert.is(c.flushDeferred(), limits.FAULT_BUDGET + 5);
  assert.is(c.clock.get(S.id), due + limits.FAULT_BUDGET + 4);
  assert.is(c.stateHash(), b.stateHash());
  s.sa.destroy();
  s.sb.destroy();
});

test('an update claiming to come from the receiving node is verified like any other', async () => {
  const { model, store } = await receiver();
  const before = await snapshot(model, store);
  const ownVersion = model.clock.get(R.id)!;
  const origin = fakeOrigin();
  const r = await model.ingest(forge(R, M, { version: ownVersion + 1, body: ['set', MINE, 'hijacked'] }), origin);
  assert.equal(r, { status: 'rejected', reason: 'bad-signature' });
  assert.equal(await snapshot(model, store), before);
  assert.is(model.get(MINE), 'seed');
  assert.is(origin.faults.length, 1);
  // and over a stream the peer is cut off
  const s = rawPeer(model);
  const gone = cut(s);
  s.write(encodeUpdates([forge(R, M, { version: ownVersion + 2, body: ['set', MINE, 'hijacked'] })]));
  assert.is((await gone).reason, 'bad-signature');
  assert.equal(await snapshot(model, store), before);
  // the node's own next write still gets the next version
  const next = model.set(MINE, 'still mine');
  assert.is(next.version, ownVersion + 1);
});

test('replay of an old update: old_data, not a fault, nothing changes', async () => {
  const { model, store } = await receiver();
  const origin = fakeOrigin();
  const u1 = signUpdate(S, { dataset: 'default', version: T0 + 1, body: ['set', 'k', 'one'] });
  const u2 = signUpdate(S, { dataset: 'default', version: T0 + 2, body: ['set', 'k', 'two'] });
  assert.is((await model.ingest(u1.bytes, origin)).status, 'applied');
  assert.is((await model.ingest(u2.bytes, origin)).status, 'applied');
  const before = await snapshot(model, store);
  const old: unknown[] = [];
  model.on('old_data', (u) => old.push(u));
  const calls = verifyCounter.calls;
  assert.equal(await model.ingest(u2.bytes, origin), { status: 'old' });
  assert.equal(await model.ingest(u1.bytes, origin), { status: 'old' });
  assert.is(verifyCounter.calls, calls, 'old data costs no verification');
  assert.is(old.length, 2);
  assert.is(origin.faults.length, 0);
  assert.equal(await snapshot(model, store), before);
  assert.is(model.get('k'), 'two');
});

test('an update for another dataset: wrong-dataset, one fault, unchanged', async () => {
  const { model, store, invalid } = await receiver();
  const before = await snapshot(model, store);
  const origin = fakeOrigin();
  const other = signUpdate(S, { dataset: 'other', version: T0, body: ['set', 'k', 'v'] });
  assert.equal(await model.ingest(other.bytes, origin), { status: 'rejected', reason: 'wrong-dataset' });
  assert.equal(await snapshot(model, store), before);
  assert.is(origin.faults[0]?.reason, 'wrong-dataset');
  assert.is(invalid[0]?.reason, 'wrong-dataset');
  assert.is(store.size('other'), 0);
});

test('a key outside the source\'s policy: forbidden (owner, writers, function), unchanged, one fault each', async () => {
  const cases: Array<[string, Parameters<typeof receiver>[0], string, string]> = [
    ['owner', { policy: owner() }, 'k', `${S.id}/k`],
    ['writers', { policy: writers([R.id, W.id]) }, 'k', ''],
    ['function', { policy: (source, key) => !key.startsWith('admin/') || source === R.id }, 'admin/k', 'user/k'],
  ];
  for (const [name, options, bad, good] of cases) {
    const { model, store, invalid } = await receiver(name === 'owner' ? { ...options, dataset: 'owned' } : options);
    const before = await snapshot(model, store);
    const origin = fakeOrigin();
    const calls = verifyCounter.calls;
    const u = signUpdate(S, { dataset: model.dataset, version: T0, body: ['set', bad, 'v'] });
    assert.equal(await model.ingest(u.bytes, origin), { status: 'rejected', reason: 'forbidden' }, name);
    assert.is(verifyCounter.calls, calls, `${name}: refused before verification`);
    assert.equal(await snapshot(model, store), before, name);
    assert.is(origin.faults.length, 1, name);
    assert.is(invalid[0]?.reason, 'forbidden', name);
    if (good) {
      const ok = signUpdate(S, { dataset: model.dataset, version: T0 + 1, body: ['set', good, 'v'] });
      assert.is((await model.ingest(ok.bytes, fakeOrigin())).status, 'applied', name);
    } else {
      const ok = signUpdate(W, { dataset: model.dataset, version: T0 + 1, body: ['set', bad, 'v'] });
      assert.is((await model.ingest(ok.bytes, origin)).status, 'applied', name);
    }
    // a delete is a write too
    const del = signUpdate(S, { dataset: model.dataset, version: T0 + 2, body: ['del', bad] });
    assert.equal(await model.ingest(del.bytes, origin), { status: 'rejected', reason: 'forbidden' }, `${name} delete`);
  }
});

test('after a rejection, the same origin\'s later updates of that source are not applied (no gap in the clock)', async () => {
  const { model, store } = await receiver();
  const u = (v: number, key: string) => signUpdate(S, { dataset: 'default', version: T0 + v, body: ['set', key, v] });
  const relay = fakeOrigin();
  const [r1, r2, r3, r4] = await Promise.all([
    model.ingest(u(1, 'a').bytes, relay),
    model.ingest(flipSignature(u(2, 'b').bytes), relay), // altered in transit
    model.ingest(u(3, 'c').bytes, relay), // genuine, but would move S's clock past the gap
    model.ingest(signUpdate(W, { dataset: 'default', version: T0 + 4, body: ['set', 'w', 1] }).bytes, relay),
  ]);
  assert.is(r1.status, 'applied');
  assert.equal(r2, { status: 'rejected', reason: 'bad-signature' });
  assert.equal(r3, { status: 'ignored' });
  assert.is(r4.status, 'applied', 'other sources are not affected');
  assert.is(model.clock.get(S.id), T0 + 1);
  assert.is(relay.faults.length, 1);
  // an honest peer then delivers b and c in order
  const honest = fakeOrigin();
  assert.is((await model.ingest(u(2, 'b').bytes, honest)).status, 'applied');
  assert.is((await model.ingest(u(3, 'c').bytes, honest)).status, 'applied');
  assert.equal([model.get('a'), model.get('b'), model.get('c')], [1, 2, 3]);
  // an unreadable envelope breaks the origin for every source
  const garbled = fakeOrigin();
  assert.equal(await model.ingest(Uint8Array.of(0x82, 0x00), garbled), { status: 'rejected', reason: 'bad-shape' });
  assert.equal(await model.ingest(u(5, 'd').bytes, garbled), { status: 'ignored' });
  assert.not.ok(model.has('d'));
  assert.is(store.size('default'), 5);
});

test('__proto__, constructor, toString as keys are ordinary keys; Object.prototype untouched', async () => {
  const { model, store, clock } = await receiver();
  const origin = fakeOrigin();
  const names = ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'prototype', 'valueOf'];
  let v = T0;
  for (const key of names) {
    const u = signUpdate(S, { dataset: 'default', version: ++v, body: ['set', key, { polluted: true, key }] });
    assert.is((await model.ingest(u.bytes, origin)).status, 'applied', key);
  }
  for (const key of names) {
    assert.ok(model.has(key), key);
    assert.equal(model.get(key), { polluted: true, key }, key);
  }
  const json = model.toJSON();
  for (const key of names) assert.ok(Object.prototype.hasOwnProperty.call(json, key), `own ${key}`);
  assert.is(Object.getPrototypeOf(json), Object.prototype);
  assert.is(({} as { polluted?: unknown }).polluted, undefined);
  assert.is(typeof ({}).toString, 'function');
  assert.is(({}).constructor, Object);
  assert.is(origin.faults.length, 0);
  assert.is(store.size('default'), names.length + 1);
  // local writes and deletes of those names (later than S's), and replication of them
  clock.advanceMs(1000);
  model.set('__proto__', 'local');
  model.delete('constructor');
  const peer = new Model({ identity: W, now: model['now'] });
  disposeAll.push(peer);
  await peer.ready;
  await syncOnce(model, peer);
  assert.is(peer.get('__proto__'), 'local');
  assert.not.ok(peer.has('constructor'));
  assert.equal(peer.get('toString'), { polluted: true, key: 'toString' });
  assert.is(peer.stateHash(), model.stateHash());
  assert.is(({} as { polluted?: unknown }).polluted, undefined);
  // a value that carries a prototype key inside is refused: locally by a throw, from a peer as bad-shape
  assert.throws(() => model.set('x', JSON.parse('{"__proto__": {"polluted": true}}')), (e: Error) => e instanceof RangeError || e instanceof TypeError);
  const evilBody = concatBytes(Uint8Array.of(0x83), encodeCbor('set'), encodeCbor('x'), Uint8Array.of(0xa1), encodeCbor('__proto__'), cborHead(7, 21));
  const evilPayload = concatBytes(payload({ publicKey: S.publicKey, version: v + 10, body: null }).subarray(0, -1), evilBody);
  const r = await model.ingest(craft(evilPayload, S), origin);
  assert.equal(r, { status: 'rejected', reason: 'bad-shape' });
  assert.is(({} as { polluted?: unknown }).polluted, undefined);
});

test('__proto__, constructor, toString as dataset names and event names; not accepted as source ids', async () => {
  for (const dataset of ['__proto__', 'constructor', 'toString']) {
    const store = new MemoryStore();
    const clock = testClock();
    const a = new Model({ identity: S, dataset, store, now: clock.now });
    const b = new Model({ identity: W, dataset, now: clock.now });
    disposeAll.push(a, b);
    await a.ready;
    await b.ready;
    a.set(dataset, dataset);
    await updates(a);
    assert.is(store.size(dataset), 1, dataset);
    assert.is(store.size('default'), 0, dataset);
    await syncOnce(a, b);
    assert.is(b.get(dataset), dataset);
    // an update signed for that dataset does not apply to another
    const c = new Model({ identity: R, dataset: `${dataset}x` });
    disposeAll.push(c);
    await c.ready;
    assert.equal(await c.ingest(a.updateOf(dataset)!.bytes, fakeOrigin()), { status: 'rejected', reason: 'wrong-dataset' });
  }
  // events whose names are prototype names replicate and are heard
  const ea = new Events({ identity: S });
  const eb = new Events({ identity: W });
  disposeAll.push(ea, eb);
  await ea.ready;
  await eb.ready;
  const heard: string[] = [];
  for (const name of ['__proto__', 'constructor', 'toString']) eb.on(name, (data: string) => heard.push(data));
  for (const name of ['__proto__', 'constructor', 'toString']) ea.emit(name, name);
  await syncOnce(ea, eb);
  assert.equal(heard.sort(), ['__proto__', 'constructor', 'toString']);
  assert.is(({} as { polluted?: unknown }).polluted, undefined);
  // a source id is derived from a key, so a prototype name can never be one
  for (const id of ['__proto__', 'constructor', 'toString']) assert.throws(() => writers([id]), RangeError);
});

test('fault budget: the default 64 rejections are tolerated, the 65th cuts the stream off', async () => {
  const { model, store } = await receiver({ policy: (_s, key) => key !== 'forbidden' });
  const s = rawPeer(model);
  const bad = (i: number) => signUpdate(S, { dataset: 'default', version: T0 + i, body: ['set', 'forbidden', i] }).bytes;
  const first = invalidEvents(s, limits.FAULT_BUDGET);
  s.write(encodeUpdates(Array.from({ length: limits.FAULT_BUDGET }, (_, i) => bad(i + 1))));
  await first;
  assert.is(s.faults, limits.FAULT_BUDGET);
  assert.is(s.closeReason, null);
  // still alive: a good update (from another source: S's later ones could leave a gap) applies
  const applied = updates(model);
  s.write(encodeUpdates([signUpdate(W, { dataset: 'default', version: T0 + 100, body: ['set', 'ok', 1] }).bytes]));
  await applied;
  assert.is(model.get('ok'), 1);
  assert.not.ok(s.destroyed);
  const gone = cut(s);
  s.write(encodeUpdates([bad(101)]));
  assert.is((await gone).reason, 'fault-budget');
  assert.is(s.faults, limits.FAULT_BUDGET + 1);
  assert.not.ok(model.has('forbidden'));
  assert.is(store.size('default'), 2);
});

test('fault budget option: faultBudget 3 tolerates 3 and cuts at 4', async () => {
  const { model } = await receiver();
  const s = rawPeer(model, M, { faultBudget: 3 });
  const wrong = (i: number) => signUpdate(S, { dataset: 'elsewhere', version: T0 + i, body: ['set', 'k', i] }).bytes;
  const three = invalidEvents(s, 3);
  s.write(encodeUpdates([wrong(1), wrong(2), wrong(3)]));
  await three;
  assert.is(s.faults, 3);
  assert.is(s.closeReason, null);
  const gone = cut(s);
  s.write(encodeUpdates([wrong(4)]));
  assert.is((await gone).reason, 'fault-budget');
  assert.is(s.faults, 4);
});

test('dedupe: the same update arriving from two origins at once is verified once', async () => {
  const { model, store } = await receiver();
  const u = signUpdate(S, { dataset: 'default', version: T0, body: ['set', 'k', 'v'] });
  const o1 = fakeOrigin();
  const o2 = fakeOrigin();
  const calls = verifyCounter.calls;
  const [r1, r2] = await Promise.all([model.ingest(u.bytes, o1), model.ingest(u.bytes, o2)]);
  assert.is(verifyCounter.calls - calls, 1);
  assert.equal([r1.status, r2.status], ['applied', 'old']);
  assert.is(o1.faults.length + o2.faults.length, 0);
  assert.is(store.size('default'), 2);
});

test('dedupe: forgeries of one payload past the in-flight cap are each verified and refused; the genuine one applies', async () => {
  const { model } = await receiver();
  const u = signUpdate(S, { dataset: 'default', version: T0, body: ['set', 'k', 'v'] });
  const forged = Array.from({ length: 12 }, (_, i) => {
    const bytes = u.bytes.slice();
    bytes[bytes.length - 40 - i]! ^= 1; // another signature byte each (S's high bytes stay below L)
    return bytes;
  });
  const calls = verifyCounter.calls;
  const results = await Promise.all([...forged.map((b) => model.ingest(b, fakeOrigin())), model.ingest(u.bytes, fakeOrigin())]);
  assert.ok(results.slice(0, -1).every((r) => r.status === 'rejected' && r.reason === 'bad-signature'));
  assert.is(results.at(-1)!.status, 'applied');
  assert.is(verifyCounter.calls - calls, 13, 'every distinct envelope verified once');
  assert.is(model.get('k'), 'v');
});

test('dedupe over streams: two peers offering the same 50 updates cost 50 verifications', async () => {
  const { model } = await receiver();
  const clock = testClock();
  const src = new Model({ identity: S, now: clock.now });
  const p1 = new Model({ identity: W, now: clock.now });
  const p2 = new Model({ identity: M, now: clock.now });
  disposeAll.push(src, p1, p2);
  await Promise.all([src.ready, p1.ready, p2.ready]);
  for (let i = 0; i < 50; i++) src.set(`k${i}`, i);
  await syncOnce(src, p1);
  await syncOnce(src, p2);
  const calls = verifyCounter.calls;
  const old: unknown[] = [];
  model.on('old_data', (u) => old.push(u));
  await Promise.all([syncOnce(p1, model), syncOnce(p2, model)]);
  assert.is(verifyCounter.calls - calls, 50 + 2); // + p1 and p2 each verifying the model's own key
  assert.is(old.length, 50); // every second copy was old data, not a fault
  assert.is(model.stateHash() === src.stateHash(), false); // model also holds its own 'mine'
  assert.equal(model.keys().filter((k) => k !== MINE).length, 50);
});

test('dedupe does not let a forged copy (same payload, bad signature) sink the genuine one', async () => {
  const { model, store } = await receiver();
  const before = await snapshot(model, store);
  const u = signUpdate(S, { dataset: 'default', version: T0, body: ['set', 'k', 'v'] });
  const attacker = fakeOrigin();
  const honest = fakeOrigin();
  // the forgery arrives first, the genuine update while it is still being verified
  const [bad, good] = await Promise.all([model.ingest(flipSignature(u.bytes), attacker), model.ingest(u.bytes, honest)]);
  assert.equal(bad, { status: 'rejected', reason: 'bad-signature' });
  assert.is(good.status, 'applied');
  assert.is(attacker.faults.length, 1);
  assert.is(honest.faults.length, 0, 'the honest peer must not be charged (one bad signature cuts it off)');
  assert.is(model.get('k'), 'v');
  assert.is(store.size('default'), before.storeSize + 1);
  // genuine first, forgery second: the forgery is still a fault, never applied or stored
  const u2 = signUpdate(S, { dataset: 'default', version: T0 + 1, body: ['set', 'k', 'v2'] });
  const [good2, bad2] = await Promise.all([model.ingest(u2.bytes, honest), model.ingest(flipSignature(u2.bytes), attacker)]);
  assert.is(good2.status, 'applied');
  assert.equal(bad2, { status: 'rejected', reason: 'bad-signature' });
  assert.is(honest.faults.length, 0);
  const stored = await store.load('default');
  assert.ok(stored.updates.some((b) => Buffer.compare(Buffer.from(b), Buffer.from(u2.bytes)) === 0));
  assert.not.ok(stored.updates.some((b) => Buffer.compare(Buffer.from(b), Buffer.from(flipSignature(u2.bytes))) === 0));
});

test.run();
