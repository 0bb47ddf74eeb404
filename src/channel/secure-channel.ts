// SecureChannel: the encrypted transport after the handshake, as a Duplex of whole messages;
// secureChannel() runs the handshake and returns it. Close is authenticated, EOF is truncation.
import { Duplex } from 'node:stream';
import { TypedDuplex, type DuplexEvents } from '../util/duplex-events.ts';
import { DecryptError, TimeoutError, TruncationError } from '../errors.ts';
import { NOISE_MAX_FRAME } from '../limits.ts';
import type { CipherState } from './cipher-state.ts';
import { FrameReader, FrameType, messageFrames, Reassembler } from './framing.ts';
import { derivePsk, performHandshake, type ChannelTestHooks, type HandshakeOutcome } from './handshake.ts';
import type { RemoteIdentity } from './identity-payload.ts';
import { resolveOptions, type ChannelLimits, type SecureChannelOptions } from './options.ts';
import { TAGLEN } from './primitives.ts';

const EMPTY = new Uint8Array(0);
const CLOSE_FRAME = [Uint8Array.of(FrameType.close)];
const KEEPALIVE_FRAME = [Uint8Array.of(FrameType.keepalive)];
/** Encrypted frames are written to the underlying stream in batches of about this size. */
const WRITE_BATCH_BYTES = 256 * 1024;
/** A frame of at least this many wire bytes gets a buffer (and a write) of its own. */
const LARGE_FRAME_BYTES = 4096;

/** Events of a secure channel: a Duplex's (typed; `'error'` carries a coded SignetError such as
 *  ERR_DECRYPT, ERR_TRUNCATED or ERR_TIMEOUT, or the socket's own error). */
export type SecureChannelEvents = DuplexEvents;

/**
 * An established secure channel: a Duplex where one write is one application message and
 * each message is read back as one Buffer. Created by {@link secureChannel} only.
 *
 * Errors it is destroyed with (all carry `code`): DecryptError (tampering, replay, reorder,
 * loss), FrameTooLargeError (message over `maxMessageBytes`), ChannelProtocolError,
 * TruncationError (EOF without the close frame), TimeoutError (idle), NonceExhaustedError,
 * or the underlying stream's own error.
 */
export class SecureChannel extends TypedDuplex<SecureChannelEvents> {
  /** The peer's verified identity: `id` is derived from `publicKey`, never claimed. */
  readonly remote: RemoteIdentity;
  /** The Noise handshake hash h: equal on both ends; usable for channel binding. */
  readonly handshakeHash: Uint8Array;
  private readonly stream: Duplex;
  private readonly sendState: CipherState;
  private readonly receiveState: CipherState;
  private readonly reader: FrameReader;
  private readonly reassembler: Reassembler;
  private readonly limits: ChannelLimits;
  private keepaliveTimer: NodeJS.Timeout | undefined;
  private idleTimer: NodeJS.Timeout | undefined;
  private lingerTimer: NodeJS.Timeout | undefined;
  private pendingWrite: ((error?: Error | null) => void) | null = null;
  private remoteClosed = false;
  private localClosed = false;
  private attached = true;
  /** True while our reader is full and the stream is paused: the peer's silence is then ours. */
  private backpressured = false;

  /** The stream the channel runs over (a socket). After a clean close it may stay open a moment
   *  longer, flushing the close frame; wait for its `'close'` to know the socket is gone. */
  get transport(): Duplex {
    return this.stream;
  }

  /** The remote IP of the underlying socket (undefined over a transport that is not a socket). */
  get remoteAddress(): string | undefined {
    return (this.stream as { remoteAddress?: string }).remoteAddress;
  }

  /** The remote port of the underlying socket (undefined over a transport that is not a socket). */
  get remotePort(): number | undefined {
    return (this.stream as { remotePort?: number }).remotePort;
  }

  /** @internal Use {@link secureChannel}. */
  constructor(stream: Duplex, outcome: HandshakeOutcome, limits: ChannelLimits, allowHalfOpen: boolean, testing?: ChannelTestHooks) {
    super({ readableObjectMode: true, readableHighWaterMark: 16, writableHighWaterMark: 64 * 1024, allowHalfOpen });
    this.stream = stream;
    this.remote = outcome.remote;
    this.handshakeHash = outcome.handshakeHash;
    this.sendState = outcome.send;
    this.receiveState = outcome.receive;
    this.reader = outcome.reader;
    this.reader.setMaxFrame(NOISE_MAX_FRAME);
    this.reassembler = new Reassembler(limits.maxMessageBytes, testing?.allocate);
    this.limits = limits;
    stream.on('data', this.onData);
    stream.on('end', this.onEnd);
    stream.on('close', this.onClose);
    stream.on('error', this.onError);
    stream.on('drain', this.onDrain);
    if (limits.keepaliveMs > 0) this.keepaliveTimer = setTimeout(this.sendKeepalive, limits.keepaliveMs).unref();
    if (limits.idleTimeoutMs > 0) {
      // Counts only while we read: a consumer applying backpressure is not an idle peer (the
      // timer then lapses, and _read re-arms it when reading starts again).
      this.idleTimer = setTimeout(() => {
        if (!this.backpressured) this.destroy(new TimeoutError(`no frame from the peer for ${limits.idleTimeoutMs} ms`));
      }, limits.idleTimeoutMs).unref();
    }
    // The stream stays paused until the first _read(): nothing is decrypted before a reader exists.
  }

  private readonly onData = (chunk: Uint8Array): void => {
    if (this.remoteClosed || this.destroyed) return; // bytes after the close frame are discarded
    this.reader.push(chunk);
    this.receive();
  };

  /** Decrypts every complete frame; the first fault destroys the channel before anything later is delivered. */
  private receive(): void {
    try {
      for (let frame = this.reader.nextParts(); frame !== null && !this.destroyed; frame = this.reader.nextParts()) {
        let length = 0;
        for (const p of frame) length += p.length;
        if (length < TAGLEN) throw new DecryptError(`frame of ${length} bytes is shorter than a tag`);
        const plaintext = this.receiveState.decryptPartsWithAd(EMPTY, frame);
        this.idleTimer?.refresh();
        const received = this.reassembler.acceptParts(plaintext);
        if (received.kind === 'message') {
          const data = received.data;
          if (!this.push(Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.length))) {
            this.backpressured = true;
            this.stream.pause();
          }
        } else if (received.kind === 'close') {
          this.remoteClosed = true;
          clearTimeout(this.idleTimer);
          if (this.localClosed) this.stream.end(); // both close frames exchanged: now the FIN
          this.push(null);
          return;
        }
      }
    } catch (error) {
      this.destroy(error as Error);
    }
  }

  private readonly onEnd = (): void => {
    if (!this.remoteClosed) this.destroy(new TruncationError('the stream ended without the authenticated close frame'));
  };

  private readonly onClose = (): void => {
    if (this.destroyed) return this.detach();
    if (!this.remoteClosed) this.destroy(new TruncationError('the stream closed without the authenticated close frame'));
    // else: the peer closed cleanly; what it sent can still be read, and writes now fail.
  };

  private readonly onError = (error: Error): void => {
    this.destroy(error);
  };

  private readonly onDrain = (): void => {
    const callback = this.pendingWrite;
    this.pendingWrite = null;
    callback?.();
  };

  private readonly sendKeepalive = (): void => {
    if (this.destroyed || this.localClosed || !this.stream.writable) return;
    try {
      this.stream.write(this.sealFrame(KEEPALIVE_FRAME));
      this.keepaliveTimer?.refresh();
    } catch (error) {
      this.destroy(error as Error);
    }
  };

  /** Wire bytes of the transport frame carrying `plaintext`: length prefix, ciphertext, tag. */
  private wireBytes(plaintext: readonly Uint8Array[]): number {
    let length = 2 + this.sendState.overhead();
    for (const p of plaintext) length += p.length;
    return length;
  }

  /**
   * Encrypts one transport frame into `out` at `at` (length prefix, then ciphertext || tag), where
   * {@link wireBytes} bytes are free; returns that count. Nothing is copied but the plaintext
   * (joined where the ciphertext goes) and nothing allocated per frame.
   * @throws NonceExhaustedError (nothing written); RangeError past 65535 bytes (a caller bug).
   */
  private sealFrameInto(plaintext: readonly Uint8Array[], out: Uint8Array, at: number): number {
    const length = this.wireBytes(plaintext) - 2;
    if (length > NOISE_MAX_FRAME) throw new RangeError(`frame of ${length} bytes is over ${NOISE_MAX_FRAME}`);
    const written = this.sendState.encryptIntoWithAd(EMPTY, plaintext, out, at + 2);
    out[at] = written >>> 8;
    out[at + 1] = written & 0xff;
    return 2 + written;
  }

  /** One transport frame in a buffer of its own. @throws NonceExhaustedError. */
  private sealFrame(plaintext: readonly Uint8Array[]): Buffer {
    const out = Buffer.allocUnsafe(this.wireBytes(plaintext));
    this.sealFrameInto(plaintext, out, 0);
    return out;
  }

  private sendMessages(messages: readonly Uint8Array[], callback: (error?: Error | null) => void): void {
    if (!this.stream.writable) return callback(new TruncationError('the underlying stream is no longer writable'));
    for (const m of messages) {
      // The peer refuses anything larger (and a 32-bit header could not even describe 4 GiB).
      if (m.length > this.limits.maxMessageBytes) {
        return callback(new RangeError(`"message" is ${m.length} bytes; the limit is maxMessageBytes=${this.limits.maxMessageBytes}`));
      }
    }
    // Large frames are encrypted into a buffer each and written as they are; small ones are
    // encrypted one after another into shared buffers of up to WRITE_BATCH_BYTES, so a stream
    // of small messages still makes few, large writes, with no join afterwards.
    const frames: Uint8Array[][] = [];
    let smallBytes = 0;
    for (const message of messages) {
      for (const frame of messageFrames(message)) {
        frames.push(frame);
        const wire = this.wireBytes(frame);
        if (wire < LARGE_FRAME_BYTES) smallBytes += wire;
      }
    }
    let ok = true;
    let batch: Buffer | null = null;
    let used = 0;
    const flush = (): void => {
      if (batch !== null && used > 0) ok = this.stream.write(used === batch.length ? batch : batch.subarray(0, used));
      batch = null;
      used = 0;
    };
    this.stream.cork();
    try {
      for (const frame of frames) {
        const wire = this.wireBytes(frame);
        if (wire >= LARGE_FRAME_BYTES) {
          flush();
          ok = this.stream.write(this.sealFrame(frame));
          continue;
        }
        if (batch === null || batch.length - used < wire) {
          flush();
          batch = Buffer.allocUnsafe(Math.max(wire, Math.min(smallBytes, WRITE_BATCH_BYTES)));
        }
        used += this.sealFrameInto(frame, batch, used);
        smallBytes -= wire;
      }
      flush();
    } catch (error) {
      this.stream.uncork();
      return callback(error as Error);
    }
    this.stream.uncork();
    this.keepaliveTimer?.refresh();
    if (ok) callback();
    else this.pendingWrite = callback;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.sendMessages([chunk], callback);
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, callback: (error?: Error | null) => void): void {
    this.sendMessages(chunks.map((c) => c.chunk), callback);
  }

  /**
   * Sends the authenticated close frame. The underlying stream is ended (FIN) only once both
   * close frames have been exchanged, so a transport without half-close (net.Socket's default
   * allowHalfOpen: false ends its side on the peer's FIN) still carries the peer's close frame.
   */
  override _final(callback: (error?: Error | null) => void): void {
    clearTimeout(this.keepaliveTimer);
    this.localClosed = true;
    if (!this.stream.writable) return callback();
    try {
      this.stream.write(this.sealFrame(CLOSE_FRAME));
      if (this.remoteClosed) this.stream.end();
      callback();
    } catch (error) {
      callback(error as Error);
    }
  }

  override _read(): void {
    if (this.remoteClosed || this.destroyed) return;
    if (this.backpressured) {
      this.backpressured = false;
      this.idleTimer?.refresh(); // the idle clock restarts now that we read again
    }
    this.receive();
    if (!this.destroyed && !this.remoteClosed && !this.backpressured) this.stream.resume();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    clearTimeout(this.keepaliveTimer);
    clearTimeout(this.idleTimer);
    const onDrain = this.pendingWrite;
    this.pendingWrite = null;
    onDrain?.(error ?? new TruncationError('channel destroyed'));
    if (!error && this.remoteClosed && this.localClosed && !this.stream.destroyed) {
      // Clean close: let the underlying stream flush our close frame and end on its own (destroying
      // it now could discard queued bytes); give up after the idle timeout or handshake deadline.
      this.stream.resume();
      const linger = this.limits.idleTimeoutMs || this.limits.handshakeTimeoutMs;
      this.lingerTimer = setTimeout(() => {
        this.detach();
        this.stream.destroy();
      }, linger).unref();
    } else {
      this.detach();
      this.stream.destroy();
    }
    callback(error);
  }

  /** Removes every listener this channel added to the underlying stream. */
  private detach(): void {
    if (!this.attached) return;
    this.attached = false;
    clearTimeout(this.lingerTimer);
    this.stream.removeListener('data', this.onData);
    this.stream.removeListener('end', this.onEnd);
    this.stream.removeListener('close', this.onClose);
    this.stream.removeListener('error', this.onError);
    this.stream.removeListener('drain', this.onDrain);
  }
}

/**
 * Runs the Noise_XXpsk0_25519_ChaChaPoly_SHA256 handshake over `stream` and resolves to the
 * encrypted channel. On any failure the stream is destroyed and every listener removed. A
 * responder that cannot open message 1 (wrong length, network key or garbage; a stale timestamp; a
 * replay) writes nothing, does no DH, discards what it reads, and closes only at the handshake
 * deadline, the peer's close or `signal`, then rejects with ERR_HANDSHAKE: every refusal looks alike.
 * @throws TypeError / RangeError for bad options (the stream is destroyed too);
 *   HandshakeError (ERR_HANDSHAKE: message 1 refused, bad identity payload, wrong lengths, EOF);
 *   FrameTooLargeError (message 2 or 3 over 1 KiB); PeerMismatchError (ERR_PEER_MISMATCH);
 *   TimeoutError (ERR_TIMEOUT: handshake deadline); AbortError (ERR_ABORTED: `signal`).
 */
export async function secureChannel(stream: Duplex, options: SecureChannelOptions): Promise<SecureChannel> {
  let limits: ChannelLimits;
  try {
    limits = resolveOptions(stream, options);
  } catch (error) {
    if (typeof (stream as { destroy?: unknown })?.destroy === 'function') stream.destroy();
    throw error;
  }
  const outcome = await performHandshake(stream, {
    identity: options.identity,
    psk: derivePsk(options.networkKey),
    initiator: options.initiator,
    expectedPeer: options.expectedPeer,
    signal: options.signal,
    timeoutMs: limits.handshakeTimeoutMs,
    freshnessMs: limits.handshakeFreshnessMs,
    testing: options.testing,
  });
  options.testing?.onTransport?.(outcome.send, outcome.receive);
  return new SecureChannel(stream, outcome, limits, options.allowHalfOpen ?? false, options.testing);
}
