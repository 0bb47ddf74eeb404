// What a model keeps for long is a record of its own: envelopes rebuilt from a stream are views
// of shared chunks (src/util/slab.ts), so an update kept for minutes as such a view would keep a
// whole chunk alive. Deferred updates and remembered superseded arrivals are made compact at once,
// and after a sync no held update is a view any more.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Model, signUpdate, limits, type Update } from '../../src/index.ts';
import { FRESH_WINDOW, isCompact, parseUpdate } from '../../src/envelope/update.ts';
import { Evidence } from '../../src/core/evidence.ts';
import { identity, testClock, fakeOrigin, flipSignature, storedModel, syncOnce, T0 } from './helpers.ts';

const S = identity(7);
const R = identity(8);

test('a deferred update is compact while it waits, and applies as itself when due', async () => {
  const clock = testClock();
  const { model } = await storedModel({ identity: R, now: clock.now });
  try {
    const ahead = signUpdate(S, { dataset: 'default', version: T0 + limits.MAX_CLOCK_SKEW_MICROS + 1_000_000, body: ['set', 'k', 'early'] });
    const deferred: Update[] = [];
    model.on('deferred', (u) => deferred.push(u));
    assert.equal(await model.ingest(ahead.bytes, fakeOrigin()), { status: 'deferred' });
    assert.is(deferred.length, 1);
    assert.ok(isCompact(deferred[0]!), 'held as a record of its own');
    assert.equal(deferred[0]!.bytes, ahead.bytes, 'rebuilt bit for bit');
    clock.t = ahead.version - limits.MAX_CLOCK_SKEW_MICROS;
    assert.is(model.flushDeferred(), 1);
    assert.is(model.get('k'), 'early');
  } finally {
    model.dispose();
  }
});

test('a superseded arrival remembered as a possible equivocation is compact', () => {
  const evidence = new Evidence(false);
  const parsed = parseUpdate(signUpdate(S, { dataset: 'default', version: T0, body: ['set', 'k', 'old'] }).bytes);
  assert.ok(parsed.ok);
  if (!parsed.ok) return;
  assert.not.ok(isCompact(parsed.update));
  assert.is(evidence.takeRival(parsed.update), undefined, 'nothing to pair with yet: remembered');
  assert.ok(isCompact(parsed.update));
  // Its twin at the same version with another body meets it: the remembered one comes back intact.
  const twin = parseUpdate(signUpdate(S, { dataset: 'default', version: T0, body: ['set', 'k', 'other'] }).bytes);
  assert.ok(twin.ok);
  if (!twin.ok) return;
  const rival = evidence.takeRival(twin.update);
  assert.is(rival, parsed.update);
  assert.equal(rival!.body, ['set', 'k', 'old']);
});

test('an update handed to an old_data or invalid listener is compact: keeping it keeps no shared chunk', async () => {
  const { model } = await storedModel({ identity: R });
  try {
    const first = signUpdate(S, { dataset: 'default', version: T0, body: ['set', 'k', 'v'] });
    assert.is((await model.ingest(first.bytes, fakeOrigin())).status, 'applied');
    const kept: Update[] = [];
    model.on('old_data', (u) => kept.push(u));
    model.on('invalid', (r) => r.update && kept.push(r.update));
    assert.equal(await model.ingest(first.bytes, fakeOrigin()), { status: 'old' });
    const forged = flipSignature(signUpdate(S, { dataset: 'default', version: T0 + 1, body: ['set', 'k', 'w'] }).bytes);
    assert.is((await model.ingest(forged, fakeOrigin())).status, 'rejected');
    assert.is(kept.length, 2);
    assert.ok(kept.every(isCompact));
    assert.equal(kept[0]!.bytes, first.bytes);
  } finally {
    model.dispose();
  }
});

test('after a sync over a stream, the updates the receiver holds are compact: at most the compaction window is a view of a shared chunk', async () => {
  const source = new Model({ identity: S });
  const { model } = await storedModel({ identity: R });
  try {
    for (let i = 0; i < 300; i++) source.set(`k${i}`, `v${i}`);
    await syncOnce(source, model);
    const held = model.history();
    assert.is(held.length, 300);
    // The last FRESH_WINDOW updates held (by any model) stay fresh until the next ones are held.
    assert.ok(held.filter((u) => !isCompact(u)).length <= FRESH_WINDOW, 'at most the compaction window is fresh');
    assert.equal(model.get('k299'), 'v299');
  } finally {
    source.dispose();
    model.dispose();
  }
});

test.run();
