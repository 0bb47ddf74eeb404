// dial(): the one way to open a secure channel to a listener. It owns the socket until the
// handshake is done, one deadline over connect and handshake, the caller's signal, and teardown.
import { Duplex } from 'node:stream';
import { AbortError, TimeoutError } from '../errors.ts';
import type { Identity } from '../identity/identity.ts';
import type { NodeId } from '../identity/node-id.ts';
import { assertInteger, assertString } from '../util/bytes.ts';
import { resolveOptions, type ChannelLimits } from './options.ts';
import { secureChannel, type SecureChannel } from './secure-channel.ts';
import { assertTransport, tcpTransport, type Transport, type TransportStream } from './transport.ts';

/** Options of {@link dial}. */
export interface DialOptions {
  /** This node's identity, proved to the listener. */
  identity: Identity;
  /** 32-byte network key; it must be the listener's. */
  networkKey: Uint8Array;
  host: string;
  port: number;
  /** Node id the listener must prove, else ERR_PEER_MISMATCH (our identity is then never sent). */
  expectedPeer?: NodeId;
  /** Cancels the dial (ERR_ABORTED), combined with the deadline; it does not close the channel once dialed. */
  signal?: AbortSignal;
  /** Overrides of {@link ChannelLimits}; `handshakeTimeoutMs` (default 10 s) is the deadline of connect and handshake together. */
  limits?: Partial<ChannelLimits>;
  /** What to connect over. Default {@link tcpTransport}. */
  transport?: Transport;
}

const ignore = (): void => {};

/**
 * Connects to `host:port` and runs the initiator's handshake. Connect and handshake share one
 * deadline, `limits.handshakeTimeoutMs`, combined with (never replaced by) `signal`; on any failure
 * the socket is destroyed.
 *
 * The returned channel already has an `'error'` listener, so piping it without one
 * (`stream.pipe(channel).pipe(stream)`) cannot crash the process when the peer is killed or the
 * connection reset. Observe the end with `'close'`: `channel.errored` is then the reason
 * (`code` ERR_TRUNCATED, ERR_DECRYPT, ERR_TIMEOUT, ECONNRESET...), or null after a clean close.
 * @throws TypeError / RangeError for bad options; ConnectError (ERR_CONNECT: refused, unreachable,
 *   unknown host; `cause` is the system error); TimeoutError (ERR_TIMEOUT: the deadline passed);
 *   AbortError (ERR_ABORTED: `signal`); HandshakeError (ERR_HANDSHAKE: wrong network key showing as
 *   a closed connection, bad identity payload); PeerMismatchError (ERR_PEER_MISMATCH);
 *   FrameTooLargeError (ERR_FRAME_TOO_LARGE).
 */
export async function dial(options: DialOptions): Promise<SecureChannel> {
  if (typeof options !== 'object' || options === null) throw new TypeError('"options" expected an object');
  const { identity, networkKey, host, port, expectedPeer, signal } = options;
  // Checked by the function secureChannel uses (the Duplex only satisfies its stream check).
  const limits = resolveOptions(new Duplex(), { identity, networkKey, initiator: true, expectedPeer, signal, limits: options.limits });
  assertString(host, 'host', 1024);
  assertInteger(port, 'port', 1, 65535);
  if (options.transport !== undefined) assertTransport(options.transport, 'transport');
  if (signal?.aborted) throw new AbortError('dial aborted by the caller', { cause: signal.reason });

  const where = `${host}:${port}`;
  const deadline = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    deadline.abort();
  }, limits.handshakeTimeoutMs);
  const onAbort = (): void => deadline.abort(signal?.reason);
  signal?.addEventListener('abort', onAbort, { once: true });
  const transport = options.transport ?? tcpTransport;
  let socket: TransportStream | undefined;
  try {
    socket = await transport.connect(host, port, deadline.signal);
    // The handshake and then the channel listen to the stream; this keeps an error outside them from escaping.
    socket.on('error', ignore);
    const channel = await secureChannel(socket, {
      identity, networkKey, initiator: true, expectedPeer, limits: options.limits, signal: deadline.signal,
    });
    channel.on('error', ignore); // the reason stays in channel.errored, seen on 'close'
    return channel;
  } catch (error) {
    socket?.destroy();
    if (timedOut) throw new TimeoutError(`dial to ${where} did not complete within ${limits.handshakeTimeoutMs} ms`, { cause: error });
    if (signal?.aborted && !(error instanceof AbortError)) throw new AbortError(`dial to ${where} aborted by the caller`, { cause: error });
    throw error;
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
  }
}
