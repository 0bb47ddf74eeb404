// The durable store: applied updates per second through LmdbStore (default 'process' and 'flush'
// durability) beside MemoryStore on the same workload in one run, bytes on disk per update, the
// cost of commit() alone with updates named by source and version or by hash, and the time to
// open N stored updates beside loading the same from MemoryStore.
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Identity, LmdbStore, MemoryStore, Model, signUpdate, type Store, type Update } from '../src/index.ts';
import { QUICK, printTable } from './lib/table.ts';

const APPLY = QUICK ? 500 : 20_000;
const COMMITS = QUICK ? 5_000 : 100_000;
const OPEN = QUICK ? [2_000] : [100_000, 1_000_000];
const ROUNDS = QUICK ? 1 : 3;
const sources = Array.from({ length: 8 }, (_, i) => Identity.fromSecretKey(new Uint8Array(32).fill(0x30 + i)));
const T = 1_700_000_000_000_000;

/** `n` updates from `from` sources (default 8), 100-byte values, each a distinct key (signed once, reused). */
function signed(n: number, from = sources.length): Update[] {
  return Array.from({ length: n }, (_, i) => {
    const s = sources[i % from]!;
    return signUpdate(s, { dataset: 'bench', version: T + Math.floor(i / from) + 1, body: ['set', `k${i}`, 'v'.repeat(100)] });
  });
}
const workload = (n: number): Uint8Array[] => signed(n).map((u) => u.bytes);

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

// commit() alone, as a model calls it during a sync: one update and its clock per commit, 256
// commits per event turn, the updates named (source, version, hash: kept side by side per source)
// or [hash, bytes] (keyed by hash). CPU counts every thread (LMDB writes on its own).
const commitRows: Array<Record<string, string | number>> = [];
for (const from of [1, 8]) {
  const updates = signed(COMMITS, from);
  for (const form of ['named', 'hash'] as const) {
    const us: number[] = [];
    const cpuUs: number[] = [];
    let bytes = 0;
    let txns = 0;
    for (let r = 0; r < ROUNDS; r++) {
      const dir = tempDir();
      const store = new LmdbStore(dir);
      const txn0 = store.lastTransactionId;
      const pending: Array<Promise<void>> = [];
      const start = performance.now();
      const cpu = process.cpuUsage();
      for (let i = 0; i < updates.length; i++) {
        const u = updates[i]!;
        pending.push(store.commit('bench', { put: form === 'named' ? [u] : [[u.hashHex, u.bytes]], drop: [], clock: [[u.source, u.version]] }));
        if (i % 256 === 255) {
          await new Promise((resolve) => setImmediate(resolve));
          if (pending.length >= 4096) await Promise.all(pending.splice(0, 2048));
        }
      }
      await Promise.all(pending);
      const used = process.cpuUsage(cpu);
      us.push(((performance.now() - start) * 1000) / updates.length);
      cpuUs.push((used.user + used.system) / updates.length);
      txns = store.lastTransactionId - txn0;
      await store.close();
      bytes = du(dir) / updates.length;
    }
    commitRows.push({
      updates: `${COMMITS.toLocaleString('en-US')} from ${from} source${from > 1 ? 's' : ''}`, keyed: form === 'named' ? 'source, version, hash' : 'hash',
      'us/commit': median(us), 'CPU us/commit': median(cpuUs), 'write transactions': String(txns), 'bytes on disk per update': bytes,
    });
  }
}
printTable(`commit() alone: one update and its clock per commit, 256 per event turn (median of ${ROUNDS} rounds)`, commitRows);

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
