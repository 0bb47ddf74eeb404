// Test helpers: an in-memory Duplex pair that behaves like a socket (async delivery, EOF on
// end or destroy), taps that see or rewrite the bytes of each direction, frame taps, a watched
// listener and recorded messages 1.
import { Duplex } from 'node:stream';
import { Identity } from '../../src/identity/identity.ts';
import { secureChannel, type SecureChannel } from '../../src/channel/secure-channel.ts';
import type { SecureChannelOptions } from '../../src/channel/options.ts';
import type { FrameReader } from '../../src/channel/framing.ts';
import type { HandshakeState } from '../../src/channel/handshake-state.ts';

/** Rewrites one written chunk into the chunks the other end receives. */
export type Tap = (chunk: Buffer) => Buffer[];

/** One end of an in-memory pair. `wire` records every byte written on this end. */
export class End extends Duplex {
  peer!: End;
  tap: Tap | undefined;
  readonly wire: Buffer[] = [];
  private eofSent = false;

  constructor() {
    super({ allowHalfOpen: true });
  }

  get bytesWritten(): number {
    return this.wire.reduce((n, b) => n + b.length, 0);
  }

  override _read(): void {}

  override _write(chunk: Buffer, _enc: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.wire.push(Buffer.from(chunk));
    const out = this.tap ? this.tap(chunk) : [chunk];
    process.nextTick(() => {
      for (const c of out) if (!this.peer.destroyed && !this.peer.readableEnded) this.peer.push(c);
      callback();
    });
  }

  override _final(callback: (error?: Error | null) => void): void {
    process.nextTick(() => {
      this.sendEof();
      callback();
    });
  }

  private sendEof(): void {
    if (this.eofSent) return;
    this.eofSent = true;
    if (!this.peer.destroyed) this.peer.push(null);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    process.nextTick(() => this.sendEof());
    callback(error);
  }
}

/** Two connected ends: what a writes, b reads, and the other way round. */
export function duplexPair(): [End, End] {
  const a = new End();
  const b = new End();
  a.peer = b;
  b.peer = a;
  return [a, b];
}

/**
 * A tap that cuts the byte stream into 2-byte-length-prefixed frames (prefix included) and
 * passes each through `fn` with its index in this direction (handshake frames count too).
 */
export function frameTap(fn: (frame: Buffer, index: number) => Buffer[]): Tap {
  let pending = Buffer.alloc(0);
  let index = 0;
  return (chunk) => {
    pending = Buffer.concat([pending, chunk]);
    const out: Buffer[] = [];
    while (pending.length >= 2) {
      const size = 2 + pending.readUInt16BE(0);
      if (pending.length < size) break;
      out.push(...fn(pending.subarray(0, size), index++));
      pending = pending.subarray(size);
    }
    return out;
  };
}

/** Splits every chunk into one-byte chunks. */
export const byteByByte: Tap = (chunk) => [...chunk].map((b) => Buffer.of(b));

/** Fixed identities and a network key shared by the tests. */
export const alice = Identity.fromSecretKey(new Uint8Array(32).fill(1));
export const bob = Identity.fromSecretKey(new Uint8Array(32).fill(2));
export const mallory = Identity.fromSecretKey(new Uint8Array(32).fill(3));
export const networkKey = new Uint8Array(32).fill(7);

type Overrides = Partial<Omit<SecureChannelOptions, 'initiator'>>;

/** Runs both handshakes over a fresh pair; `a` dials (alice), `b` listens (bob). */
export async function connect(a: Overrides = {}, b: Overrides = {}, ends = duplexPair()) {
  const [ea, eb] = ends;
  const [ca, cb] = await Promise.all([
    secureChannel(ea, { identity: alice, networkKey, initiator: true, ...a }),
    secureChannel(eb, { identity: bob, networkKey, initiator: false, ...b }),
  ]);
  return { a: ca, b: cb, ea, eb };
}

/** Settles both promises; returns the results (value or error) without throwing. */
export async function settle<T, U>(p: Promise<T>, q: Promise<U>) {
  const [x, y] = await Promise.allSettled([p, q]);
  return [x, y] as const;
}

/** The error a promise rejects with (fails the test if it resolves). */
export async function rejection(p: Promise<unknown>): Promise<Error & { code?: string }> {
  try {
    await p;
  } catch (error) {
    return error as Error & { code?: string };
  }
  throw new Error('expected a rejection');
}

/** Resolves with the channel's error, or null on a clean close. Collects messages meanwhile. */
export function outcome(channel: SecureChannel): Promise<{ error: (Error & { code?: string }) | null; messages: Buffer[] }> {
  const messages: Buffer[] = [];
  return new Promise((resolve) => {
    let error: (Error & { code?: string }) | null = null;
    channel.on('data', (m: Buffer) => messages.push(m));
    channel.on('error', (e) => (error = e));
    channel.on('close', () => resolve({ error, messages }));
  });
}

/** The next `n` messages read from a channel. */
export function readMessages(channel: SecureChannel, n: number): Promise<Buffer[]> {
  const out: Buffer[] = [];
  return new Promise((resolve, reject) => {
    if (n === 0) return resolve(out);
    const onData = (m: Buffer): void => {
      out.push(m);
      if (out.length === n) {
        channel.off('data', onData);
        channel.off('error', reject);
        channel.pause();
        resolve(out);
      }
    };
    channel.on('data', onData);
    channel.once('error', reject);
  });
}

/**
 * Awaits `promise` while holding the event loop open: the channel's timers are unref'd (a
 * socket keeps a real process alive), and an in-memory pair holds nothing.
 */
export async function held<T>(promise: Promise<T>): Promise<T> {
  const timer = setInterval(() => {}, 1000);
  try {
    return await promise;
  } finally {
    clearInterval(timer);
  }
}

/** Resolves once `stream` has emitted 'close' (at once if it already has). */
export function whenClosed(stream: Duplex): Promise<void> {
  const state = (stream as unknown as { _readableState?: { closeEmitted?: boolean } })._readableState;
  if (state?.closeEmitted) return Promise.resolve();
  return new Promise((resolve) => stream.once('close', () => resolve()));
}

/** Resolves after the event loop has turned `n` times (I/O and timers due meanwhile run). */
export async function turns(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve));
}

/** A listener (bob) on `eb` of a fresh pair, with its handshake state and frame reader in view. */
export function watchedResponder(overrides: Overrides = {}, ends = duplexPair()) {
  const [ea, eb] = ends;
  const states: HandshakeState[] = [];
  const readers: FrameReader[] = [];
  const started = performance.now();
  const result = secureChannel(eb, {
    identity: bob, networkKey, initiator: false, ...overrides,
    testing: { ...overrides.testing, onHandshakeState: (s) => states.push(s), onFrameReader: (r) => readers.push(r) },
  });
  result.catch(() => {}); // the test awaits it; a test failing before that must not add an unhandled rejection
  return { ea, eb, result, started, state: () => states[0]!, reader: () => readers[0]! };
}

/**
 * The bytes (length prefix included) of a genuine message 1 from alice, recorded on the wire and
 * never delivered: no responder in this process has seen it.
 */
export async function recordMessage1(overrides: Overrides = {}): Promise<Buffer> {
  const [ea, eb] = duplexPair();
  let captured!: (chunk: Buffer) => void;
  const first = new Promise<Buffer>((resolve) => (captured = resolve));
  ea.tap = (chunk) => {
    captured(Buffer.from(chunk));
    return [];
  };
  const dial = secureChannel(ea, { identity: alice, networkKey, initiator: true, ...overrides });
  try {
    return await Promise.race([first, dial.then(() => Promise.reject(new Error('the dial completed without a responder')))]);
  } finally {
    ea.destroy();
    eb.destroy();
    await dial.then((c) => c.destroy(), () => {}); // it can only fail now: its transport is gone
  }
}
