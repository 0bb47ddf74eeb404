// A connection that ends right after the peer's last DATA: what arrived is still taken. A node
// that stops sends its signed leaving record and then closes its channel; both often reach us in
// one read, while our stream is still busy (verifying what came before), so the record waits in
// the session's inbox when the channel's close tears the mux down. Driven by hand, in memory,
// with the stream's verdicts held back by a controlled promise: no sockets, no sleeps.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Duplex } from 'node:stream';
import { Identity, Model, owner, signUpdate, wallClockMicros, type NodeId } from '../../src/index.ts';
import type { IngestResult } from '../../src/core/types.ts';
import { Mux, type MuxSession } from '../../src/mesh/mux.ts';
import { ALIVE_KEY, Membership, MEMBERS_DATASET } from '../../src/mesh/membership.ts';
import { decodeMuxMessage, encodeAccept, encodeData, encodeHello, encodeOpen, type MuxMessage, type OpenInfo } from '../../src/mesh/mux-messages.ts';
import { encodeSync, encodeUpdates } from '../../src/replication/messages.ts';
import { MUX_WINDOW_BYTES } from '../../src/limits.ts';
import { replicationHello } from './attackers.ts';
import { closed, deadline } from '../helpers/streams.ts';

const INFO: OpenInfo = { name: MEMBERS_DATASET, policy: 'owner', replicaOf: null };

/**
 * The mux's end of a channel, played by the test: `deliver()` hands it the peer's messages in one
 * synchronous run, as a SecureChannel does with the frames of one read, and `hangUp()` then ends
 * it as the peer's close frame does (readable ends, and without half-open the channel closes).
 * What the mux sends is decoded into `sent`.
 */
class ChannelEnd extends Duplex {
  readonly sent: MuxMessage[] = [];

  constructor() {
    super({ objectMode: true, allowHalfOpen: false });
  }

  override _read(): void {}

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: () => void): void {
    this.sent.push(decodeMuxMessage(chunk) as MuxMessage);
    callback();
  }

  deliver(...messages: Buffer[]): void {
    for (const m of messages) this.push(m);
  }

  hangUp(): void {
    this.push(null);
  }
}

/** A stream whose writes are held until `release()`: a consumer still busy with what it got. */
class BusyStream extends Duplex {
  bytes = 0;
  private held: Array<() => void> = [];
  private busy = true;

  constructor() {
    super({ allowHalfOpen: true });
  }

  override _read(): void {}

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: () => void): void {
    this.bytes += chunk.length;
    if (this.busy) this.held.push(callback);
    else callback();
  }

  release(): void {
    this.busy = false;
    for (const callback of this.held.splice(0)) callback();
  }
}

/** A mux whose peer has said hello and opened the members dataset both ways: the session. */
async function session(attach: (session: MuxSession) => void): Promise<{ end: ChannelEnd; mux: Mux; peer: NodeId }> {
  const end = new ChannelEnd();
  const peer = Identity.generate().id;
  const mux = new Mux(end, { localId: Identity.generate().id, remoteId: peer, decide: () => null });
  mux.on('violation', (reason) => assert.unreachable(`violation: ${reason}`));
  mux.on('session', attach);
  await new Promise((resolve) => setImmediate(resolve)); // the mux reads: 'data' flows synchronously from now on
  mux.open(INFO);
  const ours = end.sent.find((m) => m.type === 'open') as Extract<MuxMessage, { type: 'open' }>;
  end.deliver(encodeHello(MUX_WINDOW_BYTES, peer), encodeOpen(0, INFO), encodeAccept(ours.channel));
  assert.is(mux.sessionCount, 1, 'the session started');
  return { end, mux, peer };
}

test('the channel closing while the stream is busy: DATA held for it is still written, then its writable side ends, then it is destroyed', async () => {
  const stream = new BusyStream();
  const { end } = await session((s) => s.attach(stream));
  end.deliver(encodeData(0, Buffer.alloc(100)), encodeData(0, Buffer.alloc(200)));
  assert.is(stream.bytes, 100, 'the second DATA waits in the inbox: the stream has not called back');
  end.hangUp();
  await closed(end);
  assert.not.ok(stream.destroyed, 'still finishing what the peer sent');
  stream.release();
  await closed(stream);
  assert.is(stream.bytes, 300, 'every byte the peer sent before it closed reached the stream');
  assert.ok(stream.writableFinished, 'its writable side ended first (the peer sends nothing more)');
});

test('a leaving record that arrives with the close of the connection, while the update before it is verified, is applied and convicts its member', async () => {
  const b = Identity.generate();
  const model = new Model({ identity: Identity.generate(), dataset: MEMBERS_DATASET, policy: owner() });
  await model.ready;
  const membership = new Membership({ model, now: () => 0, wallMicros: wallClockMicros, heartbeatIntervalMs: 1000, phi: {} });
  const dead: NodeId[] = [];
  membership.on('dead', (m) => dead.push(m.id));
  // While `holding`, verdicts reach the stream only when the test says: the stream's view of a
  // verification in flight (the model itself applies as soon as the signature is checked).
  let holding = true;
  const verdicts: Array<() => void> = [];
  const ingest = model.ingest.bind(model);
  model.ingest = (bytes, origin, adopt) => {
    const verdict = ingest(bytes, origin, adopt);
    return holding ? new Promise<IngestResult>((resolve) => verdicts.push(() => resolve(verdict))) : verdict;
  };
  const stream = model.createStream({ name: 'members@b' });
  const { end, mux } = await session((s) => s.attach(stream));
  const version = wallClockMicros();
  const beat = signUpdate(b, { dataset: MEMBERS_DATASET, version, body: ['set', `${b.id}/${ALIVE_KEY}`, { beat: 1, every: 1000 }] });
  const leave = signUpdate(b, { dataset: MEMBERS_DATASET, version: version + 1, body: ['set', `${b.id}/${ALIVE_KEY}`, { beat: 2, every: 1000, left: true }] });
  end.deliver(encodeData(0, Buffer.concat([replicationHello(MEMBERS_DATASET, b.id), encodeUpdates([beat.bytes])])));
  await deadline(new Promise<void>((resolve) => model.once('update', () => resolve())), 'the heartbeat applied');
  assert.equal(membership.list().map((m) => [m.id, m.state]), [[b.id, 'alive']]);
  assert.is(stream.inFlight, 1, 'the heartbeat still waits for its verdict, as far as the stream knows');
  // One read: SYNC (the stream waits for the heartbeat's verdict before it goes on), the leaving
  // record (held by the mux for the busy stream), then the peer's close.
  end.deliver(encodeData(0, encodeSync()), encodeData(0, encodeUpdates([leave.bytes])));
  end.hangUp();
  await closed(end);
  assert.is(mux.sessionCount, 0);
  // The connection is gone; the heartbeat's verdict comes in, and every later one at once.
  holding = false;
  for (const release of verdicts.splice(0)) release();
  await closed(stream);
  assert.is(model.updateOf(`${b.id}/${ALIVE_KEY}`)?.hashHex, leave.hashHex, 'the leaving record was applied');
  assert.equal(dead, [b.id], 'and its member seen dead at once');
  assert.is(stream.stats.applied, 2);
  model.dispose();
});

test.run();
