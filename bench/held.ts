// Held envelopes with LmdbStore: kept in memory (`envelopesInMemory: true`) beside read back from
// the store (the default), on the same workload in one run: N local writes of 100-byte values
// into one Model, then memory per key after full garbage collections, get() of random keys, and
// reading every held envelope as a peer's history does. Each variant and round runs in its own
// process (memory is measured from a clean heap); rounds alternate the variants.
// Needs --expose-gc: each measuring process is started with it.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Identity, LmdbStore, Model } from '../src/index.ts';
import { isBacked } from '../src/envelope/update.ts';
import { QUICK, printTable } from './lib/table.ts';

const N = Number(process.env.SIGNET_BENCH_KEYS ?? 0) || (QUICK ? 5_000 : 200_000);
const ROUNDS = QUICK ? 1 : 3;
const GETS = QUICK ? 5_000 : 200_000;
const VALUE = 'v'.repeat(100);

interface Measured {
  heapPerKey: number;
  buffersPerKey: number;
  backed: number;
  writeUs: number;
  getUs: number;
  historyUs: number;
}

/** One variant in this process: writes, waits until every write is durable, measures. */
async function measure(inMemory: boolean): Promise<Measured> {
  const gc = (globalThis as { gc?: () => void }).gc!;
  const collect = () => {
    for (let i = 0; i < 3; i++) gc();
    return process.memoryUsage();
  };
  const dir = mkdtempSync(join(tmpdir(), 'signet-bench-held-'));
  const store = new LmdbStore(join(dir, 'store'));
  const model = new Model({ identity: Identity.generate(), dataset: 'held', store, envelopesInMemory: inMemory });
  try {
    await model.ready;
    const keys = Array.from({ length: N }, (_, i) => `key-${String(i).padStart(8, '0')}`);
    const before = collect();
    let durable = 0;
    const done = new Promise<void>((resolve) => model.on('update', () => ++durable === N && resolve()));
    const t0 = performance.now();
    for (let i = 0; i < N; i++) {
      model.set(keys[i]!, VALUE);
      if (i % 1000 === 999) await new Promise((resolve) => setImmediate(resolve)); // let commits land
    }
    await done;
    await new Promise((resolve) => setImmediate(resolve)); // committed updates are backed at the next turn
    const writeUs = ((performance.now() - t0) * 1000) / N;
    const after = collect();
    const held = model.history();
    let sum = 0;
    const g0 = performance.now();
    for (let i = 0; i < GETS; i++) sum += (model.get(keys[(i * 7919) % N]!) as string).length;
    const getUs = ((performance.now() - g0) * 1000) / GETS;
    const h0 = performance.now();
    for (const u of held) sum += u.bytes.length;
    const historyUs = ((performance.now() - h0) * 1000) / held.length;
    if (sum === 0) throw new Error('nothing read');
    return {
      heapPerKey: (after.heapUsed - before.heapUsed) / N, buffersPerKey: (after.arrayBuffers - before.arrayBuffers) / N,
      backed: held.filter(isBacked).length, writeUs, getUs, historyUs,
    };
  } finally {
    model.dispose();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.env.SIGNET_HELD_VARIANT) {
  const result = await measure(process.env.SIGNET_HELD_VARIANT === 'memory');
  console.log(JSON.stringify(result));
} else {
  const runs: Record<'store' | 'memory', Measured[]> = { store: [], memory: [] };
  for (let r = 0; r < ROUNDS; r++) {
    for (const variant of r % 2 === 0 ? (['memory', 'store'] as const) : (['store', 'memory'] as const)) {
      const child = spawnSync(process.execPath, ['--expose-gc', ...process.execArgv, ...process.argv.slice(1)], {
        env: { ...process.env, SIGNET_HELD_VARIANT: variant }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'],
      });
      if (child.status !== 0) throw new Error(`variant ${variant} failed (exit ${child.status})`);
      runs[variant].push(JSON.parse(child.stdout.trim().split('\n').pop()!) as Measured);
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const range = (xs: number[]) => `${Math.min(...xs).toFixed(2)}-${Math.max(...xs).toFixed(2)}`;
  const row = (label: string, variant: 'store' | 'memory') => {
    const rs = runs[variant];
    const m = (k: keyof Measured) => median(rs.map((x) => x[k]));
    return {
      envelopes: label, 'heap B/key': m('heapPerKey'), 'ArrayBuffers B/key': m('buffersPerKey'), 'total B/key': m('heapPerKey') + m('buffersPerKey'),
      'backed updates': m('backed'), 'write us (durable)': m('writeUs'), 'get() us': m('getUs'), 'get() us range': range(rs.map((x) => x.getUs)),
      'history read us/update': m('historyUs'),
    };
  };
  printTable(
    `Held envelopes, ${N.toLocaleString('en-US')} keys in one Model on LmdbStore (12-character keys, 100-byte values), median of ${ROUNDS} rounds each`,
    [row('in memory (envelopesInMemory: true)', 'memory'), row('read back from the store (default)', 'store')],
  );
  const ratio = (k: keyof Measured) => median(runs.store.map((x, i) => x[k] / runs.memory[i]![k]));
  console.log(`read back / in memory: total memory per key ${((median(runs.store.map((x) => x.heapPerKey + x.buffersPerKey)) / median(runs.memory.map((x) => x.heapPerKey + x.buffersPerKey)))).toFixed(2)}, get() ${ratio('getUs').toFixed(2)}, history read ${ratio('historyUs').toFixed(2)}, durable write ${ratio('writeUs').toFixed(2)}`);
}
