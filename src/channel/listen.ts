// listen(): the one way to accept secure channels. It owns the TCP server, every socket, the
// handshake limiter slot, the handshake deadline and teardown, and reports every failure as an event.
import { EventEmitter, setMaxListeners } from 'node:events';
import type { AddressInfo } from 'node:net';
import { Duplex } from 'node:stream';
import { AbortError, BannedError, HandshakeError, HandshakeLimitError, ListenError, SignetError } from '../errors.ts';
import type { Identity } from '../identity/identity.ts';
import { assertInteger, assertString } from '../util/bytes.ts';
import { canonicalIp } from '../util/address.ts';
import { HandshakeLimiter } from './handshake-limiter.ts';
import { assertTransport, tcpTransport, type Transport, type TransportServer, type TransportStream } from './transport.ts';
import { resolveOptions, type ChannelLimits } from './options.ts';
import { secureChannel, type SecureChannel } from './secure-channel.ts';

/** How long {@link SecureListener.close} waits for open channels to exchange close frames before destroying them. */
export const CLOSE_TIMEOUT_MS = 2_000;

/** Options of {@link listen}. */
export interface ListenOptions {
  /** This node's identity, proved to every peer. */
  identity: Identity;
  /** 32-byte network key; a connection without it is refused silently (see {@link secureChannel}). */
  networkKey: Uint8Array;
  /** Interface to bind. Default: every interface, as `net.Server.listen`. */
  host?: string;
  /** TCP port. Default 0: one the system picks (read it from `address().port`). */
  port?: number;
  /** Caps handshakes in progress per address and in total. Default: a new {@link HandshakeLimiter}. */
  limiter?: HandshakeLimiter;
  /** Overrides of {@link ChannelLimits} for every accepted channel (the handshake deadline among them). */
  limits?: Partial<ChannelLimits>;
  /** Aborting it before `listen()` resolves rejects with ERR_ABORTED; afterwards it calls `close()`. */
  signal?: AbortSignal;
  /** Added as a `'connection'` listener before the first connection can arrive. */
  onConnection?: (channel: SecureChannel) => void;
  /** Called with each connection's remote IP before anything is read. False (a banned address):
   *  the connection is held unread until the handshake deadline, then closed and reported as
   *  refused ERR_BANNED, exactly as a connection without the network key would see it (no
   *  reply, no early close to tell it apart). Default: every address is admitted. */
  admit?: (address: string) => boolean;
  /** What to accept connections over. Default {@link tcpTransport}. */
  transport?: Transport;
}

/** A connection that never became a channel. */
export interface Refusal {
  /** ERR_HANDSHAKE (anything a prober or a wrong network key sends, a reset, an EOF),
   *  ERR_HANDSHAKE_ABANDONED (a dialer holding the network key hung up after message 2: it
   *  expected another node id, or gave up), ERR_TIMEOUT,
   *  ERR_FRAME_TOO_LARGE, ERR_HANDSHAKE_LIMIT, ERR_BANNED (`admit` said no), ERR_ABORTED (the listener
   *  closed) or ERR_LISTEN (accept failed). */
  code: string;
  /** The remote address (canonical: IPv4-mapped IPv6 as IPv4) and port, when the socket still had them. */
  address: string | undefined;
  port: number | undefined;
  error: SignetError;
}

/** An accepted channel that closed. */
export interface Disconnect {
  channel: SecureChannel;
  /** The error the channel was destroyed with (`channel.errored`): ERR_TRUNCATED (peer killed, cut),
   *  ERR_DECRYPT, ERR_TIMEOUT (idle), a socket code such as ECONNRESET; null after a clean close. */
  error: Error | null;
  /** `error.code` (or `error.name` if it has none); null after a clean close. */
  code: string | null;
}

/** Events of {@link SecureListener}. There is no `'error'` event: nothing it emits can crash a process. */
export interface SecureListenerEvents {
  /** A peer completed the handshake; `channel.remote.id` is the node id it proved. */
  connection: [channel: SecureChannel];
  /** A connection was closed without becoming a channel; every one is reported once. */
  refused: [refusal: Refusal];
  /** An accepted channel closed, cleanly or not; every one is reported once. */
  disconnect: [disconnect: Disconnect];
  /** The server and every socket are closed. */
  close: [];
}

/** Options of {@link SecureListener.close}. */
export interface CloseOptions {
  /** Stops waiting for close frames: whatever is still open is destroyed now. */
  signal?: AbortSignal;
  /** Grace for close frames before open channels are destroyed. Default CLOSE_TIMEOUT_MS (2 s). */
  timeoutMs?: number;
}

const ignore = (): void => {};
const codeOf = (error: Error): string => {
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' ? code : error.name;
};

/**
 * A TCP listener that accepts only secure channels. Created by {@link listen}. Every socket and
 * channel it owns has an `'error'` listener: a failed handshake is a `'refused'` event, a channel
 * that dies later (truncation, reset, decrypt failure, idle timeout) a `'disconnect'` event with
 * its code, and nothing escapes as an unhandled rejection or `'error'`.
 */
export class SecureListener extends EventEmitter<SecureListenerEvents> {
  private readonly server: TransportServer;
  private readonly options: ListenOptions;
  private readonly limits: Partial<ChannelLimits> | undefined;
  private readonly limiter: HandshakeLimiter;
  /** Aborted by close(): cancels every handshake in progress. */
  private readonly closing = new AbortController();
  private readonly sockets = new Set<TransportStream>();
  private readonly channels = new Set<SecureChannel>();
  private bound: AddressInfo | undefined;
  private closed: Promise<void> | undefined;
  private force: () => void = ignore;
  private readonly handshakeTimeoutMs: number;

  /** @internal Use {@link listen}. */
  constructor(options: ListenOptions) {
    super();
    this.options = options;
    this.limits = options.limits;
    this.limiter = options.limiter ?? new HandshakeLimiter();
    setMaxListeners(0, this.closing.signal); // one listener per handshake in progress (bounded by the limiter)
    this.handshakeTimeoutMs = resolveOptions(new Duplex(), { ...options, initiator: false }).handshakeTimeoutMs;
    if (options.onConnection) this.on('connection', options.onConnection);
    this.server = (options.transport ?? tcpTransport).createServer((socket) => this.accept(socket));
  }

  /** @internal Binds the server. @throws ListenError, AbortError. */
  async start(): Promise<void> {
    const { signal } = this.options;
    await new Promise<void>((resolve, reject) => {
      const done = (error?: Error): void => {
        this.server.off('listening', onListening);
        this.server.off('error', onError);
        signal?.removeEventListener('abort', onAbort);
        if (error) reject(error);
        else resolve();
      };
      const onListening = (): void => done();
      const onError = (error: Error): void => done(new ListenError(`cannot listen: ${codeOf(error)}`, { cause: error }));
      const onAbort = (): void => {
        this.server.close();
        done(new AbortError('listen aborted by the caller', { cause: signal?.reason }));
      };
      this.server.on('listening', onListening);
      this.server.on('error', onError);
      signal?.addEventListener('abort', onAbort);
      this.server.listen(this.options.port ?? 0, this.options.host);
    });
    this.bound = this.server.address() as AddressInfo;
    // Once listening, the server's errors are failed accepts (EMFILE, say): reported, never thrown.
    this.server.on('error', (error) => this.refuse(new ListenError(`accept failed: ${codeOf(error)}`, { cause: error }), undefined));
    if (signal) {
      const onAbort = (): void => void this.close();
      signal.addEventListener('abort', onAbort, { once: true });
      this.once('close', () => signal.removeEventListener('abort', onAbort));
    }
  }

  /** The address and port the server is bound to (kept after close). */
  address(): AddressInfo {
    return { ...this.bound! };
  }

  /** Sockets still open: handshakes in progress, channels, channels closing. */
  get connections(): number {
    return this.sockets.size;
  }

  private accept(socket: TransportStream): void {
    // The handshake and the channel listen to the socket while they own it; this listener keeps
    // an error after they let go (or before they start) from escaping.
    socket.on('error', ignore);
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    // Canonical: an IPv4 client of a dual-stack server (::ffff:a.b.c.d) counts as a.b.c.d.
    const address = socket.remoteAddress === undefined ? undefined : canonicalIp(socket.remoteAddress);
    const port = socket.remotePort;
    if (this.closing.signal.aborted || address === undefined) {
      socket.destroy();
      const error = address === undefined
        ? new HandshakeError('the connection closed before it could be read')
        : new AbortError('the listener is closing');
      return this.refuse(error, socket, address, port);
    }
    const release = this.limiter.tryAcquire(address);
    if (!release) {
      socket.destroy(); // closed unread: a flood costs no handshake state
      return this.refuse(new HandshakeLimitError(`too many handshakes in progress (from ${address} or in total)`), socket, address, port);
    }
    if (this.options.admit && !this.admitted(address)) return this.hold(socket, release, address, port);
    const { identity, networkKey } = this.options;
    secureChannel(socket, { identity, networkKey, initiator: false, limits: this.limits, signal: this.closing.signal }).then(
      (channel) => {
        release();
        this.established(channel);
      },
      (error: unknown) => {
        release(); // secureChannel destroyed the socket
        const coded = error instanceof SignetError ? error : new HandshakeError('handshake failed', { cause: error });
        this.refuse(coded, socket, address, port);
      },
    );
  }

  private admitted(address: string): boolean {
    try {
      return this.options.admit!(address) !== false;
    } catch (error) {
      process.nextTick(() => {
        throw error; // a programmer's mistake in admit(): surfaced, and the connection is not admitted
      });
      return false;
    }
  }

  /** Keeps a connection from a refused address open and unread until the handshake deadline. */
  private hold(socket: TransportStream, release: () => void, address: string, port: number | undefined): void {
    socket.pause();
    const done = (): void => {
      clearTimeout(timer);
      this.closing.signal.removeEventListener('abort', done);
      release();
      this.refuse(new BannedError(`connection from banned address ${address} closed unread`), socket, address, port);
    };
    const timer = setTimeout(done, this.handshakeTimeoutMs);
    socket.once('close', done);
    this.closing.signal.addEventListener('abort', done, { once: true });
  }

  private refuse(error: SignetError, socket: TransportStream | undefined, address?: string, port?: number): void {
    socket?.destroy();
    this.emitSafely('refused', [{ code: error.code, address, port, error }]);
  }

  private established(channel: SecureChannel): void {
    this.channels.add(channel);
    channel.on('error', ignore); // the reason stays in channel.errored and goes out with 'disconnect'
    channel.once('close', () => {
      this.channels.delete(channel);
      const error = channel.errored;
      this.emitSafely('disconnect', [{ channel, error, code: error ? codeOf(error) : null }]);
    });
    if (this.closing.signal.aborted) return void channel.destroy();
    this.emitSafely('connection', [channel], channel);
  }

  /**
   * Emits outside the promise chain that produced the event: a listener that throws is a
   * programmer's mistake and surfaces as an uncaught exception, as it would from a net.Server,
   * not as an unhandled rejection. The channel it was handed is destroyed first, so it cannot leak.
   */
  private emitSafely<K extends keyof SecureListenerEvents>(event: K, args: SecureListenerEvents[K], owned?: SecureChannel): void {
    try {
      (this.emit as (e: string, ...a: unknown[]) => boolean)(event, ...args);
    } catch (error) {
      owned?.destroy();
      process.nextTick(() => {
        throw error;
      });
    }
  }

  /**
   * Stops accepting, cancels handshakes in progress (each reported as refused, ERR_ABORTED), ends
   * every open channel with its authenticated close frame, destroys whatever is still open after
   * `timeoutMs` or when `signal` aborts, and resolves once the server and every socket are closed.
   * Calling it again returns the same promise (a later `signal` can still cut the wait short).
   * @throws TypeError / RangeError for bad options (never rejects otherwise).
   */
  close(options: CloseOptions = {}): Promise<void> {
    if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) throw new TypeError('"signal" expected an AbortSignal');
    const timeoutMs = options.timeoutMs ?? CLOSE_TIMEOUT_MS;
    assertInteger(timeoutMs, 'timeoutMs', 0, 2 ** 31 - 1);
    if (options.signal?.aborted) queueMicrotask(() => this.force());
    else options.signal?.addEventListener('abort', () => this.force(), { once: true });
    this.closed ??= this.shutdown(timeoutMs);
    return this.closed;
  }

  private async shutdown(timeoutMs: number): Promise<void> {
    this.closing.abort();
    const serverClosed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const channel of this.channels) channel.end();
    const socketsClosed = Promise.all([...this.sockets].map((s) => new Promise((r) => s.once('close', r))));
    const timer = setTimeout(() => this.force(), timeoutMs);
    this.force = () => {
      clearTimeout(timer);
      for (const channel of this.channels) channel.destroy();
      for (const socket of this.sockets) socket.destroy(); // a cleanly closed channel's socket may still linger
    };
    await Promise.all([serverClosed, socketsClosed]);
    clearTimeout(timer);
    this.force = ignore;
    this.emitSafely('close', []);
  }
}

/**
 * Listens for secure channels: binds a TCP server and runs the responder's handshake on every
 * connection, behind `limiter` and the handshake deadline (`limits.handshakeTimeoutMs`). Resolves
 * once listening.
 *
 * ```ts
 * const listener = await listen({ identity, networkKey, port: 7420, onConnection(channel) {
 *   const stream = model.createStream({ expectedPeer: channel.remote.id });
 *   stream.pipe(channel).pipe(stream);
 *   channel.on('close', () => stream.destroy()); // a dead peer's stream goes with its channel
 *   stream.on('cut', () => channel.destroy()); // a peer that breaks the protocol loses its channel
 * } });
 * ```
 * @throws TypeError / RangeError for bad options; ListenError (ERR_LISTEN, `cause` EADDRINUSE or
 *   EACCES) if the port cannot be bound; AbortError (ERR_ABORTED) if `signal` aborts first.
 */
export async function listen(options: ListenOptions): Promise<SecureListener> {
  if (typeof options !== 'object' || options === null) throw new TypeError('"options" expected an object');
  // The channel options are checked here, once, by the same function secureChannel uses (the
  // Duplex only satisfies its stream check), so a mistake throws now, not on the first connection.
  resolveOptions(new Duplex(), { identity: options.identity, networkKey: options.networkKey, initiator: false, limits: options.limits, signal: options.signal });
  if (options.host !== undefined) assertString(options.host, 'host', 1024);
  if (options.port !== undefined) assertInteger(options.port, 'port', 0, 65535);
  if (options.limiter !== undefined && !(options.limiter instanceof HandshakeLimiter)) throw new TypeError('"limiter" expected a HandshakeLimiter');
  if (options.onConnection !== undefined && typeof options.onConnection !== 'function') throw new TypeError('"onConnection" expected a function');
  if (options.admit !== undefined && typeof options.admit !== 'function') throw new TypeError('"admit" expected a function');
  if (options.transport !== undefined) assertTransport(options.transport, 'transport');
  if (options.signal?.aborted) throw new AbortError('listen aborted by the caller', { cause: options.signal.reason });
  const listener = new SecureListener(options);
  await listener.start();
  return listener;
}
