// Review: after a restart from a store whose clock is ahead of the updates it still holds for a
// source (the source's newest update lost last-writer-wins and was dropped), receiving that
// newest update again must not be taken as equivocation (nor quarantine an honest source).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Model, MemoryStore, signUpdate } from '../../src/index.ts';
import { identity, testClock, fakeOrigin, T0 } from '../core/helpers.ts';

const S = identity(0x51);
const T = identity(0x52);
const X = identity(0x53);

test('restart: a dropped latest update arriving again is old, not equivocation', async () => {
  const clock = testClock();
  const store = new MemoryStore();
  const a = new Model({ identity: X, now: clock.now, store, quarantine: true });
  await a.ready;
  const s1 = signUpdate(S, { dataset: 'default', version: T0 - 3000, body: ['set', 'a', 1] });
  const s2 = signUpdate(S, { dataset: 'default', version: T0 - 2000, body: ['set', 'b', 2] });
  const t3 = signUpdate(T, { dataset: 'default', version: T0 - 1000, body: ['set', 'b', 3] });
  for (const u of [s1, s2, t3]) assert.is((await a.ingest(u.bytes, fakeOrigin())).status, 'applied');
  a.dispose();
  const b = new Model({ identity: X, now: clock.now, store, quarantine: true });
  await b.ready;
  assert.is(b.clock.get(S.id), T0 - 2000);
  const seen: unknown[] = [];
  b.on('equivocation', (e) => seen.push(e));
  const r = await b.ingest(s2.bytes, fakeOrigin());
  assert.is(r.status, 'old');
  assert.is(seen.length, 0);
  assert.is(b.isQuarantined(S.id), false);
  assert.is(b.equivocations().length, 0);
  // and S's next genuine update still applies
  const s4 = signUpdate(S, { dataset: 'default', version: T0 - 500, body: ['set', 'c', 4] });
  assert.is((await b.ingest(s4.bytes, fakeOrigin())).status, 'applied');
  b.dispose();
});

test.run();
