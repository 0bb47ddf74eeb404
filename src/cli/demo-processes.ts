// The demo's processes and files: real `signet node` daemons and `signet` commands run through
// bin/signet.js as child processes, their JSON logs parsed, and a cleanup that leaves nothing behind
// (also on Ctrl-C). Product code, not a test helper: `signet demo` ships with the package.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Identity } from '../identity/identity.ts';
import { generateNetworkKey, saveIdentity, saveNetworkKey } from '../identity/key-files.ts';

/** The real entry point, from src/cli or dist/cli alike. */
export const SIGNET_BIN = fileURLToPath(new URL('../../bin/signet.js', import.meta.url));

/** How long one step may wait (a daemon to start, a command to finish, an update to arrive)
 *  before the demo reports it as failed instead of hanging. */
export const STEP_MS = 20_000;

/** A log line of a daemon (`--log json`). */
export type LogLine = Record<string, unknown>;

/** A finished command: exit code, stdout and stderr. */
export interface Ran {
  code: number | null;
  out: string;
  err: string;
}

/** Resolves with a child's exit code and everything it wrote, once it has closed. */
export function outcome(child: ChildProcess): Promise<Ran> {
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  return new Promise<Ran>((resolve) => child.once('close', (code) => resolve({ code, out, err })));
}

/** Rejects with "timed out waiting for `what`" after `ms`. */
export function within<T>(promise: Promise<T>, what: string, ms = STEP_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

/** A running `signet node`. */
export class Daemon {
  readonly lines: LogLine[] = [];
  readonly exited: Promise<number | null>;
  started: LogLine = {};
  private readonly waiters = new Set<(line: LogLine) => void>();
  private stderr = '';

  constructor(
    readonly name: string, readonly id: string, readonly publicKey: Uint8Array, readonly data: string, readonly keys: string, readonly child: ChildProcess,
  ) {
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
    createInterface({ input: child.stderr! }).on('line', (text) => {
      this.stderr += `${text}\n`;
      let line: LogLine;
      try {
        line = JSON.parse(text) as LogLine;
      } catch {
        return;
      }
      this.lines.push(line);
      for (const w of this.waiters) w(line);
    });
  }

  /** Its listen address, from the 'started' line. */
  get address(): string {
    return this.started['address'] as string;
  }

  /** The first log line (so far or to come) that `match` accepts. */
  logged(match: (line: LogLine) => boolean, what: string, ms = STEP_MS): Promise<LogLine> {
    const seen = this.lines.find(match);
    if (seen) return Promise.resolve(seen);
    let waiter: (line: LogLine) => void = () => {};
    const found = new Promise<LogLine>((resolve, reject) => {
      waiter = (line) => void (match(line) && resolve(line));
      this.waiters.add(waiter);
      void this.exited.then((code) => reject(new Error(`${this.name} exited (${code}) before it logged ${what}:\n${this.stderr}`)));
    });
    return within(found, `${this.name} to log ${what}`, ms).finally(() => this.waiters.delete(waiter));
  }
}

/**
 * A temp directory with 0700 subdirectories, a shared network key, and every child process the
 * demo starts. `cleanup()` stops the daemons (SIGTERM, then SIGKILL past a deadline) and removes
 * the directory; if the process exits first, an exit hook kills what is left and removes it.
 */
export class DemoScratch {
  readonly root = mkdtempSync(join(tmpdir(), 'signet-demo-'));
  readonly networkKeyFile = join(this.root, 'network.key');
  /** Every pid started, for the record (--json prints them). */
  readonly pids: number[] = [];
  private readonly children = new Set<ChildProcess>();
  private readonly onExit = (): void => {
    for (const c of this.children) c.kill('SIGKILL');
    rmSync(this.root, { recursive: true, force: true });
  };

  /** Ctrl-C or a kill: Node does not emit 'exit' when a signal ends it, so clean up here. */
  private readonly onSignal = (signal: NodeJS.Signals): void => {
    this.onExit();
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };

  constructor() {
    process.once('exit', this.onExit);
    process.once('SIGINT', this.onSignal);
    process.once('SIGTERM', this.onSignal);
  }

  /** Writes the shared network key (a fresh one). */
  async init(): Promise<void> {
    await saveNetworkKey(generateNetworkKey(), this.networkKeyFile);
  }

  /** A fresh 0700 directory `name` under the root. */
  mkdir(name: string): string {
    const path = join(this.root, name);
    mkdirSync(path, { mode: 0o700 });
    return path;
  }

  /** Starts `signet ...args` through bin/signet.js. */
  spawn(args: string[]): ChildProcess {
    const child = spawn(process.execPath, [SIGNET_BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    if (child.pid !== undefined) this.pids.push(child.pid);
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
    return child;
  }

  /** Runs `signet ...args` to completion. */
  run(args: string[], ms = STEP_MS): Promise<Ran> {
    return within(outcome(this.spawn(args)), `signet ${args[0]}`, ms);
  }

  /** A key directory holding a fresh identity. */
  async identity(name: string): Promise<{ keys: string; id: string; publicKey: Uint8Array }> {
    const keys = this.mkdir(`${name}-keys`);
    const identity = Identity.generate();
    await saveIdentity(identity, join(keys, 'identity.key'));
    return { keys, id: identity.id, publicKey: identity.publicKey };
  }

  /**
   * Starts `signet node` for `name` on 127.0.0.1 port 0 with the shared network key, logging JSON;
   * resolves once it logged 'started'. `reuse` restarts a stopped daemon on its data and keys.
   */
  async daemon(name: string, extra: string[], reuse?: Daemon): Promise<Daemon> {
    const { keys, id, publicKey } = reuse ?? await this.identity(name);
    const data = reuse?.data ?? join(this.root, `${name}-data`);
    const child = this.spawn(['node', '--data', data, '--keys', keys, '--network-key', this.networkKeyFile, '--listen', '127.0.0.1:0', '--log', 'json', ...extra]);
    child.stdout!.resume();
    const daemon = new Daemon(name, id, publicKey, data, keys, child);
    daemon.started = await daemon.logged((l) => l['event'] === 'started', "'started'");
    return daemon;
  }

  /** SIGTERM, then the exit code (SIGKILL if it has not exited by the deadline). */
  async stop(d: Daemon): Promise<number | null> {
    if (d.child.exitCode !== null || d.child.signalCode !== null) return d.child.exitCode;
    d.child.kill('SIGTERM');
    try {
      return await within(d.exited, `${d.name} to stop`);
    } catch {
      d.child.kill('SIGKILL');
      return d.exited;
    }
  }

  /** Stops every process still running (SIGTERM, SIGKILL past the deadline) and removes the root. */
  async cleanup(): Promise<void> {
    await Promise.all([...this.children].map(async (c) => {
      if (c.exitCode !== null || c.signalCode !== null) return;
      const gone = new Promise<void>((resolve) => c.once('exit', () => resolve()));
      c.kill('SIGTERM');
      try {
        await within(gone, `process ${c.pid} to exit`);
      } catch {
        c.kill('SIGKILL');
        await gone;
      }
    }));
    rmSync(this.root, { recursive: true, force: true });
    process.off('exit', this.onExit);
    process.off('SIGINT', this.onSignal);
    process.off('SIGTERM', this.onSignal);
  }
}
