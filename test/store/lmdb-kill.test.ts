// LmdbStore in its default durability, through a real process killed with SIGKILL while commits
// are in flight: every commit the child saw resolve is there after a restart, the stale lock is
// taken over, and the store opens without the seal of a clean close.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LmdbStore } from '../../src/index.ts';
import { Prng, testSeed } from '../helpers/prng.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const child = fileURLToPath(new URL('./fixtures/committer.ts', import.meta.url));
const tsx = pathToFileURL(join(root, 'node_modules', 'tsx', 'dist', 'loader.mjs')).href;

/** Runs the committer from `start` until it printed `lines` ok lines, SIGKILLs it, returns them. */
function runAndKill(dir: string, start: number, lines: number): Promise<number[]> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, ['--import', tsx, child, dir, String(start)], { stdio: ['ignore', 'pipe', 'pipe'] });
    const ok: number[] = [];
    let buffer = '';
    let stderr = '';
    const timer = setTimeout(() => (proc.kill('SIGKILL'), reject(new Error(`committer too slow; stderr: ${stderr}`))), 60_000);
    proc.stderr.on('data', (d) => (stderr += d));
    proc.stdout.on('data', (d: Buffer) => {
      buffer += d.toString();
      for (let nl; (nl = buffer.indexOf('\n')) >= 0; buffer = buffer.slice(nl + 1)) {
        const [kind, n] = buffer.slice(0, nl).split(' ');
        if (kind === 'ok' && ok.length < lines && ok.push(Number(n)) === lines) proc.kill('SIGKILL');
      }
    });
    proc.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (signal !== 'SIGKILL') reject(new Error(`committer exited ${code}: ${stderr}`));
      else resolve(ok);
    });
  });
}

test('commits reported durable survive SIGKILL at random moments (5 rounds)', async () => {
  const parent = mkdtempSync(join(tmpdir(), 'signet-lmdb-kill-'));
  const dir = join(parent, 'store');
  const rng = new Prng(testSeed());
  const reported = new Set<number>();
  try {
    for (let round = 0, start = 0; round < 5; round++, start += 1_000_000) {
      for (const n of await runAndKill(dir, start, 50 + rng.int(2000))) reported.add(n);
      assert.ok(existsSync(join(dir, 'signet.lock')), 'the killed child left its lock');
      assert.match(readFileSync(join(dir, 'signet.seal'), 'utf8'), /"open"/);
      const store = new LmdbStore(dir); // takes over the stale lock; no clean-close seal to check
      const state = await store.load('kill');
      const held = new Set(state.updates.map((u) => createHash('sha256').update(u).digest('hex')));
      const expected = [...reported].map((n) => createHash('sha256').update(`${n}:${'x'.repeat(100 + (n % 300))}`).digest('hex'));
      for (const h of expected) assert.ok(held.has(h), `round ${round}: a reported commit is missing`);
      const top = Math.max(...[...reported].filter((n) => n >= start));
      assert.ok(state.clock[0]![1] >= top, `round ${round}: clock ${state.clock[0]![1]} >= ${top}`);
      assert.ok(new Map(state.meta).get('ownVersion')! >= top);
      await store.close();
    }
  } finally {
    rmSync(parent, { recursive: true, force: true });
  }
});

test.run();
