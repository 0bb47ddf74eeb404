// A long initial sync reports progress from the peer's digest, and a stream whose peer never
// says hello is cut after a deadline instead of hanging (issue 8).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Model, signUpdate, type ProtocolError } from '../../src/index.ts';
import type { Progress } from '../../src/replication/stream.ts';
import { identity, testClock, fakeOrigin, T0 } from '../core/helpers.ts';
import { next, closed } from '../helpers/streams.ts';

const A = identity(0x91);
const B = identity(0x92);
const sources = [identity(0x93), identity(0x94), identity(0x95)];

test("'progress' during history: sources caught up of those the peer's digest is ahead on, and updates received", async () => {
  const clock = testClock();
  const a = new Model({ identity: A, now: clock.now });
  const b = new Model({ identity: B, now: clock.now });
  await Promise.all([a.ready, b.ready]);
  try {
    const perSource = 40;
    for (const [s, src] of sources.entries()) {
      for (let i = 0; i < perSource; i++) {
        const u = signUpdate(src, { dataset: 'default', version: T0 - 1_000_000 + i, body: ['set', `s${s}k${i}`, 'x'.repeat(200)] });
        assert.is((await a.ingest(u.bytes, fakeOrigin())).status, 'applied');
      }
    }
    const sa = a.createStream({ mtu: 2048 });
    const sb = b.createStream();
    const seen: Progress[] = [];
    sb.on('progress', (p) => seen.push(p));
    sa.pipe(sb).pipe(sa);
    await next(sb, 'sync');
    assert.ok(seen.length > 3, `several progress events during history (${seen.length})`);
    for (let i = 1; i < seen.length; i++) {
      assert.ok(seen[i]!.received >= seen[i - 1]!.received && seen[i]!.sourcesDone >= seen[i - 1]!.sourcesDone, 'monotonic');
    }
    assert.equal(seen.at(-1), { sourcesDone: 3, sourcesTotal: 3, received: 3 * perSource });
    assert.ok(seen.every((p) => p.sourcesTotal === 3));
    sa.destroy();
    sb.destroy();
  } finally {
    a.dispose();
    b.dispose();
  }
});

test("a peer that never says hello: cut 'hello-timeout' after helloTimeoutMs; a read-only stream needs no hello", async () => {
  const a = new Model({ identity: A, now: testClock().now });
  const b = new Model({ identity: B, now: testClock().now });
  await Promise.all([a.ready, b.ready]);
  try {
    // a two-way stream facing a write-only stream without sendClock: the write-only side never speaks
    const twoWay = a.createStream({ helloTimeoutMs: 50 });
    const writeOnly = b.createWriteStream({ helloTimeoutMs: 0 });
    twoWay.pipe(writeOnly).pipe(twoWay);
    const [reason] = await next<[ProtocolError]>(twoWay, 'cut');
    assert.is(reason.reason, 'hello-timeout');
    assert.match(reason.message, /sendClock/);
    await closed(twoWay);
    writeOnly.destroy();
    // a read-only stream sends its history at once and waits for nobody
    const readOnly = a.createReadStream({ helloTimeoutMs: 1, tail: false });
    let cut = false;
    readOnly.on('cut', () => (cut = true));
    readOnly.resume();
    await next(readOnly, 'end');
    assert.not.ok(cut);
    assert.throws(() => a.createStream({ helloTimeoutMs: -1 }), RangeError);
  } finally {
    a.dispose();
    b.dispose();
  }
});

test.run();
