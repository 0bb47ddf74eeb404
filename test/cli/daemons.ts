// Helpers for CLI tests that run the real binary: `signet node` daemons as child processes
// (their JSON log lines parsed), commands run to completion, and cleanup that kills whatever
// is left and removes every directory, even when a test fails.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Identity, generateNetworkKey, saveIdentity, saveNetworkKey } from '../../src/index.ts';
import { deadline } from '../helpers/streams.ts';
import { outcome, type Ran } from '../../src/cli/demo-processes.ts';

export const BIN = fileURLToPath(new URL('../../bin/signet.js', import.meta.url));
/** How long one command may run, and a daemon may take to start or stop. */
export const COMMAND_MS = 30_000;

/** A finished command: exit code, stdout and stderr separately. */
export type { Ran } from '../../src/cli/demo-processes.ts';

/** A running `signet node`. */
export interface Daemon {
  child: ChildProcess;
  id: string;
  data: string;
  keys: string;
  /** Its JSON log lines so far. */
  events: Array<Record<string, unknown>>;
  /** The 'started' line. */
  started: Record<string, unknown>;
  exited: Promise<number | null>;
  /** Resolves with the first log line that `match` accepts (now or later). */
  logged(match: (e: Record<string, unknown>) => boolean, what: string, ms?: number): Promise<Record<string, unknown>>;
}

/** A scratch area: temp directories, key directories, daemons; `cleanup()` undoes all of it. */
export class Scratch {
  readonly dir = mkdtempSync(join(tmpdir(), 'signet-cli-'));
  readonly networkKeyFile = join(this.dir, 'network.key');
  private readonly children = new Set<ChildProcess>();
  private ready: Promise<void> | undefined;
  private n = 0;

  constructor() {
    // A test process that dies (an uncaught exception) before cleanup() ran must not leave
    // daemons behind: kill them as it exits (signals are sent synchronously).
    process.once('exit', () => {
      for (const c of this.children) c.kill('SIGKILL');
      rmSync(this.dir, { recursive: true, force: true });
    });
  }

  /** The shared network key file, made once. */
  networkKey(): Promise<void> {
    this.ready ??= saveNetworkKey(generateNetworkKey(), this.networkKeyFile);
    return this.ready;
  }

  /** A fresh directory under the scratch area (mode 0700). */
  mkdir(name: string): string {
    const path = join(this.dir, `${name}-${++this.n}`);
    mkdirSync(path, { mode: 0o700 });
    return path;
  }

  /** A key directory with a fresh identity. */
  async identity(): Promise<{ keys: string; id: string }> {
    const keys = this.mkdir('keys');
    const identity = Identity.generate();
    await saveIdentity(identity, join(keys, 'identity.key'));
    return { keys, id: identity.id };
  }

  /** Runs `signet ...args` to completion. */
  run(args: string[], ms = COMMAND_MS): Promise<Ran> {
    return deadline(outcome(this.spawn(args)), `signet ${args.join(' ')}`, ms);
  }

  /** Starts `signet ...args` and leaves it running (killed by cleanup). */
  spawn(args: string[]): ChildProcess {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
    return child;
  }

  /**
   * Starts a daemon with its own identity and data directory on 127.0.0.1 port 0, logging JSON;
   * resolves once it logged 'started'. `data`/`keys` reuse a directory (a restart).
   */
  async daemon(extra: string[], reuse: { data?: string; keys?: string; id?: string } = {}): Promise<Daemon> {
    await this.networkKey();
    const { keys, id } = reuse.keys && reuse.id ? { keys: reuse.keys, id: reuse.id } : await this.identity();
    const data = reuse.data ?? join(this.dir, `data-${++this.n}`);
    const child = this.spawn(['node', '--data', data, '--keys', keys, '--network-key', this.networkKeyFile, '--listen', '127.0.0.1:0', '--log', 'json', ...extra]);
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const events: Array<Record<string, unknown>> = [];
    const waiters = new Set<(e: Record<string, unknown>) => void>();
    let stderr = '';
    createInterface({ input: child.stderr! }).on('line', (line) => {
      stderr += `${line}\n`;
      let event: Record<string, unknown>;
      try {
        event = JSON.parse(line) as Record<string, unknown>;
      } catch {
        return;
      }
      events.push(event);
      for (const w of waiters) w(event);
    });
    const logged = (match: (e: Record<string, unknown>) => boolean, what: string, ms = COMMAND_MS): Promise<Record<string, unknown>> => {
      const seen = events.find(match);
      if (seen) return Promise.resolve(seen);
      let waiter: (e: Record<string, unknown>) => void = () => {};
      const found = new Promise<Record<string, unknown>>((resolve, reject) => {
        waiter = (e) => void (match(e) && resolve(e));
        waiters.add(waiter);
        void exited.then((code) => reject(new Error(`the daemon exited with ${code} before it logged ${what}; stderr:\n${stderr}`)));
      });
      return deadline(found, what, ms).finally(() => waiters.delete(waiter));
    };
    const started = await logged((e) => e['event'] === 'started', "'started'");
    return { child, id, data, keys, events, started, exited, logged };
  }

  /** SIGTERM, then waits for the exit code. */
  async stop(d: Daemon): Promise<number | null> {
    d.child.kill('SIGTERM');
    return deadline(d.exited, 'the daemon to exit after SIGTERM', COMMAND_MS);
  }

  /** Kills every process still running and removes the scratch area. */
  async cleanup(): Promise<void> {
    const left = [...this.children].map((c) => new Promise<void>((resolve) => {
      if (c.exitCode !== null || c.signalCode !== null) return resolve();
      c.once('exit', () => resolve());
      c.kill('SIGKILL');
    }));
    await Promise.all(left);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Lines of `text` parsed as JSON. */
export const jsonLines = (text: string): Array<Record<string, unknown>> => text.split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as Record<string, unknown>);
