// Events with a duration: emit(name, data, { ttl }) expires at version + ttl on every node
// alike: heard by no listener after, here or on a late joiner; still held, replicated,
// reconciled and compacted like any event, so which events a node keeps depends only on which
// it received. Old bodies without a ttl stay valid.
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

test('expiry is the signed version + ttl: delivered just before it on any node, held but unheard at it', async () => {
  const u = at(B, T0, ['emit', 'beacon', 'up', 1000]);
  for (const [offsetMs, heardIt] of [[999, true], [1000, false], [5000, false]] as const) {
    const clock = testClock(T0 + offsetMs * 1000);
    const e = await events(A, { now: clock.now });
    const heard: unknown[] = [];
    e.on('beacon', (d: unknown) => heard.push(d));
    e.on('**', (d: unknown) => heard.push(d));
    const origin = fakeOrigin();
    const r = await e.ingest(u.bytes, origin);
    assert.is(r.status, 'applied', `at +${offsetMs} ms: held like any event`);
    assert.equal(heard, heardIt ? ['up', 'up'] : [], `at +${offsetMs} ms`);
    assert.is(origin.faults.length, 0, 'an expired event is no fault');
  }
});

test('a late joiner stores an expired event and hears nothing of it; history() and reconcileSet() keep it on every node alike', async () => {
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
  assert.equal(names(a.history()), ['long', 'plain', 'short']);
  assert.equal(names(a.reconcileSet()), ['long', 'plain', 'short']);
  assert.equal(names(early.reconcileSet()), names(a.reconcileSet()), 'the same set on both, whenever each got it');
  const late = await events(C, { now: clock.now });
  const heardLate: string[] = [];
  late.on('**', (_d: unknown, _f: string, name: string) => heardLate.push(name));
  await syncOnce(a, late);
  assert.equal(heardLate.sort(), ['long', 'plain'], 'the expired event is not replayed to listeners');
  assert.equal(names(late.reconcileSet()), names(a.reconcileSet()), 'but held, so the three nodes agree');
});

test('a restart does not deliver expired events, and keeps them like the others', async () => {
  const clock = testClock();
  const store = new MemoryStore();
  const b = await events(B, { now: clock.now, store });
  b.emit('t', 3, { ttl: 50 });
  b.emit('t', 4);
  await updates(b, 2);
  b.dispose();
  clock.advanceMs(100);
  const again = new Events({ identity: B, now: clock.now, store });
  const heard: unknown[] = [];
  again.on('t', (d: unknown) => heard.push(d));
  await again.ready;
  assert.equal(heard, [], 'a load delivers nothing');
  assert.equal(again.history().map((u) => (u.body as unknown[])[2]), [3, 4]);
  assert.is(store.size('default'), 2);
  again.dispose();
});

test('a full history compacts by the fair rule alone, expired or not: the same events kept whenever they arrived', async () => {
  const clock = testClock();
  const brief = at(B, T0, ['emit', 'e', 'brief', 10]);
  const x = at(B, T0 + 1000, ['emit', 'e', 'x']);
  const y = at(C, T0 + 2000, ['emit', 'e', 'y']);
  // One node gets everything while `brief` is live, the other after it expired.
  const early = await events(A, { now: clock.now, maxHistory: 2 });
  for (const u of [brief, x, y]) await early.ingest(u.bytes, fakeOrigin());
  clock.advanceMs(50);
  const late = await events(A, { now: clock.now, maxHistory: 2 });
  for (const u of [brief, x, y]) await late.ingest(u.bytes, fakeOrigin());
  const kept = (e: Events) => e.history().map((u) => (u.body as unknown[])[2]);
  assert.equal(kept(early), kept(late));
  assert.equal(kept(early), ['x', 'y'], "B's oldest went: B held the most");
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
