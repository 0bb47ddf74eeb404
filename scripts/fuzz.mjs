#!/usr/bin/env node
// `npm run fuzz`: the properties of test/fuzz run long, from a random seed printed first; then
// runs per second per property, and every failure with its seed and the command to replay it.
//
// Usage: npm run fuzz -- [--time SECONDS] [--seed N] [--runs N] [filter]
//   --time   total wall time to spread over all properties (default 60; 2 files at a time)
//   --seed   replay a seed instead of drawing one (also SIGNET_FUZZ_SEED)
//   --runs   a fixed number of runs per property instead of a time budget
//   filter   substring of the test file path
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { availableParallelism } from 'node:os';
import { randomInt } from 'node:crypto';
import { parseArgs } from 'node:util';

const root = new URL('..', import.meta.url).pathname;
const { values, positionals } = parseArgs({
  options: { time: { type: 'string', default: '60' }, seed: { type: 'string' }, runs: { type: 'string' } },
  allowPositionals: true,
  strict: true,
});
const total = Number(values.time);
if (!(total > 0)) throw new RangeError(`--time expected a positive number of seconds, got ${values.time}`);
const seed = Number(values.seed ?? process.env.SIGNET_FUZZ_SEED ?? randomInt(2 ** 31));
if (!Number.isSafeInteger(seed)) throw new RangeError(`--seed expected an integer, got ${values.seed}`);
const filter = positionals[0] ?? '';
console.log(`fuzz: seed ${seed} (replay with: npm run fuzz -- --seed ${seed}${filter ? ` ${filter}` : ''})`);

const dir = join(root, 'test/fuzz');
const files = readdirSync(dir).filter((f) => f.endsWith('.test.ts')).map((f) => join(dir, f)).filter((f) => relative(root, f).includes(filter));
/** Properties that run in a file (`property(`, not `property.skip(`). */
const count = (file) => (readFileSync(file, 'utf8').match(/^property\(/gm) ?? []).length;
const jobs = files.map((file) => ({ file, properties: count(file) })).filter((j) => j.properties > 0).sort((a, b) => b.properties - a.properties);
const workers = Math.max(1, Math.min(2, availableParallelism()));
const properties = jobs.reduce((n, j) => n + j.properties, 0);
// each worker's share of the time, spread over its properties; 85% leaves room for start-up and shrinking
const perPropertyMs = Math.max(200, Math.floor((0.85 * total * 1000 * workers) / Math.max(1, properties)));
if (!values.runs) console.log(`fuzz: ${properties} properties in ${jobs.length} files, about ${(perPropertyMs / 1000).toFixed(1)} s each`);

const rates = [];
const failures = [];
/** Files that failed without a property reporting a failure (a crash, a plain test). */
let broken = 0;

function run(job) {
  return new Promise((resolve) => {
    const env = { ...process.env, SIGNET_FUZZ_SEED: String(seed), SIGNET_FUZZ_REPORT: '1' };
    if (values.runs) env.SIGNET_FUZZ_RUNS = values.runs;
    else env.SIGNET_FUZZ_TIME_MS = String(perPropertyMs);
    const child = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', job.file], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    child.on('close', (code) => {
      const name = relative(root, job.file);
      const failed = failures.length;
      for (const line of output.split('\n')) {
        const at = line.search(/fuzz-(rate|fail)\t/);
        if (at < 0) continue;
        const fields = line.slice(at).split('\t');
        if (fields[0] === 'fuzz-rate') rates.push({ file: name, property: fields[1], runs: Number(fields[2]), seconds: Number(fields[3]), rate: Number(fields[4]) });
        if (fields[0] === 'fuzz-fail') failures.push({ file: name, property: fields[1], seed: fields[2], replay: fields[3] });
      }
      if (code !== 0) {
        if (failures.length === failed) broken++;
        console.log(`FAIL ${name}\n${output.split('\n').map((l) => `     ${l}`).join('\n')}`);
      } else console.log(`ok   ${name}`);
      resolve();
    });
  });
}

const queue = [...jobs];
await Promise.all(Array.from({ length: workers }, async () => {
  for (let job = queue.shift(); job; job = queue.shift()) await run(job);
}));

console.log('\nruns/s  runs      s  property');
for (const r of rates) console.log(`${r.rate.toFixed(0).padStart(6)} ${String(r.runs).padStart(6)} ${r.seconds.toFixed(1).padStart(6)}  ${r.file}: ${r.property}`);
for (const f of failures) console.log(`\nFAILED ${f.file}: ${f.property}\n  seed ${f.seed}\n  replay: ${f.replay}`);
console.log(`\n${rates.length - failures.length} passed, ${failures.length + broken} failed`);
process.exit(broken === 0 && failures.length === 0 ? 0 : 1);
