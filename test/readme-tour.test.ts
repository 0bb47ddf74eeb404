// README's "Five-minute tour", run line by line: every ```sh tour block, in order, through
// /bin/sh in a temp directory, with `npx signet` replaced by this checkout's bin/signet.js.
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { deadline } from './helpers/streams.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const BIN = join(root, 'bin', 'signet.js');
/** How long a daemon may take to start, a watch to see a change, a read to see a replicated write. */
const WAIT_MS = 15_000;

/** One line of a tour block: the shell text and what its trailing comment promises. */
interface Line {
  text: string;
  expect?: { kind: 'prints' | 'shows' | 'fails'; value: string };
}

/**
 * The ```sh tour blocks of README.md. A comment `# prints: X` means stdout is X (for a
 * long-running line: one of its lines is X), `# shows: X` that stdout contains X, `# fails: X`
 * exit 1 with X on stderr; any other comment is prose; a line with no promise must exit 0.
 */
function tourBlocks(readme: string): Line[][] {
  return [...readme.matchAll(/```sh tour\n([\s\S]*?)```/g)].map((m) =>
    m[1]!.split('\n').filter((l) => l.trim() !== '' && !l.trim().startsWith('#')).map((l) => {
      const at = l.search(/\s+# /);
      const text = (at < 0 ? l : l.slice(0, at)).trim();
      const promise = at < 0 ? null : /#\s+(prints|shows|fails): (.*)$/.exec(l.slice(at));
      return promise ? { text, expect: { kind: promise[1] as 'prints' | 'shows' | 'fails', value: promise[2]!.trim() } } : { text };
    }),
  );
}

test('README "Five-minute tour": every line runs as written and prints what the README says', async () => {
  const blocks = tourBlocks(readFileSync(join(root, 'README.md'), 'utf8'));
  const lines = blocks.flat();
  assert.ok(lines.some((l) => l.text.includes('--replica-of')) && lines.some((l) => l.text.includes('signet watch')), 'the tour blocks were found');

  const dir = mkdtempSync(join(tmpdir(), 'signet-tour-'));
  // `npx signet` becomes `signet`, a shim on PATH that runs this checkout's binary: the lines
  // run through sh as written (cp, "$(...)"), without npx looking anything up.
  mkdirSync(join(dir, '.bin'));
  writeFileSync(join(dir, '.bin', 'signet'), `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(BIN)} "$@"\n`);
  chmodSync(join(dir, '.bin', 'signet'), 0o755);
  const env = { ...process.env, PATH: `${join(dir, '.bin')}:${process.env['PATH'] ?? ''}` };

  const children = new Set<ChildProcess>();
  const killAll = (signal: NodeJS.Signals) => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) try { process.kill(-c.pid!, signal); } catch { /* gone */ }
  };
  const onExit = () => killAll('SIGKILL');
  process.once('exit', onExit); // a crash before finally still leaves no daemon behind

  // The README's fixed ports (7420...) could clash with something on this machine: a daemon
  // line listens on port 0 instead, and later lines get the address its 'started' line names.
  const ports = new Map<string, string>();
  const rewrite = (text: string) => text.replaceAll('npx signet', 'signet').replace(/127\.0\.0\.1:(\d+)/g, (a) => ports.get(a) ?? a);

  /**
   * Starts a long-running line in its own process group; its stdout/stderr lines are kept.
   * `exec` makes the shell become the command, so a signal reaches it as Ctrl-C would.
   */
  const background = (text: string) => {
    const child = spawn('/bin/sh', ['-c', `exec ${text}`], { cwd: dir, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    const seen = { out: [] as string[], err: [] as string[] };
    const waiters = new Set<() => void>();
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    for (const [stream, into] of [[child.stdout!, seen.out], [child.stderr!, seen.err]] as const) {
      createInterface({ input: stream }).on('line', (l) => { into.push(l); for (const w of waiters) w(); });
    }
    /** Resolves with the first line of `where` that `match` accepts, now or later. */
    const line = (where: 'out' | 'err', match: (l: string) => boolean, what: string): Promise<string> => {
      let waiter = () => {};
      const found = new Promise<string>((resolve, reject) => {
        waiter = () => { const l = seen[where].find(match); if (l !== undefined) resolve(l); };
        waiters.add(waiter);
        waiter();
        void exited.then((code) => reject(new Error(`"${text}" exited with ${code} before ${what}; stderr:\n${seen.err.join('\n')}`)));
      });
      return deadline(found, `${what} from "${text}"`, WAIT_MS).finally(() => waiters.delete(waiter));
    };
    return { child, line, exited };
  };

  /** Runs a line to completion. */
  const run = (text: string) => new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
    const child = spawn('/bin/sh', ['-c', text], { cwd: dir, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    let out = '';
    let err = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.once('close', (code) => { children.delete(child); resolve({ code, out, err }); });
  });

  const daemons: Array<ReturnType<typeof background>> = [];
  const started = Date.now();
  try {
    let pending: Array<Promise<string>> = []; // what long-running lines of earlier blocks must still print
    for (const block of blocks) {
      const mine: Array<Promise<string>> = [];
      for (const { text: written, expect } of block) {
        if (/^npx signet node\b/.test(written)) {
          const listen = /--listen (127\.0\.0\.1:\d+)/.exec(written)?.[1];
          assert.ok(listen, `a daemon line names its --listen address: ${written}`);
          const d = background(rewrite(written).replace(`--listen ${listen}`, '--listen 127.0.0.1:0'));
          daemons.push(d);
          const line = await d.line('err', (l) => / started id=/.test(l), "the 'started' line");
          ports.set(listen, /address=(\S+)/.exec(line)![1]!);
          // a node given a seed is in the mesh once it logs peer:up (the README says to look for it)
          if (written.includes('--seed')) await d.line('err', (l) => / peer:up /.test(l), 'peer:up');
        } else if (/^npx signet watch\b/.test(written)) {
          const w = background(rewrite(written));
          await w.line('err', (l) => l.startsWith('watching'), 'the "watching" line'); // in place before the next write
          if (expect) mine.push(w.line('out', (l) => (expect.kind === 'prints' ? l === expect.value : l.includes(expect.value)), `"${expect.value}"`));
        } else {
          // A read after a write elsewhere sees it once it has replicated: a line that promises
          // output is run again (no sleep; each run takes a process start) until it holds.
          const until = Date.now() + WAIT_MS;
          for (;;) {
            const r = await deadline(run(rewrite(written)), `"${written}"`, WAIT_MS);
            const why = expect?.kind === 'fails'
              ? (r.code === 1 && r.err.includes(expect.value) ? null : `exit ${r.code}, stderr: ${r.err}`)
              : r.code !== 0 ? `exit ${r.code}, stderr: ${r.err}`
              : written.includes('--json') && !isJson(r.out) ? `not JSON: ${r.out}`
              : expect?.kind === 'prints' && r.out.trim() !== expect.value ? `stdout ${JSON.stringify(r.out)}, expected ${JSON.stringify(expect.value)}`
              : expect?.kind === 'shows' && !r.out.includes(expect.value) ? `stdout ${JSON.stringify(r.out)} lacks ${JSON.stringify(expect.value)}`
              : null;
            if (why === null) break;
            if (!expect || expect.kind === 'fails' || Date.now() > until) assert.unreachable(`"${written}": ${why}`);
          }
        }
      }
      await Promise.all(pending); // a watch started in an earlier block has seen the writes since
      pending = mine;
    }
    await Promise.all(pending);
    // Ctrl-C, as the README says: every daemon stops cleanly (exit 0).
    for (const d of daemons) process.kill(-d.child.pid!, 'SIGINT');
    for (const d of daemons) assert.is(await deadline(d.exited, 'a daemon to stop on SIGINT', WAIT_MS), 0);
    console.log(`tour ran in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  } finally {
    killAll('SIGKILL');
    await Promise.all([...children].map((c) => (c.exitCode !== null || c.signalCode !== null ? null : new Promise((resolve) => c.once('exit', resolve)))));
    process.removeListener('exit', onExit);
    rmSync(dir, { recursive: true, force: true });
  }
});

function isJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

test.run();
