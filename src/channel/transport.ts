// Transports: what the secure channel runs over. TCP by default; anything that can accept and
// open byte streams (a Unix socket, an in-memory network in tests and simulations) fits.
import { createServer, Socket, type AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { AbortError, ConnectError } from '../errors.ts';

/** A byte stream a transport yields; `remoteAddress`/`remotePort` name the other end when known
 *  (limits and bans count by `remoteAddress`). */
export type TransportStream = Duplex & { remoteAddress?: string; remotePort?: number };

/** The part of `net.Server` that {@link listen} uses. */
export interface TransportServer {
  listen(port: number, host?: string): unknown;
  address(): AddressInfo | string | null;
  close(callback?: (error?: Error) => void): unknown;
  on(event: 'listening', listener: () => void): unknown;
  on(event: 'error', listener: (error: Error) => void): unknown;
  off(event: 'listening', listener: () => void): unknown;
  off(event: 'error', listener: (error: Error) => void): unknown;
}

/** Accepts and opens byte streams. {@link listen} and {@link dial} run the secure channel over them. */
export interface Transport {
  /** A server that calls `onConnection` with each accepted stream once `listen()` was called. */
  createServer(onConnection: (stream: TransportStream) => void): TransportServer;
  /**
   * Opens a stream to `host:port`. Rejects with ConnectError when nothing answers there, or
   * AbortError when `signal` aborts first (the half-open stream is then destroyed).
   */
  connect(host: string, port: number, signal: AbortSignal): Promise<TransportStream>;
}

/** TCP: `net.createServer` and `net.Socket`. The default transport. */
export const tcpTransport: Transport = {
  createServer: (onConnection) => createServer(onConnection),
  connect: (host, port, signal) => connectSocket(`${host}:${port}`, signal, (socket) => socket.connect(port, host)),
};

/**
 * Connects a new `net.Socket` with `start` (TCP or a Unix socket path) for a
 * {@link Transport.connect}: resolves once connected; rejects with ConnectError naming `where`,
 * or AbortError when `signal` aborts first; the socket is destroyed on either.
 */
export function connectSocket(where: string, signal: AbortSignal, start: (socket: Socket) => void): Promise<TransportStream> {
  const socket = new Socket();
  return new Promise<TransportStream>((resolve, reject) => {
    const done = (error?: Error): void => {
      socket.off('connect', onConnect);
      socket.off('error', onError);
      signal.removeEventListener('abort', onAbort);
      if (!error) return resolve(socket);
      socket.destroy();
      reject(error);
    };
    const onConnect = (): void => done();
    const onError = (error: Error): void => {
      const code = (error as { code?: unknown }).code;
      done(new ConnectError(`cannot connect to ${where}: ${typeof code === 'string' ? code : error.message}`, { cause: error }));
    };
    const onAbort = (): void => done(new AbortError(`connecting to ${where} aborted`, { cause: signal.reason }));
    if (signal.aborted) return onAbort();
    socket.on('connect', onConnect);
    socket.on('error', onError);
    signal.addEventListener('abort', onAbort, { once: true });
    start(socket);
  });
}

/** Checks that `value` looks like a {@link Transport}. @throws TypeError naming `name`. */
export function assertTransport(value: unknown, name: string): asserts value is Transport {
  const t = value as Partial<Transport> | null;
  if (typeof t !== 'object' || t === null || typeof t.createServer !== 'function' || typeof t.connect !== 'function') {
    throw new TypeError(`"${name}" expected a transport ({ createServer, connect })`);
  }
}
