// Model per-peer state (telepathine): getFrom(peerId, key) and keysOf(peerId) over the owner
// namespace `<peer id>/<key>`, and 'peer-change:<key>' watching one key across every peer.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Model, owner, type Change } from '../../src/index.ts';
import { identity, testClock, syncOnce } from '../core/helpers.ts';
import { disposeAfter, makeModel, type ModelTestOptions } from './fixtures.ts';

const A = identity(0xe1);
const B = identity(0xe2);
const C = identity(0xe3);

const model = (id = A, options: ModelTestOptions = {}): Promise<Model> => makeModel(id, { policy: owner(), ...options });

test('getFrom and keysOf read what each peer published, replicated under owner()', async () => {
  const clock = testClock();
  const a = await model(A, { now: clock.now });
  const b = await model(B, { now: clock.now });
  a.set(`${A.id}/status`, 'up');
  a.set(`${A.id}/load`, 0.5);
  b.set(`${B.id}/status`, 'draining');
  b.set(`${B.id}/brief`, 1, { ttl: 10 });
  await syncOnce(a, b);
  for (const m of [a, b]) {
    assert.is(m.getFrom(A.id, 'status'), 'up');
    assert.is(m.getFrom(B.id, 'status'), 'draining');
    assert.is(m.getFrom(C.id, 'status'), undefined);
    assert.equal(m.keysOf(A.id).sort(), ['load', 'status']);
    assert.equal(m.keysOf(C.id), []);
  }
  assert.equal(b.keysOf(B.id).sort(), ['brief', 'status']);
  clock.advanceMs(11); // versions at one clock reading step by 1 µs: past the ttl, whatever the order
  assert.equal(b.keysOf(B.id), ['status'], 'an expired key is not listed');
  b.delete(`${B.id}/status`);
  assert.equal(b.keysOf(B.id), []);
  assert.is(b.getFrom(B.id, 'status'), undefined);
  // keys outside any namespace, or that only look like one, are not anyone's
  const open = new Model({ identity: C });
  disposeAfter(open);
  await open.ready;
  open.set('plain', 1);
  open.set(`${A.id.slice(0, 51)}x/evil`, 1); // not a node id (the last character is not canonical)
  assert.equal(open.keysOf(A.id), []);
});

test("'peer-change:<key>' hears one key in every peer's namespace, with the peer id; 'change:<full key>' unchanged", async () => {
  const clock = testClock();
  const a = await model(A, { now: clock.now });
  const b = await model(B, { now: clock.now });
  const heard: Array<[unknown, string, string]> = [];
  a.on('peer-change:status', (value, peerId, change: Change) => heard.push([value, peerId, change.key]));
  const full: unknown[] = [];
  a.on(`change:${B.id}/status`, (value) => full.push(value));
  a.set(`${A.id}/status`, 'up');
  a.set(`${A.id}/other`, 'ignored');
  b.set(`${B.id}/status`, 'draining');
  await syncOnce(a, b);
  clock.advanceMs(1);
  b.delete(`${B.id}/status`);
  await syncOnce(a, b);
  assert.equal(heard, [
    ['up', A.id, `${A.id}/status`],
    ['draining', B.id, `${B.id}/status`],
    [undefined, B.id, `${B.id}/status`],
  ]);
  assert.equal(full, ['draining', undefined]);
});

test('getFrom/keysOf check their arguments', async () => {
  const a = await model(A);
  assert.throws(() => a.getFrom('not-an-id', 'k'), RangeError);
  assert.throws(() => a.getFrom(42 as unknown as string, 'k'), TypeError);
  assert.throws(() => a.getFrom(A.id, 7 as unknown as string), TypeError);
  assert.throws(() => a.getFrom(A.id, 'x'.repeat(1024)), RangeError, 'the full key is bounded like any key');
  assert.throws(() => a.keysOf('nope'), RangeError);
});

test.run();
