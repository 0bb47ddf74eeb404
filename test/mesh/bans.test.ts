// BanList with an injected clock: bans end exactly at `until`, escalate by doubling to the cap,
// are forgotten after the window, stay within maxBans by evicting the soonest-ending ban (so a
// flood of fresh addresses cannot flush a long ban), keep reasons, and refuse bad input by name.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { BanList } from '../../src/mesh/bans.ts';
import { BAN_BASE_MS, BAN_FORGET_MS, BAN_MAX_MS, MAX_BANS, MAX_BANS_CEILING, MAX_BAN_TEXT_LENGTH } from '../../src/limits.ts';

const ID = 'a'.repeat(51) + 'q';
const addr = (i: number) => ({ address: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}` });
const T0 = 1_000_000;

test('ban and expiry at the exact boundary: until - 1 banned, until not, then dropped once forgotten', () => {
  const bans = new BanList();
  const e = bans.ban({ id: ID }, 'bad-signature', T0);
  assert.equal(e, { key: { id: ID }, reason: 'bad-signature', until: T0 + BAN_BASE_MS, offences: 1 });
  assert.ok(bans.isBanned({ id: ID }, T0));
  assert.ok(bans.isBanned({ id: ID }, e.until - 1));
  assert.is(bans.bannedUntil({ id: ID }, e.until - 1), e.until);
  assert.not.ok(bans.isBanned({ id: ID }, e.until));
  assert.is(bans.bannedUntil({ id: ID }, e.until), undefined);
  assert.is(bans.size, 1, 'offences still remembered after the ban ends');
  assert.not.ok(bans.isBanned({ id: ID }, T0 + BAN_FORGET_MS));
  assert.is(bans.size, 0, 'dropped lazily once forgotten');
});

test('ids and addresses are separate keys', () => {
  const bans = new BanList();
  bans.ban({ address: '192.0.2.7' }, 'garbage-handshake', T0);
  assert.ok(bans.isBanned({ address: '192.0.2.7' }, T0));
  assert.not.ok(bans.isBanned({ id: ID }, T0));
  assert.not.ok(bans.isBanned({ address: '192.0.2.8' }, T0));
  bans.ban({ id: ID }, 'fault-budget', T0);
  assert.is(bans.size, 2);
  assert.ok(bans.unban({ address: '192.0.2.7' }));
  assert.not.ok(bans.isBanned({ address: '192.0.2.7' }, T0));
  assert.ok(bans.isBanned({ id: ID }, T0));
  assert.not.ok(bans.unban({ address: '192.0.2.7' }));
});

test('escalation: each offence within the window doubles the ban, up to the 24 h cap', () => {
  const bans = new BanList();
  let now = T0;
  const lengths: number[] = [];
  for (let n = 1; n <= 14; n++) {
    const e = bans.ban({ id: ID }, 'spam', now);
    assert.is(e.offences, n);
    lengths.push(e.until - now);
    now = e.until; // offends again the moment the ban ends
  }
  assert.equal(lengths.slice(0, 11), [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024].map((k) => k * BAN_BASE_MS));
  assert.equal(lengths.slice(11), [BAN_MAX_MS, BAN_MAX_MS, BAN_MAX_MS]);
});

test('escalation caps without overflow after thousands of offences; a re-ban never shortens a running ban', () => {
  const bans = new BanList({ baseMs: 10, maxMs: 1000 });
  let e = bans.ban({ id: ID }, 'x', 0);
  for (let i = 0; i < 5000; i++) e = bans.ban({ id: ID }, 'x', 0);
  assert.is(e.offences, 5001);
  assert.is(e.until, 1000);
  // With a forget window shorter than the ban, the count resets but the running ban is kept
  // (max of the old end and now + baseMs).
  const short = new BanList({ baseMs: 100, forgetMs: 10 });
  short.ban({ id: ID }, 'x', 0);
  short.ban({ id: ID }, 'x', 0); // 2nd offence: until 200
  const e2 = short.ban({ id: ID }, 'x', 50); // count forgotten, 50 + 100 < 200
  assert.is(e2.offences, 1);
  assert.is(e2.until, 200);
});

test('forgetting: offences forgotten exactly BAN_FORGET_MS after the latest one, not a millisecond sooner', () => {
  const bans = new BanList();
  bans.ban({ id: ID }, 'x', T0);
  const e2 = bans.ban({ id: ID }, 'x', T0 + BAN_FORGET_MS - 1);
  assert.is(e2.offences, 2);
  assert.is(e2.until - (T0 + BAN_FORGET_MS - 1), 2 * BAN_BASE_MS);
  const last = T0 + BAN_FORGET_MS - 1;
  const e3 = bans.ban({ id: ID }, 'x', last + BAN_FORGET_MS);
  assert.is(e3.offences, 1);
  assert.is(e3.until - (last + BAN_FORGET_MS), BAN_BASE_MS);
  // A peer at the cap is still remembered when its 24 h ban ends.
  assert.ok(BAN_FORGET_MS > BAN_MAX_MS);
});

test('bound: MAX_BANS entries are all kept; the MAX_BANS+1-th evicts the ban ending soonest', () => {
  const bans = new BanList();
  // Address 0 is a repeat offender (4 min ban); the others get first bans at T0 + i.
  bans.ban(addr(0), 'x', T0);
  bans.ban(addr(0), 'x', T0);
  bans.ban(addr(0), 'x', T0);
  for (let i = 1; i < MAX_BANS; i++) bans.ban(addr(i), 'x', T0 + i);
  assert.is(bans.size, MAX_BANS);
  const now = T0 + MAX_BANS;
  for (let i = 0; i < MAX_BANS; i++) assert.ok(bans.isBanned(addr(i), now), `address ${i}`);
  bans.ban(addr(MAX_BANS), 'x', now);
  assert.is(bans.size, MAX_BANS);
  assert.not.ok(bans.isBanned(addr(1), now), 'the soonest-ending ban (address 1) is evicted');
  assert.ok(bans.isBanned(addr(0), now), 'the repeat offender stays');
  assert.ok(bans.isBanned(addr(2), now));
  assert.ok(bans.isBanned(addr(MAX_BANS), now));
});

test('bound: a full list first drops entries done with, evicting nothing banned; lapsed bans go before running ones', () => {
  const bans = new BanList({ maxBans: 3, forgetMs: 0 });
  bans.ban(addr(1), 'x', 0);
  bans.ban(addr(2), 'x', 0);
  bans.ban(addr(3), 'x', 10);
  bans.ban(addr(4), 'x', BAN_BASE_MS); // 1 and 2 are done: both dropped
  assert.is(bans.size, 2);
  const remembered = new BanList({ maxBans: 2 });
  remembered.ban(addr(1), 'x', 0); // lapses at BAN_BASE_MS, still remembered
  remembered.ban(addr(2), 'x', 100);
  remembered.ban(addr(3), 'x', BAN_BASE_MS + 1);
  assert.not.ok(remembered.isBanned(addr(1), BAN_BASE_MS + 1));
  assert.is(remembered.bannedUntil(addr(2), BAN_BASE_MS + 1), BAN_BASE_MS + 100);
});

test('a flood of 50,000 fresh addresses does not evict a long ban', () => {
  const bans = new BanList({ maxBans: 1000 });
  for (let i = 0; i < 6; i++) bans.ban({ id: ID }, 'equivocation', T0); // 32 min
  for (let i = 1; i <= 50_000; i++) bans.ban(addr(i), 'garbage-handshake', T0 + i);
  assert.is(bans.size, 1000);
  assert.ok(bans.isBanned({ id: ID }, T0 + 50_000));
  assert.ok(bans.isBanned(addr(50_000), T0 + 50_000));
});

test('reasons kept: each entry reports the reason of its latest offence; entries() lists bans soonest-ending first', () => {
  const bans = new BanList();
  bans.ban({ id: ID }, 'bad-signature', T0);
  bans.ban({ address: '192.0.2.1' }, 'garbage-handshake', T0 + 5);
  bans.ban({ address: '198.51.100.9' }, 'too-large', T0 + 10);
  bans.ban({ address: '198.51.100.9' }, 'fault-budget', T0 + 10);
  const list = bans.entries(T0 + 10);
  assert.equal(list, [
    { key: { id: ID }, reason: 'bad-signature', until: T0 + BAN_BASE_MS, offences: 1 },
    { key: { address: '192.0.2.1' }, reason: 'garbage-handshake', until: T0 + 5 + BAN_BASE_MS, offences: 1 },
    { key: { address: '198.51.100.9' }, reason: 'fault-budget', until: T0 + 10 + 2 * BAN_BASE_MS, offences: 2 },
  ]);
  assert.ok(Object.isFrozen(list[0]!.key));
  assert.equal(bans.entries(T0 + BAN_BASE_MS + 5).map((e) => e.reason), ['fault-budget'], 'lapsed bans not listed');
  assert.equal(bans.entries(T0 + 10 + BAN_FORGET_MS), []);
  assert.is(bans.size, 0, 'entries() drops what is done with');
});

test('the caller cannot change an entry through its key object', () => {
  const bans = new BanList();
  const key = { address: '192.0.2.1' };
  bans.ban(key, 'x', T0);
  key.address = '192.0.2.2';
  assert.equal(bans.entries(T0)[0]!.key, { address: '192.0.2.1' });
});

test('bad options throw naming the option', () => {
  const cases: [unknown, ErrorConstructor, RegExp][] = [
    [null, TypeError, /"options"/],
    [5, TypeError, /"options"/],
    [{ baseMs: '1' }, TypeError, /"baseMs"/],
    [{ baseMs: 0 }, RangeError, /"baseMs"/],
    [{ baseMs: 1.5 }, RangeError, /"baseMs"/],
    [{ baseMs: 100, maxMs: 99 }, RangeError, /"maxMs"/],
    [{ forgetMs: -1 }, RangeError, /"forgetMs"/],
    [{ forgetMs: NaN }, RangeError, /"forgetMs"/],
    [{ maxBans: 0 }, RangeError, /"maxBans"/],
    [{ maxBans: MAX_BANS_CEILING + 1 }, RangeError, /"maxBans"/],
  ];
  for (const [options, Type, name] of cases) {
    assert.throws(() => new BanList(options as never), (e: Error) => e instanceof Type && name.test(e.message), JSON.stringify(options));
  }
  assert.is(new BanList({ maxBans: MAX_BANS_CEILING }).maxBans, MAX_BANS_CEILING);
  const d = new BanList();
  assert.equal([d.baseMs, d.maxMs, d.forgetMs, d.maxBans], [BAN_BASE_MS, BAN_MAX_MS, BAN_FORGET_MS, MAX_BANS]);
});

test('bad keys, reasons and times throw naming the argument, at every entry point', () => {
  const bans = new BanList();
  const keys: [unknown, ErrorConstructor, RegExp][] = [
    [null, TypeError, /"key"/],
    ['1.2.3.4', TypeError, /"key"/],
    [{}, TypeError, /"key"/],
    [{ id: ID, address: '1.2.3.4' }, TypeError, /"key"/],
    [{ id: 5 }, TypeError, /"key.id"/],
    [{ id: 'a'.repeat(51) }, RangeError, /"key.id"/],
    [{ id: ID.toUpperCase() }, RangeError, /"key.id"/],
    [{ address: 7 }, TypeError, /"key.address"/],
    [{ address: '' }, RangeError, /"key.address"/],
    [{ address: 'x'.repeat(MAX_BAN_TEXT_LENGTH + 1) }, RangeError, /"key.address"/],
  ];
  const check = (fn: () => unknown, Type: ErrorConstructor, name: RegExp, label: string) =>
    assert.throws(fn, (e: Error) => e instanceof Type && name.test(e.message), label);
  for (const [key, Type, name] of keys) {
    check(() => bans.ban(key as never, 'x', T0), Type, name, `ban ${JSON.stringify(key)}`);
    check(() => bans.isBanned(key as never, T0), Type, name, `isBanned ${JSON.stringify(key)}`);
    check(() => bans.bannedUntil(key as never, T0), Type, name, `bannedUntil ${JSON.stringify(key)}`);
    check(() => bans.unban(key as never), Type, name, `unban ${JSON.stringify(key)}`);
  }
  check(() => bans.ban({ id: ID }, undefined as never, T0), TypeError, /"reason"/, 'reason undefined');
  check(() => bans.ban({ id: ID }, '', T0), RangeError, /"reason"/, 'reason empty');
  check(() => bans.ban({ id: ID }, 'r'.repeat(MAX_BAN_TEXT_LENGTH + 1), T0), RangeError, /"reason"/, 'reason long');
  bans.ban({ address: 'x'.repeat(MAX_BAN_TEXT_LENGTH) }, 'r'.repeat(MAX_BAN_TEXT_LENGTH), T0); // at the limit: fine
  for (const [now, Type] of [['1', TypeError], [null, TypeError], [NaN, RangeError], [Infinity, RangeError]] as const) {
    check(() => bans.ban({ id: ID }, 'x', now as never), Type, /"now"/, `ban now=${String(now)}`);
    check(() => bans.isBanned({ id: ID }, now as never), Type, /"now"/, `isBanned now=${String(now)}`);
    check(() => bans.entries(now as never), Type, /"now"/, `entries now=${String(now)}`);
  }
  assert.is(bans.size, 1, 'nothing recorded by a refused call');
});

test.run();
