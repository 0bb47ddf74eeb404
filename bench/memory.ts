// Memory per key: N local writes of 100-byte values into one Model (no store), heap and
// ArrayBuffer growth measured after full garbage collections, per key and beyond the key and
// value themselves. Run with `npm run bench memory` (1,000,000 keys) or quick (20,000);
// SIGNET_BENCH_KEYS=n measures n keys (a middle size while iterating).
// Needs --expose-gc: the script re-runs itself with it when started without.
import { spawnSync } from 'node:child_process';
import { Identity, Model } from '../src/index.ts';
import { QUICK, printTable } from './lib/table.ts';

const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) {
  const child = spawnSync(process.execPath, ['--expose-gc', '--max-old-space-size=8192', ...process.execArgv, ...process.argv.slice(1)], { stdio: 'inherit' });
  process.exit(child.status ?? 1);
}

const N = Number(process.env.SIGNET_BENCH_KEYS ?? 0) || (QUICK ? 20_000 : 1_000_000);
const VALUE = 'v'.repeat(100);
const keys = Array.from({ length: N }, (_, i) => `key-${String(i).padStart(8, '0')}`); // 12 characters
const collect = (): NodeJS.MemoryUsage => {
  for (let i = 0; i < 3; i++) gc!();
  return process.memoryUsage();
};

const model = new Model({ identity: Identity.generate(), dataset: 'memory' });
const before = collect();
const t0 = performance.now();
for (let i = 0; i < N; i++) model.set(keys[i]!, VALUE);
const writeS = (performance.now() - t0) / 1000;
const after = collect();
const heap = (after.heapUsed - before.heapUsed) / N;
const buffers = (after.arrayBuffers - before.arrayBuffers) / N;
const envelope = model.history()[0]!.bytes.length;
const keyAndValue = keys[0]!.length + VALUE.length;

printTable(`Memory per key, ${N.toLocaleString('en-US')} keys in one Model (12-character keys, 100-byte values, no store), after gc`, [
  { what: 'JS heap per key', bytes: heap.toFixed(0) },
  { what: 'ArrayBuffers per key (held versions by source; the freshest updates)', bytes: buffers.toFixed(0) },
  { what: 'total per key', bytes: (heap + buffers).toFixed(0) },
  { what: 'beyond the key and value (total - 112)', bytes: (heap + buffers - keyAndValue).toFixed(0) },
  { what: 'of which the signed envelope beyond key and value', bytes: String(envelope - keyAndValue) },
]);
console.log(`${N.toLocaleString('en-US')} writes in ${writeS.toFixed(1)} s; envelope ${envelope} B; held keys ${model.keys().length}`);
if (model.keys().length !== N) process.exitCode = 1;
