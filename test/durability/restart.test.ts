// Restart from disk: a model with 100,000 keys (some deleted, some with a TTL, some written by
// another source and replicated in) closed and reopened from its LmdbStore directory has the same
// stateHash(), clock and TTL expiries; and a peer that synced before the restart is sent nothing
// it already has afterwards (updates counted on the wire).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LmdbStore, Model, type ReplicationStream } from '../../src/index.ts';
import { identity, testClock, syncOnce } from '../core/helpers.ts';
import { next } from '../helpers/streams.ts';

const A = identity(0xd1);
const B = identity(0xd2);
const P = identity(0xd3);
const KEYS = 100_000;

test(`${KEYS.toLocaleString('en-US')} keys survive close and reopen; a peer in sync before is sent nothing after`, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'signet-restart-'));
  const clock = testClock();
  try {
    let store = new LmdbStore(dir);
    let a = new Model({ identity: A, now: clock.now, store });
    await a.ready;
    for (let i = 0; i < KEYS; i++) {
      if (i % 100 === 1) a.set(`k${i}`, i, { ttl: 1_000 + i }); // 1% with a TTL, expiring at different times
      else a.set(`k${i}`, { i, v: 'x'.repeat(i % 50) });
      if (i % 5_000 === 0) await new Promise((r) => setImmediate(r));
    }
    for (let i = 0; i < KEYS; i += 97) a.delete(`k${i}`); // ~1% deleted
    // another source's writes, replicated in
    const b = new Model({ identity: B, now: clock.now });
    await b.ready;
    for (let i = 0; i < 2_000; i++) b.set(`b${i}`, i);
    await syncOnce(b, a);
    b.dispose();
    // a peer syncs fully before the restart
    const peer = new Model({ identity: P, now: clock.now });
    await peer.ready;
    await syncOnce(a, peer);
    assert.is(peer.stateHash(), a.stateHash());
    const hash = a.stateHash();
    const clockBefore = JSON.stringify([...a.clock].sort());
    const ttlKeys = a.keys().filter((k) => Number(k.slice(1)) % 100 === 1);
    const expiries = new Map(ttlKeys.map((k) => [k, a.updateOf(k)!.version]));
    await new Promise((r) => setImmediate(r));
    a.dispose();
    await store.close();

    store = new LmdbStore(dir);
    a = new Model({ identity: A, now: clock.now, store });
    await a.ready;
    assert.is(a.stateHash(), hash, 'same state');
    assert.is(JSON.stringify([...a.clock].sort()), clockBefore, 'same clock');
    assert.is(a.keys().length, peer.keys().length);
    for (const [k, version] of expiries) assert.is(a.updateOf(k)!.version, version, `${k}: same signed version, so the same expiry`);
    // TTLs expire alike on the reopened node and the peer
    clock.advanceMs(1_500);
    assert.is(a.stateHash(), peer.stateHash(), 'expired alike');
    assert.ok(ttlKeys.some((k) => !a.has(k)) && ttlKeys.some((k) => a.has(k)), 'some expired, some not yet');

    // reconnect: neither side sends anything the other has
    const sa: ReplicationStream = a.createStream({ tail: false });
    const sp: ReplicationStream = peer.createStream({ tail: false });
    sa.pipe(sp).pipe(sa);
    await Promise.all([next(sa, 'sync'), next(sp, 'sync')]);
    assert.is(sa.stats.sent, 0, 'the reopened node sends nothing the peer has');
    assert.is(sp.stats.sent, 0, 'and receives nothing it has');
    sa.destroy();
    sp.destroy();
    peer.dispose();
    a.dispose();
    await store.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
