// The durable store: applied updates per second through LmdbStore (default 'process' and 'flush'
// durability) beside MemoryStore on the same workload in one run, bytes on disk per update, and
// the time to open N stored updates beside loading the same from MemoryStore.
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Identity, LmdbStore, MemoryStore, Model, signUpdate, type Store } from '../src/index.ts';
import { QUICK, printTable } from './lib/table.ts';

const APPLY = QUICK ? 500 : 20_000;
const OPEN = QUICK ? [2_000] : [100_000, 1_000_000];
const ROUNDS = QUICK ? 1 : 3;
const sources = Array.from({ length: 8 }, (_, i) => Identity.fromSecretKey(new Uint8Array(32).fill(0x30 + i)));
const T = 1_700_000_000_000_000;

/** `n` updates from 8 sources, 100-byte values, each a distinct key (signed once, reused). */
function workload(n: number): Uint8Array[] {
  return Array.from({ length: n }, (_, i) => {
    const s = sources[i % sources.length]!;
    return signUpdate(s, { dataset: 'bench', version: T + Math.floor(i / sources.length) + 1, body: ['set', `k${i}`, 'v'.repeat(100)] }).bytes;
  });
}

const dirs: string[] = [];
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'signet-bench-store-'));
  dirs.push(d);
  return d;
};
const du = (dir: string) => readdirSync(dir).reduce((n, f) => n + statSync(join(dir, f)).size, 0);

/** Time to apply every update (until the last 'update', i.e. durable) into a model on `store`. */
async function applyRate(store: Store, updates: Uint8Array[]): Promise<number> {
  const m = new Model({ identity: Identity.generate(), dataset: 'bench', store, now: () => T + 1e12 });
  await m.ready;
  let announced = 0;
  const done = new Promise<void>((r) => m.on('update', () => ++announced === updates.length && r()));
  const start = performance.now();
  for (let i = 0; i < updates.length; i += 256) await Promise.all(updates.slice(i, i + 256).map((u) => m.ingest(u)));
  await done;
  const rate = (updates.length * 1000) / (performance.now() - start);
  m.dispose();
  return rate;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const applyUpdates = workload(APPLY);
const rates: Record<string, number[]> = { memory: [], process: [], flush: [] };
let bytesPerUpdate = 0;
for (let r = 0; r < ROUNDS; r++) {
  rates.memory!.push(await applyRate(new MemoryStore(), applyUpdates));
  for (const durability of ['process', 'flush'] as const) {
    const dir = tempDir();
    const store = new LmdbStore(dir, { durability });
    rates[durability]!.push(await applyRate(store, applyUpdates));
    await store.close();
    if (durability === 'process') bytesPerUpdate = du(dir) / APPLY;
  }
}
const mem = median(rates.memory!);
printTable(`Applying ${APPLY.toLocaleString('en-US')} verified updates (100 B values, 8 sources) into a Model (median of ${ROUNDS} rounds)`, [
  { store: 'MemoryStore', 'updates/s': mem, 'ratio to MemoryStore': 1, 'rounds (ratio)': rates.memory!.map((x) => (x / mem).toFixed(2)).join(' ') },
  ...(['process', 'flush'] as const).map((d) => ({
    store: `LmdbStore durability '${d}'`, 'updates/s': median(rates[d]!), 'ratio to MemoryStore': median(rates[d]!) / mem,
    'rounds (ratio)': rates[d]!.map((x, i) => (x / rates.memory![i]!).toFixed(2)).join(' '),
  })),
]);
console.log(`bytes on disk per update (LmdbStore, ${APPLY} updates of ~${applyUpdates[0]!.length} B envelopes): ${bytesPerUpdate.toFixed(0)}`);

// Open: N stored updates, LmdbStore reopen (load + rebuild) beside MemoryStore load + rebuild.
const openRows: Array<Record<string, string | number>> = [];
for (const n of OPEN) {
  const updates = workload(n);
  const memory = new MemoryStore();
  const hashOf = (u: Uint8Array) => createHash('sha256').update(u).digest('hex');
  for (let i = 0; i < n; i++) memory.commitSync('bench', { put: [[hashOf(updates[i]!), updates[i]!]], drop: [], clock: [] });
  const dir = tempDir();
  const writer = new LmdbStore(dir);
  for (let i = 0; i < n; i += 1000) {
    await Promise.all(updates.slice(i, i + 1000).map((u) => writer.commit('bench', { put: [[hashOf(u), u]], drop: [], clock: [] })));
  }
  await writer.close();
  const open = async (store: Store) => {
    const start = performance.now();
    const m = new Model({ identity: Identity.generate(), dataset: 'bench', store, now: () => T + 1e12 });
    await m.ready;
    const ms = performance.now() - start;
    if (m.keys().length !== n) throw new Error(`opened ${m.keys().length} of ${n}`);
    m.dispose();
    return ms;
  };
  const memMs = await open(memory);
  const lmdb = new LmdbStore(dir);
  const lmdbMs = await open(lmdb);
  await lmdb.close();
  openRows.push({ updates: n, 'MemoryStore load ms': memMs, 'LmdbStore open ms': lmdbMs, 'ratio (goal <= 2)': lmdbMs / memMs, 'MB on disk': du(dir) / 1e6 });
}
printTable('Opening a dataset: rebuild from N stored updates', openRows);
for (const d of dirs) rmSync(d, { recursive: true, force: true });
