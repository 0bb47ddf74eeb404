// Hostile peers for the mesh tests: hand-written replication sessions, a multiplexer with a
// window of our choosing, a handshake limiter that reports what it decides, and a tracker
// that destroys every raw channel and socket a test opened, whatever happens.
import { EventEmitter } from 'node:events';
import { createServer, type Socket } from 'node:net';
import { once } from 'node:events';
import { Duplex } from 'node:stream';
import { dial, HandshakeLimiter, type Identity, type ReleaseHandshake, type SecureChannel } from '../../src/index.ts';
import { Mux, type MuxSession } from '../../src/mesh/mux.ts';
import type { OpenInfo } from '../../src/mesh/mux-messages.ts';
import { encodeHello } from '../../src/replication/messages.ts';
import { parseHostPort } from '../../src/util/address.ts';
import { modelDescriptor, networkKey } from './cluster.ts';

/** A replication hello claiming `id`, with an empty digest: what a fresh member sends. */
export function replicationHello(dataset: string, id: string): Buffer {
  return encodeHello({ dataset, id, digest: new Map(), meta: null, readable: true, writable: true });
}

/** A hostile member's raw replication session: a hello claiming `id`, then `messages`; it
 *  discards whatever the node sends it. */
export function scripted(id: string, dataset: string, messages: Buffer[]): Duplex {
  return new Duplex({
    read() {},
    write(_chunk, _e, cb) {
      cb();
    },
    construct(cb) {
      this.push(replicationHello(dataset, id));
      for (const m of messages) this.push(m);
      cb();
    },
  });
}

/** Every raw channel and socket a test opened: `destroyAll()` in a finally ends them all. */
export class Raws {
  private readonly open = new Set<{ destroy(): void }>();

  add<T extends { destroy(): void }>(thing: T): T {
    this.open.add(thing);
    return thing;
  }

  destroyAll(): void {
    for (const t of this.open) t.destroy();
    this.open.clear();
  }
}

/** Marks `promise` handled now and returns it: a wait set up before a step that may throw must
 *  not crash the run as an unhandled rejection when its deadline passes later. Awaiting the
 *  returned promise still throws. */
export function handled<T>(promise: Promise<T>): Promise<T> {
  promise.catch(() => {});
  return promise;
}

/** A raw secure channel to `address`, tracked by `raws`. Unless `discard` is false it reads and
 *  drops whatever the node sends (a channel nobody reads never sees the node hang up). */
export async function rawDial(raws: Raws, address: string, identity: Identity, discard = true): Promise<SecureChannel> {
  const { host, port } = parseHostPort(address, 'address');
  const channel = raws.add(await dial({ identity, networkKey, host, port }));
  if (discard) channel.resume();
  return channel;
}

/** A raw channel with our own multiplexer (window of our choosing), offering `info`, tracked by
 *  `raws`. `session` settles when the dataset's session opens, or rejects when the channel closes. */
export async function rawMux(
  raws: Raws, address: string, identity: Identity, info: Partial<OpenInfo> & { name: string }, window?: number,
): Promise<{ channel: SecureChannel; mux: Mux; session: Promise<MuxSession>; closed: Promise<void> }> {
  const channel = await rawDial(raws, address, identity, false); // the multiplexer reads it
  const closed = new Promise<void>((resolve) => channel.once('close', () => resolve()));
  const mux = new Mux(channel, { localId: identity.id, remoteId: channel.remote.id, decide: () => null, window });
  const session = new Promise<MuxSession>((resolve, reject) => {
    mux.once('session', resolve);
    channel.once('close', () => reject(new Error('the channel closed before a session opened')));
  });
  session.catch(() => {}); // a test that never awaits it must not see an unhandled rejection
  mux.open({ policy: modelDescriptor(), replicaOf: null, ...info });
  return { channel, mux, session, closed };
}

/** Resolves once `emitter` emitted 'close' (at once if `closed` says it already did). */
export function closeOf(channel: SecureChannel | Socket): Promise<void> {
  if (channel.closed) return Promise.resolve();
  return new Promise<void>((resolve) => channel.once('close', () => resolve()));
}

/** A HandshakeLimiter that reports each decision: 'acquired' / 'refused' / 'released' (address). */
export class ObservedLimiter extends HandshakeLimiter {
  readonly events = new EventEmitter<{ acquired: [string]; refused: [string]; released: [string] }>();

  override tryAcquire(address: string): ReleaseHandshake | null {
    const release = super.tryAcquire(address);
    if (!release) {
      this.events.emit('refused', address);
      return null;
    }
    this.events.emit('acquired', address);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      release();
      this.events.emit('released', address);
    };
  }
}

/** A TCP port that was free a moment ago on 127.0.0.1. */
export async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  await new Promise((r) => server.close(r));
  return port;
}
