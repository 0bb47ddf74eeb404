// Review (issue 7): three documented behaviours that the suite did not pin down, so each could be
// broken without a failing test: no echo of live updates, reserved event names refused from
// peers, and the key-length limit for received updates. Each test here fails on that mutation.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Events, Model, signUpdate, type Identity, type Rejection, type Update } from '../../src/index.ts';
import { RESERVED_EVENT_NAMES } from '../../src/models/events.ts';
import { MAX_KEY_LENGTH } from '../../src/models/model.ts';
import { identity, testClock, fakeOrigin, T0 } from '../core/helpers.ts';
import { syncPair, until, hangUp } from '../helpers/streams.ts';

const A = identity(0xa1);
const B = identity(0xa2);
const C = identity(0xa3);
/** A remote writer whose updates are signed by hand. */
const S = identity(0xa4);

const disposeAll: Array<{ dispose(): void }> = [];
test.after.each(() => {
  for (const m of disposeAll.splice(0)) m.dispose();
});

async function model(id: Identity, now: () => number): Promise<Model> {
  const m = new Model({ identity: id, now });
  disposeAll.push(m);
  await m.ready;
  return m;
}

const has = (m: Model, key: string, value: unknown) => () => m.get(key) === value;

// (a) src/replication/stream.ts forward(): `if (origin === this) return; // never echo`
test('no echo: a live update from a peer is forwarded to other peers, never sent back to the one it came from', async () => {
  const clock = testClock();
  const a = await model(A, clock.now);
  const b = await model(B, clock.now);
  const c = await model(C, clock.now);
  const [ab, ba] = await syncPair(a, b, { name: 'a->b' }, { name: 'b->a' });
  const [bc, cb] = await syncPair(b, c, { name: 'b->c' }, { name: 'c->b' });
  a.set('x', 1);
  await until(c, 'update', has(c, 'x', 1), 'x relayed a -> b -> c');
  // Streams deliver in order: whatever b or c queued for the stream x came in on (an echo)
  // reaches the other end before their own later writes, so once these arrive an echo would
  // have been counted.
  b.set('y', 2);
  await until(a, 'update', has(a, 'y', 2), "b's own write at a");
  await until(c, 'update', has(c, 'y', 2), "b's own write at c");
  c.set('z', 3);
  await until(a, 'update', has(a, 'z', 3), "c's own write at a, through b");
  await until(b, 'update', has(b, 'z', 3));
  assert.is(ab.stats.received, 2, 'a receives only y and z: x never comes back');
  assert.is(ab.stats.old, 0, 'nothing a already held came back to it');
  assert.is(ba.stats.sent, 2, 'b sends a only y and z');
  assert.is(bc.stats.received, 1, 'b receives only z from c: x never comes back');
  assert.is(bc.stats.old, 0, 'nothing b already held came back to it from c');
  assert.is(bc.stats.sent, 2, 'b forwards x and its own y to c, and not z back');
  assert.is(cb.stats.received, 2, 'c receives x and y');
  await hangUp(ab, ba, bc, cb);
});

/** Updates of `S` signed by hand for the Events dataset, each with its own version. */
let version = T0 - 1_000_000;
const emitted = (name: string, data: unknown): Update => signUpdate(S, { dataset: 'default', version: ++version, body: ['emit', name, data] });

// (b) src/models/events.ts nameOf(): `RESERVED_EVENT_NAMES.has(name)` refuses a peer's event
// that would fire one of the emitter's own events ('error' would even throw).
test("reserved names from a peer: rejected 'bad-shape', no listener fires, no 'error'", async () => {
  const e = new Events({ identity: A });
  disposeAll.push(e);
  await e.ready;
  const forged: string[] = [];
  const invalid: Rejection[] = [];
  e.on('invalid', (r: Rejection) => invalid.push(r));
  for (const name of RESERVED_EVENT_NAMES) {
    if (name === 'error') continue; // below: with no listener, a forged 'error' would throw
    e.on(name, (data: unknown) => {
      if (data !== null && typeof data === 'object' && 'forged' in data) forged.push(name);
    });
  }
  assert.ok(RESERVED_EVENT_NAMES.size >= 10 && RESERVED_EVENT_NAMES.has('error'));
  for (const name of RESERVED_EVENT_NAMES) {
    const origin = fakeOrigin();
    const result = await e.ingest(emitted(name, { forged: name }).bytes, origin);
    assert.equal(result, { status: 'rejected', reason: 'bad-shape' }, name);
    assert.equal(origin.faults.map((r) => r.reason), ['bad-shape'], `${name}: one fault for the peer`);
  }
  assert.equal(forged, [], 'no listener of a reserved name heard a peer');
  assert.is(invalid.length, RESERVED_EVENT_NAMES.size);
  assert.ok(invalid.every((r) => r.reason === 'bad-shape'));
  assert.is(e.history().length, 0, 'nothing kept for late joiners');
  assert.is(e.clock.get(S.id), undefined, "the source's clock did not move");
  // the same source's ordinary event still applies
  const heard: unknown[] = [];
  e.on('chat', (data: unknown) => heard.push(data));
  assert.is((await e.ingest(emitted('chat', 'hello').bytes, fakeOrigin())).status, 'applied');
  assert.equal(heard, ['hello']);
});

test("a peer's 'error' event reaches neither an 'error' listener nor, without one, a throw", async () => {
  const quiet = new Events({ identity: A });
  const listening = new Events({ identity: B });
  disposeAll.push(quiet, listening);
  await Promise.all([quiet.ready, listening.ready]);
  const errors: unknown[] = [];
  listening.on('error', (err: unknown) => errors.push(err));
  const u = emitted('error', 'boom');
  for (const e of [quiet, listening]) {
    assert.equal(await e.ingest(u.bytes, fakeOrigin()), { status: 'rejected', reason: 'bad-shape' });
    assert.is(e.history().length, 0);
  }
  assert.equal(errors, []);
});

test('event names at the length limits from a peer: 1..256 applied, empty and 257 rejected', async () => {
  const e = new Events({ identity: A });
  disposeAll.push(e);
  await e.ready;
  for (const name of ['x', 'x'.repeat(256)]) assert.is((await e.ingest(emitted(name, 1).bytes, fakeOrigin())).status, 'applied', `length ${name.length}`);
  for (const name of ['', 'x'.repeat(257)]) {
    assert.equal(await e.ingest(emitted(name, 1).bytes, fakeOrigin()), { status: 'rejected', reason: 'bad-shape' }, `length ${name.length}`);
  }
  assert.is(e.history().length, 2);
});

// (c) src/models/model.ts: `key.length > MAX_KEY_LENGTH` for received bodies, the same limit
// that set() and delete() enforce locally.
test('key length from a peer: 1,024 applied, 1,025 rejected bad-shape (set and del)', async () => {
  assert.is(MAX_KEY_LENGTH, 1024);
  const clock = testClock();
  const m = await model(A, clock.now);
  const atLimit = 'k'.repeat(MAX_KEY_LENGTH);
  const past = 'q'.repeat(MAX_KEY_LENGTH + 1);
  const signed = (body: unknown[], v: number) => signUpdate(S, { dataset: 'default', version: T0 - 1000 + v, body });
  const send = async (u: Update) => {
    const origin = fakeOrigin();
    return { result: await m.ingest(u.bytes, origin), faults: origin.faults.map((r) => r.reason) };
  };
  // limit+1 first: a refused update must not move the clock past the later good ones
  const refused = { result: { status: 'rejected', reason: 'bad-shape' }, faults: ['bad-shape'] };
  assert.equal(await send(signed(['set', past, 'too long'], 1)), refused, 'set with a 1,025-character key');
  assert.equal(await send(signed(['del', past], 2)), refused, 'del with a 1,025-character key');
  assert.is(m.has(past), false);
  assert.is(m.clock.get(S.id), undefined);
  assert.is((await send(signed(['set', atLimit, 'fits'], 3))).result.status, 'applied', 'set with a 1,024-character key');
  assert.is(m.get(atLimit), 'fits');
  assert.is((await send(signed(['del', atLimit], 4))).result.status, 'applied', 'del with a 1,024-character key');
  assert.is(m.has(atLimit), false);
  assert.is(m.updateOf(past), undefined);
});

test('key length locally: set/delete at 1,024 work, 1,025 throws RangeError and signs nothing', async () => {
  const clock = testClock();
  const m = await model(A, clock.now);
  const atLimit = 'k'.repeat(MAX_KEY_LENGTH);
  const past = 'q'.repeat(MAX_KEY_LENGTH + 1);
  m.set(atLimit, 1);
  assert.is(m.get(atLimit), 1);
  m.delete(atLimit);
  assert.is(m.has(atLimit), false);
  const before = m.clock.get(A.id);
  assert.throws(() => m.set(past, 1), (err: Error) => err instanceof RangeError && /"key"/.test(err.message));
  assert.throws(() => m.delete(past), RangeError);
  assert.is(m.clock.get(A.id), before, 'nothing signed');
  assert.is(m.has(past), false);
});

test.run();
