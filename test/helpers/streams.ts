// Test helpers for replication streams: connect two models over an in-memory pipe, and wait
// on stream and model events with a deadline (never a fixed sleep).
import type { EventEmitter } from 'node:events';
import { Transform, type Duplex } from 'node:stream';
import type { Scuttlebutt, ReplicationStream, StreamOptions, ProtocolError } from '../../src/index.ts';

/** How long any single wait may take before the test fails (a deadline, not a sleep). */
export const WAIT_MS = 60_000;

/** Rejects with `what` if `promise` has not settled within `ms`; the timer never outlives it. */
export function deadline<T>(promise: Promise<T>, what: string, ms = WAIT_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, expired]).finally(() => clearTimeout(timer));
}

/** The arguments of the next `event` on `emitter`. */
export function next<T extends unknown[] = unknown[]>(emitter: EventEmitter, event: string | symbol, ms?: number): Promise<T> {
  return deadline(new Promise<T>((resolve) => emitter.once(event, (...args: unknown[]) => resolve(args as T))), `'${String(event)}'`, ms);
}

/** Resolves once `ready()` holds: checked now and after every `event` on `emitter`. */
export function until(emitter: EventEmitter, event: string | symbol, ready: () => boolean, what = `'${String(event)}' condition`): Promise<void> {
  if (ready()) return Promise.resolve();
  let listener: () => void = () => {};
  const done = new Promise<void>((resolve) => {
    listener = () => {
      if (ready()) resolve();
    };
    emitter.on(event, listener);
  });
  return deadline(done, what).finally(() => emitter.off(event, listener));
}

/** Resolves on the stream's `'sync'`; rejects if it closes first. */
export function synced(stream: ReplicationStream): Promise<void> {
  const done = new Promise<void>((resolve, reject) => {
    if (stream.listenerCount('sync') === 0 && (stream.destroyed || stream.closed)) return reject(new Error('stream already closed'));
    const onClose = () => reject(new Error(`stream ${stream.name ?? ''} closed before sync (${stream.closeReason?.message ?? 'no reason'})`));
    stream.once('sync', () => {
      stream.off('close', onClose);
      resolve();
    });
    stream.once('close', onClose);
  });
  return deadline(done, `'sync' on ${stream.name ?? 'a stream'}`);
}

/** Resolves once the stream has emitted 'close' (at once if it already has). */
export function closed(stream: Duplex): Promise<void> {
  // `closed` turns true a tick before 'close' is emitted; Node keeps whether it was emitted here.
  const state = (stream as unknown as { _readableState?: { closeEmitted?: boolean } })._readableState;
  if (state?.closeEmitted) return Promise.resolve();
  return deadline(new Promise<void>((resolve) => stream.once('close', () => resolve())), 'close');
}

/** Resolves with the reason the stream was cut off; rejects if it closes without one. */
export function cutOff(stream: ReplicationStream): Promise<ProtocolError> {
  if (stream.closeReason) return Promise.resolve(stream.closeReason);
  const done = new Promise<ProtocolError>((resolve, reject) => {
    stream.once('cut', (reason: ProtocolError) => resolve(reason));
    stream.once('close', () => (stream.closeReason ? resolve(stream.closeReason) : reject(new Error('closed without being cut'))));
  });
  return deadline(done, `'cut'`);
}

/** Two connected streams of `a` and `b` (a's output is b's input and the other way round). */
export function connect(a: Scuttlebutt, b: Scuttlebutt, aOptions?: StreamOptions, bOptions?: StreamOptions): [ReplicationStream, ReplicationStream] {
  const sa = a.createStream({ name: 'a', ...aOptions });
  const sb = b.createStream({ name: 'b', ...bOptions });
  sa.pipe(sb).pipe(sa);
  return [sa, sb];
}

/** Connects `a` and `b` and resolves with both streams once both have emitted `'sync'`. */
export async function syncPair(a: Scuttlebutt, b: Scuttlebutt, aOptions?: StreamOptions, bOptions?: StreamOptions): Promise<[ReplicationStream, ReplicationStream]> {
  const [sa, sb] = connect(a, b, aOptions, bOptions);
  await Promise.all([synced(sa), synced(sb)]);
  return [sa, sb];
}

/** Destroys the streams (an abrupt hang-up, for cleanup) and resolves once all have closed.
 *  For an orderly end, dispose a model or use `tail: false`. */
export async function hangUp(...streams: Duplex[]): Promise<void> {
  for (const s of streams) s.destroy();
  await Promise.all(streams.map((s) => closed(s)));
}

/** A pipe stage that re-chunks everything written into 1-byte chunks. */
export function byteByByte(): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, callback) {
      for (const b of chunk) this.push(Buffer.of(b));
      callback();
    },
  });
}

/** The error `promise` rejects with (fails the test if it resolves). */
export async function rejection(promise: Promise<unknown>): Promise<Error & { code?: string }> {
  try {
    await promise;
  } catch (error) {
    return error as Error & { code?: string };
  }
  throw new Error('expected a rejection');
}
