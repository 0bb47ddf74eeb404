// Review: a stream destroyed while it waits for the peer's history to apply before SYNC must
// not emit 'syncReceived' (or anything) after it closed.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Identity, Model, signUpdate } from '../../src/index.ts';
import { encodeHello, encodeSync, encodeUpdates } from '../../src/replication/messages.ts';
import { closed, next } from '../helpers/streams.ts';

const peer = Identity.fromSecretKey(new Uint8Array(32).fill(0x91));
const writer = Identity.fromSecretKey(new Uint8Array(32).fill(0x92));

test('destroyed while draining before SYNC: no syncReceived after close', async () => {
  const m = new Model({ identity: Identity.generate() });
  await m.ready;
  const s = m.createStream();
  s.resume();
  const events: string[] = [];
  s.on('close', () => events.push('close'));
  s.on('syncReceived', () => events.push('syncReceived'));
  s.on('sync', () => events.push('sync'));
  const u = signUpdate(writer, { dataset: 'default', version: 1_700_000_000_000_000, body: ['set', 'k', 1] });
  s.write(Buffer.concat([encodeHello({ dataset: 'default', id: peer.id, digest: new Map(), meta: null, readable: true, writable: true }), encodeUpdates([u.bytes]), encodeSync()]));
  const applied = next(m, 'update');
  s.destroy();
  await closed(s);
  await applied;
  await new Promise<void>((r) => setImmediate(r));
  assert.equal(events, ['close']);
  m.dispose();
});

test.run();
