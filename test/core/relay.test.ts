// Relay A -> B -> C (A and C never connected): C verifies A's signatures itself; a malicious
// B that alters one update in transit is cut off, and C still converges with A.
import { once } from 'node:events';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Model, MemoryStore, type Rejection } from '../../src/index.ts';
import { decodeCbor, encodeCbor, type Value } from '../../src/envelope/cbor.ts';
import { identity, testClock, connect, messageEditor, syncOnce, verifyCounter } from './helpers.ts';

const A = identity(0x0a);
const B = identity(0x0b);
const C = identity(0x0c);
const N = 20;

const disposeAll: Array<{ dispose(): void }> = [];
test.after.each(() => {
  for (const m of disposeAll.splice(0)) m.dispose();
});

async function chain() {
  const clock = testClock();
  const stores = { a: new MemoryStore(), b: new MemoryStore(), c: new MemoryStore() };
  const a = new Model({ identity: A, now: clock.now, store: stores.a });
  const b = new Model({ identity: B, now: clock.now, store: stores.b });
  const c = new Model({ identity: C, now: clock.now, store: stores.c });
  disposeAll.push(a, b, c);
  await Promise.all([a.ready, b.ready, c.ready]);
  return { a, b, c, clock, stores };
}

/** Resolves once `m` holds `version` for `source`. */
function reaches(m: Model, source: string, version: number): Promise<void> {
  if ((m.clock.get(source) ?? 0) >= version) return Promise.resolve();
  return new Promise((resolve) => {
    const on = () => {
      if ((m.clock.get(source) ?? 0) >= version) {
        m.off('update', on);
        resolve();
      }
    };
    m.on('update', on);
  });
}

test('honest relay: C gets A\'s updates through B, verifies each itself, converges with A', async () => {
  const { a, b, c, clock, stores } = await chain();
  const ab = connect(a, b);
  const bc = connect(b, c);
  await Promise.all([ab.synced, bc.synced]);
  const calls = verifyCounter.calls;
  for (let i = 0; i < N; i++) {
    clock.advanceMs(1);
    a.set(`k${i}`, `value-${i}`);
  }
  a.delete('k0');
  await reaches(c, A.id, a.clock.get(A.id)!);
  assert.is(verifyCounter.calls - calls, 2 * (N + 1), 'B and C each verified every update');
  assert.is(c.stateHash(), a.stateHash());
  assert.equal(c.toJSON(), a.toJSON());
  assert.not.ok(c.has('k0'));
  for (let i = 1; i < N; i++) {
    assert.is(c.updateOf(`k${i}`)!.source, A.id);
    assert.is(Buffer.compare(c.updateOf(`k${i}`)!.bytes, a.updateOf(`k${i}`)!.bytes), 0, 'envelopes travel byte for byte');
  }
  assert.is(c.clock.get(A.id), a.clock.get(A.id));
  assert.is(stores.c.size('default'), stores.a.size('default'));
  assert.is(bc.sb.faults, 0);
  assert.is(bc.sb.stats.rejected, 0);
  // and back: C's write reaches A through B
  clock.advanceMs(1);
  c.set('from-c', true);
  await reaches(a, C.id, c.clock.get(C.id)!);
  assert.is(a.get('from-c'), true);
  assert.is(a.stateHash(), c.stateHash());
  ab.destroy();
  bc.destroy();
});

/** Alters the first envelope carrying `needle` (a text value) inside an updates message, keeping
 *  the message and the envelope well-formed: a valid message with a bad signature. */
function tamper(needle: string): { editor: ReturnType<typeof messageEditor>; altered: () => boolean } {
  let done = false;
  const from = Buffer.from(needle);
  const editor = messageEditor((message) => {
    if (done) return message;
    const r = decodeCbor(message, { maxDepth: 16 });
    if (!r.ok || !Array.isArray(r.value) || r.value[0] !== 1) return message;
    const envelopes = r.value[1] as Uint8Array[];
    const i = envelopes.findIndex((e) => Buffer.from(e).includes(from));
    if (i < 0) return message;
    const e = Buffer.from(envelopes[i]!);
    const at = e.indexOf(from);
    e[at] = e[at]! ^ 0x20; // 'v' -> 'V': same length, same shape, different bytes
    envelopes[i] = new Uint8Array(e);
    done = true;
    return Buffer.from(encodeCbor([1, envelopes] as Value));
  });
  return { editor, altered: () => done };
}

test('malicious relay: B alters one update in transit; C cuts B off and still converges with A', async () => {
  const { a, b, c, clock, stores } = await chain();
  for (let i = 0; i < N; i++) {
    clock.advanceMs(1);
    a.set(`k${i}`, `value-${i}`);
  }
  await syncOnce(a, b);
  assert.is(b.stateHash(), a.stateHash());

  // B -> C through a tampering middle: B's history to C has value-7 altered
  const { editor, altered } = tamper('value-7');
  const bc = connect(b, c, { middle: editor });
  const invalid = once(bc.sb, 'invalid');
  const [cutReason] = await once(bc.sb, 'cut');
  assert.ok(altered(), 'the editor altered an envelope');
  assert.is((cutReason as { reason: string }).reason, 'bad-signature');
  assert.is(bc.sb.closeReason?.reason, 'bad-signature');
  assert.is(bc.sb.faults, 1);
  const [rejection] = (await invalid) as [Rejection];
  assert.is(rejection.reason, 'bad-signature');
  assert.is(rejection.update?.source, A.id, 'the altered update claimed A as its source');
  bc.destroy();
  // nothing altered reached C's state or store
  assert.is(c.get('k7'), undefined);
  for (const bytes of (await stores.c.load('default')).updates) assert.not.ok(Buffer.from(bytes).includes(Buffer.from('Value-7')));
  assert.ok((c.clock.get(A.id) ?? 0) < a.clock.get(A.id)!, 'C is behind A');

  // a direct honest path afterwards: C converges with A
  await syncOnce(a, c);
  assert.is(c.get('k7'), 'value-7');
  await syncOnce(b, c); // and with honest B again
  assert.is(c.stateHash(), a.stateHash());
  assert.is(b.stateHash(), a.stateHash());
  assert.is(c.clock.get(A.id), a.clock.get(A.id));
  assert.is(stores.c.size('default'), N);
});

test('malicious relay on the live tail: the altered live update is rejected, the rest converge via a new path', async () => {
  const { a, b, c, clock } = await chain();
  const ab = connect(a, b);
  const { editor, altered } = tamper('value-3');
  const bc = connect(b, c, { middle: editor });
  await Promise.all([ab.synced, bc.synced]);
  const gone = once(bc.sb, 'cut');
  for (let i = 0; i < 6; i++) {
    clock.advanceMs(1);
    a.set(`k${i}`, `value-${i}`);
  }
  const [reason] = await gone;
  assert.ok(altered());
  assert.is((reason as { reason: string }).reason, 'bad-signature');
  assert.is(c.get('k3'), undefined);
  bc.destroy();
  await reaches(b, A.id, a.clock.get(A.id)!);
  // a new honest path B -> C
  const bc2 = connect(b, c);
  await bc2.synced;
  assert.is(c.get('k3'), 'value-3');
  assert.is(c.stateHash(), a.stateHash());
  assert.is(bc2.sb.faults, 0);
  ab.destroy();
  bc2.destroy();
});

test.run();
