// An in-memory network: transports whose streams are pairs of in-process Duplexes, with
// addresses, refused connections, and links that can be cut. For tests and simulations of the
// mesh (the real Node code, without sockets); every byte still goes through the secure channel.
import { EventEmitter } from 'node:events';
import type { AddressInfo } from 'node:net';
import { Duplex } from 'node:stream';
import { AbortError, ConnectError } from '../errors.ts';
import type { Transport, TransportServer, TransportStream } from './transport.ts';

/** One end of an in-memory connection. Writes become the other end's reads, in order, on a later tick. */
class MemoryStream extends Duplex {
  remoteAddress: string;
  remotePort: number;
  /** @internal */ peer: MemoryStream | null = null;
  /** Bytes written by this end, for accounting. */
  bytesWritten = 0;

  constructor(remoteAddress: string, remotePort: number, private readonly count: (bytes: number) => void) {
    super({ allowHalfOpen: true });
    this.remoteAddress = remoteAddress;
    this.remotePort = remotePort;
  }

  override _read(): void {}

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    const peer = this.peer;
    if (!peer || peer.destroyed) return callback(Object.assign(new Error('connection reset'), { code: 'ECONNRESET' }));
    this.bytesWritten += chunk.length;
    this.count(chunk.length);
    queueMicrotask(() => {
      if (!peer.destroyed) peer.push(chunk);
      callback();
    });
  }

  override _final(callback: (error?: Error | null) => void): void {
    const peer = this.peer;
    queueMicrotask(() => {
      if (peer && !peer.destroyed) peer.push(null);
      callback();
    });
  }

  override _destroy(error: Error | null, callback: (error: Error | null) => void): void {
    const peer = this.peer;
    this.peer = null;
    // The other end sees a reset, as TCP would after a close with unread data or a kill.
    if (peer && !peer.destroyed) queueMicrotask(() => peer.destroy(Object.assign(new Error('connection reset by peer'), { code: 'ECONNRESET' })));
    callback(error);
  }
}

class MemoryServer extends EventEmitter implements TransportServer {
  private bound: AddressInfo | null = null;
  constructor(private readonly network: MemoryNetwork, private readonly host: string, readonly onConnection: (stream: TransportStream) => void) {
    super();
  }

  listen(port: number, host?: string): this {
    const address = host ?? this.host;
    queueMicrotask(() => {
      const bound = this.network.bind(this, address, port);
      if (typeof bound === 'string') {
        this.emit('error', Object.assign(new Error(bound), { code: 'EADDRINUSE' }));
        return;
      }
      this.bound = { address, port: bound, family: 'IPv4' };
      this.emit('listening');
    });
    return this;
  }

  address(): AddressInfo | null {
    return this.bound && { ...this.bound };
  }

  close(callback?: (error?: Error) => void): this {
    if (this.bound) this.network.unbind(this.bound.address, this.bound.port);
    this.bound = null;
    queueMicrotask(() => callback?.());
    return this;
  }
}

/**
 * A network of in-memory hosts. `network.transport('10.0.0.1')` is a transport whose servers
 * listen on that host and whose connections come from it. `cut(a, b)` severs every connection
 * between two hosts and refuses new ones until `heal(a, b)`.
 */
export class MemoryNetwork {
  private readonly servers = new Map<string, MemoryServer>();
  private readonly open = new Set<MemoryStream>();
  private readonly cuts = new Set<string>();
  private nextPort = 40_000;
  /** Bytes written by every stream of the network so far. */
  bytes = 0;

  /** A transport bound to `host`. */
  transport(host: string): Transport {
    return {
      createServer: (onConnection) => new MemoryServer(this, host, onConnection),
      connect: (toHost, port, signal) => this.connect(host, toHost, port, signal),
    };
  }

  /** Severs every connection between hosts `a` and `b` and refuses new ones. */
  cut(a: string, b: string): void {
    this.cuts.add(linkKey(a, b));
    for (const s of this.open) {
      const local = s.peer?.remoteAddress;
      if (local !== undefined && linkKey(local, s.remoteAddress) === linkKey(a, b)) s.destroy();
    }
  }

  /** Lets hosts `a` and `b` connect again. */
  heal(a: string, b: string): void {
    this.cuts.delete(linkKey(a, b));
  }

  /** @internal */
  bind(server: MemoryServer, host: string, port: number): number | string {
    const chosen = port === 0 ? this.nextPort++ : port;
    const key = `${host}:${chosen}`;
    if (this.servers.has(key)) return `${key} is in use`;
    this.servers.set(key, server);
    return chosen;
  }

  /** @internal */
  unbind(host: string, port: number): void {
    this.servers.delete(`${host}:${port}`);
  }

  private async connect(from: string, host: string, port: number, signal: AbortSignal): Promise<TransportStream> {
    await Promise.resolve();
    if (signal.aborted) throw new AbortError(`connecting to ${host}:${port} aborted`, { cause: signal.reason });
    const server = this.servers.get(`${host}:${port}`);
    if (!server || this.cuts.has(linkKey(from, host))) throw new ConnectError(`cannot connect to ${host}:${port}: ECONNREFUSED`);
    const localPort = this.nextPort++;
    const count = (n: number): void => {
      this.bytes += n;
    };
    const client = new MemoryStream(host, port, count);
    const accepted = new MemoryStream(from, localPort, count);
    client.peer = accepted;
    accepted.peer = client;
    for (const s of [client, accepted]) {
      this.open.add(s);
      s.once('close', () => this.open.delete(s));
    }
    server.onConnection(accepted);
    return client;
  }
}

const linkKey = (a: string, b: string): string => (a < b ? `${a}|${b}` : `${b}|${a}`);
