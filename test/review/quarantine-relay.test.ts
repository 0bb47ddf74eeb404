// Review: a quarantined source's validly signed updates, relayed by an honest peer that has not
// seen the equivocation, must not cost that peer its connection (else one misbehaving writer
// partitions honest nodes from each other).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Model, signUpdate } from '../../src/index.ts';
import { identity, testClock, fakeOrigin, connect, T0 } from '../core/helpers.ts';
import { synced } from '../helpers/streams.ts';

const S = identity(0x61); // equivocates
const W = identity(0x62); // honest writer
const A = identity(0x63);
const B = identity(0x64);

test('quarantine: relaying a quarantined source is not a fault; the rest of the relay still arrives', async () => {
  const clock = testClock();
  const a = new Model({ identity: A, now: clock.now, quarantine: true });
  const b = new Model({ identity: B, now: clock.now, quarantine: true });
  await Promise.all([a.ready, b.ready]);
  const v = T0 - 10_000_000;
  const u1 = signUpdate(S, { dataset: 'default', version: v, body: ['set', 'k', 1] });
  const u2 = signUpdate(S, { dataset: 'default', version: v, body: ['set', 'k', 2] });
  await a.ingest(u1.bytes, fakeOrigin());
  await a.ingest(u2.bytes, fakeOrigin());
  assert.ok(a.isQuarantined(S.id));
  // b only ever saw u1, then 100 later updates of S (distinct keys, so history holds them all)
  const bo = fakeOrigin();
  await b.ingest(u1.bytes, bo);
  for (let i = 1; i <= 100; i++) await b.ingest(signUpdate(S, { dataset: 'default', version: v + i, body: ['set', `s${i}`, i] }).bytes, bo);
  const w = signUpdate(W, { dataset: 'default', version: v + 1000, body: ['set', 'w', 'honest'] });
  await b.ingest(w.bytes, bo);
  const { sa, sb } = connect(a, b);
  await Promise.all([synced(sa), synced(sb)]);
  assert.is(sa.closeReason, null);
  assert.is(sa.faults, 0);
  assert.is(a.get('w'), 'honest');
  assert.is(a.get('s1'), undefined);
  sa.destroy();
  sb.destroy();
  a.dispose();
  b.dispose();
});

test.run();
