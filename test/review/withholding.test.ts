// Review (design, not fixed): a clock entry means "everything of this source up to here", but a
// peer decides which of a source's updates it relays. A malicious relay that sends S's newer
// update and withholds an older one still live for another key advances the victim's clock past
// it: no honest peer ever offers it again (the digest says the victim has it), so the victim
// permanently lacks a genuine, signed write: censorship by omission, and replicas diverge.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Model, signUpdate } from '../../src/index.ts';
import { identity, testClock, fakeOrigin, syncOnce, T0 } from '../core/helpers.ts';

const S = identity(0x71);
const V = identity(0x72);

test('BUG (design): a relay that withholds an older update of a source censors it for good', async () => {
  const clock = testClock();
  const s = new Model({ identity: S, now: clock.now });
  const victim = new Model({ identity: V, now: clock.now });
  await Promise.all([s.ready, victim.ready]);
  const older = signUpdate(S, { dataset: 'default', version: T0 - 2000, body: ['set', 'x', 'censored'] });
  const newer = signUpdate(S, { dataset: 'default', version: T0 - 1000, body: ['set', 'y', 'relayed'] });
  for (const u of [older, newer]) await s.ingest(u.bytes, fakeOrigin());
  // the malicious relay hands over only the newer one
  assert.is((await victim.ingest(newer.bytes, fakeOrigin())).status, 'applied');
  // later the victim syncs with S itself (honest)
  await syncOnce(s, victim);
  assert.is(victim.get('x'), 'censored', 'the withheld update never arrives');
  assert.is(victim.stateHash(), s.stateHash());
  s.dispose();
  victim.dispose();
});

// Same root cause: equivocation is only noticed at a source's latest version. A writer that
// equivocates at v (different keys) and then writes v+1 leaves two replicas that each hold one
// side of the equivocation, with equal clocks: neither ever learns of the other side.
test('BUG (design): an equivocation below the latest version is never detected; replicas diverge', async () => {
  const clock = testClock();
  const a = new Model({ identity: identity(0x73), now: clock.now });
  const b = new Model({ identity: identity(0x74), now: clock.now });
  await Promise.all([a.ready, b.ready]);
  const u1 = signUpdate(S, { dataset: 'default', version: T0 - 2000, body: ['set', 'p', 1] });
  const u2 = signUpdate(S, { dataset: 'default', version: T0 - 2000, body: ['set', 'q', 2] });
  const u3 = signUpdate(S, { dataset: 'default', version: T0 - 1000, body: ['set', 'r', 3] });
  await a.ingest(u1.bytes, fakeOrigin());
  await b.ingest(u2.bytes, fakeOrigin());
  await b.ingest(u3.bytes, fakeOrigin());
  await syncOnce(a, b);
  assert.is(a.stateHash(), b.stateHash(), 'a holds p, b never gets it');
  a.dispose();
  b.dispose();
});

test.run();
