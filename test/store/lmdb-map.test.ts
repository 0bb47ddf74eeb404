// LmdbStore's address-space reservation (LMDB_MAP_BYTES): one mapping of the data file however
// it grows within it (lmdb-js otherwise maps it again at each growth step, and every mapping's
// pages stay resident), and none where the process's address space is limited.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LmdbStore } from '../../src/index.ts';
import { LMDB_MAP_BYTES, mapSizeOption } from '../../src/store/lmdb.ts';

/** Mappings of `file` in this process, and their resident kB. */
function mappings(file: string): { count: number; residentKb: number } {
  let count = 0;
  let residentKb = 0;
  let current = '';
  for (const line of readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
    const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) {
      current = head[1]!;
      if (current === file) count++;
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss && current === file) residentKb += Number(rss[1]);
  }
  return { count, residentKb };
}

test('a store grown from empty to 40 MB is mapped once, and never holds more resident than the file', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'signet-map-'));
  const store = new LmdbStore(join(dir, 'store'));
  try {
    const value = randomBytes(400);
    for (let b = 0; b < 100; b++) {
      const put: Array<[string, Uint8Array]> = [];
      for (let i = 0; i < 1000; i++) put.push([createHash('sha256').update(`${b}/${i}`).digest('hex'), value]);
      await store.commit('grow', { put, drop: [], clock: [] });
    }
    const file = join(store.path, 'data.mdb');
    const size = statSync(file).size;
    assert.ok(size > 40e6, `file of ${size} bytes`);
    const mapped = mappings(file);
    assert.is(mapped.count, 1, 'one mapping');
    assert.ok(mapped.residentKb * 1024 <= size, `resident ${mapped.residentKb} kB of a ${size}-byte file`);
    assert.ok(LMDB_MAP_BYTES >= 2 ** 30);
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the reservation is skipped where the address space is limited below 4x it (ulimit -v), kept where it is not', () => {
  const limits = (soft: string) => `Limit                     Soft Limit           Hard Limit           Units     \nMax address space         ${soft.padEnd(20)} unlimited            bytes     \n`;
  assert.equal(mapSizeOption(limits('unlimited')), { mapSize: LMDB_MAP_BYTES });
  assert.equal(mapSizeOption(limits(String(4 * LMDB_MAP_BYTES))), { mapSize: LMDB_MAP_BYTES }, 'at 4x');
  assert.equal(mapSizeOption(limits(String(4 * LMDB_MAP_BYTES - 1))), {}, 'one byte under');
  assert.equal(mapSizeOption(limits('garbage')), {}, 'unreadable limit: lmdb-js defaults');
  assert.equal(mapSizeOption(''), { mapSize: LMDB_MAP_BYTES }, 'no /proc');
  assert.equal(mapSizeOption(readFileSync('/proc/self/limits', 'utf8')), mapSizeOption(), 'reads /proc/self/limits by default');
});

test.run();
