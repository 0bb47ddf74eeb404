// The directory an LmdbStore lives in: what it may hold, LMDB's header checked before LMDB sees
// it, the format record's check, the close-time seal, the lock file, and the refusal messages.
import { createHash, randomBytes } from 'node:crypto';
import {
  accessSync, constants, closeSync, fsyncSync, linkSync, lstatSync, mkdirSync, openSync, readFileSync, readSync, readdirSync, renameSync, unlinkSync,
  writeFileSync, type Stats,
} from 'node:fs';
import { open as openFile } from 'node:fs/promises';
import { join } from 'node:path';
import { StoreError } from '../errors.ts';

/** The on-disk format this code writes and reads. A store with a higher one is refused; a
 *  format-1 store (envelopes keyed by hash only) is carried forward when it opens (see LmdbStore).
 *  Format 2 added envelopes keyed by (source, version, hash). */
export const LMDB_STORE_FORMAT = 2;
/** Held while a store is open: `{ pid, nonce }` of its holder. */
export const LOCK_FILE = 'signet.lock';
/** `{ state: 'open' }`, or after a clean close `{ state: 'closed', size, sha256 }` of the data file. */
export const SEAL_FILE = 'signet.seal';
/** LMDB's data file. */
export const DATA_FILE = 'data.mdb';
/** Files a directory may hold and still count as new: LMDB's lock file and signet's own files. */
const isOwnLeftover = (name: string) => name === 'lock.mdb' || name.startsWith('signet.');

/** The directory holds something other than a signet store. */
export const notSignet = (path: string, what: string, cause?: unknown) =>
  new StoreError(`${path} is not a signet store: it holds ${what}. Point the store at a new or empty directory; nothing in ${path} was changed`, { cause });
/** The store's files are damaged. */
export const damaged = (path: string, what: string, cause?: unknown) =>
  new StoreError(`signet store ${path} is damaged: ${what}. signet never repairs or resets a store: restore the directory from a backup, or move it aside to start empty`, { cause });

/** Creates a missing store directory (mode 0700); refuses a path that is not a directory. */
export function prepareDirectory(path: string): void {
  let stats: Stats;
  try {
    stats = lstatSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new StoreError(`signet store ${path} cannot be read: ${(err as Error).message}`, { cause: err });
    try {
      mkdirSync(path, { recursive: true, mode: 0o700 });
    } catch (err2) {
      throw new StoreError(`signet store ${path} cannot be created: ${(err2 as Error).message}`, { cause: err2 });
    }
    return;
  }
  if (!stats.isDirectory()) throw notSignet(path, 'no directory (it is a file); a store is a directory');
}

/** True if the directory holds a data file; false if it may become a new store. */
export function inspectDirectory(path: string): boolean {
  const names = readdirSync(path);
  if (names.includes(DATA_FILE)) {
    if (!lstatSync(join(path, DATA_FILE)).isFile()) throw notSignet(path, `a ${DATA_FILE} that is not a regular file`);
    return true;
  }
  const other = names.filter((n) => !isOwnLeftover(n));
  if (other.length > 0) throw notSignet(path, `other files (${other.slice(0, 3).join(', ')}${other.length > 3 ? ', ...' : ''}) and no ${DATA_FILE}`);
  return false;
}

/** Refuses a format record that names no format, or a newer format than this code reads. */
export function checkFormat(path: string, record: unknown): void {
  const format = (record as { format?: unknown } | null)?.format;
  if (typeof format !== 'number' || !Number.isInteger(format) || format < 1) throw damaged(path, `its format record ${JSON.stringify(record)} names no format`);
  if (format > LMDB_STORE_FORMAT) {
    throw new StoreError(`signet store ${path} has format ${format}, newer than this signet-sync ${packageVersion()} reads (format ${LMDB_STORE_FORMAT}): upgrade signet-sync to open it; the store was not changed`);
  }
}

/**
 * Checks LMDB's header before LMDB sees the file: lmdb-js 3.5.6 crashes the process (a double
 * free in the failure path of its native open) whenever mdb_env_open fails, and a page past the
 * end of the file faults (SIGBUS) when read. The layout (LMDB data version 2, as lmdb-js builds it):
 * a 24-byte page header (flags at 18, P_META = 0x08), then the meta: magic u32 0xBEEFC0DE at 24,
 * version u32 at 28, page size u32 at 48, the free list's root u64 at 88, the main tree's root
 * u64 at 136, txnid u64 at 152; meta pages at 0 and at one page, lmdb-js's "flushed" meta slot at
 * half a page (written from the map size on). LMDB opens the meta with the higher txnid; every
 * page its trees reach is read here once (see walkTrees): after a clean close the seal's SHA-256
 * reads the whole file anyway.
 */
export function checkHeader(path: string): void {
  const file = join(path, DATA_FILE);
  try {
    accessSync(path, constants.W_OK | constants.X_OK);
    accessSync(file, constants.R_OK | constants.W_OK);
  } catch (err) {
    throw new StoreError(`signet store ${path} cannot be opened for writing: ${(err as Error).message}. Give this user read and write access to the directory and its files`, { cause: err });
  }
  const size = lstatSync(file).size;
  if (size === 0) return; // LMDB starts an empty file as a new environment
  const head = Buffer.alloc(2 * 65536);
  const fd = openSync(file, 'r');
  try {
    readSync(fd, head, 0, head.length, 0);
  } finally {
    closeSync(fd);
  }
  const notLmdb = (why: string) => damaged(path, `${DATA_FILE} is not an LMDB data file (${why})`);
  if (size < 192 || !(head.readUInt16LE(18) & 0x08) || head.readUInt32LE(24) !== 0xbeefc0de) throw notLmdb('no LMDB meta page at its start');
  if ((head.readUInt32LE(28) & 0xffff) !== 2) throw notLmdb(`LMDB data version ${head.readUInt32LE(28) & 0xffff}, expected 2`);
  const pageSize = head.readUInt32LE(48);
  if (pageSize < 256 || pageSize > 65536 || (pageSize & (pageSize - 1)) !== 0) throw notLmdb(`page size ${pageSize}`);
  if (size < 2 * pageSize) throw damaged(path, `${DATA_FILE} is ${size} bytes, shorter than its two meta pages of ${pageSize} (truncated)`);
  // The pages a meta claims (last page + 1) may run past the end of the file: LMDB never writes
  // a page that was dirtied and freed in one transaction (P_LOOSE), so a process killed after
  // such a commit leaves a valid file shorter than that (seen in test/durability/crash.test.ts).
  // What must lie inside the file is every page the tree of the meta LMDB opens reaches: its
  // free list, its main tree, the sub-databases' trees and their overflow pages.
  const pages = Math.floor(size / pageSize);
  const newest = head.readBigUInt64LE(152) >= head.readBigUInt64LE(pageSize + 152) ? 0 : pageSize;
  if (head.readBigUInt64LE(newest + 152) === 0n) return; // never committed
  const reached = walkTrees(file, pageSize, pages, [head.readBigUInt64LE(newest + 88), head.readBigUInt64LE(newest + 136)]);
  if (reached !== null) throw damaged(path, `${DATA_FILE} is ${size} bytes: ${reached}`);
}

/** LMDB's "no page" (an empty tree's root). */
const NO_PAGE = 0xffff_ffff_ffff_ffffn;

/** Pages read per chunk while walking the trees: one sequential pass over the file. */
const WALK_CHUNK_PAGES = 256;

/**
 * Checks that every page the B-trees from `roots` reach lies inside the file's `pages` pages, and
 * is what it is reached as. One sequential pass reads every page once and notes its references;
 * then the references are followed from the roots (stale free pages are read but never followed).
 * Layout (LMDB, 24-byte page header): flags u16 at 18 (P_BRANCH 0x01, P_LEAF 0x02, P_OVERFLOW
 * 0x04, P_LEAF2 0x20), lower u16 at 20 (an overflow page's page count u32 at 20); node offsets
 * (u16, from the header's end) after the header; a node: lo u16, hi u16, flags u16, key size u16,
 * key, data. A branch node's child is lo | hi << 16 | flags << 32; a leaf node's data is an
 * overflow page number (u64, F_BIGDATA 0x01) or a sub-database record (F_SUBDATA 0x02: 48 bytes,
 * its root u64 at 40).
 * @returns null if every page reached is inside and is what it is reached as, else what is wrong.
 */
function walkTrees(file: string, pageSize: number, pages: number, roots: bigint[]): string | null {
  const flagsOf = new Uint8Array(pages); // low byte of each page's flags
  const overflowPages = new Map<number, number>(); // overflow page -> pages in its run
  const first = new Int32Array(pages + 1); // references of page p: [first[p], first[p + 1])
  const target: number[] = [];
  const isOverflow: boolean[] = [];
  const fd = openSync(file, 'r');
  try {
    const chunk = Buffer.alloc(WALK_CHUNK_PAGES * pageSize);
    let skipUntil = 0; // pages inside an overflow run hold a value, not a page header
    for (let start = 0; start < pages; start += WALK_CHUNK_PAGES) {
      const count = Math.min(WALK_CHUNK_PAGES, pages - start);
      readSync(fd, chunk, 0, count * pageSize, start * pageSize);
      for (let i = 0; i < count; i++) {
        const p = start + i;
        first[p] = target.length;
        if (p < skipUntil) continue;
        const at = i * pageSize;
        const flags = chunk.readUInt16LE(at + 18);
        flagsOf[p] = flags & 0xff;
        if (flags & 0x04) {
          const run = chunk.readUInt32LE(at + 20);
          overflowPages.set(p, run);
          skipUntil = p + run;
          continue;
        }
        if (!(flags & 0x03) || flags & 0x20) continue;
        const nodes = chunk.readUInt16LE(at + 20) >> 1;
        for (let k = 0; k < nodes && 26 + 2 * k <= pageSize; k++) {
          const node = 24 + chunk.readUInt16LE(at + 24 + 2 * k);
          if (node + 8 > pageSize) break; // not followed unless reached, then refused below
          const lo = chunk.readUInt16LE(at + node);
          const hi = chunk.readUInt16LE(at + node + 2);
          const nodeFlags = chunk.readUInt16LE(at + node + 4);
          if (flags & 0x01) {
            target.push(lo + hi * 0x1_0000 + nodeFlags * 0x1_0000_0000);
            isOverflow.push(false);
            continue;
          }
          const data = node + 8 + chunk.readUInt16LE(at + node + 6);
          if (nodeFlags & 0x01 && data + 8 <= pageSize) {
            target.push(Number(chunk.readBigUInt64LE(at + data)));
            isOverflow.push(true);
          } else if (nodeFlags & 0x02 && data + 48 <= pageSize) {
            const root = chunk.readBigUInt64LE(at + data + 40);
            if (root !== NO_PAGE) {
              target.push(Number(root));
              isOverflow.push(false);
            }
          }
        }
      }
    }
    first[pages] = target.length;
  } finally {
    closeSync(fd);
  }
  const reached = new Uint8Array(pages);
  const stack = roots.filter((r) => r !== NO_PAGE).map(Number);
  while (stack.length > 0) {
    const p = stack.pop()!;
    if (p >= pages) return `page ${p} of ${pageSize} bytes, which its trees reach, lies past its end (truncated)`;
    if (reached[p]) continue;
    reached[p] = 1;
    const flags = flagsOf[p]!;
    if (!(flags & 0x03) || flags & 0x04) return `page ${p}, which its trees reach, is neither a branch nor a leaf`;
    for (let r = first[p]!; r < first[p + 1]!; r++) {
      const t = target[r]!;
      if (!isOverflow[r]) {
        stack.push(t);
        continue;
      }
      if (t >= pages) return `overflow page ${t} of ${pageSize} bytes lies past its end (truncated)`;
      const run = overflowPages.get(t);
      if (run === undefined) return `page ${t}, which its trees reach, is not an overflow page`;
      if (t + run > pages) return `overflow pages ${t}-${t + run - 1} of ${pageSize} bytes run past its end (truncated)`;
    }
  }
  return null;
}

/** What `signet.seal` holds. */
export type Seal = { state: 'open' } | { state: 'closed'; size: number; sha256: string };

/** Refuses a data file that differs from what the last clean close recorded. */
export function checkSeal(path: string): void {
  let seal: Seal | null;
  try {
    seal = JSON.parse(readFileSync(join(path, SEAL_FILE), 'utf8')) as Seal | null;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return; // no seal: nothing to compare
    throw damaged(path, `${SEAL_FILE} is unreadable (${(err as Error).message})`, err);
  }
  if (seal?.state !== 'closed') return; // not closed cleanly (killed): the header's checks only
  const now = digestFileSync(join(path, DATA_FILE));
  if (now.size !== seal.size) throw damaged(path, `${DATA_FILE} is ${now.size} bytes, but it was ${seal.size} at its last clean close (truncated or changed)`);
  if (now.sha256 !== seal.sha256) {
    throw damaged(path, `${DATA_FILE} changed since its last clean close (SHA-256 differs from ${SEAL_FILE}; if you changed it on purpose with another LMDB tool, remove ${SEAL_FILE})`);
  }
}

/** Writes the seal durably (temporary file, fsync, rename, fsync of the directory). */
export function writeSeal(path: string, seal: Seal): void {
  const tmp = join(path, `${SEAL_FILE}.tmp`);
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeFileSync(fd, JSON.stringify(seal) + '\n');
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, join(path, SEAL_FILE));
  syncPath(path);
}

/** fsync of a directory, so a rename in it is durable. */
function syncPath(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Size and SHA-256 of a file, read in 1 MiB pieces. */
function digestFileSync(file: string): { size: number; sha256: string } {
  const hash = createHash('sha256');
  const buf = Buffer.allocUnsafe(1 << 20);
  const fd = openSync(file, 'r');
  let size = 0;
  try {
    for (let n; (n = readSync(fd, buf, 0, buf.length, null)) > 0; size += n) hash.update(buf.subarray(0, n));
  } finally {
    closeSync(fd);
  }
  return { size, sha256: hash.digest('hex') };
}

/** Flushes the data file to disk, then hashes it (what a later open compares against). */
export async function digestFile(file: string): Promise<{ size: number; sha256: string }> {
  const fh = await openFile(file, 'r');
  const hash = createHash('sha256');
  const buf = Buffer.allocUnsafe(1 << 20);
  let size = 0;
  try {
    await fh.sync();
    for (let n; (n = (await fh.read(buf, 0, buf.length, null)).bytesRead) > 0; size += n) hash.update(buf.subarray(0, n));
  } finally {
    await fh.close();
  }
  return { size, sha256: hash.digest('hex') };
}

/** Creates `signet.lock` exclusively (link of a complete temporary file, so it is never seen
 *  empty); takes over a lock whose process is gone. Returns the lock's content. */
export function acquireLock(path: string): string {
  const lock = join(path, LOCK_FILE);
  const token = JSON.stringify({ pid: process.pid, nonce: randomBytes(8).toString('hex') }) + '\n';
  const tmp = join(path, `${LOCK_FILE}.${process.pid}.${randomBytes(4).toString('hex')}`);
  writeFileSync(tmp, token, { mode: 0o600 });
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        linkSync(tmp, lock);
        return token;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new StoreError(`signet store ${path}: cannot create ${lock}: ${(err as Error).message}`, { cause: err });
      }
      const holder = lockHolder(lock);
      const inUse = `signet store ${path} is in use`;
      if (holder === process.pid) throw new StoreError(`${inUse} by this process (another LmdbStore holds it): close that one first`);
      if (holder !== null && alive(holder)) throw new StoreError(`${inUse} by process ${holder} (${lock}): stop that process first, or, if it is not signet, remove the lock file`);
      if (holder === null || attempt > 0) throw new StoreError(`${inUse}: ${lock} exists and names no live process; if no signet process uses the directory, remove the lock file`);
      unlinkSync(lock); // stale: its process is gone
    }
  } finally {
    unlinkSync(tmp);
  }
}

/** The pid a lock file names, or null if it names none. */
function lockHolder(lock: string): number | null {
  try {
    const pid = (JSON.parse(readFileSync(lock, 'utf8')) as { pid?: unknown }).pid;
    return Number.isSafeInteger(pid) && (pid as number) > 0 ? (pid as number) : null;
  } catch {
    return null;
  }
}

/** Whether a process with this pid exists (on this host, in this pid namespace). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ESRCH'; // EPERM: alive, someone else's
  }
}

/** Removes the lock if it is still the one `acquireLock` made (never another holder's). */
export function releaseLock(path: string, token: string): void {
  const lock = join(path, LOCK_FILE);
  try {
    if (readFileSync(lock, 'utf8') === token) unlinkSync(lock);
  } catch {}
}

let version: string | undefined;
/** The package version (package.json sits two levels up from src/store and dist/store alike). */
export function packageVersion(): string {
  try {
    version ??= (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    version = 'unknown';
  }
  return version;
}
