// Two honest sessions find exactly the symmetric difference of their sets, whatever its size
// and direction: seeded random sets (replay a failure with SIGNET_SEED), equal sets in one
// round trip, equivocations, empty sides, deep recursion, replies cut at the size limit.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Identity, signUpdate, type Update } from '../../src/index.ts';
import { ReconcileSession, type ReconcileItem, type ReconcileLimits } from '../../src/reconcile/index.ts';
import { Prng, testSeed } from '../helpers/prng.ts';
import { hexSet, randomItem, reconcile, run, SALT, sources, T0, twoSets, type Outcome } from './helpers.ts';

const seed = testSeed();
const prng = new Prng(seed);
const say = (what: string) => `${what} (seed ${seed}; replay with SIGNET_SEED=${seed})`;

/** Each side reports exactly the items the other lacks; `need` only what the other will send. */
function assertExact<T extends ReconcileItem>(o: Outcome<T>, onlyA: readonly T[], onlyB: readonly T[], what: string): void {
  assert.equal(hexSet(o.aHave), hexSet(onlyA), say(`${what}: A's have`));
  assert.equal(hexSet(o.bHave), hexSet(onlyB), say(`${what}: B's have`));
  const inB = new Set(hexSet(onlyB));
  const inA = new Set(hexSet(onlyA));
  assert.ok(hexSet(o.aNeed).every((h) => inB.has(h)), say(`${what}: A needs only what B lacks... holds`));
  assert.ok(hexSet(o.bNeed).every((h) => inA.has(h)), say(`${what}: B needs only what A holds`));
  assert.is(new Set(hexSet(o.aNeed)).size, o.aNeed.length, say(`${what}: need reported once`));
  assert.is(o.wasted, 0, say(`${what}: honest peers waste nothing`));
}

for (const d of [0, 1, 10, 1000]) {
  for (const [label, share] of [['both ways', 0.5], ['only A has extra', 1], ['only B has extra', 0]] as const) {
    test(`random sets differing in d = ${d} (${label}) converge to the exact symmetric difference`, () => {
      const onlyA = Math.round(d * share);
      const s = twoSets(prng, 3000, onlyA, d - onlyA);
      const o = reconcile(s.a, s.b);
      assertExact(o, s.onlyA, s.onlyB, `d=${d} ${label}`);
      if (d === 0) assert.is(o.messages, 2);
    });
  }
}

test('equal sets: one round trip, under 200 bytes, at every size', () => {
  for (const n of [0, 1, 7, 100, 20_000]) {
    const s = twoSets(prng, n, 0, 0);
    const o = reconcile(s.a, s.b);
    assert.is(o.messages, 2, `n=${n}: one round trip`);
    assert.ok(o.bytes < 200, `n=${n}: ${o.bytes} bytes`);
    assert.is(o.transcript[1]!.length, 2, 'the answer is the empty message');
  }
});

test('the responder and the initiator may be either side: same result', () => {
  const s = twoSets(prng, 2000, 7, 9);
  const ab = reconcile(s.a, s.b);
  const ba = reconcile(s.b, s.a);
  assertExact(ab, s.onlyA, s.onlyB, 'a initiates');
  assertExact(ba, s.onlyB, s.onlyA, 'b initiates');
});

test('one side empty, both empty, one side a single item', () => {
  const s = twoSets(prng, 0, 500, 0);
  assertExact(reconcile(s.a, []), s.onlyA, [], 'B empty');
  assertExact(reconcile([], s.a), [], s.onlyA, 'A empty');
  assertExact(reconcile([], []), [], [], 'both empty');
  const one = twoSets(prng, 0, 1, 0);
  assertExact(reconcile(one.a, []), one.onlyA, [], 'one item');
});

test('equivocation: two items that differ only in hash at one (source, version) are both found', () => {
  const from = sources(prng, 4);
  const shared = Array.from({ length: 1000 }, () => randomItem(prng, from));
  const a = [...shared];
  const b = [...shared];
  const onlyA: ReconcileItem[] = [];
  const onlyB: ReconcileItem[] = [];
  for (let i = 0; i < 20; i++) {
    const base = prng.pick(shared);
    const x = { version: base.version, source: base.source, hash: prng.bytes(32) };
    const y = { version: base.version, source: base.source, hash: prng.bytes(32) };
    a.push(x);
    onlyA.push(x);
    b.push(y);
    onlyB.push(y);
  }
  assertExact(reconcile(a, b), onlyA, onlyB, 'equivocations');
});

test('crowded keys (shared versions, sources and hash prefixes) and deep recursion (B = 2, t = 2)', () => {
  const from = sources(prng, 2);
  // Up to 30 of 32 hash bytes fixed: two items may come out equal, which a set cannot hold (the
  // snapshot refuses it); each item is drawn until it is new.
  const made = new Set<string>();
  const crowded = (): ReconcileItem => {
    for (;;) {
      const hash = prng.bytes(32);
      hash.fill(7, 0, prng.int(31));
      const item = { version: T0 + prng.int(3), source: prng.pick(from), hash };
      const key = `${item.version}/${item.source}/${Buffer.from(hash).toString('hex')}`;
      if (made.has(key)) continue;
      made.add(key);
      return item;
    }
  };
  const shared = Array.from({ length: 2000 }, crowded);
  const onlyA = Array.from({ length: 40 }, crowded);
  const onlyB = Array.from({ length: 40 }, crowded);
  for (const limits of [{}, { branching: 2, idListThreshold: 2 }, { branching: 3, idListThreshold: 5 }]) {
    const o = reconcile([...shared, ...onlyA], [...shared, ...onlyB], limits);
    assertExact(o, onlyA, onlyB, `limits ${JSON.stringify(limits)}`);
  }
});

test('replies cut at the message limits still converge exactly, in more rounds', () => {
  const s = twoSets(prng, 20_000, 400, 400);
  const full = reconcile(s.a, s.b);
  for (const limits of [{ maxMessageBytes: 2048 }, { maxRangesPerMessage: 40 }, { maxIdsPerMessage: 16 }] as Array<Partial<ReconcileLimits>>) {
    const cut = reconcile(s.a, s.b, { ...limits, maxRounds: 10_000 });
    assertExact(cut, s.onlyA, s.onlyB, JSON.stringify(limits));
    assert.ok(cut.messages > full.messages, `${JSON.stringify(limits)}: ${cut.messages} messages vs ${full.messages}`);
    const max = limits.maxMessageBytes ?? Infinity;
    assert.ok(cut.transcript.every((m) => m.length <= max), 'every message within the limit');
  }
});

test('need is capped per session; the next session finds the rest', () => {
  const s = twoSets(prng, 500, 60, 60);
  let a = s.a;
  let b = s.b;
  let sessions = 0;
  let dropped = 0;
  for (; sessions < 20; sessions++) {
    const sa = new ReconcileSession({ items: a, salt: SALT, initiator: true, limits: { maxNeed: 10 } });
    const sb = new ReconcileSession({ items: b, salt: SALT, initiator: false, limits: { maxNeed: 10 } });
    const o = run(sa, sb);
    assert.ok(o.aNeed.length <= 10 && o.bNeed.length <= 10, 'need within maxNeed');
    dropped += sa.stats.needDropped + sb.stats.needDropped;
    if (o.aHave.length === 0 && o.bHave.length === 0) break;
    // the integration sends each side's `have`; the other applies it
    a = [...a, ...o.bHave];
    b = [...b, ...o.aHave];
  }
  assert.equal(hexSet(a), hexSet(b), say('converged'));
  assert.ok(dropped > 0, 'the cap was reached');
});

test('a session is a snapshot: changes to the caller\'s array after construction are not seen', () => {
  const s = twoSets(prng, 1000, 3, 3);
  const a = s.a.slice();
  const sa = new ReconcileSession({ items: a, salt: SALT, initiator: true });
  const sb = new ReconcileSession({ items: s.b, salt: SALT, initiator: false });
  a.push(...twoSets(prng, 0, 50, 0).a);
  a.splice(0, 100);
  assertExact(run(sa, sb), s.onlyA, s.onlyB, 'snapshot');
});

test('stats count both directions alike and match the transcript', () => {
  const s = twoSets(prng, 5000, 20, 20);
  const sa = new ReconcileSession({ items: s.a, salt: SALT, initiator: true });
  const sb = new ReconcileSession({ items: s.b, salt: SALT, initiator: false });
  const o = run(sa, sb);
  assert.is(sa.stats.messagesSent + sb.stats.messagesSent, o.messages);
  assert.is(sa.stats.bytesSent + sb.stats.bytesSent, o.bytes);
  assert.is(sa.stats.bytesSent, sb.stats.bytesReceived);
  assert.is(sb.stats.bytesSent, sa.stats.bytesReceived);
  assert.is(sa.stats.have, o.aHave.length);
  assert.is(sb.stats.need, o.bNeed.length);
  assert.is(sa.stats.wasted + sb.stats.wasted, 0);
});

test('real signed updates as items: have maps straight to envelopes', () => {
  const writers = [Identity.fromSecretKey(new Uint8Array(32).fill(1)), Identity.fromSecretKey(new Uint8Array(32).fill(2))];
  const sign = (i: number): Update => signUpdate(writers[i % 2]!, { dataset: 'default', version: T0 + i, body: ['set', `k${i}`, i] });
  const all = Array.from({ length: 300 }, (_, i) => sign(i));
  const a = all.filter((_, i) => i % 50 !== 3);
  const b = all.filter((_, i) => i % 70 !== 5);
  const o = reconcile<Update>(a, b);
  assertExact(o, a.filter((u) => !b.includes(u)), b.filter((u) => !a.includes(u)), 'updates');
  for (const u of [...o.aHave, ...o.bHave]) assert.ok(u.bytes instanceof Uint8Array && u.bytes.length > 0);
});

test.run();
