// A command's end of the control socket: connects to the daemon of a data directory, sends one
// request line and reads its answer (or, for watch, the stream of changes that follows).
import { connect, type Socket } from 'node:net';
import {
  CONTROL_TIMEOUT_MS, MAX_CONTROL_RESPONSE_BYTES, MAX_SOCKET_PATH_BYTES, controlSocketPath, shown,
  type ControlRequest, type ControlResponse, type WireChange, type WireError,
} from './control-protocol.ts';
import { checkDataDir } from './data-dir.ts';
import { CliError, UsageError } from './io.ts';

/** A wire error as the command throws it: ERR_USAGE exits 2, anything else 1. */
function thrown(error: WireError): Error {
  return error.code === 'ERR_USAGE' ? new UsageError(error.message) : new CliError(error.code, error.message);
}

/** An open control connection. */
export class ControlClient {
  private buffered = '';
  /** UTF-16 units buffered of an unfinished answer line (bounded by MAX_CONTROL_RESPONSE_BYTES). */
  private bufferedLength = 0;
  private nextId = 1;
  private readonly waiting = new Map<number, (r: ControlResponse) => void>();
  private onEvent: ((r: ControlResponse) => void) | null = null;
  private failure: Error | null = null;
  private readonly closed: Promise<void>;

  private constructor(private readonly socket: Socket, private readonly dataDir: string) {
    socket.setEncoding('utf8');
    socket.on('data', (text: string) => this.data(text));
    this.closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.on('error', (err) => (this.failure ??= new CliError('ERR_CONTROL', `the control connection to ${shown(dataDir)} failed: ${err.message}`)));
    socket.once('close', () => {
      const err = this.failure ?? new CliError('ERR_CONTROL', `the signet node with data directory ${shown(dataDir)} closed the control connection`);
      for (const resolve of this.waiting.values()) resolve({ id: null, ok: false, error: { code: (err as CliError).code ?? 'ERR_CONTROL', message: err.message } });
      this.waiting.clear();
      this.onEvent?.({ id: null, event: 'end', error: { code: 'ERR_CONTROL', message: err.message } });
    });
  }

  /**
   * Connects to the node running with data directory `dataDir`.
   * @throws CliError ERR_NOT_RUNNING if no node runs there (no socket, or a stale one), or
   *   ERR_DATA_DIR_PERMISSIONS if the directory is writable by others (the socket could be anyone's).
   */
  static async connect(dataDir: string): Promise<ControlClient> {
    checkDataDir(dataDir);
    const path = controlSocketPath(dataDir);
    if (Buffer.byteLength(path) > MAX_SOCKET_PATH_BYTES) {
      throw new CliError('ERR_CONTROL_SOCKET', `the control socket path ${path} is longer than the ${MAX_SOCKET_PATH_BYTES} bytes a Unix socket path may have: use a shorter --data path`);
    }
    const socket = connect(path);
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once('connect', resolve);
        socket.once('error', reject);
        socket.setTimeout(CONTROL_TIMEOUT_MS, () => reject(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })));
      });
    } catch (err) {
      socket.destroy();
      const code = (err as NodeJS.ErrnoException).code;
      const running = `no signet node is running with data directory ${shown(dataDir)}`;
      if (code === 'ENOENT') throw new CliError('ERR_NOT_RUNNING', `${running} (no control socket at ${shown(path)})`);
      if (code === 'ECONNREFUSED') throw new CliError('ERR_NOT_RUNNING', `${running} (${shown(path)} is left over from a node that stopped)`);
      throw new CliError('ERR_CONTROL', `cannot connect to the control socket ${shown(path)}: ${(err as Error).message}`);
    }
    socket.setTimeout(0);
    socket.removeAllListeners('connect');
    socket.removeAllListeners('error');
    return new ControlClient(socket, dataDir);
  }

  /** Sends one request; resolves with its result. @throws UsageError (ERR_USAGE) or CliError. */
  async request(request: Omit<ControlRequest, 'id'>, timeoutMs = CONTROL_TIMEOUT_MS): Promise<unknown> {
    const response = await this.send(request, timeoutMs);
    if ('ok' in response && response.ok) return response.result;
    throw thrown('error' in response ? response.error : { code: 'ERR_CONTROL', message: 'unexpected answer' });
  }

  /**
   * Starts a watch: resolves with the daemon's answer once it listens; `onChange` gets each change.
   * `ended` resolves with the daemon's reason if it ends the watch (it stopped, or we fell behind).
   */
  async watch(request: Omit<ControlRequest, 'id' | 'op'>, onChange: (change: WireChange) => void): Promise<{ result: unknown; ended: Promise<WireError> }> {
    let end: (e: WireError) => void = () => {};
    const ended = new Promise<WireError>((resolve) => (end = resolve));
    this.onEvent = (r) => {
      if ('event' in r && r.event === 'change') onChange(r.change);
      else if ('event' in r && r.event === 'end') end(r.error);
    };
    return { result: await this.request({ ...request, op: 'watch' }), ended };
  }

  /** Closes the connection. */
  async close(): Promise<void> {
    this.onEvent = null;
    this.socket.end();
    this.socket.destroySoon();
    await this.closed;
  }

  private send(request: Omit<ControlRequest, 'id'>, timeoutMs: number): Promise<ControlResponse> {
    const id = this.nextId++;
    return new Promise<ControlResponse>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new CliError('ERR_TIMEOUT', `the signet node with data directory ${shown(this.dataDir)} did not answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting.set(id, (r) => {
        clearTimeout(timer);
        resolve(r);
      });
      this.socket.write(`${JSON.stringify({ ...request, id })}\n`);
    });
  }

  private data(text: string): void {
    let start = 0;
    for (let nl = text.indexOf('\n'); nl !== -1; nl = text.indexOf('\n', start)) {
      const lineText = this.buffered + text.slice(start, nl);
      this.buffered = '';
      this.bufferedLength = 0;
      start = nl + 1;
      this.line(lineText);
    }
    const rest = text.slice(start);
    this.buffered += rest;
    this.bufferedLength += rest.length;
    if (this.bufferedLength > MAX_CONTROL_RESPONSE_BYTES) {
      this.failure = new CliError('ERR_CONTROL', `an answer from the node was longer than ${MAX_CONTROL_RESPONSE_BYTES} bytes`);
      this.socket.destroy();
    }
  }

  private line(text: string): void {
    let r: ControlResponse;
    try {
      r = JSON.parse(text) as ControlResponse;
    } catch {
      return; // not ours to crash on; the request it answers times out
    }
    if (r === null || typeof r !== 'object') return;
    if ('event' in r) return void this.onEvent?.(r);
    const resolve = typeof r.id === 'number' ? this.waiting.get(r.id) : undefined;
    if (resolve) {
      this.waiting.delete(r.id as number);
      resolve(r);
    } else if ('ok' in r && !r.ok && r.id === null) {
      // An answer to no request in particular (busy, stopping, line too long): it answers them all.
      for (const w of this.waiting.values()) w(r);
      this.waiting.clear();
    }
  }
}

/** Connects to the node of `dataDir`, runs `fn`, and closes the connection whatever happens. */
export async function withClient<T>(dataDir: string, fn: (client: ControlClient) => Promise<T>): Promise<T> {
  const client = await ControlClient.connect(dataDir);
  try {
    return await fn(client);
  } finally {
    await client.close();
  }
}
