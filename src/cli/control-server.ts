// The daemon's end of the control socket: a Unix socket (mode 0600) speaking newline-delimited
// JSON, with bounded lines, connections and output; nothing a client sends can crash the daemon.
import { chmodSync, lstatSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { SignetError, messageOf } from '../errors.ts';
import {
  MAX_CONTROL_CONNECTIONS, MAX_CONTROL_LINE_BYTES, MAX_CONTROL_OUTPUT_BYTES, MAX_SOCKET_PATH_BYTES, OPS, shown,
  type ControlRequest, type ControlResponse, type WireChange, type WireError,
} from './control-protocol.ts';
import { CliError, UsageError } from './io.ts';

/** What the server runs for each request. A handler throws to answer an error (UsageError,
 *  TypeError and RangeError travel as ERR_USAGE, a SignetError with its code). */
export interface ControlHandlers {
  /** Every op but `watch`: resolves with the answer's `result`. */
  request(request: ControlRequest): Promise<unknown>;
  /** `watch`: starts sending `emit(change)` and resolves with the answer's `result` and a stop function. */
  watch(request: ControlRequest, emit: (change: WireChange) => void): Promise<{ result: unknown; stop: () => void }>;
}

/** Limits of a {@link ControlServer}; the defaults are the named constants. */
export interface ControlServerLimits {
  maxLineBytes?: number;
  maxConnections?: number;
  maxOutputBytes?: number;
}

/** Turns what a handler threw into a wire error. */
export function wireError(err: unknown): WireError {
  if (err instanceof UsageError || err instanceof TypeError || err instanceof RangeError) return { code: 'ERR_USAGE', message: err.message };
  if (err instanceof SignetError) return { code: err.code, message: err.message };
  return { code: 'ERR_INTERNAL', message: messageOf(err) };
}

const line = (response: ControlResponse): string => `${JSON.stringify(response)}\n`;

/** An echoable request id: a safe integer or a short string; anything else is answered with null. */
function requestId(value: unknown): number | string | null {
  if (typeof value === 'number' && Number.isSafeInteger(value)) return value;
  if (typeof value === 'string' && value.length <= 64) return value;
  return null;
}

/** Reads a request line: a JSON object with a known `op`. @throws UsageError saying what is wrong. */
export function parseRequest(text: string): ControlRequest {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new UsageError('a request is one JSON object per line');
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new UsageError('a request is one JSON object per line');
  const op = (parsed as { op?: unknown }).op;
  if (typeof op !== 'string' || !(OPS as readonly string[]).includes(op)) throw new UsageError(`"op" expected one of ${OPS.join(', ')}`);
  return parsed as ControlRequest;
}

/**
 * The control socket of a running daemon. {@link ControlServer.listen} binds it; {@link close}
 * ends every connection (a watch gets an `end` event first) and removes the socket file.
 */
export class ControlServer {
  private readonly sockets = new Set<Socket>();
  private readonly stops = new Set<() => void>();
  private closing = false;

  private constructor(
    private readonly server: Server, readonly path: string, private readonly handlers: ControlHandlers,
    private readonly limits: Required<ControlServerLimits>,
  ) {
    server.on('connection', (socket) => this.connection(socket));
    server.on('error', () => {}); // an accept failure (EMFILE...) drops that client, never the daemon
  }

  /**
   * Binds the socket at `path` with mode 0600, replacing a stale socket file left by a daemon
   * that died (the caller holds the data directory's lock, so no live daemon owns it).
   * @throws CliError ERR_CONTROL_SOCKET if the path is too long, is not a socket, or cannot be bound.
   */
  static async listen(path: string, handlers: ControlHandlers, limits: ControlServerLimits = {}): Promise<ControlServer> {
    if (Buffer.byteLength(path) > MAX_SOCKET_PATH_BYTES) {
      throw new CliError('ERR_CONTROL_SOCKET', `the control socket path ${path} is longer than the ${MAX_SOCKET_PATH_BYTES} bytes a Unix socket path may have: use a shorter --data path`);
    }
    try {
      if (!lstatSync(path).isSocket()) throw new CliError('ERR_CONTROL_SOCKET', `${shown(path)} exists and is not a socket: move it away; signet keeps its control socket there`);
      rmSync(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    const server = createServer({ allowHalfOpen: true });
    // Created 0600 (umask), not chmod'ed after: nobody else may connect even for an instant.
    const umask = process.umask(0o177);
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(path, () => {
          server.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      throw new CliError('ERR_CONTROL_SOCKET', `cannot open the control socket ${shown(path)}: ${(err as Error).message}`, { cause: err });
    } finally {
      process.umask(umask);
    }
    chmodSync(path, 0o600);
    return new ControlServer(server, path, handlers, {
      maxLineBytes: limits.maxLineBytes ?? MAX_CONTROL_LINE_BYTES,
      maxConnections: limits.maxConnections ?? MAX_CONTROL_CONNECTIONS,
      maxOutputBytes: limits.maxOutputBytes ?? MAX_CONTROL_OUTPUT_BYTES,
    });
  }

  /** Connections open now. */
  get connections(): number {
    return this.sockets.size;
  }

  /** Stops accepting, ends watches with `{"event": "end"}`, closes every connection, removes the socket. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    for (const stop of this.stops) stop();
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const socket of this.sockets) socket.destroySoon();
    const timer = setTimeout(() => this.sockets.forEach((s) => s.destroy()), 1000);
    await closed;
    clearTimeout(timer);
    rmSync(this.path, { force: true });
  }

  private connection(socket: Socket): void {
    socket.on('error', () => {}); // a client that resets is its own problem
    if (this.closing || this.sockets.size >= this.limits.maxConnections) {
      const error = this.closing ? { code: 'ERR_STOPPING', message: 'the node is stopping' } : { code: 'ERR_BUSY', message: `the node has ${this.limits.maxConnections} control connections open already; try again later` };
      socket.end(line({ id: null, ok: false, error }), () => socket.destroy());
      return;
    }
    this.sockets.add(socket);
    const queue: string[] = [];
    let partial: Buffer[] = [];
    let partialBytes = 0;
    let pumping = false;
    let ended = false;
    let stopWatch: (() => void) | null = null;

    const write = (response: ControlResponse): void => {
      if (!socket.writable) return;
      socket.write(line(response));
    };
    const finish = (): void => {
      if (stopWatch) this.stops.delete(stopWatch);
      stopWatch?.();
      stopWatch = null;
      this.sockets.delete(socket);
    };
    socket.once('close', finish);

    const tooLong = (): void => {
      queue.length = 0;
      partial = [];
      write({ id: null, ok: false, error: { code: 'ERR_LINE_TOO_LONG', message: `a request line may have at most ${this.limits.maxLineBytes} bytes` } });
      socket.end(() => socket.destroy());
      socket.removeAllListeners('data');
    };

    const pump = async (): Promise<void> => {
      if (pumping) return;
      pumping = true;
      try {
        while (queue.length > 0 && !socket.destroyed && !stopWatch) {
          await this.answer(queue.shift()!, write, (stop) => {
            stopWatch = stop;
            this.stops.add(stop);
          }, socket);
          // Backpressure: a client that does not read its answers is not read either.
          if (socket.writableLength > this.limits.maxOutputBytes) await new Promise<void>((resolve) => {
            socket.once('drain', resolve);
            socket.once('close', resolve);
          });
        }
      } finally {
        pumping = false;
      }
      if (stopWatch) {
        queue.length = 0; // a watch connection carries change events only; anything else is ignored
        socket.resume();
      } else if (ended) socket.end();
      else socket.resume();
    };

    socket.on('data', (chunk: Buffer) => {
      if (stopWatch) return;
      let start = 0;
      for (let nl = chunk.indexOf(10); nl !== -1; nl = chunk.indexOf(10, start)) {
        const part = chunk.subarray(start, nl);
        if (partialBytes + part.length > this.limits.maxLineBytes) return tooLong();
        queue.push(Buffer.concat([...partial, part]).toString('utf8'));
        partial = [];
        partialBytes = 0;
        start = nl + 1;
      }
      const rest = chunk.subarray(start);
      if (partialBytes + rest.length > this.limits.maxLineBytes) return tooLong();
      if (rest.length > 0) {
        partial.push(rest);
        partialBytes += rest.length;
      }
      if (queue.length > 0) {
        socket.pause(); // at most one chunk of requests waits here
        void pump();
      }
    });
    socket.on('end', () => {
      ended = true;
      if (stopWatch) socket.end();
      else if (!pumping) socket.end();
    });
  }

  /** Runs one request line and writes its answer (for a watch: the answer, then the changes). */
  private async answer(text: string, write: (r: ControlResponse) => void, watching: (stop: () => void) => void, socket: Socket): Promise<void> {
    let id: number | string | null = null;
    try {
      if (text.trim() === '') return;
      const request = parseRequest(text);
      id = requestId(request.id);
      if (this.closing) throw new CliError('ERR_STOPPING', 'the node is stopping');
      if (request.op !== 'watch') {
        write({ id, ok: true, result: await this.handlers.request(request) });
        return;
      }
      const watchId = id;
      let stopped = false;
      // Changes that come between the handler's start and its answer wait for the answer.
      let early: WireChange[] | null = [];
      let stop = (): void => {
        stopped = true;
      };
      const emit = (change: WireChange): void => {
        if (stopped) return;
        if (early) return void early.push(change);
        if (socket.writableLength > this.limits.maxOutputBytes) {
          stop();
          write({ id: watchId, event: 'end', error: { code: 'ERR_SLOW_CONSUMER', message: `the watch fell ${this.limits.maxOutputBytes} bytes behind and was ended` } });
          socket.end(() => socket.destroy());
          return;
        }
        write({ id: watchId, event: 'change', change });
      };
      const started = await this.handlers.watch(request, emit);
      stop = () => {
        if (stopped) return;
        stopped = true;
        started.stop();
        if (this.closing) write({ id: watchId, event: 'end', error: { code: 'ERR_STOPPING', message: 'the node is stopping' } });
      };
      if (socket.destroyed || this.closing) return stop();
      write({ id, ok: true, result: started.result });
      const waiting = early;
      early = null;
      waiting.forEach(emit);
      watching(stop);
    } catch (err) {
      write({ id, ok: false, error: wireError(err) });
    }
  }
}
