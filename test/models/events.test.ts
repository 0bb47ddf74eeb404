// Events: a replicated emitter with a bounded history shared fairly between sources, the
// 'compaction' hook, replay to late joiners, and restart from a store.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Events, MemoryStore, signUpdate, type Identity, type Update } from '../../src/index.ts';
import { identity, testClock, syncOnce, updates, connect, T0 } from '../core/helpers.ts';
import { Prng } from '../helpers/prng.ts';
import { makeEvents, type EventsTestOptions } from './fixtures.ts';

const A = identity(0x61);
const B = identity(0x62);
const C = identity(0x63);
const D = identity(0x64);
const F = identity(0x66);
const L = identity(0x6c);

const events = (id = A, options: EventsTestOptions = {}): Promise<Events> => makeEvents(id, options);

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
  a.emit('deferred', 'the core emits it too: a local event');
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

/** A hand-signed event of `who` at `version` (data: a label for assertions). */
const signed = (who: Identity, version: number, data: string): Update =>
  signUpdate(who, { dataset: 'default', version, body: ['emit', 'e', data] });

/** Ingests `events` one after another; each must be applied. */
async function feed(e: Events, ...events: Update[]): Promise<void> {
  for (const u of events) {
    const r = await e.ingest(u.bytes);
    assert.is(r.status, 'applied', `${String((u.body as string[])[2])} applied`);
  }
}

const labels = (us: readonly Update[]): string[] => us.map((u) => (u.body as [string, string, string])[2]);

test('issue 7/10: one source emitting maxHistory events evicts only its own; a late joiner gets every honest event', async () => {
  const clock = testClock();
  const hub = await events(A, { now: clock.now, maxHistory: 1000 });
  const compacted: Update[] = [];
  hub.on('compaction', (removed: Update[]) => compacted.push(...removed));
  const honest: string[] = [];
  for (const [who, tag] of [[B, 'b'], [C, 'c'], [D, 'd']] as const) {
    const member = await events(who, { now: clock.now });
    for (let i = 0; i < 3; i++) {
      clock.advanceMs(1);
      member.emit('chat', `${tag}${i}`);
      honest.push(`${tag}${i}`);
    }
    await syncOnce(member, hub);
  }
  const flooder = await events(F, { now: clock.now, maxHistory: 1000 });
  for (let i = 0; i < 1000; i++) {
    clock.advanceMs(1);
    flooder.emit('chat', `f${i}`);
  }
  await syncOnce(flooder, hub);
  assert.is(hub.history().length, 1000, 'at the limit');
  assert.is(compacted.length, 9, 'one eviction per event past the limit');
  assert.ok(compacted.every((u) => u.source === F.id), 'only the flooder lost events');
  assert.equal(labels(compacted), ['f0', 'f1', 'f2', 'f3', 'f4', 'f5', 'f6', 'f7', 'f8'], 'its oldest first');

  const late = await events(L, { now: clock.now });
  const heard: string[] = [];
  late.on('chat', (data: string) => heard.push(data));
  const { synced, destroy } = connect(hub, late);
  await synced;
  destroy();
  // history arrives oldest first per source (sources in scuttle-depth order)
  assert.equal(heard.filter((d) => !d.startsWith('f')).sort(), honest, 'every honest event');
  assert.is(heard.length, 1000);
  assert.equal(late.history().map((u) => u.hashHex), hub.history().map((u) => u.hashHex));
});

test('limit and limit+1: at maxHistory nothing goes; one more evicts the oldest event of the fullest source', async () => {
  const hub = await events(A, { maxHistory: 4 });
  const compacted: Update[][] = [];
  hub.on('compaction', (removed: Update[]) => compacted.push(removed));
  await feed(hub, signed(C, T0 + 1, 'c1'), signed(B, T0 + 2, 'b1'), signed(B, T0 + 3, 'b2'), signed(B, T0 + 4, 'b3'));
  assert.is(hub.history().length, 4, 'at the limit');
  assert.is(compacted.length, 0, 'no compaction at the limit');
  // limit+1 from C: B (3 events) is fuller than C (2), so B's oldest goes, not c1 (the oldest of all)
  await feed(hub, signed(C, T0 + 5, 'c2'));
  assert.equal(compacted.map(labels), [['b1']]);
  assert.equal(labels(hub.history()), ['c1', 'b2', 'b3', 'c2'], 'retained, in the total order');
  // the fullest source writing again evicts its own oldest
  await feed(hub, signed(B, T0 + 6, 'b4'));
  assert.equal(compacted.map(labels), [['b1'], ['b2']]);
  assert.equal(labels(hub.history()), ['c1', 'b3', 'c2', 'b4']);
  // history(clock) filters per source and keeps the total order
  assert.equal(labels(hub.history(new Map([[B.id, T0 + 3]]))), ['c1', 'b3', 'c2', 'b4']);
  assert.equal(labels(hub.history(new Map([[C.id, T0 + 1], [B.id, T0 + 5]]))), ['c2', 'b4']);
});

test('ties: among the fullest sources, the one whose oldest event is oldest in the total order loses it', async () => {
  // D holds the oldest event of all but fewer events: a tie between B and C decides
  const one = await events(A, { maxHistory: 4 });
  await feed(one, signed(D, T0, 'd'), signed(B, T0 + 1, 'b1'), signed(C, T0 + 2, 'c1'), signed(B, T0 + 3, 'b2'), signed(C, T0 + 4, 'c2'));
  assert.equal(labels(one.history()), ['d', 'c1', 'b2', 'c2'], "B's oldest is older: B loses it");
  const two = await events(A, { maxHistory: 4 });
  await feed(two, signed(D, T0, 'd'), signed(C, T0 + 1, 'c1'), signed(B, T0 + 2, 'b1'), signed(B, T0 + 3, 'b2'), signed(C, T0 + 4, 'c2'));
  assert.equal(labels(two.history()), ['d', 'b1', 'b2', 'c2'], "C's oldest is older: C loses it");
  // oldest events at the same version: the total order goes on to the source id
  const three = await events(A, { maxHistory: 4 });
  const removed: Update[] = [];
  three.on('compaction', (r: Update[]) => removed.push(...r));
  await feed(three, signed(D, T0 - 1, 'd'), signed(B, T0, 'b1'), signed(C, T0, 'c1'), signed(B, T0 + 1, 'b2'), signed(C, T0 + 1, 'c2'));
  assert.equal(labels(removed), [B.id < C.id ? 'b1' : 'c1']);
});

test('the set kept depends on the events received, not on how sources interleaved', async () => {
  const sources = [B, C, D, F];
  const bySource = sources.map((who, s) => Array.from({ length: 2 + 3 * s }, (_, i) => signed(who, T0 + 1 + ((i * 7 + s * 3) % 40) + i * 40, `${s}:${i}`)));
  const seen: string[][] = [];
  const prng = new Prng(7);
  for (let round = 0; round < 8; round++) {
    const e = await events(A, { maxHistory: 7 });
    const queues = bySource.map((q) => q.slice());
    while (queues.some((q) => q.length > 0)) {
      const open = queues.filter((q) => q.length > 0);
      await feed(e, open[prng.int(open.length)]!.shift()!);
    }
    seen.push(labels(e.history()));
  }
  for (const s of seen) assert.equal(s, seen[0], `seed ${prng.seed}`);
  // 7 places for 2 + 5 + 8 + 11 events: two each, and the source with the oldest oldest event
  // (B) loses the last tie; each keeps its newest
  const kept = (s: number) => seen[0]!.filter((l) => l.startsWith(`${s}:`)).sort();
  assert.equal([0, 1, 2, 3].map(kept), [['0:1'], ['1:3', '1:4'], ['2:6', '2:7'], ['3:10', '3:9']]);
});

test('restart from a store keeps the same events after compaction', async () => {
  const clock = testClock();
  const store = new MemoryStore();
  const hub = await events(A, { now: clock.now, store, maxHistory: 5 });
  const all = [
    signed(B, T0 + 1, 'b1'), signed(C, T0 + 2, 'c1'), signed(B, T0 + 3, 'b2'), signed(B, T0 + 4, 'b3'),
    signed(D, T0 + 5, 'd1'), signed(B, T0 + 6, 'b4'), signed(C, T0 + 7, 'c2'), signed(B, T0 + 8, 'b5'),
  ];
  const applied = updates(hub, all.length);
  await feed(hub, ...all);
  await applied;
  const kept = labels(hub.history());
  assert.equal(kept, ['c1', 'd1', 'b4', 'c2', 'b5']);
  assert.is(store.size('default'), 5, 'compacted events are dropped from the store');
  hub.dispose();
  const again = await events(A, { now: clock.now, store, maxHistory: 5 });
  assert.equal(labels(again.history()), kept);
  assert.equal(again.history().map((u) => u.hashHex), hub.history().map((u) => u.hashHex));
  // and it goes on compacting by the same rule
  const compacted: Update[] = [];
  again.on('compaction', (r: Update[]) => compacted.push(...r));
  await feed(again, signed(C, T0 + 9, 'c3'));
  assert.equal(labels(compacted), ['c1'], 'B and C hold 2 each; C has the older oldest');
});

test('restart with a smaller maxHistory: what load compacts leaves the store too', async () => {
  const clock = testClock();
  const store = new MemoryStore();
  const hub = await events(A, { now: clock.now, store, maxHistory: 5 });
  const all = [signed(B, T0 + 1, 'b1'), signed(C, T0 + 2, 'c1'), signed(B, T0 + 3, 'b2'), signed(D, T0 + 4, 'd1'), signed(B, T0 + 5, 'b3')];
  const applied = updates(hub, all.length);
  await feed(hub, ...all);
  await applied;
  assert.is(store.size('default'), 5);
  hub.dispose();
  const smaller = await events(A, { now: clock.now, store, maxHistory: 3 });
  assert.equal(labels(smaller.history()), ['c1', 'd1', 'b3']);
  assert.is(store.size('default'), 3, 'the two compacted on load are gone from the store');
});

test.run();
