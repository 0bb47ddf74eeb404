// Store format 2: updates named by (source, version, hash) beside envelopes named by hash alone,
// in LmdbStore and MemoryStore; the checks of that form; a format-1 store carried forward.
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { open as openLmdb } from 'lmdb';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Identity, LmdbStore, LMDB_STORE_FORMAT, MemoryStore, StoreError, signUpdate, type StoreBatch, type Store } from '../../src/index.ts';
import type { StoreUpdate } from '../../src/store/store.ts';
import { rejects } from '../helpers/assert.ts';

const sources = [0x41, 0x42].map((b) => Identity.fromSecretKey(new Uint8Array(32).fill(b)));
const T = 1_700_000_000_000_000;
const batch = (b: Partial<StoreBatch>): StoreBatch => ({ put: [], drop: [], clock: [], ...b });
const hex = (u: Uint8Array) => Buffer.from(u).toString('hex');
const hashHex = (n: number) => createHash('sha256').update(String(n)).digest('hex');

/** A signed update of source `s` at version T + v (an Update is a StoreUpdate). */
const update = (s: number, v: number): StoreUpdate => signUpdate(sources[s]!, { dataset: 'd', version: T + v, body: ['set', `k${s}/${v}`, 'v'] });

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const parent = mkdtempSync(join(tmpdir(), 'signet-ordered-'));
  try {
    await fn(join(parent, 'store'));
  } finally {
    rmSync(parent, { recursive: true, force: true });
  }
}

/** The same round trip through any Store: both forms put, some of each dropped. */
async function roundTrip(store: Store): Promise<string[]> {
  const a = [1, 2, 3].map((v) => update(0, v));
  const b = [1, 2].map((v) => update(1, v));
  const opaque = Uint8Array.from(Buffer.from('an opaque envelope, named by its hash'));
  // Issued out of version order and across sources; one put and dropped in the same batch.
  await store.commit('d', batch({ put: [a[2]!, b[0]!, a[0]!, [hashHex(1), opaque]], clock: [[a[0]!.source, T + 3]] }));
  await store.commit('d', batch({ put: [a[1]!, b[1]!], drop: [a[0]!, b[1]!] }));
  return (await store.load('d')).updates.map(hex);
}

test('updates named by source, version and hash: put, dropped by name, beside the hash-keyed form', () =>
  withDir(async (dir) => {
    const s = new LmdbStore(dir);
    const got = await roundTrip(s);
    await s.close();
    const t = new LmdbStore(dir);
    const again = (await t.load('d')).updates.map(hex);
    await t.close();
    const a = [1, 2, 3].map((v) => hex(update(0, v).bytes));
    const b1 = hex(update(1, 1).bytes);
    assert.is(got.length, 4);
    assert.equal(again, got, 'the same after reopening');
    // One source's updates are neighbours in version order (the keys' order).
    const at = (h: string) => got.indexOf(h);
    assert.ok(at(a[1]!) >= 0 && at(a[2]!) === at(a[1]!) + 1, 'a2 then a3, side by side');
    assert.ok(at(b1) >= 0);
    assert.not.ok(got.includes(a[0]!), 'a1 was dropped');
    assert.not.ok(got.includes(hex(update(1, 2).bytes)), 'b2 was put and dropped in one batch');
    const m = await roundTrip(new MemoryStore());
    assert.equal([...m].sort(), [...got].sort(), 'MemoryStore holds the same');
  }));

test('two updates with one source and version (equivocation) are both kept, and dropped one at a time', () =>
  withDir(async (dir) => {
    const s = new LmdbStore(dir);
    const x = signUpdate(sources[0]!, { dataset: 'd', version: T, body: ['set', 'k', 'x'] });
    const y = signUpdate(sources[0]!, { dataset: 'd', version: T, body: ['set', 'k', 'y'] });
    await s.commit('d', batch({ put: [x, y] }));
    assert.equal((await s.load('d')).updates.map(hex).sort(), [hex(x.bytes), hex(y.bytes)].sort());
    await s.commit('d', batch({ drop: [x] }));
    assert.equal((await s.load('d')).updates.map(hex), [hex(y.bytes)]);
    await s.close();
  }));

test('a malformed update name is refused before anything of the batch is written', () =>
  withDir(async (dir) => {
    const s = new LmdbStore(dir);
    const u = update(0, 1);
    const named = (over: Record<string, unknown>) => ({ source: u.source, version: u.version, hash: u.hash, bytes: u.bytes, ...over }) as unknown as StoreUpdate;
    const bad: Array<[StoreBatch, RegExp, new (...args: never[]) => Error]> = [
      [batch({ put: [u, named({ source: 'not-a-node-id' })] }), /"batch\.put source" expected a node id/, RangeError],
      [batch({ put: [u, named({ source: u.source.toUpperCase() })] }), /node id/, RangeError],
      [batch({ put: [u, named({ source: u.source.slice(0, 51) + 'b' })] }), /node id/, RangeError], // not canonical: a stray low bit
      [batch({ put: [u, named({ version: -1 })] }), /"batch\.put version" expected a safe integer >= 0/, RangeError],
      [batch({ put: [u, named({ version: 2 ** 53 })] }), /safe integer/, RangeError],
      [batch({ put: [u, named({ hash: u.hash.subarray(0, 31) })] }), /"batch\.put hash" expected Uint8Array of length 32/, RangeError],
      [batch({ put: [u, named({ bytes: 'text' })] }), /Uint8Array/, TypeError],
      [batch({ put: [u], drop: [null as unknown as string] }), /"batch\.drop" expected updates/, TypeError],
      [batch({ put: [u], drop: [named({ source: 42 })] }), /"batch\.drop source"/, RangeError],
    ];
    for (const [b, message, type] of bad) await rejects(s.commit('d', b), type, message);
    assert.equal(await s.load('d'), { updates: [], clock: [], meta: [] });
    const top = named({ version: Number.MAX_SAFE_INTEGER, hash: new Uint8Array(32) }); // at the limit: accepted
    await s.commit('d', batch({ put: [top] }));
    await s.commit('d', batch({ drop: [top] }));
    assert.equal(await s.load('d'), { updates: [], clock: [], meta: [] });
    await s.close();
  }));

test('commits of one event turn share one transaction and one promise', () =>
  withDir(async (dir) => {
    const s = new LmdbStore(dir);
    await s.commit('d', batch({ clock: [['x', 1]] }));
    const before = s.lastTransactionId;
    const commits = [1, 2, 4, 3].map((v) => s.commit('d', batch({ put: [update(0, v)], clock: [['x', 1 + v], ['y', 10 - v]] })));
    assert.ok(commits.every((p) => p === commits[0]), 'one promise');
    await Promise.all(commits);
    assert.is(s.lastTransactionId - before, 1, 'one write transaction');
    const state = await s.load('d');
    assert.is(state.updates.length, 4);
    assert.equal(state.clock.sort(), [['x', 5], ['y', 9]], 'each clock entry at the maximum of the turn');
    // A commit issued after the turn's end (a later microtask of the same task) starts another.
    const next = await new Promise<Promise<void>>((r) => queueMicrotask(() => queueMicrotask(() => r(s.commit('d', batch({ clock: [['x', 6]] }))))));
    await next;
    assert.equal((await s.load('d')).clock.sort(), [['x', 6], ['y', 9]]);
    await s.close();
  }));

test('a format-1 store (envelopes keyed by hash) opens, is carried to format 2, and drops by hash', () =>
  withDir(async (dir) => {
    // Format 1's layout is format 2's hash-keyed form: write one, then give it format 1's record.
    const s = new LmdbStore(dir);
    const env = (n: number) => Uint8Array.from(Buffer.from(`envelope ${n}`));
    await s.commit('d', batch({ put: [0, 1, 2].map((n) => [hashHex(n), env(n)] as [string, Uint8Array]), clock: [['src', 9]], meta: [['purgeFloor', 4]] }));
    await s.close();
    const root = openLmdb({ path: dir });
    const db = root.openDB({ name: 'signet', encoding: 'binary', keyEncoding: 'binary' });
    const created = '2025-01-01T00:00:00.000Z';
    await db.put(Buffer.from('format'), Buffer.from(JSON.stringify({ format: 1, created, signet: '0.1.0' })));
    await root.close();
    const data = readFileSync(join(dir, 'data.mdb'));
    writeFileSync(join(dir, 'signet.seal'), JSON.stringify({ state: 'closed', size: data.length, sha256: createHash('sha256').update(data).digest('hex') }) + '\n');

    const t = new LmdbStore(dir);
    const state = await t.load('d');
    assert.equal(state.updates.map(hex).sort(), [0, 1, 2].map((n) => hex(env(n))).sort());
    assert.equal(state.clock, [['src', 9]]);
    assert.equal(state.meta, [['purgeFloor', 4]]);
    await t.commit('d', batch({ drop: [hashHex(1)], put: [update(0, 1)] }));
    assert.is((await t.load('d')).updates.length, 3);
    await t.close();
    const r = openLmdb({ path: dir, readOnly: true });
    const record = JSON.parse((r.openDB({ name: 'signet', encoding: 'binary', keyEncoding: 'binary' }).get(Buffer.from('format')) as Buffer).toString('utf8'));
    await r.close();
    assert.is(record.format, LMDB_STORE_FORMAT);
    assert.is(record.created, created);
    assert.is(record.migrated.from, 1);
    const u = new LmdbStore(dir); // and opens as format 2 from then on
    assert.is((await u.load('d')).updates.length, 3);
    await u.close();
  }));

test('a format-1 store: an update it held by hash, dropped later by its name, leaves the store', () =>
  withDir(async (dir) => {
    const kept = update(0, 1);
    const superseded = update(1, 2);
    const s = new LmdbStore(dir);
    // As format 1 stored them: keyed by the hex of their hash.
    await s.commit('d', batch({ put: [kept, superseded].map((u) => [hex(u.hash), u.bytes] as [string, Uint8Array]) }));
    await s.close();
    const t = new LmdbStore(dir);
    assert.is((await t.load('d')).updates.length, 2);
    await t.commit('d', batch({ drop: [{ source: superseded.source, version: superseded.version, hash: superseded.hash }] })); // as the core drops it now
    assert.equal((await t.load('d')).updates.map(hex), [hex(kept.bytes)]);
    await t.close();
    const u = new LmdbStore(dir);
    assert.equal((await u.load('d')).updates.map(hex), [hex(kept.bytes)]);
    await u.close();
  }));

test('after close, a commit of the named form rejects with StoreError', () =>
  withDir(async (dir) => {
    const s = new LmdbStore(dir);
    await s.close();
    await rejects(s.commit('d', batch({ put: [update(0, 1)] })), StoreError, /is closed/);
  }));

test.run();
