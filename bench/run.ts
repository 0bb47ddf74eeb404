// `npm run bench [name...]`: runs every bench/*.ts but this one (or the named ones) one after
// another in its own process, so one bench's warm JIT or pool does not skew the next. A full run
// of every bench writes its tables to bench/RESULTS.md with the machine, Node version, date,
// commit and load; quick mode (SIGNET_BENCH_QUICK=1, CI) and partial runs leave it alone.
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';
import { QUICK } from './lib/table.ts';

const dir = fileURLToPath(new URL('.', import.meta.url));
const wanted = process.argv.slice(2);
const files = readdirSync(dir)
  .filter((f) => f.endsWith('.ts') && f !== 'run.ts')
  .filter((f) => wanted.length === 0 || wanted.some((w) => f.startsWith(w)))
  .sort();

/** Runs one bench, echoing its stdout as it comes; resolves with that output and the exit status. */
function runBench(file: string): Promise<{ output: string; status: number | string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', `${dir}${file}`], { stdio: ['ignore', 'pipe', 'inherit'] });
    const chunks: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => {
      chunks.push(c);
      process.stdout.write(c);
    });
    child.on('close', (code, signal) => resolve({ output: Buffer.concat(chunks).toString('utf8'), status: code ?? signal ?? 'unknown' }));
  });
}

const started = new Date();
const git = (...args: string[]): string => spawnSync('git', args, { cwd: dir, encoding: 'utf8' }).stdout?.trim() ?? '';
/** The code measured: the commit when the run began, and whether the tree differed from it. */
const commit = `${git('rev-parse', '--short', 'HEAD') || 'unknown'}${git('status', '--porcelain', '--untracked-files=no') ? ' (with uncommitted changes)' : ''}`;
const load = [loadavg()[0]!];
const sections: string[] = [];
let failed = 0;
for (const file of files) {
  const t0 = performance.now();
  const { output, status } = await runBench(file);
  const seconds = (performance.now() - t0) / 1000;
  load.push(loadavg()[0]!);
  if (status !== 0) {
    failed++;
    console.error(`bench ${file} failed (exit ${status})`);
  }
  sections.push(`## ${file} (${seconds.toFixed(0)} s${status === 0 ? '' : `, FAILED: exit ${status}`})\n${output.trimEnd()}\n`);
}

if (!QUICK && wanted.length === 0) {
  const cpu = cpus();
  const header = [
    '# signet benchmark results',
    '',
    'Written by `npm run bench` (every bench, full size). Each section is one bench run in its own process;',
    'ratios inside a table were measured in the same run. This machine is shared: see the load averages.',
    '',
    `- date: ${started.toISOString()} (took ${((Date.now() - started.getTime()) / 60_000).toFixed(0)} min)`,
    `- commit when the run began: ${commit}`,
    `- machine: ${cpu.length} x ${cpu[0]?.model.trim() ?? 'unknown CPU'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, ${process.platform} ${process.arch}`,
    `- Node.js ${process.version}`,
    `- load average (1 min) before each bench and at the end: ${load.map((l) => l.toFixed(2)).join(', ')}`,
    '',
  ];
  writeFileSync(`${dir}RESULTS.md`, `${header.join('\n')}\n${sections.join('\n')}`);
  console.log(`\nwrote ${dir}RESULTS.md`);
}
process.exit(failed === 0 ? 0 : 1);
