// Backpressure both ways with 100,000 signed updates: a peer that never reads costs bounded
// memory (readable buffer + live queue), and a peer that floods us is read only as fast as
// signatures verify (inFlight <= maxPending), with every update still applied.
// SIGNET_FLOOD_N overrides the count (default 100,000) for quick local runs.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Readable } from 'node:stream';
import { Identity, Model, type ReplicationStream } from '../../src/index.ts';
import { encodeHello, encodeSync, encodeUpdates } from '../../src/replication/messages.ts';
import { closed, next, synced, until } from '../helpers/streams.ts';

const N = Number(process.env.SIGNET_FLOOD_N ?? 100_000);
const KEYS = 1000;
/** Envelope bytes the flood test sends; filled by the first test (signed once, reused). */
let signed: Uint8Array[] = [];
const writer = Identity.generate();
const source = new Model({ identity: writer });

/** Largest the stream's readable buffer may get: its high-water mark plus one frame. */
const bufferBound = (s: ReplicationStream, mtu: number) => s.readableHighWaterMark + mtu + 1024;

test(`a peer that never reads: ${N} signed updates written, the stream's memory stays bounded, and it catches up when read`, async () => {
  const maxLiveBytes = 256 * 1024;
  const mtu = 16 * 1024;
  const replica = new Model({ identity: Identity.generate() });
  const toReplica = source.createStream({ name: 'to-replica', maxLiveBytes, mtu });
  const fromReplica = replica.createStream({ name: 'replica' });
  fromReplica.pipe(toReplica); // the replica's hello arrives; nothing reads what we send it
  await next(toReplica, 'syncSent');

  let maxBuffered = 0;
  let maxQueued = 0;
  const started = performance.now();
  for (let i = 0; i < N; i++) {
    signed.push(source.set(`k${i % KEYS}`, { i, pad: 'p'.repeat(i % 32) }).bytes);
    if (toReplica.readableLength > maxBuffered) maxBuffered = toReplica.readableLength;
    if (toReplica.liveQueueBytes > maxQueued) maxQueued = toReplica.liveQueueBytes;
  }
  const elapsed = performance.now() - started;
  assert.ok(maxBuffered <= bufferBound(toReplica, mtu), `readable buffer reached ${maxBuffered} bytes`);
  assert.ok(maxQueued <= maxLiveBytes, `live queue reached ${maxQueued} bytes`);
  assert.ok(maxBuffered >= toReplica.readableHighWaterMark, 'the buffer did fill up (the peer really was not reading)');
  assert.ok(toReplica.stats.sent < N, `only what fit was framed (${toReplica.stats.sent} of ${N})`);

  // the peer starts reading: it catches up from the model, not from a backlog
  const caughtUp = until(replica, 'update', () => replica.clock.get(writer.id) === source.clock.get(writer.id), 'replica catches up');
  toReplica.pipe(fromReplica);
  await caughtUp;
  assert.is(replica.stateHash(), source.stateHash());
  assert.ok(toReplica.stats.sent < N, `caught up with ${toReplica.stats.sent} updates, not ${N}`);
  console.log(`  ${N} signed writes in ${(elapsed / 1000).toFixed(1)} s; buffer max ${maxBuffered} B, queue max ${maxQueued} B; ${toReplica.stats.sent} updates sent`);
  replica.dispose();
  await Promise.all([closed(toReplica), closed(fromReplica)]);
  assert.is(source.streams, 0);
});

test(`a peer that floods ${N} updates: read only as fast as they verify (inFlight <= maxPending), all applied`, async () => {
  assert.is(signed.length, N);
  const maxPending = 256;
  const perFrame = 50;
  const target = new Model({ identity: Identity.generate() });
  const s = target.createStream({ name: 'target', maxPending });
  s.resume();
  let produced = 0;
  let maxInFlight = 0;
  let maxAhead = 0;
  const sample = () => {
    if (s.inFlight > maxInFlight) maxInFlight = s.inFlight;
    const ahead = produced - s.stats.received;
    if (ahead > maxAhead) maxAhead = ahead;
  };
  target.on('update', sample);
  const attacker = Identity.generate();
  function* flood() {
    yield encodeHello({ dataset: 'default', id: attacker.id, digest: new Map(), meta: null, readable: true, writable: true });
    for (let i = 0; i < N; i += perFrame) {
      const batch = signed.slice(i, i + perFrame);
      produced += batch.length;
      sample();
      yield encodeUpdates(batch);
    }
    yield encodeSync();
  }
  const received = next(s, 'syncReceived', 10 * 60_000);
  const started = performance.now();
  Readable.from(flood(), { objectMode: false }).pipe(s);
  await received; // after SYNC, once everything before it has applied
  const elapsed = performance.now() - started;
  assert.is(s.stats.received, N);
  assert.is(s.stats.applied, N);
  assert.is(s.stats.rejected, 0);
  assert.is(s.inFlight, 0);
  assert.ok(maxInFlight <= maxPending, `inFlight reached ${maxInFlight}`);
  assert.is(maxInFlight, maxPending, 'the verification bound is what held the reader back');
  // the flood was pulled, not pushed: the attacker was never more than a few buffers ahead
  assert.ok(maxAhead < 40 * perFrame, `the sender ran ${maxAhead} updates ahead of what we read`);
  assert.is(target.clock.get(writer.id), source.clock.get(writer.id));
  assert.is(target.stateHash(), source.stateHash());
  assert.is(target.keys().length, KEYS);
  console.log(`  ${N} flooded updates verified and applied in ${(elapsed / 1000).toFixed(1)} s; inFlight max ${maxInFlight}, sender ahead max ${maxAhead}`);
  target.dispose();
  await closed(s);
});

test('live updates to a slow reader go through the bounded queue, in order, without gaps', async () => {
  const a = new Model({ identity: Identity.generate() });
  const b = new Model({ identity: Identity.generate() });
  const sa = a.createStream({ name: 'a', maxLiveBytes: 8 * 1024, mtu: 1024 });
  const sb = b.createStream({ name: 'b' });
  sa.pipe(sb).pipe(sa);
  await Promise.all([synced(sa), synced(sb)]);
  sa.pause(); // b stops reading for a while
  sa.unpipe(sb);
  let maxQueued = 0;
  for (let i = 0; i < 2000; i++) {
    a.set(`k${i % 100}`, i);
    maxQueued = Math.max(maxQueued, sa.liveQueueBytes);
    assert.ok(sa.readableLength <= bufferBound(sa, 1024), `buffer ${sa.readableLength}`);
  }
  assert.ok(maxQueued <= 8 * 1024, `queue ${maxQueued}`);
  const versions: number[] = [];
  b.on('update', (u: { source: string; version: number }) => {
    if (u.source === a.id) versions.push(u.version);
  });
  const done = until(b, 'update', () => b.stateHash() === a.stateHash(), 'b converges');
  sa.pipe(sb);
  await done;
  for (let i = 1; i < versions.length; i++) assert.ok(versions[i]! > versions[i - 1]!, 'per-source order kept');
  a.dispose();
  b.dispose();
  await Promise.all([closed(sa), closed(sb)]);
});

test.after(() => source.dispose());

test.run();
