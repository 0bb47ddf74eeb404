// Hostile reconciliation input on a replication stream (protocol 2): every breach cuts the peer
// with a reason, a message over the limit is refused from its header, and an initiator that
// starts sessions back to back pays a fault for each until its budget runs out.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Identity, Model, type NodeId } from '../../src/index.ts';
import { MAX_RECONCILE_MESSAGE_BYTES, ReconcileSession, newNonce, sessionSalt } from '../../src/reconcile/index.ts';
import { perSessionSalt } from '../../src/replication/reconciler.ts';
import { FrameDecoder, decodeMessage, encodeHello, encodeReconcile, encodeSync } from '../../src/replication/messages.ts';
import { cutOff } from '../helpers/streams.ts';
import { FAULT_BUDGET } from '../../src/limits.ts';

/** An identity whose id orders before (the peer initiates) or after `other`. */
function peerThatOrders(other: NodeId, before: boolean): Identity {
  for (;;) {
    const id = Identity.generate();
    if ((id.id < other) === before) return id;
  }
}

async function target(): Promise<Model> {
  const m = new Model({ identity: Identity.generate() });
  await m.ready;
  return m;
}

const helloOf = (peer: Identity) => encodeHello({ dataset: 'default', id: peer.id, digest: new Map(), meta: null, readable: true, writable: true, reconcile: true, nonce: newNonce() });
/** A first message of a session over no items. */
const firstMessage = () => encodeReconcile(new ReconcileSession({ items: [], salt: new Uint8Array(32), initiator: true }).initiate());

test('a reconciliation message before SYNC is cut reconcile-unexpected', async () => {
  const m = await target();
  const s = m.createStream();
  s.resume();
  s.write(Buffer.concat([helloOf(peerThatOrders(m.id, true)), firstMessage()]));
  assert.is((await cutOff(s)).reason, 'reconcile-unexpected');
  m.dispose();
});

for (const [name, payload] of [
  ['an unknown format byte', Uint8Array.of(0x7f, 0x00)],
  ['a truncated range list', Uint8Array.of(0x01, 0x05)],
  ['trailing bytes', Uint8Array.of(0x01, 0x00, 0x00)],
  ['an empty message', new Uint8Array(0)],
] as Array<[string, Uint8Array]>) {
  test(`a reconciliation message with ${name} is cut with a reconcile-* reason`, async () => {
    const m = await target();
    const s = m.createStream();
    s.resume();
    s.write(Buffer.concat([helloOf(peerThatOrders(m.id, true)), encodeSync(), encodeReconcile(payload)]));
    const reason = (await cutOff(s)).reason;
    assert.ok(reason.startsWith('reconcile-'), reason);
    assert.ok(m.keys().length === 0);
    m.dispose();
  });
}

test(`a reconciliation message of MAX_RECONCILE_MESSAGE_BYTES is read; one byte more is refused from its header (malformed)`, () => {
  const at = decodeMessage(encodeReconcile(new Uint8Array(MAX_RECONCILE_MESSAGE_BYTES)).subarray(4));
  assert.ok(at.ok, 'at the limit');
  const over = decodeMessage(encodeReconcile(new Uint8Array(MAX_RECONCILE_MESSAGE_BYTES + 1)).subarray(4));
  assert.not.ok(over.ok);
  assert.match(!over.ok ? over.reason : '', /limit/);
});

test('an initiator that starts sessions back to back pays a fault for each, and is cut fault-budget', async () => {
  const m = await target();
  m.set('k', 1);
  const s = m.createStream();
  const peer = peerThatOrders(m.id, true);
  const nonce = newNonce();
  let base: Uint8Array | null = null;
  let session: ReconcileSession<never> | null = null;
  let count = 0;
  const begin = (): void => {
    session = new ReconcileSession<never>({ items: [], salt: perSessionSalt(base!, ++count), initiator: true });
    s.write(encodeReconcile(session.initiate()));
  };
  // A scripted peer: reads the target's messages, and starts a new session the moment one ends.
  const decoder = new FrameDecoder(1 << 24);
  s.on('data', (chunk: Buffer) => {
    const frames = decoder.push(chunk);
    if (typeof frames === 'string') throw new Error(frames);
    for (const bytes of frames) {
      const r = decodeMessage(bytes);
      if (!r.ok) throw new Error(r.reason);
      if (r.message.type === 'hello') {
        base = sessionSalt({ id: peer.id, nonce }, { id: m.id, nonce: r.message.hello.nonce! });
      } else if (r.message.type === 'sync') {
        begin();
      } else if (r.message.type === 'reconcile' && session) {
        const step = session.receive(r.message.payload);
        if (step.reply) s.write(encodeReconcile(step.reply));
        if (step.done && !s.destroyed) begin();
      }
    }
  });
  const sessions: number[] = [];
  s.on('reconciled', (r) => sessions.push(r.session));
  s.write(Buffer.concat([encodeHello({ dataset: 'default', id: peer.id, digest: new Map(), meta: null, readable: true, writable: true, reconcile: true, nonce }), encodeSync()]));
  assert.is((await cutOff(s)).reason, 'fault-budget');
  // The first session is free; each one after it, started at once, costs a fault.
  assert.ok(sessions.length >= FAULT_BUDGET && sessions.length <= FAULT_BUDGET + 2, `${sessions.length} sessions answered`);
  m.dispose();
});

test.run();
