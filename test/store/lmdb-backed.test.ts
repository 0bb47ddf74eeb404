// Backed updates: a model on a store that reads envelopes back (LmdbStore) keeps only the hash,
// body length, first body byte and a signature check of the plain writes it holds once the store
// committed them (at the next turn), and reads the envelope back from the store, checked. An update it lets go is turned
// compact again first, so whoever still has it can read it after the store dropped it. A store
// that lost or altered an envelope makes reads of it throw StoreError, never return other bytes.
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LmdbStore, MemoryStore, Model, StoreError, signUpdate, type Store, type StoreBatch, type StoredState, type Update, type VersionRecord } from '../../src/index.ts';
import type { StoreUpdateName } from '../../src/store/store.ts';
import { isBacked, isCompact, recordChunkOf, signedId } from '../../src/envelope/update.ts';
import { connect, identity, syncOnce, testClock, updates } from '../core/helpers.ts';

const A = identity(0x61);
const N = 1500;
/** The turn after the last commit: committed updates are backed then. */
const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

/** What a reader of an update sees, byte for byte. */
function snapshot(u: Update) {
  return {
    bytes: Buffer.from(u.bytes).toString('hex'), payload: Buffer.from(u.payload).toString('hex'), signature: Buffer.from(u.signature).toString('hex'),
    body: JSON.stringify(u.body), bodyBytes: Buffer.from(u.bodyBytes).toString('hex'), hash: u.hashHex, byteLength: u.byteLength, id: signedId(u),
  };
}

function withDir(run: (dir: string) => Promise<void>): () => Promise<void> {
  return async () => {
    const parent = mkdtempSync(join(tmpdir(), 'signet-backed-'));
    try {
      await run(join(parent, 'store'));
    } finally {
      rmSync(parent, { recursive: true, force: true });
    }
  };
}

test('updates held past the window are backed by LmdbStore and read back bit for bit', withDir(async (dir) => {
  const store = new LmdbStore(dir);
  const model = new Model({ identity: A, store, now: testClock().now });
  try {
    await model.ready;
    const written: Update[] = [];
    const seen = new Map<Update, ReturnType<typeof snapshot>>();
    const landed = updates(model, N);
    for (let i = 0; i < N; i++) {
      const u = model.set(`k${i}`, { i, text: 'v'.repeat(i % 90) }, i % 7 === 0 ? { ttl: 3_600_000 } : undefined);
      written.push(u);
      seen.set(u, snapshot(u)); // read while fresh, before anything is backed
    }
    await landed;
    await nextTurn();
    const backed = written.filter(isBacked);
    // Every plain write is backed (none was let go); TTL writes stay in memory (purge and
    // reconciliation read them), compact.
    const ttl = written.filter((_, i) => i % 7 === 0);
    assert.ok(ttl.every((u) => !isBacked(u) && isCompact(u)), 'TTL writes are compact, not backed');
    assert.is(backed.length, N - ttl.length);
    for (const u of backed) {
      assert.equal(snapshot(u), seen.get(u), `update ${u.version} reads back as it was`);
      // Only the short record stays in memory: a chunk record of 4 + 37 bytes, not the envelope.
      assert.ok(recordChunkOf(u) !== null);
    }
    for (let i = 0; i < N; i++) assert.equal(model.get(`k${i}`), { i, text: 'v'.repeat(i % 90) });
    // A peer's history and reconciliation read them as ever.
    assert.is(model.history().length, N);
  } finally {
    model.dispose();
    await store.close();
  }
}));

test('a backed update the model lets go is compact again: readable after the store dropped it', withDir(async (dir) => {
  const store = new LmdbStore(dir);
  const model = new Model({ identity: A, store, now: testClock().now });
  try {
    await model.ready;
    const first: Update[] = [];
    let landed = updates(model, N);
    for (let i = 0; i < N; i++) first.push(model.set(`k${i}`, `first ${i}`));
    await landed;
    await nextTurn();
    const before = first.filter(isBacked);
    assert.ok(before.length > 0);
    const views = new Map(before.map((u) => [u, snapshot(u)]));
    landed = updates(model, N);
    for (let i = 0; i < N; i++) model.set(`k${i}`, `second ${i}`); // each supersedes (and drops) the first
    await landed;
    await nextTurn();
    for (const u of before) {
      assert.ok(!isBacked(u) && isCompact(u), 'let go: compact again');
      assert.equal(snapshot(u), views.get(u), 'and reads as before, though the store dropped it');
      assert.is(store.readEnvelope(model.dataset, u), undefined, 'the store no longer holds it');
    }
    for (let i = 0; i < N; i++) assert.is(model.get(`k${i}`), `second ${i}`);
  } finally {
    model.dispose();
    await store.close();
  }
}));

test('a model reopened from LmdbStore backs what it loaded; reads go to the store, closed or not', withDir(async (dir) => {
  let store = new LmdbStore(dir);
  let model = new Model({ identity: A, store, now: testClock().now });
  await model.ready;
  const landed = updates(model, 500);
  for (let i = 0; i < 500; i++) model.set(`k${i}`, i);
  await landed;
  const hash = model.stateHash();
  model.dispose();
  await store.close();

  store = new LmdbStore(dir);
  model = new Model({ identity: A, store, now: testClock().now });
  await model.ready;
  const held = model.history();
  assert.is(held.length, 500);
  assert.ok(held.every(isBacked), 'everything loaded is backed at once');
  assert.is(model.stateHash(), hash);
  for (let i = 0; i < 500; i++) assert.is(model.get(`k${i}`), i);
  model.dispose();
  await store.close();
  // The envelopes live in the store: once it is closed, a read says so rather than inventing bytes.
  assert.throws(() => held[0]!.bytes, (err: unknown) => err instanceof StoreError && /closed/.test((err as Error).message));
}));

/** A store over MemoryStore whose reads come from a map the test can damage. */
class DamageableStore implements Store {
  readonly inner = new MemoryStore();
  readonly envelopes = new Map<string, Uint8Array>();
  static key = (u: StoreUpdateName) => `${u.source}/${u.version}/${Buffer.from(u.hash).toString('hex')}`;
  load(dataset: string): Promise<StoredState> {
    return this.inner.load(dataset);
  }
  commit(dataset: string, batch: StoreBatch): Promise<void> {
    for (const u of batch.put) if (!Array.isArray(u)) this.envelopes.set(DamageableStore.key(u), u.bytes.slice());
    for (const u of batch.drop) if (typeof u !== 'string') this.envelopes.delete(DamageableStore.key(u));
    return this.inner.commit(dataset, batch);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
  readEnvelope(_dataset: string, u: StoreUpdateName): Uint8Array | undefined {
    return this.envelopes.get(DamageableStore.key(u))?.slice();
  }
}

test('a store that lost or altered a backed envelope: reads throw StoreError, the model goes on', async () => {
  const store = new DamageableStore();
  const model = new Model({ identity: A, store, now: testClock().now });
  const errors: Error[] = [];
  model.on('error', (err) => errors.push(err));
  try {
    await model.ready;
    const written: Update[] = [];
    let landed = updates(model, N);
    for (let i = 0; i < N; i++) written.push(model.set(`k${i}`, `v${i}`));
    await landed;
    await nextTurn();
    const [lost, altered, intact, forged] = written;
    assert.ok([lost, altered, intact, forged].every((u) => isBacked(u!)));
    store.envelopes.delete(DamageableStore.key(lost!));
    const bytes = store.envelopes.get(DamageableStore.key(altered!))!;
    bytes[bytes.length - 70] = bytes[bytes.length - 70]! ^ 1; // a body byte: the payload no longer has the hash held
    const signed = store.envelopes.get(DamageableStore.key(forged!))!;
    signed[signed.length - 1] = signed[signed.length - 1]! ^ 1; // a signature byte: the payload hash still matches
    for (const read of [(u: Update) => u.bytes, (u: Update) => u.body, (u: Update) => u.signature, (u: Update) => u.payload]) {
      assert.throws(() => read(lost!), (err: unknown) => err instanceof StoreError && /no longer holds/.test((err as Error).message));
      assert.throws(() => read(altered!), (err: unknown) => err instanceof StoreError && /other bytes/.test((err as Error).message));
      assert.throws(() => read(forged!), (err: unknown) => err instanceof StoreError && /other bytes/.test((err as Error).message));
    }
    assert.throws(() => model.get('k0'), (err: unknown) => err instanceof StoreError);
    assert.ok(model.keys().includes('k0'), 'keys() reads no value');
    assert.is(model.get('k2'), 'v2');
    // Hash, version and length need no read: reconciliation and digests go on.
    assert.is(lost!.hash.length, 32);
    assert.ok(lost!.byteLength > 0);
    // Letting the lost one go (overwriting its key) reports the loss and goes on.
    landed = updates(model, 2);
    model.set('k0', 'new');
    model.set('k2', 'new too');
    await landed;
    await nextTurn();
    // Each damaged record reported once: the lost one when it was let go, the two altered ones
    // when the model forgot them at the end of the turn that read them (see the next test).
    assert.is(errors.length, 3);
    assert.ok(errors.every((e) => e instanceof StoreError));
    assert.ok(/no longer holds/.test(errors[0]!.message) && errors.slice(1).every((e) => /other bytes/.test(e.message)), errors.map((e) => e.message).join('\n'));
    assert.is(model.get('k1'), undefined);
    assert.is(model.get('k3'), undefined);
    assert.not.ok(store.envelopes.has(DamageableStore.key(altered!)), 'the altered record is dropped');
    assert.is(model.get('k0'), 'new');
    assert.is(model.get('k2'), 'new too');
    assert.ok(isCompact(intact!) && !isBacked(intact!), 'the intact one was turned compact');
    assert.equal(intact!.body, ['set', 'k2', 'v2']);
  } finally {
    model.dispose();
    await store.close();
  }
});

test('a stream that must send an envelope its store lost is cut off with the StoreError, no crash', async () => {
  const store = new DamageableStore();
  const model = new Model({ identity: A, store, now: testClock().now });
  const replica = new Model({ identity: identity(0x62), now: testClock().now });
  try {
    await Promise.all([model.ready, replica.ready]);
    const written: Update[] = [];
    const landed = updates(model, N);
    for (let i = 0; i < N; i++) written.push(model.set(`k${i}`, i));
    await landed;
    await nextTurn();
    const lost = written.find(isBacked)!;
    store.envelopes.delete(DamageableStore.key(lost));
    const errors: Error[] = [];
    model.on('error', (e) => errors.push(e));
    const { sa, destroy } = connect(model, replica, { a: { tail: false }, b: { tail: false } });
    const [err] = (await once(sa, 'cut')) as [Error];
    destroy();
    assert.ok(/internal-error/.test(err.message) && /no longer holds/.test(err.message), err.message);
    await nextTurn();
    assert.is(errors.length, 1, 'the loss is reported to the model\'s owner too, once');
  } finally {
    model.dispose();
    replica.dispose();
    await store.close();
  }
});

test('a lost backed envelope is reported once and forgotten: the next stream is served, and a peer that holds it brings it back', async () => {
  const writer = new Model({ identity: identity(0x63), now: testClock().now });
  const store = new DamageableStore();
  const model = new Model({ identity: A, store, now: testClock().now });
  const replica = new Model({ identity: identity(0x62), now: testClock().now });
  const only = new Model({ identity: identity(0x64), now: testClock().now });
  const errors: Error[] = [];
  model.on('error', (err) => errors.push(err));
  try {
    await Promise.all([writer.ready, model.ready, replica.ready, only.ready]);
    const n = 300;
    for (let i = 0; i < n; i++) writer.set(`k${i}`, i);
    only.set('solo', 'once'); // a source that writes once
    await syncOnce(writer, model);
    await syncOnce(only, model);
    await nextTurn();
    const held = model.history();
    assert.is(held.length, n + 1);
    assert.ok(held.every(isBacked));
    const lost = held.find((u) => u.source === writer.id)!;
    const solo = held.find((u) => u.source !== writer.id)!;
    const lostKey = `k${(lost.body as [string, string, number])[2]}`;
    const lostValue = model.get(lostKey);
    store.envelopes.delete(DamageableStore.key(lost));
    store.envelopes.delete(DamageableStore.key(solo));
    // The first reader finds the loss and gets the StoreError; the model forgets both at the end of the turn.
    assert.throws(() => model.get(lostKey), (err: unknown) => err instanceof StoreError && /no longer holds/.test((err as Error).message));
    assert.throws(() => solo.body, (err: unknown) => err instanceof StoreError);
    assert.is(errors.length, 0, 'reported once forgotten, not per read');
    await nextTurn();
    assert.is(errors.length, 2);
    assert.is(model.get(lostKey), undefined);
    assert.is(model.get('solo'), undefined);
    assert.is(model.history().length, n - 1);
    assert.is(model.clock.get(writer.id), writer.clock.get(writer.id), 'a source that holds more keeps its clock');
    assert.is(model.clock.get(solo.source), undefined, 'a source that held nothing else is forgotten');
    // Nothing is read for them again: a new peer is served everything else, no cut.
    await syncOnce(model, replica);
    assert.is(replica.history().length, n - 1);
    assert.is(errors.length, 2);
    // A peer that holds them sends them back: the lone one in its history, the other through
    // reconciliation (below the clock, unheld), verified and stored like any other.
    await syncOnce(writer, model);
    assert.is(model.get(lostKey), lostValue);
    assert.ok(store.envelopes.has(DamageableStore.key(lost)), 'stored again');
    assert.is(model.history().length, n);
    await syncOnce(only, model);
    assert.is(model.get('solo'), 'once');
    assert.is(model.clock.get(solo.source), only.clock.get(only.id));
    assert.is(model.history().length, n + 1);
    assert.is(errors.length, 2);
  } finally {
    for (const m of [writer, only, model, replica]) m.dispose();
    await store.close();
  }
});

test('a lost update leaves no trace that could read it again: not its source\'s latest, not evidence', async () => {
  const clock = testClock();
  const store = new DamageableStore();
  const model = new Model({ identity: A, store, now: clock.now });
  const other = new Model({ identity: identity(0x62), now: clock.now });
  const errors: Error[] = [];
  model.on('error', (err) => errors.push(err));
  try {
    await Promise.all([model.ready, other.ready]);
    const E = identity(0x70);
    const v = clock.now() - 1000;
    const first = signUpdate(E, { dataset: 'default', version: v - 5, body: ['set', 'x', 0] });
    const mine = signUpdate(E, { dataset: 'default', version: v, body: ['set', 'a', 1] });
    const theirs = signUpdate(E, { dataset: 'default', version: v, body: ['set', 'b', 2] }); // the other side of an equivocation
    for (const u of [first, mine]) assert.is((await model.ingest(u.bytes)).status, 'applied');
    for (const u of [first, theirs]) assert.is((await other.ingest(u.bytes)).status, 'applied');
    await nextTurn();
    const lost = model.updateOf('a')!;
    assert.ok(isBacked(lost));
    store.envelopes.delete(DamageableStore.key(lost));
    assert.throws(() => model.get('a'), (err: unknown) => err instanceof StoreError);
    await nextTurn();
    assert.is(errors.length, 1);
    assert.is(model.clock.get(E.id), v, 'its source holds more: the clock stays');
    assert.not.ok(model.latestUpdates(E.id).includes(lost), 'no longer its source\'s latest');
    // A peer holding the other side at that version: nothing owes it the lost one, no cut, and
    // the other side is applied, not taken for evidence against the lost one.
    await syncOnce(model, other);
    assert.is(model.get('b'), 2);
    assert.is(model.equivocations().length, 0);
    assert.not.ok(model.reconcileSet().includes(lost));
    assert.not.ok(model.history().includes(lost));
    assert.is(errors.length, 1);
  } finally {
    model.dispose();
    other.dispose();
    await store.close();
  }
});

test('live forwarding reads what it sends from memory, never from the store', withDir(async (dir) => {
  const store = new LmdbStore(dir);
  let reads = 0;
  const read = store.readEnvelope.bind(store);
  store.readEnvelope = (dataset, u) => (reads++, read(dataset, u));
  const model = new Model({ identity: A, store, now: testClock().now });
  const replica = new Model({ identity: identity(0x63), now: testClock().now });
  await Promise.all([model.ready, replica.ready]);
  const { synced, destroy } = connect(model, replica);
  try {
    await synced;
    const arrived = updates(replica, N);
    for (let i = 0; i < N; i++) {
      model.set(`k${i}`, i);
      if (i % 100 === 99) await nextTurn(); // writes in many turns, as an application makes them
    }
    await arrived;
    await nextTurn();
    assert.is(replica.get(`k${N - 1}`), N - 1);
    assert.is(reads, 0, 'no envelope read back to forward it');
    assert.ok(model.history().every(isBacked), 'and every one is backed now');
  } finally {
    destroy();
    model.dispose();
    replica.dispose();
    await store.close();
  }
}));

test('records put as [hash, bytes] pairs (any hash) are loaded into memory, not backed', withDir(async (dir) => {
  // A writer that names envelopes by a hash of its own (here the whole envelope's): readEnvelope
  // cannot find them by name, so the model must not leave them to the store.
  const writer = new Model({ identity: A, now: testClock().now });
  await writer.ready;
  const sent = Array.from({ length: 300 }, (_, i) => writer.set(`k${i}`, i));
  writer.dispose();
  let store = new LmdbStore(dir);
  const hashOf = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');
  await store.commit('default', { put: sent.map((u) => [hashOf(u.bytes), u.bytes.slice()] as [string, Uint8Array]), drop: [], clock: [] });
  await store.close();
  store = new LmdbStore(dir);
  const model = new Model({ identity: identity(0x64), store, now: testClock().now });
  try {
    await model.ready;
    const held = model.history();
    assert.is(held.length, 300);
    assert.ok(held.every((u) => !isBacked(u) && isCompact(u)), 'kept in memory, compact');
    assert.is(model.keys().length, 300);
    for (let i = 0; i < 300; i++) assert.is(model.get(`k${i}`), i);
  } finally {
    model.dispose();
    await store.close();
  }
}));

test('deletes stay in memory (purge and reconciliation read them)', withDir(async (dir) => {
  const store = new LmdbStore(dir);
  const model = new Model({ identity: A, store, now: testClock().now });
  await model.ready;
  const landed = updates(model, N);
  const deletes: Update[] = [];
  for (let i = 0; i < N; i++) deletes.push(model.delete(`k${i}`));
  await landed;
  assert.ok(!deletes.some(isBacked));
  model.dispose();
  await store.close();
}));

test('no store reading back (MemoryStore), envelopesInMemory, keepVersions or a resolve rule: nothing is backed', withDir(async (dir) => {
  const resolve = (a: VersionRecord, b: VersionRecord) => (a.version >= b.version ? a : b); // reads both values
  const cases = [
    [new MemoryStore(), {}], [new LmdbStore(join(dir, 'a')), { envelopesInMemory: true }], [new LmdbStore(join(dir, 'b')), { keepVersions: true }],
    [new LmdbStore(join(dir, 'c')), { resolve }],
  ] as const;
  for (const [store, options] of cases) {
    const model = new Model({ identity: A, store, now: testClock().now, ...options });
    await model.ready;
    const landed = updates(model, N);
    const written: Update[] = [];
    for (let i = 0; i < N; i++) written.push(model.set(`k${i}`, i));
    await landed;
    await nextTurn();
    assert.ok(!written.some(isBacked));
    model.dispose();
    await store.close();
  }
}));

test.run();
