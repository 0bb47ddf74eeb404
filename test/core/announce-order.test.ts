// Applied updates are announced ('update', 'change') and forwarded in the order they were
// applied, even when the store settles their commits out of order: LmdbStore did, for the
// first write of a burst (it carries the ownVersion reservation), which was announced after
// the 500 writes that followed it.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LmdbStore, MemoryStore, Model, StoreError, type Store, type StoreBatch, type StoredState } from '../../src/index.ts';
import { identity, testClock } from './helpers.ts';

const A = identity(0x71);

/** A MemoryStore whose commits settle when the test says, in any order. */
class HeldBackStore implements Store {
  readonly inner = new MemoryStore();
  readonly waiting: Array<{ batch: StoreBatch; settle: (fail?: Error) => void }> = [];
  holding = false;
  load(dataset: string): Promise<StoredState> {
    return this.inner.load(dataset);
  }
  commit(dataset: string, batch: StoreBatch): Promise<void> {
    if (!this.holding) return this.inner.commit(dataset, batch);
    return new Promise((resolve, reject) => {
      this.waiting.push({ batch, settle: (fail) => (fail ? reject(fail) : this.inner.commit(dataset, batch).then(resolve, reject)) });
    });
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

const turn = () => new Promise<void>((resolve) => setImmediate(resolve));
/** Lets the writes of this turn go to the store (the model commits them as one batch at its end). */
const tick = () => Promise.resolve();

test('commits settled newest first: updates and changes are still announced oldest first', async () => {
  const store = new HeldBackStore();
  const model = new Model({ identity: A, store, now: testClock().now });
  try {
    await model.ready;
    store.holding = true;
    const announced: string[] = [];
    const changes: unknown[] = [];
    model.on('update', (u) => announced.push(JSON.stringify(u.body)));
    model.on('change', (c) => changes.push(c.value));
    model.set('k', 'first');
    await tick();
    model.set('k', 'second');
    await tick();
    model.set('other', 'third');
    await tick();
    assert.is(store.waiting.length, 3);
    store.waiting[2]!.settle();
    store.waiting[1]!.settle();
    await turn();
    assert.equal(announced, [], 'nothing before the oldest commit settled');
    store.waiting[0]!.settle();
    await turn();
    assert.equal(announced, ['["set","k","first"]', '["set","k","second"]', '["set","other","third"]']);
    assert.equal(changes, ['first', 'second', 'third'], 'a listener ends with the value the model holds');
    assert.is(model.get('k'), 'second');
  } finally {
    model.dispose();
  }
});

test('a failed commit is reported in its place and announces nothing; the later ones still announce in order', async () => {
  const store = new HeldBackStore();
  const model = new Model({ identity: A, store, now: testClock().now });
  const errors: Error[] = [];
  model.on('error', (err) => errors.push(err));
  try {
    await model.ready;
    store.holding = true;
    const announced: string[] = [];
    model.on('update', (u) => announced.push((u.body as string[])[1]!));
    model.set('a', 1);
    await tick();
    model.set('b', 2);
    await tick();
    model.set('c', 3);
    await tick();
    store.waiting[2]!.settle();
    store.waiting[0]!.settle(new Error('disk full'));
    await turn();
    assert.equal(announced, [], 'b not settled yet: c waits');
    assert.is(errors.length, 1);
    assert.match(errors[0]!.message, /disk full/);
    store.waiting[1]!.settle();
    await turn();
    assert.equal(announced, ['b', 'c']);
  } finally {
    model.dispose();
  }
});

test('the writes of one turn are one batch: one clock entry, and what they superseded among them is never stored', async () => {
  const store = new HeldBackStore();
  const model = new Model({ identity: A, store, now: testClock().now });
  try {
    await model.ready;
    model.set('k', 'old'); // committed on its own: a later group must drop it
    await tick();
    await turn();
    store.holding = true;
    const announced: string[] = [];
    model.on('update', (u) => announced.push(JSON.stringify(u.body)));
    const u1 = model.set('k', 'first'); // supersedes 'old' (stored): dropped
    const u2 = model.set('k', 'second'); // supersedes u1 (not stored yet): never stored
    const u3 = model.set('other', 'third');
    assert.is(store.waiting.length, 0, 'nothing goes to the store before the turn ends');
    await tick();
    assert.is(store.waiting.length, 1);
    const batch = store.waiting[0]!.batch;
    assert.equal(batch.put, [u2, u3]);
    assert.is(batch.drop.length, 1);
    assert.not.ok(batch.drop.includes(u1));
    assert.equal(batch.clock, [[A.id, u3.version]]);
    assert.equal(announced, [], 'nothing announced before the commit settled');
    store.waiting[0]!.settle();
    await turn();
    assert.equal(announced, ['["set","k","first"]', '["set","k","second"]', '["set","other","third"]']);
    const state = await store.inner.load('default');
    assert.is(state.updates.length, 2, 'the store holds the two winners only');
  } finally {
    model.dispose();
  }
});

test('dispose() commits what was applied in its turn', async () => {
  const store = new HeldBackStore();
  const model = new Model({ identity: A, store, now: testClock().now });
  await model.ready;
  model.set('a', 1);
  model.dispose();
  const state = await store.inner.load('default');
  assert.is(state.updates.length, 1);
});

test('a write in the turn its store is closed is stored (LmdbStore and MemoryStore)', async () => {
  const parent = mkdtempSync(join(tmpdir(), 'signet-close-'));
  try {
    const lmdb = new LmdbStore(join(parent, 'store'));
    const memory = new MemoryStore();
    for (const store of [lmdb, memory] as Store[]) {
      const model = new Model({ identity: A, store });
      await model.ready;
      const errors: unknown[] = [];
      model.on('error', (e) => errors.push(e));
      model.set('k', 'v'); // committed at the end of this turn, after close() was called
      await store.close();
      assert.equal(errors, [], 'no write refused');
      model.dispose();
    }
    const again = new LmdbStore(join(parent, 'store'));
    const reopened = new Model({ identity: A, store: again });
    await reopened.ready;
    assert.is(reopened.get('k'), 'v');
    reopened.dispose();
    await again.close();
  } finally {
    rmSync(parent, { recursive: true, force: true });
  }
});

test('after dispose(), a commit the store refuses is still reported', async () => {
  const store = new HeldBackStore();
  const model = new Model({ identity: A, store, now: testClock().now });
  await model.ready;
  const errors: Error[] = [];
  model.on('error', (e) => errors.push(e));
  store.holding = true;
  model.set('a', 1);
  model.dispose(); // commits what was applied
  assert.is(store.waiting.length, 1);
  store.waiting[0]!.settle(new Error('disk full'));
  await turn();
  assert.is(errors.length, 1);
  assert.match(errors[0]!.message, /disk full/);
});

test('LmdbStore: a burst of writes in one turn is announced in the order it was written', async () => {
  const parent = mkdtempSync(join(tmpdir(), 'signet-order-'));
  const store = new LmdbStore(join(parent, 'store'));
  const model = new Model({ identity: A, store });
  try {
    await model.ready;
    const n = 1200;
    const announced: string[] = [];
    const all = new Promise<void>((resolve) => model.on('update', (u) => announced.push((u.body as string[])[1]!) === n && resolve()));
    for (let i = 0; i < n; i++) model.set(`k${i}`, i);
    await all;
    assert.equal(announced, Array.from({ length: n }, (_, i) => `k${i}`));
  } finally {
    model.dispose();
    await store.close();
    rmSync(parent, { recursive: true, force: true });
  }
});


test('a store commit that does not settle is reported once (StoreError), and announcing resumes when it does', async () => {
  const store = new HeldBackStore();
  const STALL = 40;
  // The watch re-arms its timer (STALL ms) after each check of a commit still stuck: counted
  // here, so that the test waits for checks, not for a time.
  const schedule = globalThis.setTimeout;
  let checks = 0;
  let onCheck: (() => void) | null = null;
  globalThis.setTimeout = ((fn: (...args: unknown[]) => void, ms?: number, ...args: unknown[]) => {
    if (ms === STALL) {
      checks++;
      onCheck?.();
    }
    return schedule(fn, ms, ...args);
  }) as typeof setTimeout;
  const model = new Model({ identity: A, store, now: testClock().now, storeStallMs: STALL });
  // The watch timer is unref()ed (a stuck store must not keep a process alive), and a held
  // commit holds nothing either: this keeps the test's process up while it waits for the report.
  const alive = setInterval(() => {}, 1000);
  try {
    await model.ready;
    store.holding = true;
    const errors: Error[] = [];
    const reported = new Promise<void>((resolve) => model.on('error', (e: Error) => errors.push(e) === 1 && resolve()));
    const announced: string[] = [];
    model.on('update', (u) => announced.push(JSON.stringify(u.body)));
    model.set('k', 'first');
    await tick();
    model.set('k2', 'second');
    await reported;
    assert.instance(errors[0], StoreError);
    assert.match(errors[0]!.message, /signet dataset default: a store commit has not settled in \d+ ms; 2 applied updates wait for it to be announced and forwarded/);
    assert.equal(announced, [], 'nothing announced while the commit waits');
    const reportedAt = checks;
    await new Promise<void>((resolve) => (onCheck = () => checks >= reportedAt + 2 && resolve()));
    assert.is(errors.length, 1, 'two more checks of the same stuck commit: reported once');
    for (const w of store.waiting) w.settle();
    const both = new Promise<void>((resolve) => model.on('update', () => announced.length === 2 && resolve()));
    await both;
    assert.equal(announced, ['["set","k","first"]', '["set","k2","second"]']);
    assert.is(errors.length, 1, 'reported once');
  } finally {
    globalThis.setTimeout = schedule;
    clearInterval(alive);
    model.dispose();
    await store.close();
  }
});

test('storeStallMs must be a positive integer', () => {
  for (const bad of [0, -1, 1.5, Number.NaN]) {
    assert.throws(() => new Model({ identity: A, store: new MemoryStore(), storeStallMs: bad }), /storeStallMs/);
  }
});

test.run();
