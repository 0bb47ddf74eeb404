// Salted fingerprints: the session salt both sides derive alike, fingerprints that match an
// independent reference (BigInt sum of SHA-256(salt || hash) mod 2^256, hashed with the count),
// depend on the set only, change with the salt, and are fast enough at n = 100,000.
import { createHash } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Fingerprints, FINGERPRINT_BYTES, newNonce, NONCE_BYTES, sessionSalt } from '../../src/reconcile/fingerprint.ts';
import { ItemSnapshot, type ReconcileItem } from '../../src/reconcile/items.ts';
import { concatBytes, toHex, utf8 } from '../../src/util/bytes.ts';
import { Prng, testSeed } from '../helpers/prng.ts';
import { randomItem, SALT, sources } from './helpers.ts';
import { Identity } from '../../src/identity/identity.ts';
import { compactUpdate, isCompact, signUpdate } from '../../src/envelope/update.ts';

const seed = testSeed();
const prng = new Prng(seed);
const from = sources(prng, 8);
const items = (n: number) => new ItemSnapshot(Array.from({ length: n }, () => randomItem(prng, from))).items;
const sha256 = (data: Uint8Array) => new Uint8Array(createHash('sha256').update(data).digest());

/** The fingerprint written out the slow, obvious way. */
function reference(list: readonly ReconcileItem[], salt: Uint8Array): string {
  let sum = 0n;
  for (const item of list) {
    const digest = sha256(concatBytes(salt, item.hash));
    sum += BigInt('0x' + toHex(digest.slice().reverse())); // little-endian number
  }
  sum %= 2n ** 256n;
  const le = (value: bigint, bytes: number) => Uint8Array.from({ length: bytes }, (_, i) => Number((value >> BigInt(8 * i)) & 0xffn));
  const input = concatBytes(utf8('signet/reconcile-fingerprint/v1'), salt, le(sum, 32), le(BigInt(list.length), 8));
  return toHex(sha256(input).subarray(0, FINGERPRINT_BYTES));
}

test('sessionSalt: the same on both sides, changes with either nonce, refuses bad input', () => {
  const a = { id: from[0]!, nonce: newNonce() };
  const b = { id: from[1]!, nonce: newNonce() };
  const salt = sessionSalt(a, b);
  assert.is(salt.length, 32);
  assert.equal(sessionSalt(b, a), salt, 'whichever side is local');
  assert.not.equal(sessionSalt({ ...a, nonce: newNonce() }, b), salt);
  assert.not.equal(sessionSalt(a, { ...b, nonce: newNonce() }), salt);
  const [low, high] = a.id < b.id ? [a, b] : [b, a];
  assert.equal(salt, sha256(concatBytes(utf8('signet/reconcile-salt/v1'), low.nonce, high.nonce)), 'lower id\'s nonce first');
  assert.throws(() => sessionSalt(a, { ...b, nonce: new Uint8Array(NONCE_BYTES - 1) }), /remote\.nonce/);
  assert.throws(() => sessionSalt({ ...a, nonce: new Uint8Array(NONCE_BYTES + 1) }, b), /local\.nonce/);
  assert.throws(() => sessionSalt(a, { ...a, nonce: newNonce() }), RangeError);
  assert.is(newNonce().length, NONCE_BYTES);
  assert.not.equal(newNonce(), newNonce());
});

test('a range fingerprint equals the reference computation, for every kind of range', () => {
  const list = items(200);
  const fp = new Fingerprints(list, SALT);
  for (const [lo, hi] of [[0, 200], [0, 0], [57, 57], [0, 1], [199, 200], [13, 131]] as const) {
    assert.is(toHex(fp.of(lo, hi)), reference(list.slice(lo, hi), SALT), `items [${lo}, ${hi}) (seed ${seed})`);
  }
  for (let k = 0; k < 50; k++) {
    const lo = prng.int(201);
    const hi = lo + prng.int(201 - lo);
    assert.is(toHex(fp.of(lo, hi)), reference(list.slice(lo, hi), SALT), `items [${lo}, ${hi}) (seed ${seed})`);
  }
});

test('held updates copy their hashes out (fresh or compact): the same fingerprints as plain items', () => {
  const id = Identity.generate();
  const updates = Array.from({ length: 300 }, (_, i) => signUpdate(id, { dataset: 'fp', version: i + 1, body: ['set', `k${i}`, prng.bytes(prng.int(40))] }));
  for (const u of updates.filter((_, i) => i % 3 !== 0)) compactUpdate(u); // both forms, interleaved
  assert.ok(updates.some(isCompact) && !updates.every(isCompact));
  const plain = updates.map((u) => ({ version: u.version, source: u.source, hash: u.hash }));
  const fromUpdates = new Fingerprints(new ItemSnapshot(updates).items, SALT);
  for (const [lo, hi] of [[0, 300], [0, 1], [1, 2], [2, 3], [17, 211], [299, 300]] as const) {
    assert.is(toHex(fromUpdates.of(lo, hi)), reference(plain.slice(lo, hi), SALT), `items [${lo}, ${hi})`);
  }
  // An item without copyHash is still checked: a hash of the wrong length is refused.
  assert.throws(() => new ItemSnapshot([{ ...plain[0]!, hash: new Uint8Array(31) }]), /hash/);
});

test('a fingerprint depends on the set in the range only, not on the items around it', () => {
  const list = items(100);
  const inner = list.slice(40, 60);
  const alone = new Fingerprints(inner, SALT).of(0, inner.length);
  assert.equal(new Fingerprints(list, SALT).of(40, 60), alone);
  assert.ok(new Fingerprints(list, SALT).matches(40, 60, alone));
  assert.not.ok(new Fingerprints(list, SALT).matches(40, 61, alone));
  // the empty range has one fingerprint per salt, whoever computes it
  assert.equal(new Fingerprints([], SALT).of(0, 0), new Fingerprints(list, SALT).of(7, 7));
});

test('another salt gives unrelated fingerprints', () => {
  const list = items(50);
  const other = new Uint8Array(32).fill(0x5b);
  assert.not.equal(new Fingerprints(list, SALT).of(0, 50), new Fingerprints(list, other).of(0, 50));
  assert.not.equal(new Fingerprints([], SALT).of(0, 0), new Fingerprints([], other).of(0, 0));
  assert.throws(() => new Fingerprints(list, new Uint8Array(31)), /salt/);
});

test.run();
