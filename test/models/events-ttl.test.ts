// Events with a duration: emit(name, data, { ttl }) expires at version + ttl on every node
// alike: not delivered after, not replayed to late joiners, not reconciled, purged, and
// first to go when the history is full. Old bodies without a ttl stay valid.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Events, MemoryStore, signUpdate, type Update } from '../../src/index.ts';
import { MAX_EVENT_TTL_MS } from '../../src/models/events.ts';
import { identity, testClock, syncOnce, fakeOrigin, updates, T0 } from '../core/helpers.ts';
import { makeEvents, type EventsTestOptions } from './fixtures.ts';

const A = identity(0x81);
const B = identity(0x82);
const C = identity(0x83);

const events = (id = A, options: EventsTestOptions = {}): Promise<Events> => makeEvents(id, options);

const at = (who = B, version = T0, body: unknown[] = ['emit', 'beacon', 'x', 1000]): Update =>
  signUpdate(who, { dataset: 'default', version, body });

test('expiry is the signed version + ttl: delivered just before it on any node, dropped unseen at it', async () => {
  const u = at(B, T0, ['emit', 'beacon', 'up', 1000]);
  for (const [offsetMs, want] of [[999, 'applied'], [1000, 'old'], [5000, 'old']] as const) {
    const clock = testClock(T0 + offsetMs * 1000);
    const e = await events(A, { now: clock.now });
    const heard: unknown[] = [];
    e.on('beacon', (d: unknown) => heard.push(d));
    e.on('**', (d: unknown) => heard.push(d));
    const origin = fakeOrigin();
    const r = await e.ingest(u.bytes, origin);
    assert.is(r.status, want, `at +${offsetMs} ms`);
    assert.equal(heard, want === 'applied' ? ['up', 'up'] : []);
    assert.is(origin.faults.length, 0, 'an expired event is no fault');
  }
});

test('a late joiner gets a live ttl event, not an expired one; history() and reconcileSet() leave it out', async () => {
  const clock = testClock();
  const a = await events(A, { now: clock.now });
  a.emit('short', 's', { ttl: 500 });
  a.emit('long', 'l', { ttl: 60_000 });
  a.emit('plain', 'p');
  const early = await events(B, { now: clock.now });
  const heardEarly: string[] = [];
  early.on('**', (_d: unknown, _f: string, name: string) => heardEarly.push(name));
  await syncOnce(a, early);
  assert.equal(heardEarly.sort(), ['long', 'plain', 'short']);
  clock.advanceMs(500);
  const names = (us: readonly Update[]) => us.map((u) => (u.body as string[])[1]).sort();
  assert.equal(names(a.history()), ['long', 'plain']);
  assert.equal(names(a.reconcileSet()), ['long', 'plain'], 'expired: forgettable on every node alike');
  assert.equal(names(early.reconcileSet()), ['long', 'plain']);
  const late = await events(C, { now: clock.now });
  const heardLate: string[] = [];
  late.on('**', (_d: unknown, _f: string, name: string) => heardLate.push(name));
  await syncOnce(a, late);
  assert.equal(heardLate.sort(), ['long', 'plain']);
});

test('purge() forgets expired events from memory and store; a restart does not replay them', async () => {
  const clock = testClock();
  const store = new MemoryStore();
  const a = await events(A, { now: clock.now, store });
  a.emit('t', 1, { ttl: 100 });
  a.emit('t', 2);
  await updates(a, 2);
  assert.is(store.size('default'), 2);
  assert.is(a.purge(), 0, 'nothing expired yet');
  clock.advanceMs(100);
  assert.is(a.purge(), 1);
  await a.ready;
  assert.is(a.heldCount, 1);
  // a restart over a store that still holds an expired event (not purged) drops it on load
  const store2 = new MemoryStore();
  const b = await events(B, { now: clock.now, store: store2 });
  clock.t -= 100_000;
  b.emit('t', 3, { ttl: 50 });
  b.emit('t', 4);
  await updates(b, 2);
  b.dispose();
  clock.advanceMs(100);
  const again = await events(B, { now: clock.now, store: store2 });
  const replayed = again.history().map((u) => (u.body as unknown[])[2]);
  assert.equal(replayed, [4]);
  assert.is(store2.size('default'), 1, 'the expired event left the store on load');
});

test('a full history drops expired events before it compacts live ones', async () => {
  const clock = testClock();
  const a = await events(A, { now: clock.now, maxHistory: 3 });
  const compacted: Update[][] = [];
  a.on('compaction', (removed: Update[]) => compacted.push(removed));
  a.emit('e', 'keep1');
  clock.advanceMs(1);
  a.emit('e', 'brief', { ttl: 5 });
  clock.advanceMs(1);
  a.emit('e', 'keep2');
  clock.advanceMs(10);
  a.emit('e', 'keep3');
  assert.equal(a.history().map((u) => (u.body as unknown[])[2]), ['keep1', 'keep2', 'keep3']);
  assert.equal(compacted, [], 'the expired event made room: nothing compacted');
  clock.advanceMs(1);
  a.emit('e', 'keep4');
  assert.equal(compacted.map((r) => r.map((u) => (u.body as unknown[])[2])), [['keep1']]);
});

test('when full of live events, an arriving event is still judged by compaction; with an expired one held it is applied', async () => {
  const clock = testClock();
  const a = await events(A, { now: clock.now, maxHistory: 2 });
  a.emit('e', 1, { ttl: 5 });
  clock.advanceMs(1);
  a.emit('e', 2);
  clock.advanceMs(10);
  // B's older event would be evicted at once by the fair rule if the history were full of live
  // events; here the expired event goes instead.
  const old = at(B, T0 + 2000, ['emit', 'e', 'b']);
  assert.is((await a.ingest(old.bytes, fakeOrigin())).status, 'applied');
  assert.equal(a.history().map((u) => (u.body as unknown[])[2]).sort(), [2, 'b'].sort());
});

test('wire: old bodies without ttl stay valid; malformed ttls are bad-shape, never a crash', async () => {
  const e = await events(A, { now: () => T0 + 1000 });
  assert.is((await e.ingest(at(B, T0, ['emit', 'legacy', { x: 1 }]).bytes, fakeOrigin())).status, 'applied');
  const bad: unknown[] = [0, -1, 1.5, 'ten', null, MAX_EVENT_TTL_MS + 1, [1], { ttl: 1 }];
  let v = T0;
  for (const ttl of bad) {
    const origin = fakeOrigin();
    const r = await e.ingest(at(C, ++v, ['emit', 'x', 1, ttl]).bytes, origin);
    assert.equal(r, { status: 'rejected', reason: 'bad-shape' }, `ttl ${JSON.stringify(ttl)}`);
  }
  assert.equal((await e.ingest(at(C, ++v, ['emit', 'x', 1, 2, 3]).bytes, fakeOrigin())), { status: 'rejected', reason: 'bad-shape' });
  assert.equal((await e.ingest(at(C, ++v, ['emit', 'deferred', 1]).bytes, fakeOrigin())), { status: 'rejected', reason: 'bad-shape' }, 'a reserved name');
  assert.is((await e.ingest(at(C, ++v, ['emit', 'x', 1, MAX_EVENT_TTL_MS]).bytes, fakeOrigin())).status, 'applied', 'ttl at its limit');
});

test('emit checks its options: ttl range, type, and the options object', async () => {
  const e = await events(A);
  assert.throws(() => e.emit('x', 1, { ttl: 0 }), RangeError);
  assert.throws(() => e.emit('x', 1, { ttl: MAX_EVENT_TTL_MS + 1 }), RangeError);
  assert.throws(() => e.emit('x', 1, { ttl: 1.5 }), RangeError);
  assert.throws(() => e.emit('x', 1, { ttl: '5' }), TypeError);
  assert.throws(() => e.emit('x', 1, 5), TypeError);
  assert.throws(() => e.emit('x', 1, null), TypeError);
  e.emit('x', 1, { ttl: MAX_EVENT_TTL_MS });
  e.emit('x', 1, {});
  assert.is(e.history().length, 2);
  assert.is((e.history()[0]!.body as unknown[]).length, 4);
  assert.is((e.history()[1]!.body as unknown[]).length, 3, 'no ttl: the old 3-item body');
});

test.run();
