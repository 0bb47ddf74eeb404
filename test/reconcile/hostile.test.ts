// A lying peer against one honest session: claims that ranges differ forever (round limit),
// false differences (counted in `wasted` for the fault budget), bad wants, invented hashes,
// messages out of turn, and messages that try to make our replies grow past the limits.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ProtocolError } from '../../src/errors.ts';
import { ReconcileSession, type ReconcileItem } from '../../src/reconcile/index.ts';
import { Fingerprints } from '../../src/reconcile/fingerprint.ts';
import { INFINITY_BOUND, ItemSnapshot, type Bound } from '../../src/reconcile/items.ts';
import { resolveLimits } from '../../src/reconcile/limits.ts';
import { decodeMessage, encodeMessage, type Range } from '../../src/reconcile/messages.ts';
import type { ReconcileReason } from '../../src/reconcile/wire.ts';
import { Prng, testSeed } from '../helpers/prng.ts';
import { SALT, T0, twoSets } from './helpers.ts';

const seed = testSeed();
const prng = new Prng(seed);
const LIMITS = resolveLimits();

/** Our sorted items and a responder session over them. */
function victim(n: number, limits = {}) {
  const items = new ItemSnapshot(twoSets(prng, n, 0, 0).a).items;
  return { items, session: new ReconcileSession({ items, salt: SALT, initiator: false, limits }) };
}

const randomFingerprint = (upper: Bound): Range => ({ mode: 'fingerprint', upper, fingerprint: prng.bytes(16) });

function refusedWith(fn: () => unknown, reason: ReconcileReason): void {
  try {
    fn();
  } catch (error) {
    assert.instance(error, ProtocolError);
    assert.is((error as ProtocolError).reason, reason, (error as Error).message);
    return;
  }
  assert.unreachable(`expected ${reason}`);
}

/** The liar's answer to our message: every fingerprint and id list "differs". */
function claimEverythingDiffers(ours: Uint8Array): Uint8Array {
  const ranges = decodeMessage(ours, LIMITS).map((r): Range => (r.mode === 'skip' || r.mode === 'want' ? { mode: 'skip', upper: r.upper } : randomFingerprint(r.upper)));
  while (ranges.at(-1)?.mode === 'skip') ranges.pop();
  return encodeMessage(ranges.length ? ranges : [randomFingerprint(INFINITY_BOUND)]);
}

test('a peer that claims ranges differ forever: the session ends itself once its messages are spent (maxRounds both ways), and a message after that is refused', () => {
  for (const maxRounds of [5, 64]) {
    const { session } = victim(5000, { maxRounds });
    let message = encodeMessage([randomFingerprint(INFINITY_BOUND)]);
    let rounds = 0;
    for (;;) {
      const step = session.receive(message);
      rounds++;
      assert.ok(step.reply, `round ${rounds} is answered`);
      if (step.done) {
        assert.is(decodeMessage(step.reply, LIMITS).length, 0, 'an empty message (asking for nothing) ends it');
        break;
      }
      assert.ok(rounds < maxRounds, `still going after ${rounds} rounds`);
      message = claimEverythingDiffers(step.reply);
    }
    assert.ok(session.stats.messagesSent + session.stats.messagesReceived <= maxRounds, 'within the budget both ways');
    refusedWith(() => session.receive(message), 'reconcile-unexpected');
    assert.throws(() => session.receive(message), (e: Error) => !(e instanceof ProtocolError) && /failed/.test(e.message), 'a failed session refuses further use');
  }
});

test('wasted: a peer that says a range differs, then answers every part of our split with skip', () => {
  const { session } = victim(1000);
  const first = session.receive(encodeMessage([randomFingerprint(INFINITY_BOUND)]));
  assert.is(first.wasted, 0);
  assert.is(decodeMessage(first.reply!, LIMITS).length, LIMITS.branching, 'we split into B parts');
  const last = session.receive(encodeMessage([])); // "all equal"
  assert.is(last.wasted, 1, 'the split was answered with skips only');
  assert.ok(last.done);
  assert.is(session.stats.wasted, 1);
});

test('wasted: answering part of a split with a difference is not counted', () => {
  const { session } = victim(1000);
  const ours = decodeMessage(session.receive(encodeMessage([randomFingerprint(INFINITY_BOUND)])).reply!, LIMITS);
  // skip up to the third part, claim the third differs, skip the rest
  const step = session.receive(encodeMessage([{ mode: 'skip', upper: ours[1]!.upper }, randomFingerprint(ours[2]!.upper)]));
  assert.is(step.wasted, 0);
});

test('wasted: an id list that holds exactly what we hold in that range', () => {
  const { items, session } = victim(LIMITS.idListThreshold);
  const step = session.receive(encodeMessage([{ mode: 'idList', upper: INFINITY_BOUND, ids: items.map((i) => i.hash) }]));
  assert.is(step.wasted, 1);
  assert.equal(step.have, []);
  assert.equal(step.need, []);
  assert.ok(step.done, 'nothing left: the reply is final');
  assert.is(step.reply!.length, 2);
});

test('fingerprints for ranges where we hold nothing: our empty list, or skip when the peer holds nothing either', () => {
  const { items, session } = victim(200);
  const lowest = items[0]!.version;
  // a range below all our items, claimed different: we answer with our (empty) id list
  const step = session.receive(encodeMessage([randomFingerprint({ version: lowest, prefix: new Uint8Array(0) })]));
  const ranges = decodeMessage(step.reply!, LIMITS);
  assert.equal(ranges.map((r) => r.mode), ['idList']);
  assert.equal((ranges[0] as Extract<Range, { mode: 'idList' }>).ids, []);
  // an honest peer holding nothing there either sends the empty range's fingerprint: equal, skip
  const { items: others, session: other } = victim(200);
  const below = { version: others[0]!.version, prefix: new Uint8Array(0) };
  const empty = new Fingerprints([], SALT).of(0, 0);
  const reply = decodeMessage(other.receive(encodeMessage([{ mode: 'fingerprint', upper: below, fingerprint: empty }, randomFingerprint(INFINITY_BOUND)])).reply!, LIMITS);
  assert.is(reply[0]!.mode, 'skip');
  assert.equal(reply[0]!.upper, below);
  assert.ok(reply.slice(1).every((r) => r.mode === 'fingerprint'), 'the rest, which differs, is split');
});

test('an id list of hashes we lack: all of them needed and wanted, copied out of the message', () => {
  const { session } = victim(3);
  const ids = Array.from({ length: 5 }, () => prng.bytes(32));
  const message = encodeMessage([{ mode: 'idList', upper: INFINITY_BOUND, ids }]);
  const step = session.receive(message);
  assert.is(step.need.length, 5);
  assert.is(step.have.length, 3, 'and ours go the other way');
  const wanted = decodeMessage(step.reply!, LIMITS);
  assert.equal(wanted.map((r) => r.mode), ['want']);
  const before = step.need.map((h) => Buffer.from(h).toString('hex'));
  message.fill(0);
  assert.equal(step.need.map((h) => Buffer.from(h).toString('hex')), before, 'need does not alias the message');
  assert.ok(step.done, 'a reply of wants only asks for nothing: both sides are done');
});

test('invented hashes cost bounded memory: need stops at maxNeed per session', () => {
  const maxNeed = 20;
  const { session } = victim(0, { maxNeed, maxRounds: 1000 });
  let total = 0;
  for (let round = 0; round < 10; round++) {
    const ranges: Range[] = Array.from({ length: 4 }, (_, i) => ({ mode: 'idList', upper: { version: T0 + 10 * round + i + 1, prefix: new Uint8Array(0) }, ids: Array.from({ length: LIMITS.idListThreshold }, () => prng.bytes(32)) }));
    ranges.push(randomFingerprint(INFINITY_BOUND));
    const step = session.receive(encodeMessage(ranges));
    total += step.need.length;
  }
  assert.is(total, maxNeed);
  assert.is(session.stats.need, maxNeed);
  assert.is(session.stats.needDropped, 10 * 4 * LIMITS.idListThreshold - maxNeed);
});

test('want: only for hashes of our own id list of that range', () => {
  const { items, session } = victim(LIMITS.idListThreshold + 1);
  refusedWith(() => session.receive(encodeMessage([{ mode: 'want', upper: INFINITY_BOUND, ids: [items[0]!.hash] }])), 'reconcile-bad-want');
  const s2 = victim(5).session;
  refusedWith(() => s2.receive(encodeMessage([{ mode: 'want', upper: INFINITY_BOUND, ids: [prng.bytes(32)] }])), 'reconcile-bad-want');
  const { items: few, session: s3 } = victim(5);
  const step = s3.receive(encodeMessage([{ mode: 'want', upper: INFINITY_BOUND, ids: [few[2]!.hash, few[4]!.hash] }]));
  assert.equal(step.have, [few[2], few[4]]);
  assert.ok(step.done && step.reply === null, 'a message of wants asks for no reply');
});

test('messages out of turn: before our first message, after the end', () => {
  const initiator = new ReconcileSession({ items: [], salt: SALT, initiator: true });
  refusedWith(() => initiator.receive(encodeMessage([])), 'reconcile-unexpected');
  const { session } = victim(10);
  const step = session.receive(new ReconcileSession({ items: [], salt: SALT, initiator: true }).initiate());
  const done = session.receive(encodeMessage([])); // the peer's final answer
  assert.ok(done.done && !step.done);
  refusedWith(() => session.receive(encodeMessage([])), 'reconcile-unexpected');
  assert.throws(() => new ReconcileSession({ items: [], salt: SALT, initiator: false }).initiate(), /initiator/);
  const twice = new ReconcileSession({ items: [], salt: SALT, initiator: true });
  twice.initiate();
  assert.throws(() => twice.initiate(), /once/);
});

test('a malformed message fails the session; the typed error carries the reason', () => {
  const { session } = victim(10);
  refusedWith(() => session.receive(Uint8Array.from([1, 1, 2])), 'reconcile-truncated');
  assert.throws(() => session.receive(encodeMessage([])), /failed/);
  assert.throws(() => victim(1).session.receive('bytes' as unknown as Uint8Array), TypeError);
});

test('the largest hostile message gets a reply within every limit, which our own decoder accepts', () => {
  const { session } = victim(100_000);
  // every range claims a difference: each would be split into B parts, B times the message
  const ranges: Range[] = [];
  const items = new ItemSnapshot(twoSets(prng, 0, LIMITS.maxRangesPerMessage, 0).a).items;
  for (let i = 1; i < items.length && ranges.length < LIMITS.maxRangesPerMessage - 1; i++) {
    if (items[i]!.version > items[i - 1]!.version) ranges.push(randomFingerprint({ version: items[i]!.version, prefix: new Uint8Array(0) }));
  }
  ranges.push(randomFingerprint(INFINITY_BOUND));
  const message = encodeMessage(ranges);
  assert.ok(message.length <= LIMITS.maxMessageBytes);
  const step = session.receive(message);
  assert.ok(step.reply!.length <= LIMITS.maxMessageBytes, `reply of ${step.reply!.length} bytes`);
  const reply = decodeMessage(step.reply!, LIMITS);
  assert.ok(reply.length <= LIMITS.maxRangesPerMessage);
  assert.equal(reply.at(-1)!.upper, INFINITY_BOUND, 'cut short with one fingerprint over the rest');
});

test('items the caller passes are checked where they enter', () => {
  const bad = [{ version: 1, source: 'x', hash: new Uint8Array(32) }] as ReconcileItem[];
  assert.throws(() => new ReconcileSession({ items: bad, salt: SALT, initiator: true }), /source/);
  assert.throws(() => new ReconcileSession({ items: [], salt: new Uint8Array(3), initiator: true }), /salt/);
  assert.throws(() => new ReconcileSession({ items: [], salt: SALT, initiator: 'yes' as unknown as boolean }), /initiator/);
  assert.throws(() => new ReconcileSession({ items: [], salt: SALT, initiator: true, limits: { maxRounds: -1 } }), /maxRounds/);
});

test.run();
