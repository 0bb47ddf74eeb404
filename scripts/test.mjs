#!/usr/bin/env node
// `npm test`: typecheck, then run every uvu file under test/ in its own process
// (through tsx), then print one closing line `N passed, N failed`.
//
// Usage: node scripts/test.mjs [filter]   (filter: substring of the test file path)
import { spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { availableParallelism } from 'node:os';

const root = new URL('..', import.meta.url).pathname;
const filter = process.argv[2] ?? '';
/** A test file that has not finished after this long is killed and counted as failed. */
const FILE_TIMEOUT_MS = 5 * 60_000;

function findTests(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) {
      if (name !== 'fixtures' && name !== 'helpers') out.push(...findTests(path));
    } else if (name.endsWith('.test.ts')) {
      out.push(path);
    }
  }
  return out;
}

function run(cmd, args, { capture = false, timeoutMs = 0 } = {}) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: root, stdio: capture ? ['ignore', 'pipe', 'pipe'] : 'inherit' });
    let output = '';
    if (capture) {
      child.stdout.on('data', (d) => (output += d));
      child.stderr.on('data', (d) => (output += d));
    }
    let timedOut = false;
    const timer = timeoutMs > 0 ? setTimeout(() => { timedOut = true; child.kill('SIGKILL'); }, timeoutMs) : null;
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      resolve({ code: code ?? 1, signal, output, timedOut });
    });
  });
}

/** Reads uvu's summary ("Total: N / Passed: N / Skipped: N") from a file's output. */
function summary(output) {
  // uvu colours its output; strip ANSI escapes before reading numbers.
  const plain = output.replace(/\x1b\[[0-9;]*m/g, '');
  const total = /Total:\s+(\d+)/.exec(plain);
  const passed = /Passed:\s+(\d+)/.exec(plain);
  const skipped = /Skipped:\s+(\d+)/.exec(plain);
  if (!total || !passed) return null;
  return { total: Number(total[1]), passed: Number(passed[1]), skipped: Number(skipped?.[1] ?? 0) };
}

const tsc = await run(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json']);
if (tsc.code !== 0) {
  console.log('typecheck failed');
  console.log('0 passed, 1 failed');
  process.exit(1);
}
console.log('typecheck ok');

const files = findTests(join(root, 'test')).filter((f) => relative(root, f).includes(filter));
let passed = 0;
let failed = 0;
let skipped = 0;
const queue = [...files];
const workers = Math.max(1, Math.min(2, availableParallelism()));

async function worker() {
  for (let file = queue.shift(); file; file = queue.shift()) {
    const name = relative(root, file);
    const res = await run(process.execPath, ['--import', 'tsx', file], { capture: true, timeoutMs: FILE_TIMEOUT_MS });
    const s = summary(res.output);
    if (s && res.code === 0) {
      passed += s.passed;
      skipped += s.skipped;
      console.log(`ok   ${name} (${s.passed} passed${s.skipped ? `, ${s.skipped} skipped` : ''})`);
    } else {
      const failedHere = s ? Math.max(1, s.total - s.passed - s.skipped) : 1;
      passed += s ? s.passed : 0;
      failed += failedHere;
      const why = res.timedOut ? ' (timed out)' : res.signal ? ` (signal ${res.signal})` : '';
      console.log(`FAIL ${name}${why}`);
      console.log(res.output.split('\n').map((l) => `     ${l}`).join('\n'));
    }
  }
}

await Promise.all(Array.from({ length: workers }, worker));
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(failed === 0 && files.length > 0 ? 0 : 1);
