// Crash safety through a real process: a child applies local writes and replicated updates on an
// LmdbStore and prints each once it is reported applied; it is killed with SIGKILL at random
// moments, 20 times. After each kill every printed update is in the store, the store opens, and
// the next local version is above every version the child ever signed.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Identity, LmdbStore, Model } from '../../src/index.ts';
import { Prng, testSeed } from '../helpers/prng.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const writer = fileURLToPath(new URL('./fixtures/writer.ts', import.meta.url));
const tsx = pathToFileURL(join(root, 'node_modules', 'tsx', 'dist', 'loader.mjs')).href;
const me = Identity.fromSecretKey(new Uint8Array(32).fill(0xc1));
const ROUNDS = 20;

interface Applied {
  source: 'local' | 'remote';
  version: number;
  hash: string;
  key: string;
}

interface Run {
  applied: Applied[];
  signed: number[];
  openedAt: number | null;
}

/** Runs the writer until it has printed `lines` lines, then SIGKILLs it. */
function runAndKill(dir: string, lines: number): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', tsx, writer, dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    const run: Run = { applied: [], signed: [], openedAt: null };
    let seen = 0;
    let buffer = '';
    let stderr = '';
    let killed = false;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`writer printed ${seen} of ${lines} lines in time; stderr: ${stderr}`));
    }, 60_000);
    child.stderr.on('data', (d) => (stderr += d));
    child.stdout.on('data', (d: Buffer) => {
      buffer += d.toString();
      let nl: number;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        if (killed) continue; // lines printed before the kill landed still count: see below
        const [kind, a, b, c, d] = line.split(' ');
        if (kind === 'open') run.openedAt = Number(a);
        else if (kind === 'signed') run.signed.push(Number(a));
        else if (kind === 'applied') run.applied.push({ source: a as Applied['source'], version: Number(b), hash: c!, key: d! });
        if (++seen >= lines) {
          killed = true;
          child.kill('SIGKILL');
        }
      }
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (!killed) return reject(new Error(`writer exited by itself (${code ?? signal}): ${stderr}`));
      resolve(run);
    });
  });
}

test(`SIGKILL at ${ROUNDS} random moments: every update reported applied survives, the store opens, no own version is reused`, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'signet-crash-'));
  const prng = new Prng(testSeed());
  try {
    const applied: Applied[] = [];
    let maxSigned = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const run = await runAndKill(dir, 20 + prng.int(400));
      assert.ok(run.openedAt !== null, `round ${round}: the store opened`);
      const firstSigned = run.signed[0];
      if (firstSigned !== undefined) assert.ok(firstSigned > maxSigned, `round ${round}: first version ${firstSigned} above every earlier one (${maxSigned})`);
      for (let i = 1; i < run.signed.length; i++) assert.ok(run.signed[i]! > run.signed[i - 1]!, `round ${round}: versions increase`);
      for (const v of run.signed) maxSigned = Math.max(maxSigned, v);
      applied.push(...run.applied);
      // the parent opens the store the child was killed holding: every update reported applied
      // is there, or its key is held by a later update; its source's clock covers it
      const store = new LmdbStore(dir);
      try {
        const model = new Model({ identity: me, store, dataset: 'crash' });
        await model.ready;
        for (const u of applied) {
          const holder = model.updateOf(u.key);
          // keys are written by one source each ('k…' local, 'r…' remote): a later holder has a higher version
          assert.ok(holder && (holder.hashHex === u.hash || holder.version > u.version),
            `round ${round}: ${u.source} update ${u.hash.slice(0, 12)} (version ${u.version}, key ${u.key}) lost`);
          const source = u.source === 'local' ? me.id : [...model.clock.keys()].find((id) => id !== me.id)!;
          assert.ok((model.clock.get(source) ?? 0) >= u.version, `round ${round}: clock of ${u.source} below ${u.version}`);
        }
        model.dispose();
      } finally {
        await store.close();
      }
    }
    assert.ok(applied.length > ROUNDS * 5, `updates were applied (${applied.length})`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
