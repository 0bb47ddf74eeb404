// Events: a replicated emitter with a bounded history, the 'compaction' hook, replay to late
// joiners, and restart from a store.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Events, MemoryStore, type Update } from '../../src/index.ts';
import { identity, testClock, syncOnce, updates } from '../core/helpers.ts';

const A = identity(0x61);
const B = identity(0x62);
const C = identity(0x63);

const disposeAll: Array<{ dispose(): void }> = [];
test.after.each(() => {
  for (const m of disposeAll.splice(0)) m.dispose();
});

async function events(id = A, options: Partial<ConstructorParameters<typeof Events>[0]> = {}) {
  const e = new Events({ identity: id, ...options });
  disposeAll.push(e);
  await e.ready;
  return e;
}

test('bounded history: maxHistory kept, the rest compacted through the hook, late joiners get the kept ones', async () => {
  const clock = testClock();
  const store = new MemoryStore();
  const a = await events(A, { now: clock.now, store, maxHistory: 3 });
  const compacted: Update[][] = [];
  a.on('compaction', (removed: Update[]) => compacted.push(removed));
  for (let i = 0; i < 5; i++) {
    clock.advanceMs(1);
    a.emit('tick', i);
  }
  await updates(a, 5);
  assert.is(a.history().length, 3, 'at the limit');
  assert.equal(compacted.map((r) => r.map((u) => (u.body as [string, string, number])[2])), [[0], [1]]);
  assert.is(store.size('default'), 3, 'compacted events are dropped from the store');
  const late = await events(B, { now: clock.now });
  const heard: number[] = [];
  late.on('tick', (n: number) => heard.push(n));
  await syncOnce(a, late);
  assert.equal(heard, [2, 3, 4]);
});

test('events replicate both ways and replay in order; reserved names are refused', async () => {
  const clock = testClock();
  const a = await events(A, { now: clock.now });
  const b = await events(B, { now: clock.now });
  const got: Array<[string, unknown]> = [];
  b.on('msg', (d: unknown) => got.push(['msg', d]));
  a.on('msg', (d: unknown) => got.push(['a-msg', d]));
  a.emit('msg', { n: 1 });
  clock.advanceMs(1);
  b.emit('msg', { n: 2 });
  await syncOnce(a, b);
  assert.equal(got.filter(([w]) => w === 'msg'), [['msg', { n: 2 }], ['msg', { n: 1 }]]);
  assert.equal(got.filter(([w]) => w === 'a-msg'), [['a-msg', { n: 1 }], ['a-msg', { n: 2 }]]);
  assert.equal(a.history().map((u) => u.source), [A.id, B.id]);
  assert.throws(() => a.emit('x'.repeat(257), 1), RangeError);
  // a reserved name is a local event, never signed or replicated
  const before = a.clock.get(A.id);
  a.emit('update', 'not replicated');
  assert.is(a.clock.get(A.id), before);
});

test('restart from a MemoryStore: history back, and the next version is higher', async () => {
  const clock = testClock();
  const store = new MemoryStore();
  const a = await events(C, { now: clock.now, store });
  let last = 0;
  for (let i = 0; i < 4; i++) last = (a.emit('e', i), a.clock.get(C.id)!);
  await updates(a, 1);
  const peer = await events(A, { now: clock.now });
  await syncOnce(a, peer);
  a.dispose();
  const again = await events(C, { now: () => clock.now() - 5_000_000, store });
  assert.equal(again.history().map((u) => (u.body as [string, string, number])[2]), [0, 1, 2, 3]);
  again.emit('e', 4);
  assert.ok(again.clock.get(C.id)! > last);
  await syncOnce(again, peer);
  assert.is(peer.history().length, 5);
});

test.run();
