// The reconciliation wire format against hostile bytes: every malformed kind gives a
// ProtocolError with its reason (never a RangeError or a crash), every limit holds at its value
// and fails at value + 1, and mutated or random bytes never throw anything else.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ProtocolError } from '../../src/errors.ts';
import { KEY_BYTES, INFINITY_BOUND, type Bound } from '../../src/reconcile/items.ts';
import { resolveLimits, DEFAULT_RECONCILE_LIMITS, type ReconcileLimits } from '../../src/reconcile/limits.ts';
import { decodeMessage, encodeMessage, RECONCILE_FORMAT, type Range } from '../../src/reconcile/messages.ts';
import { Writer, type ReconcileReason } from '../../src/reconcile/wire.ts';
import { Prng, testSeed } from '../helpers/prng.ts';

const seed = testSeed();
const prng = new Prng(seed);
const LIMITS = resolveLimits();
const bound = (version: number, ...prefix: number[]): Bound => ({ version, prefix: new Uint8Array(prefix) });
const fp = (upper: Bound): Range => ({ mode: 'fingerprint', upper, fingerprint: prng.bytes(16) });
const id = () => prng.bytes(32);

/** Asserts that decoding `bytes` throws a ProtocolError with `reason`. */
function refused(bytes: Uint8Array, reason: ReconcileReason, limits: ReconcileLimits = LIMITS, what: string = reason): void {
  try {
    decodeMessage(bytes, limits);
  } catch (error) {
    assert.instance(error, ProtocolError, what);
    assert.is((error as ProtocolError).code, 'ERR_PROTOCOL', what);
    assert.is((error as ProtocolError).reason, reason, `${what}: ${(error as Error).message}`);
    return;
  }
  assert.unreachable(`${what}: decoded`);
}

/** Raw message bytes: format, range count, then the given fields (numbers as varints). */
function raw(count: number, ...fields: Array<number | Uint8Array>): Uint8Array {
  const w = new Writer();
  w.byte(RECONCILE_FORMAT);
  w.varint(count);
  for (const f of fields) typeof f === 'number' ? w.varint(f) : w.bytes(f);
  return w.finish();
}

/** `count` fingerprint ranges with versions 1, 2, 3... (19 bytes each). */
const fingerprints = (count: number): Range[] => Array.from({ length: count }, (_, i) => fp(bound(i + 1)));

const sample: Range[] = [
  { mode: 'skip', upper: bound(1_750_000_000_000_000) },
  fp(bound(1_750_000_000_000_000, 0x61, 0x62)),
  { mode: 'idList', upper: bound(1_750_000_000_000_100), ids: [id(), id()] },
  { mode: 'idList', upper: bound(1_750_000_000_000_100, 7), ids: [] },
  { mode: 'skip', upper: bound(Number.MAX_SAFE_INTEGER) },
  { mode: 'want', upper: bound(Number.MAX_SAFE_INTEGER, ...new Uint8Array(KEY_BYTES).fill(255)), ids: [id()] },
  fp(INFINITY_BOUND),
];

test('a message of every mode and kind of bound decodes to what was encoded', () => {
  const bytes = encodeMessage(sample);
  const decoded = decodeMessage(bytes, LIMITS);
  const plain = (ranges: Range[]) => JSON.parse(JSON.stringify(ranges, (_k, v) => (v instanceof Uint8Array ? Array.from(v) : v === Infinity ? 'inf' : v)));
  assert.equal(plain(decoded), plain(sample));
  assert.equal(decodeMessage(encodeMessage([]), LIMITS), [], 'the empty message: nothing to do');
  assert.is(encodeMessage([]).length, 2);
});

test('every truncation of a valid message is refused reconcile-truncated', () => {
  const bytes = encodeMessage(sample);
  for (let cut = 0; cut < bytes.length; cut++) refused(bytes.subarray(0, cut), 'reconcile-truncated', LIMITS, `cut at ${cut}`);
});

test('trailing bytes after the declared ranges are refused', () => {
  const bytes = encodeMessage(sample);
  refused(Uint8Array.from([...bytes, 0]), 'reconcile-trailing-bytes');
  refused(Uint8Array.from([...encodeMessage([]), 1, 2, 3]), 'reconcile-trailing-bytes');
});

test('an unknown format byte or mode is refused', () => {
  for (const format of [0, 2, 0x61, 255]) refused(Uint8Array.from([format, 0]), 'reconcile-bad-format', LIMITS, `format ${format}`);
  for (const mode of [4, 5, 127, 2 ** 40]) refused(raw(1, 2, 0, mode, new Uint8Array(16)), 'reconcile-bad-mode', LIMITS, `mode ${mode}`);
});

test('bounds must strictly increase, stay finite-versioned, and have a canonical prefix', () => {
  const f = new Uint8Array(16);
  refused(raw(1, 1, 0, 1, f), 'reconcile-bad-bound', LIMITS, 'the first bound equal to the lowest');
  refused(raw(2, 5, 0, 1, f, 1, 0, 1, f), 'reconcile-bad-bound', LIMITS, 'two equal bounds');
  refused(raw(2, 5, 1, 9, 1, f, 1, 1, 8, 1, f), 'reconcile-bad-bound', LIMITS, 'a smaller prefix at the same version');
  refused(raw(2, 5, 2, 9, 1, 1, f, 1, 1, 9, 1, f), 'reconcile-bad-bound', LIMITS, 'a prefix equal once zero-padded');
  refused(raw(2, 0, 0, 1, f, 1, 0, 1, f), 'reconcile-bad-bound', LIMITS, 'a bound after the infinite one');
  refused(raw(1, 0, 1, 7, 1, f), 'reconcile-bad-bound', LIMITS, 'the infinite bound with a prefix');
  refused(raw(1, 5, KEY_BYTES + 1, new Uint8Array(KEY_BYTES + 1).fill(1), 1, f), 'reconcile-bad-bound', LIMITS, 'prefix longer than a key');
  decodeMessage(raw(1, 5, KEY_BYTES, new Uint8Array(KEY_BYTES).fill(1), 1, f), LIMITS); // a whole key is fine
  refused(raw(1, 5, 2, 7, 0, 1, f), 'reconcile-non-canonical', LIMITS, 'prefix ending in a zero byte');
  assert.is(decodeMessage(raw(1, 2 ** 53, 0, 1, f), LIMITS)[0]!.upper.version, Number.MAX_SAFE_INTEGER); // code = delta + 1
  refused(raw(1, 2 ** 54, 0, 1, f), 'reconcile-bad-bound', LIMITS, 'code of 2^54');
  refused(raw(2, Number.MAX_SAFE_INTEGER, 0, 1, f, 3, 0, 1, f), 'reconcile-bad-bound', LIMITS, 'deltas adding up past 2^53 - 1');
});

test('varints: at most 8 bytes, no redundant zero byte', () => {
  const f = new Uint8Array(16);
  const w = new Writer();
  w.byte(RECONCILE_FORMAT);
  w.bytes(Uint8Array.from([0x81, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00])); // 9 bytes
  refused(w.finish(), 'reconcile-bad-varint', LIMITS, 'a 9-byte range count');
  refused(Uint8Array.from([RECONCILE_FORMAT, 0x80, 0x00]), 'reconcile-bad-varint', LIMITS, 'zero as two bytes');
  refused(Uint8Array.from([RECONCILE_FORMAT, 1, 0x85, 0x00, 0, 1, ...f]), 'reconcile-bad-varint', LIMITS, 'a version code with a zero byte');
});

test('skips are canonical: never two in a row, never last; a want names at least one hash', () => {
  const s = (v: number): Range => ({ mode: 'skip', upper: bound(v) });
  refused(encodeMessage([s(1), s(2), fp(bound(3))]), 'reconcile-non-canonical', LIMITS, 'two skips');
  refused(encodeMessage([fp(bound(1)), s(2)]), 'reconcile-non-canonical', LIMITS, 'trailing skip');
  refused(encodeMessage([s(1)]), 'reconcile-non-canonical', LIMITS, 'only a skip');
  refused(encodeMessage([{ mode: 'want', upper: bound(1), ids: [] }]), 'reconcile-non-canonical', LIMITS, 'empty want');
});

test('a hash listed twice in one id list or want is refused', () => {
  const twice = id();
  refused(encodeMessage([{ mode: 'idList', upper: bound(1), ids: [twice, id(), twice] }]), 'reconcile-duplicate-id');
  refused(encodeMessage([{ mode: 'want', upper: bound(1), ids: [twice, twice] }]), 'reconcile-duplicate-id');
});

test('limit: message bytes at maxMessageBytes decodes, one more byte is refused before parsing', () => {
  const limits = resolveLimits({ maxMessageBytes: 2000, maxRangesPerMessage: 1000 });
  const bytes = messageOfSize(limits.maxMessageBytes);
  assert.is(bytes.length, limits.maxMessageBytes);
  decodeMessage(bytes, limits);
  refused(messageOfSize(limits.maxMessageBytes + 1), 'reconcile-too-large', limits);
  // refused on the length alone: garbage of that size is not even read
  refused(new Uint8Array(limits.maxMessageBytes + 1).fill(0xff), 'reconcile-too-large', limits);
  refused(new Uint8Array(DEFAULT_RECONCILE_LIMITS.maxMessageBytes + 1), 'reconcile-too-large');
});

test('limit: ranges per message at the limit decode, one more is refused on the declared count', () => {
  const limits = resolveLimits({ maxRangesPerMessage: 20 });
  decodeMessage(encodeMessage(fingerprints(20)), limits);
  refused(encodeMessage(fingerprints(21)), 'reconcile-too-many-ranges', limits);
  refused(raw(21), 'reconcile-too-many-ranges', limits, 'declared count alone');
  refused(raw(DEFAULT_RECONCILE_LIMITS.maxRangesPerMessage + 1), 'reconcile-too-many-ranges', LIMITS, 'default limit + 1');
});

test('limit: an id list of idListThreshold hashes decodes, one more is refused on its length', () => {
  const t = LIMITS.idListThreshold;
  const list = (n: number, mode: 'idList' | 'want' = 'idList'): Range => ({ mode, upper: bound(1), ids: Array.from({ length: n }, id) });
  decodeMessage(encodeMessage([list(t)]), LIMITS);
  decodeMessage(encodeMessage([list(t, 'want')]), LIMITS);
  refused(encodeMessage([list(t + 1)]), 'reconcile-too-many-ids');
  refused(encodeMessage([list(t + 1, 'want')]), 'reconcile-too-many-ids');
  refused(raw(1, 2, 0, 2, 1_000_000), 'reconcile-too-many-ids', LIMITS, 'a huge declared length, no ids');
});

test('limit: hashes per message at maxIdsPerMessage decode, one more is refused', () => {
  const limits = resolveLimits({ maxIdsPerMessage: 20 });
  const lists = (sizes: number[]) => encodeMessage(sizes.map((n, i): Range => ({ mode: i % 2 ? 'want' : 'idList', upper: bound(i + 1), ids: Array.from({ length: n }, id) })));
  decodeMessage(lists([8, 8, 4]), limits);
  refused(lists([8, 8, 5]), 'reconcile-too-many-ids', limits);
  refused(lists([8, 8, 4, 1]), 'reconcile-too-many-ids', limits);
});

test('resolveLimits refuses limits under which a reply could not make progress', () => {
  assert.throws(() => resolveLimits({ branching: 1 }), /branching/);
  assert.throws(() => resolveLimits({ branching: 8, idListThreshold: 7 }), /idListThreshold/);
  assert.throws(() => resolveLimits({ maxRangesPerMessage: 9 }), /maxRangesPerMessage/);
  assert.throws(() => resolveLimits({ maxIdsPerMessage: 7 }), /maxIdsPerMessage/);
  assert.throws(() => resolveLimits({ maxMessageBytes: 1000 }), /maxMessageBytes/);
  assert.throws(() => resolveLimits({ maxRounds: 0 }), /maxRounds/);
  assert.throws(() => resolveLimits({ maxRounds: 1.5 }), /maxRounds/);
  assert.equal(resolveLimits(), { ...DEFAULT_RECONCILE_LIMITS });
});

test('mutated and random bytes give a ProtocolError or a valid message, nothing else', () => {
  const valid = [encodeMessage(sample), encodeMessage(fingerprints(30)), encodeMessage([])];
  for (let i = 0; i < 20_000; i++) {
    let bytes: Uint8Array;
    if (i % 4 === 0) bytes = prng.bytes(prng.int(200));
    else {
      bytes = prng.pick(valid).slice();
      for (let k = 1 + prng.int(4); k > 0 && bytes.length > 0; k--) bytes[prng.int(bytes.length)] = prng.u32() & 0xff;
      if (prng.next() < 0.2) bytes = bytes.subarray(0, prng.int(bytes.length + 1));
    }
    try {
      decodeMessage(bytes, LIMITS);
    } catch (error) {
      if (!(error instanceof ProtocolError) || !error.reason.startsWith('reconcile-')) {
        assert.unreachable(`seed ${seed}, case ${i}: ${String(error)} for ${Buffer.from(bytes).toString('hex')}`);
      }
    }
  }
});

/** A valid message of exactly `size` bytes: fingerprint ranges, padded with prefix bytes. */
function messageOfSize(size: number): Uint8Array {
  let count = Math.floor((size - 3) / 19);
  while (1 + (count < 128 ? 1 : 2) + 19 * count > size) count--;
  let spare = size - (1 + (count < 128 ? 1 : 2) + 19 * count);
  const ranges = fingerprints(count).map((r) => {
    const pad = Math.min(spare, 80);
    spare -= pad;
    return { ...r, upper: bound(r.upper.version, ...new Uint8Array(pad).fill(1)) };
  });
  return encodeMessage(ranges);
}

test.run();
