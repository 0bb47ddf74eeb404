// Review: nothing is announced after dispose(): no 'update'/'change' from a store commit that
// completes after it, no 'syncReceived' from a stream already destroyed; and a bad
// maxUpdateBytes is refused when the model is made, not on every peer's update.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Model, MemoryStore, signUpdate } from '../../src/index.ts';
import { identity, testClock, fakeOrigin, T0 } from '../core/helpers.ts';

const S = identity(0x81);
const X = identity(0x82);

test('no update or change event after dispose (store commit still in flight)', async () => {
  const clock = testClock();
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const store = new MemoryStore();
  const m = new Model({ identity: X, now: clock.now, store });
  await m.ready; // opening commits an own-version reservation: gate only what follows
  const commit = store.commit.bind(store);
  store.commit = async (d, b) => {
    await gate;
    return commit(d, b);
  };
  const events: string[] = [];
  m.on('update', () => events.push('update'));
  m.on('change', () => events.push('change'));
  const u = signUpdate(S, { dataset: 'default', version: T0 - 1000, body: ['set', 'k', 1] });
  assert.is((await m.ingest(u.bytes, fakeOrigin())).status, 'applied');
  m.dispose();
  release();
  await store.load('default'); // after the gated commit has run
  await new Promise<void>((r) => setImmediate(r));
  assert.equal(events, []);
});

test('maxUpdateBytes out of range throws at construction', () => {
  assert.throws(() => new Model({ identity: X, maxUpdateBytes: 0 }), (e: Error) => e instanceof RangeError);
  assert.throws(() => new Model({ identity: X, maxUpdateBytes: 1.5 }), (e: Error) => e instanceof RangeError);
});

test.run();
