// LmdbStore: round trips across close and reopen, the clock as a maximum, group commit, dataset
// isolation, the format record, refused directories (damaged, newer, foreign), the lock, close.
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { open as openLmdb } from 'lmdb';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LmdbStore, LMDB_STORE_FORMAT, StoreError, type StoreBatch } from '../../src/index.ts';
import { MAX_STORE_NAME_LENGTH } from '../../src/store/lmdb.ts';
import { rejects } from '../helpers/assert.ts';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
const hash = (n: number | string) => createHash('sha256').update(String(n)).digest('hex');
const env = (n: number) => Uint8Array.from(randomBytes(20 + (n % 50)));
const batch = (b: Partial<StoreBatch>): StoreBatch => ({ put: [], drop: [], clock: [], ...b });
const sorted = <T>(xs: T[]) => [...xs].sort((a, b) => (JSON.stringify(a) < JSON.stringify(b) ? -1 : 1));
const hex = (u: Uint8Array) => Buffer.from(u).toString('hex');

/** Runs `fn` with a fresh temporary directory (the store's path), removed afterwards. */
async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const parent = mkdtempSync(join(tmpdir(), 'signet-lmdb-'));
  try {
    await fn(join(parent, 'store'));
  } finally {
    rmSync(parent, { recursive: true, force: true });
  }
}

/** Asserts that opening `dir` throws a StoreError naming the path and matching `pattern`. */
function refused(dir: string, pattern: RegExp, options: { lockHeld?: boolean } = {}): StoreError {
  try {
    new LmdbStore(dir);
  } catch (err) {
    assert.instance(err, StoreError);
    const e = err as StoreError;
    assert.is(e.code, 'ERR_STORE');
    assert.ok(e.message.includes(dir), `message names the path: ${e.message}`);
    assert.match(e.message, pattern);
    if (!options.lockHeld) assert.not.ok(existsSync(join(dir, 'signet.lock')), 'lock released after the refusal');
    return e;
  }
  assert.unreachable(`opening ${dir} should have been refused`);
  throw new Error('unreachable');
}

/** A closed store holding a few records. */
async function makeStore(dir: string): Promise<void> {
  const s = new LmdbStore(dir);
  const puts: Array<[string, Uint8Array]> = [];
  for (let i = 0; i < 300; i++) puts.push([hash(i), env(i)]);
  await s.commit('default', batch({ put: puts, clock: [['source', 7]] }));
  await s.close();
}

/** The seal a clean close writes, recomputed (what a newer signet closing cleanly would leave). */
function reseal(dir: string): void {
  const data = readFileSync(join(dir, 'data.mdb'));
  const seal = { state: 'closed', size: data.length, sha256: createHash('sha256').update(data).digest('hex') };
  writeFileSync(join(dir, 'signet.seal'), JSON.stringify(seal) + '\n');
}

test('put, drop, clock and meta survive close and reopen', () =>
  withDir(async (dir) => {
    const s = new LmdbStore(dir);
    assert.equal(await s.load('default'), { updates: [], clock: [], meta: [] });
    const a = env(1), b = env(2), c = env(3);
    await s.commit('default', batch({ put: [[hash('a'), a], [hash('b'), b]], clock: [['src-a', 10], ['src-b', 20]], meta: [['purgeFloor', 5]] }));
    await s.commit('default', batch({ put: [[hash('c'), c]], drop: [hash('a')], clock: [['src-a', 11]], meta: [['purgeFloor', 6], ['ownVersion', 1e15]] }));
    const before = await s.load('default');
    await s.close();
    const t = new LmdbStore(dir);
    try {
      const after = await t.load('default');
      assert.equal(after, before);
      assert.equal(sorted(after.updates.map(hex)), sorted([b, c].map(hex)));
      assert.equal(sorted(after.clock), [['src-a', 11], ['src-b', 20]]);
      assert.equal(sorted(after.meta ?? []), [['ownVersion', 1e15], ['purgeFloor', 6]]);
      assert.ok(after.updates.every((u) => u.constructor === Uint8Array), 'plain Uint8Arrays');
    } finally {
      await t.close();
    }
  }));

test('the clock keeps the maximum, whatever order commits are issued in', () =>
  withDir(async (dir) => {
    const s = new LmdbStore(dir);
    await Promise.all([9, 3, 12, 5].map((v) => s.commit('default', batch({ clock: [['x', v]] })))); // one turn
    await s.commit('default', batch({ clock: [['x', 4]] }));
    await s.commit('default', batch({ clock: [['x', 12], ['y', 1]] }));
    assert.equal(sorted((await s.load('default')).clock), [['x', 12], ['y', 1]]);
    await s.close();
    const t = new LmdbStore(dir);
    await t.commit('default', batch({ clock: [['x', 11]] })); // below the stored value, after reopen
    assert.equal(sorted((await t.load('default')).clock), [['x', 12], ['y', 1]]);
    await t.close();
  }));

test('an update put and dropped in one batch leaves nothing', () =>
  withDir(async (dir) => {
    const s = new LmdbStore(dir);
    const one = env(1), two = env(2);
    await s.commit('default', batch({ put: [[hash(1), one], [hash(2), two]], drop: [hash(1)] }));
    assert.equal((await s.load('default')).updates.map(hex), [hex(two)]);
    await s.close();
  }));

for (const durability of ['process', 'flush'] as const) {
  test(`1,000 commits issued at once all resolve, land, and share a transaction (${durability})`, () =>
    withDir(async (dir) => {
      const s = new LmdbStore(dir, { durability });
      const first = s.lastTransactionId;
      const sent = new Map<string, string>();
      const commits: Array<Promise<void>> = [];
      for (let i = 0; i < 1000; i++) {
        const bytes = env(i);
        sent.set(hash(i), hex(bytes));
        commits.push(s.commit('default', batch({ put: [[hash(i), bytes]], clock: [[`s${i % 10}`, i]], meta: [['ownVersion', i]] })));
      }
      await Promise.all(commits);
      const transactions = s.lastTransactionId - first;
      assert.ok(transactions >= 1 && transactions <= 2, `1,000 commits in ${transactions} write transactions`);
      const state = await s.load('default');
      assert.equal(sorted(state.updates.map(hex)), sorted([...sent.values()]));
      assert.equal(state.meta, [['ownVersion', 999]]);
      assert.is(state.clock.length, 10);
      await s.close();
    }));
}

test('datasets are isolated, whatever characters their names hold', () =>
  withDir(async (dir) => {
    // Prefixes of one another, lone surrogates (one UTF-8 encoding for both), the top code unit.
    const names = ['a', 'ab', 'b', '\ud800', '\udc00', '\uffff', '\uffff\uffff', 'x'.repeat(128), 'ä', 'a\u00ff'];
    const s = new LmdbStore(dir);
    for (const [i, name] of names.entries()) {
      await s.commit(name, batch({ put: [[hash(name), env(i)]], clock: [[name, i + 1]], meta: [[name, i]] }));
    }
    await s.close();
    const t = new LmdbStore(dir);
    for (const [i, name] of names.entries()) {
      const state = await t.load(name);
      assert.is(state.updates.length, 1, `dataset ${JSON.stringify(name)}`);
      assert.equal(state.clock, [[name, i + 1]]);
      assert.equal(state.meta, [[name, i]]);
    }
    assert.equal(await t.load('c'), { updates: [], clock: [], meta: [] });
    await t.close();
  }));

test('a new store holds the format record; reading it with another LMDB reader keeps the seal valid', () =>
  withDir(async (dir) => {
    await makeStore(dir);
    const root = openLmdb({ path: dir, readOnly: true });
    const raw = root.openDB({ name: 'signet', encoding: 'binary', keyEncoding: 'binary' }).get(Buffer.from('format')) as Buffer;
    const record = JSON.parse(raw.toString('utf8'));
    await root.close();
    assert.is(record.format, LMDB_STORE_FORMAT);
    assert.is(record.signet, pkg.version);
    assert.ok(Math.abs(Date.parse(record.created) - Date.now()) < 60_000);
    assert.equal(readdirSync(dir).sort(), ['data.mdb', 'lock.mdb', 'signet.seal']);
    const s = new LmdbStore(dir);
    assert.is((await s.load('default')).updates.length, 300);
    await s.close();
  }));

test('refused: a random file named data.mdb (not LMDB), left as it was', () =>
  withDir(async (dir) => {
    mkdirSync(dir);
    // lmdb-js 3.5.6 crashes the process when LMDB refuses a file, so these must be caught first.
    for (const junk of [randomBytes(64 * 1024), randomBytes(100), Buffer.from('not a database\n')]) {
      writeFileSync(join(dir, 'data.mdb'), junk);
      refused(dir, /damaged: data\.mdb is not an LMDB data file .*restore the directory from a backup/);
      assert.ok(readFileSync(join(dir, 'data.mdb')).equals(junk));
      assert.not.ok(existsSync(join(dir, 'signet.seal')), 'no seal written into a foreign directory');
    }
  }));

test('refused: a truncated data file, with or without the seal of a clean close', () =>
  withDir(async (dir) => {
    await makeStore(dir);
    const file = join(dir, 'data.mdb');
    const size = statSync(file).size;
    truncateSync(file, Math.floor(size / 2 / 4096) * 4096);
    refused(dir, /damaged: data\.mdb is \d+ bytes, but it was \d+ at its last clean close/);
    rmSync(join(dir, 'signet.seal')); // as if the process had been killed: the header's sizes alone
    refused(dir, /damaged: data\.mdb is \d+ bytes: page \d+ of 4096 bytes, which its trees reach, lies past its end \(truncated\)/);
    assert.is(statSync(file).size, Math.floor(size / 2 / 4096) * 4096);
    truncateSync(file, 5000);
    refused(dir, /damaged: data\.mdb is 5000 bytes, shorter than its two meta pages/);
    assert.is(statSync(file).size, 5000);
  }));

test('opens after a crash whose last commit freed new pages unwritten: the meta claims pages past the end of the file', () =>
  withDir(async (dir) => {
    await makeStore(dir);
    const file = join(dir, 'data.mdb');
    const size = statSync(file).size;
    // LMDB never writes a page dirtied and freed in one transaction, so its meta may count
    // pages the file does not reach yet (test/durability/crash.test.ts met one). Both metas
    // claim three more pages here; their roots and the sub-databases' roots are all inside.
    const bytes = readFileSync(file);
    for (const at of [0, 4096]) bytes.writeBigUInt64LE(bytes.readBigUInt64LE(at + 144) + 3n, at + 144);
    writeFileSync(file, bytes);
    rmSync(join(dir, 'signet.seal')); // as if the process had been killed
    assert.ok((bytes.readBigUInt64LE(144) + 1n) * 4096n > BigInt(size));
    const s = new LmdbStore(dir);
    try {
      const state = await s.load('default');
      assert.is(state.updates.length, 300);
      assert.equal([...state.clock], [['source', 7]]);
      await s.commit('default', batch({ put: [[hash(300), env(300)]], clock: [] }));
    } finally {
      await s.close();
    }
    const again = new LmdbStore(dir);
    try {
      assert.is((await again.load('default')).updates.length, 301);
    } finally {
      await again.close();
    }
  }));

test('refused: a tree that reaches a page past the end of the file (a leaf lost below its roots), before LMDB reads it', () =>
  withDir(async (dir) => {
    const s = new LmdbStore(dir);
    for (let b = 0; b < 4; b++) {
      const puts: Array<[string, Uint8Array]> = [];
      for (let i = 0; i < 1000; i++) puts.push([hash(`${b}:${i}`), env(i)]);
      await s.commit('default', batch({ put: puts, clock: [['source', b + 1]] }));
    }
    await s.close();
    rmSync(join(dir, 'signet.seal')); // as if the process had been killed: the header and trees alone
    const file = join(dir, 'data.mdb');
    const bytes = readFileSync(file);
    const pages = bytes.length / 4096;
    // The newest meta's main tree is one leaf naming the sub-databases; the one of 4,000 records
    // has a branch root. Its first child is pointed past the end, every root staying inside: the
    // file looks like one whose tail was cut off below its roots.
    const meta = bytes.readBigUInt64LE(152) >= bytes.readBigUInt64LE(4096 + 152) ? 0 : 4096;
    const main = Number(bytes.readBigUInt64LE(meta + 136)) * 4096;
    assert.ok(bytes.readUInt16LE(main + 18) & 0x02, 'the main tree is one leaf');
    let branch = -1;
    for (let i = 0; i < bytes.readUInt16LE(main + 20) >> 1; i++) {
      const node = main + 24 + bytes.readUInt16LE(main + 24 + 2 * i);
      const root = bytes.readBigUInt64LE(node + 8 + bytes.readUInt16LE(node + 6) + 40);
      if (root !== 0xffff_ffff_ffff_ffffn && bytes.readUInt16LE(Number(root) * 4096 + 18) & 0x01) branch = Number(root) * 4096;
    }
    assert.ok(branch >= 0, 'a sub-database with a branch root');
    const child = branch + 24 + bytes.readUInt16LE(branch + 24);
    bytes.writeUInt16LE(pages + 5, child); // lo
    bytes.writeUInt16LE(0, child + 2); // hi
    bytes.writeUInt16LE(0, child + 4); // top word
    writeFileSync(file, bytes);
    refused(dir, new RegExp(`damaged: data\\.mdb is ${bytes.length} bytes: page ${pages + 5} of 4096 bytes, which its trees reach, lies past its end \\(truncated\\)`));
    assert.ok(readFileSync(file).equals(bytes), 'nothing changed');
  }));

test('refused: a bit-flipped data file', () =>
  withDir(async (dir) => {
    await makeStore(dir);
    const file = join(dir, 'data.mdb');
    const bytes = readFileSync(file);
    bytes[Math.floor(bytes.length * 0.6)]! ^= 0x10;
    writeFileSync(file, bytes);
    const seal = readFileSync(join(dir, 'signet.seal'), 'utf8');
    refused(dir, /damaged: data\.mdb changed since its last clean close/);
    assert.ok(readFileSync(file).equals(bytes), 'the data file is left as it was');
    assert.is(readFileSync(join(dir, 'signet.seal'), 'utf8'), seal, 'the seal is left as it was');
  }));

test('refused: a format record that names a newer format', () =>
  withDir(async (dir) => {
    await makeStore(dir);
    const root = openLmdb({ path: dir });
    const db = root.openDB({ name: 'signet', encoding: 'binary', keyEncoding: 'binary' });
    const newer = LMDB_STORE_FORMAT + 1;
    await db.put(Buffer.from('format'), Buffer.from(JSON.stringify({ format: newer, created: new Date().toISOString(), signet: '9.0.0' })));
    await root.close();
    reseal(dir); // a newer signet closed it cleanly
    refused(dir, new RegExp(`has format ${newer}, newer than this signet-sync .* reads \\(format ${LMDB_STORE_FORMAT}\\): upgrade signet-sync`));
    assert.ok(existsSync(join(dir, 'data.mdb')));
  }));

test('refused: an LMDB environment without the signet format record', () =>
  withDir(async (dir) => {
    const root = openLmdb({ path: dir });
    await root.put('someone', 'else');
    await root.close();
    refused(dir, /is not a signet store: it holds an LMDB environment without the signet format record/);
  }));

test('refused: a non-empty directory of other files, and a path that is a file', () =>
  withDir(async (dir) => {
    mkdirSync(dir);
    writeFileSync(join(dir, 'notes.txt'), 'mine');
    mkdirSync(join(dir, 'photos'));
    refused(dir, /is not a signet store: it holds other files \(.*notes\.txt.*\) and no data\.mdb/);
    assert.equal(readdirSync(dir).sort(), ['notes.txt', 'photos']);
    refused(join(dir, 'notes.txt'), /is not a signet store: it holds no directory/);
    assert.is(readFileSync(join(dir, 'notes.txt'), 'utf8'), 'mine');
  }));

test('a second open of the same directory is refused while the first holds it', () =>
  withDir(async (dir) => {
    const s = new LmdbStore(dir);
    refused(dir, /is in use by this process/, { lockHeld: true });
    await s.commit('default', batch({ put: [[hash(1), env(1)]] })); // the first is unharmed
    await s.close();
    const t = new LmdbStore(dir);
    assert.is((await t.load('default')).updates.length, 1);
    await t.close();
  }));

test('a lock held by another live process is refused; one left by a dead process is taken over', () =>
  withDir(async (dir) => {
    await makeStore(dir);
    writeFileSync(join(dir, 'signet.lock'), JSON.stringify({ pid: process.ppid }) + '\n');
    refused(dir, new RegExp(`in use by process ${process.ppid}`), { lockHeld: true });
    assert.ok(existsSync(join(dir, 'signet.lock')), 'a live holder keeps its lock');
    const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
    writeFileSync(join(dir, 'signet.lock'), JSON.stringify({ pid: dead }) + '\n');
    const s = new LmdbStore(dir);
    assert.match(readFileSync(join(dir, 'signet.lock'), 'utf8'), `"pid":${process.pid}`);
    assert.is((await s.load('default')).updates.length, 300);
    await s.close();
    assert.not.ok(existsSync(join(dir, 'signet.lock')));
  }));

test('after close, load and commit reject with StoreError; close again resolves', () =>
  withDir(async (dir) => {
    const s = new LmdbStore(dir);
    const pending = s.commit('default', batch({ put: [[hash(1), env(1)]] }));
    await s.close(); // waits for the pending commit
    await pending;
    await rejects(s.load('default'), StoreError, /is closed/);
    await rejects(s.commit('default', batch({ put: [[hash(2), env(2)]] })), StoreError, /is closed/);
    await s.close();
    const t = new LmdbStore(dir);
    assert.is((await t.load('default')).updates.length, 1);
    await t.close();
  }));

test('a malformed batch is refused before anything of it is written', () =>
  withDir(async (dir) => {
    const s = new LmdbStore(dir);
    const bad: Array<[unknown, RegExp, new (...args: never[]) => Error]> = [
      [batch({ put: [[hash(1), env(1)], ['not-hex', env(2)]] }), /64 lowercase hex/, RangeError],
      [batch({ put: [[hash(1), env(1)]], drop: [hash(2).toUpperCase()] }), /64 lowercase hex/, RangeError],
      [batch({ put: [[hash(1), 'text' as unknown as Uint8Array]] }), /Uint8Array/, TypeError],
      [batch({ put: [[hash(1), env(1)]], clock: [['x', 1.5]] }), /safe integer/, RangeError],
      [batch({ put: [[hash(1), env(1)]], meta: [['', 1]] }), /1\.\.128/, RangeError],
      [batch({ put: [[hash(1), env(1)]], meta: [['m'.repeat(MAX_STORE_NAME_LENGTH + 1), 1]] }), /1\.\.128/, RangeError],
      [batch({ put: [[hash(1), env(1)]], clock: [['s'.repeat(MAX_STORE_NAME_LENGTH + 1), 1]] }), /1\.\.128/, RangeError],
      [batch({ put: [[hash(1), env(1)]], meta: [['m', NaN]] }), /finite number/, TypeError],
      [{ put: [[hash(1), env(1)]] }, /batch\.drop/, TypeError],
    ];
    for (const [b, message, type] of bad) await rejects(s.commit('default', b as StoreBatch), type, message);
    await rejects(s.load(42 as unknown as string), TypeError, /"dataset" expected string/);
    for (const name of ['', 'x'.repeat(129), 'a\nb']) await rejects(s.load(name), RangeError, /"dataset" expected 1\.\.128/);
    await s.commit('ok', batch({}));
    assert.equal(await s.load('default'), { updates: [], clock: [], meta: [] });
    const longest = 'n'.repeat(MAX_STORE_NAME_LENGTH); // at the limit: accepted
    await s.commit('x'.repeat(128), batch({ clock: [[longest, 1]], meta: [[longest, 2]] }));
    assert.equal(await s.load('x'.repeat(128)), { updates: [], clock: [[longest, 1]], meta: [[longest, 2]] });
    assert.throws(() => new LmdbStore(dir + '-2', { durability: 'fsync' as 'flush' }), /durability/);
    await s.close();
  }));

test.run();
