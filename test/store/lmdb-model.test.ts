// A Model on an LmdbStore: local writes, TTL keys, deletes, a purge and another source's
// replicated updates survive disposing the model, closing the store and reopening both.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LmdbStore, Model } from '../../src/index.ts';
import { identity, testClock, syncOnce, updates } from '../core/helpers.ts';

const A = identity(0x51);
const B = identity(0x52);
const clockOf = (m: Model) => JSON.stringify([...m.clock].sort());
const entriesOf = (m: Model) => JSON.stringify(m.entries().sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));

test('a model closed and reopened from its LmdbStore has the same state, clock, TTLs and purge floor', async () => {
  const parent = mkdtempSync(join(tmpdir(), 'signet-lmdb-model-'));
  const dir = join(parent, 'store');
  const clock = testClock();
  try {
    let store = new LmdbStore(dir);
    let model = new Model({ identity: A, store, now: clock.now, tombstoneHorizonMs: 60_000 });
    await model.ready;
    for (let i = 0; i < 300; i++) {
      model.set(`k${i}`, { i, text: 'v'.repeat(i % 40) }, i % 5 === 0 ? { ttl: 10_000 + i * 1000 } : undefined);
      if (i % 17 === 0) clock.advanceMs(1);
    }
    for (let i = 0; i < 300; i += 7) model.delete(`k${i}`);
    clock.advanceMs(120_000); // TTLs of 10..130 s: some expired, some not; tombstones past the horizon
    const purged = model.purge();
    assert.ok(purged > 0, 'purge collected tombstones and expired entries');
    for (let i = 0; i < 20; i++) model.set(`late${i}`, i, { ttl: 5_000 });

    // Another source's updates, replicated in.
    const other = new Model({ identity: B, now: clock.now });
    await other.ready;
    for (let i = 0; i < 50; i++) other.set(`b${i}`, i);
    const arrived = updates(model, 50);
    await syncOnce(model, other);
    await arrived;
    other.dispose();

    const before = { hash: model.stateHash(), clock: clockOf(model), entries: entriesOf(model), floor: model.purgedThrough };
    const signed = model.clock.get(A.id)!;
    model.dispose();
    await store.close();

    store = new LmdbStore(dir);
    model = new Model({ identity: A, store, now: clock.now, tombstoneHorizonMs: 60_000 });
    await model.ready;
    assert.is(model.stateHash(), before.hash);
    assert.is(clockOf(model), before.clock);
    assert.is(entriesOf(model), before.entries);
    assert.is(model.purgedThrough, before.floor);
    assert.is(model.get('b49'), 49);
    assert.is(model.get('late3'), 3);

    clock.advanceMs(5_001); // the late TTL keys expire after the restart as they would have before
    assert.is(model.get('late3'), undefined);
    assert.equal(model.get('k1'), { i: 1, text: 'v' });
    assert.is(model.get('k7'), undefined); // deleted
    assert.is(model.get('k5'), undefined); // expired before the restart
    assert.is(model.set('after', 1).version > signed, true, 'the next own version is above every one signed before');
    model.dispose();
    await store.close();
  } finally {
    rmSync(parent, { recursive: true, force: true });
  }
});

test.run();
