// A transport over Unix-domain sockets: a mesh of processes on one machine without TCP. Each
// `host:port` names a socket file in one directory, so the mesh's address model stays whole.
import { EventEmitter } from 'node:events';
import { lstatSync, unlinkSync } from 'node:fs';
import { createServer, Socket, type AddressInfo, type Server } from 'node:net';
import { isAbsolute, join } from 'node:path';
import { ConnectError } from '../errors.ts';
import { connectSocket, type Transport, type TransportServer, type TransportStream } from './transport.ts';

/** The `remoteAddress` of every connection a Unix-socket server accepts: a Unix socket does not
 *  say who dialed, so per-address limits and bans count every local peer as this one address. */
export const UNIX_REMOTE_ADDRESS = 'unix';

/** Longest socket path in bytes: `sun_path` holds 108 bytes on Linux, 104 on macOS and the BSDs,
 *  with the terminating NUL. A longer path is refused (the kernel would silently cut it). */
export const MAX_UNIX_SOCKET_PATH_BYTES = process.platform === 'linux' ? 107 : 103;

/** Random ports tried when listening on port 0 before giving up (EADDRINUSE). */
const FREE_PORT_ATTEMPTS = 64;

/** A host as it may appear in a socket file name: ASCII letters, digits, `.`, `-`, `_` and `:`
 *  (names, IPv4 and IPv6 addresses), never a `/`, so an address can never leave the directory. */
const HOST = /^[A-Za-z0-9._:-]{1,253}$/;

/** Options of {@link unixSocketTransport}. */
export interface UnixSocketTransportOptions {
  /** The directory that holds the sockets; an absolute path to a directory that exists and that
   *  only the mesh's processes may write (whoever can create files in it can listen as anyone). */
  directory: string;
}

/**
 * A transport over Unix-domain sockets, for a mesh of processes on one machine (containers
 * sharing a volume, a supervisor's workers, tests without ports). Addresses keep the mesh's
 * `host:port` form: the node that listens on `alpha:7420` binds the socket file
 * `<directory>/alpha_7420.sock`, and a peer that dials `alpha:7420` connects to that file. Port 0
 * picks a free one (`node.address()` tells it).
 *
 * Why not the socket path itself as the address: seeds, membership records, backoff and bans all
 * speak `host:port`, and a member's advertised address is hostile input. Confined to one
 * directory, a hostile record can at worst name another mesh socket there, never an arbitrary
 * socket on the machine (a container runtime's, a database's) for every node to dial.
 *
 * Every accepted connection reports `remoteAddress` {@link UNIX_REMOTE_ADDRESS}: one address for
 * all local peers, as loopback TCP has. For a mesh of more than a few nodes, raise the Node's
 * `maxConnectionsPerAddress` (default 4) and its handshake limiter's per-address cap.
 *
 * ```ts
 * const transport = unixSocketTransport({ directory: '/run/signet' });
 * const a = new Node({ identity, networkKey, transport, listen: 'alpha:7420' });
 * const b = new Node({ identity: other, networkKey, transport, listen: 'beta:7420', seeds: ['alpha:7420'] });
 * ```
 * A socket file left by a process that was killed is removed when a node listens on its address
 * again and nothing answers there; any other file in the way is an error (EADDRINUSE).
 * @throws TypeError / RangeError unless `directory` is an absolute path.
 */
export function unixSocketTransport(options: UnixSocketTransportOptions): Transport {
  if (typeof options !== 'object' || options === null) throw new TypeError('"options" expected an object');
  const { directory } = options;
  if (typeof directory !== 'string') throw new TypeError(`"directory" expected a string, got ${typeof directory}`);
  if (!isAbsolute(directory) || directory.includes('\0')) throw new RangeError(`"directory" expected an absolute path, got ${JSON.stringify(directory.slice(0, 200))}`);
  return {
    createServer: (onConnection) => new UnixServer(directory, onConnection),
    connect: (host, port, signal) => connectUnix(directory, host, port, signal),
  };
}

/** The socket file of `host:port` in `directory`, or a reason it has none. */
export function unixSocketPath(directory: string, host: string, port: number): { path: string } | { error: string } {
  if (typeof host !== 'string' || !HOST.test(host)) return { error: `not a host of the Unix-socket transport: ${JSON.stringify(String(host).slice(0, 80))}` };
  if (!Number.isInteger(port) || port < 0 || port > 65535) return { error: `not a port: ${String(port).slice(0, 20)}` };
  const path = join(directory, `${host}_${port}.sock`);
  if (Buffer.byteLength(path) > MAX_UNIX_SOCKET_PATH_BYTES) return { error: `socket path longer than ${MAX_UNIX_SOCKET_PATH_BYTES} bytes: ${path.slice(0, 200)}` };
  return { path };
}

function connectUnix(directory: string, host: string, port: number, signal: AbortSignal): Promise<TransportStream> {
  const where = `${String(host).slice(0, 80)}:${port}`;
  const target = port === 0 ? { error: 'port 0 cannot be dialed' } : unixSocketPath(directory, host, port);
  if ('error' in target) return Promise.reject(new ConnectError(`cannot connect to ${where}: ${target.error}`));
  return connectSocket(where, signal, (socket) => socket.connect({ path: target.path }));
}

/** A `net.Server` bound to `host:port`'s socket file, as a {@link TransportServer}. */
class UnixServer extends EventEmitter implements TransportServer {
  private readonly server: Server;
  private bound: AddressInfo | null = null;
  private closed = false;
  /** The bind in progress (settles, never rejects): close() waits for it. */
  private binding: Promise<void> | null = null;

  constructor(private readonly directory: string, onConnection: (stream: TransportStream) => void) {
    super();
    this.server = createServer((socket) => {
      Object.defineProperty(socket, 'remoteAddress', { value: UNIX_REMOTE_ADDRESS, configurable: true });
      onConnection(socket);
    });
  }

  listen(port: number, host = 'localhost'): this {
    this.binding = this.bind(host, port).then(
      (bound) => {
        if (this.closed) return; // close() came after the bind: it closes the server
        this.bound = bound;
        // Once listening, the server's errors are failed accepts: passed on.
        this.server.on('error', (error) => this.emit('error', error));
        this.emit('listening');
      },
      (error: Error) => {
        if (!this.closed) this.emit('error', error); // closed first: nobody waits for it any more
      },
    );
    return this;
  }

  address(): AddressInfo | null {
    return this.bound && { ...this.bound };
  }

  /** Stops accepting and removes the socket file; `callback` runs once it is gone (after a bind
   *  in progress has settled, so that no socket file outlives a close). */
  close(callback?: (error?: Error) => void): this {
    this.closed = true;
    this.bound = null;
    const finish = (): void => {
      if (this.server.listening) this.server.close((error) => callback?.(error));
      else callback?.();
    };
    if (this.binding) void this.binding.then(finish);
    else queueMicrotask(finish);
    return this;
  }

  /** Binds the socket of `host:port` (a free port if 0), clearing a dead process's socket file once. */
  private async bind(host: string, port: number): Promise<AddressInfo> {
    for (let attempt = 0; attempt < (port === 0 ? FREE_PORT_ATTEMPTS : 2); attempt++) {
      const chosen = port === 0 ? 1 + Math.floor(Math.random() * 65535) : port;
      const target = unixSocketPath(this.directory, host, chosen);
      if ('error' in target) throw Object.assign(new Error(target.error), { code: 'EINVAL' });
      const error = await this.tryListen(target.path);
      // close() came while binding: it closes the server (and so removes the file) once this settles
      if (this.closed) throw Object.assign(new Error('closed while binding'), { code: 'ERR_SERVER_NOT_RUNNING' });
      if (!error) return { address: host, port: chosen, family: 'unix' };
      if (error.code !== 'EADDRINUSE') throw error;
      if (port !== 0 && !(attempt === 0 && (await isStaleSocket(target.path)))) throw error;
    }
    throw Object.assign(new Error(`no free port for ${host} after ${FREE_PORT_ATTEMPTS} attempts`), { code: 'EADDRINUSE' });
  }

  private tryListen(path: string): Promise<(Error & { code?: string }) | null> {
    return new Promise((resolve) => {
      const onError = (error: Error): void => {
        this.server.off('listening', onListening);
        resolve(error);
      };
      const onListening = (): void => {
        this.server.off('error', onError);
        resolve(null);
      };
      this.server.once('error', onError);
      this.server.once('listening', onListening);
      this.server.listen(path);
    });
  }
}

/** True if `path` is a socket nobody listens on (left by a process that was killed), and was
 *  removed; false for anything else (a live socket, a regular file, nothing). */
function isStaleSocket(path: string): Promise<boolean> {
  try {
    if (!lstatSync(path).isSocket()) return Promise.resolve(false);
  } catch {
    return Promise.resolve(false);
  }
  return new Promise((resolve) => {
    const probe = new Socket();
    probe.once('connect', () => {
      probe.destroy();
      resolve(false);
    });
    probe.once('error', (error: Error & { code?: string }) => {
      probe.destroy();
      if (error.code !== 'ECONNREFUSED') return resolve(false);
      try {
        unlinkSync(path);
        resolve(true);
      } catch {
        resolve(false);
      }
    });
    probe.connect({ path });
  });
}
