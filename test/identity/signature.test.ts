// Differential tests: the sodium, native and noble backends give the same verdict on every
// published vector, on generated edge cases and on 10,000 random signatures and their
// single-bit mutations; and the verdicts are the ones signet's rule predicts.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as ed from '@noble/ed25519';
import { Identity, verifySignature } from '../../src/index.ts';
import { signatureEquations, verifySignatureSync } from '../../src/identity/signature.ts';
import { SMALL_ORDER_ENCODINGS, isCanonicalPoint, passesPrechecks } from '../../src/identity/signature-rule.ts';
import { signNoble, publicKeyNoble } from '../../src/identity/backend-noble.ts';
import { signWithNative } from '../../src/identity/identity.ts';
import { fromHex, toHex, concatBytes } from '../../src/util/bytes.ts';
import { readVectors } from '../helpers/vectors.ts';
import { Prng, testSeed } from '../helpers/prng.ts';
import { L, P, le32, leToBig, backendsUnderTest, verdicts, every, smallOrderEncodings } from './ed25519-cases.ts';

const backends = backendsUnderTest();
/** True when every backend under test gave the same verdict. */
const agree = (v: Record<string, boolean>) => new Set(Object.values(v)).size === 1;

type Rfc = { name: string; secret_key: string; pub_key: string; msg: string; signature: string };
const rfc = (readVectors('ed25519/rfc8032.json') as { vectors: Rfc[] }).vectors;

test('RFC 8032 vectors: accepted by every backend, sync and async', async () => {
  assert.ok(rfc.length >= 5);
  for (const v of rfc) {
    const [sig, msg, pk] = [fromHex(v.signature), fromHex(v.msg), fromHex(v.pub_key)];
    assert.equal(verdicts(sig, msg, pk), every(true), v.name);
    for (const backend of backends) assert.ok(await verifySignature(sig, msg, pk, { backend }), `${v.name} ${backend}`);
    assert.ok(await verifySignature(sig, msg, pk), `${v.name} default backend`);
  }
});

test('speccheck cases: every backend agrees and matches the verdict signet\'s rule predicts', async () => {
  type Case = { index: number; msg: string; pub_key: string; signature: string; paper_conditions: Record<string, string> };
  const cases = (readVectors('ed25519/speccheck-cases.json') as { cases: Case[] }).cases;
  assert.is(cases.length, 12);
  const accepted: number[] = [];
  for (const c of cases) {
    const pc = c.paper_conditions;
    // The rule: S < L, canonical A and R (no '*'), neither small, cofactorless equation holds.
    const predicted = !pc.S!.includes('>') && !pc.A_order!.startsWith('small') && !pc.R_order!.startsWith('small')
      && !pc.A_order!.includes('*') && !pc.R_order!.includes('*') && pc.cofactorless === 'V';
    const [sig, msg, pk] = [fromHex(c.signature), fromHex(c.msg), fromHex(c.pub_key)];
    const verdict = verdicts(sig, msg, pk);
    assert.ok(agree(verdict), `case ${c.index}: backends disagree ${JSON.stringify(verdict)}`);
    assert.is(verdict.native, verdict.noble, `case ${c.index}: backends disagree`);
    assert.is(verdict.native, predicted, `case ${c.index}: ${JSON.stringify(pc)}`);
    for (const backend of backends) assert.is(await verifySignature(sig, msg, pk, { backend }), predicted, `case ${c.index} async ${backend}`);
    if (verdict.native) accepted.push(c.index);
  }
  assert.equal(accepted, [3]); // mixed-order A and R with the cofactorless equation holding
});

test('the small-order list is exactly the torsion subgroup, each [8]P = O', () => {
  const pts = SMALL_ORDER_ENCODINGS.map((h) => ed.Point.fromHex(h));
  assert.is(new Set(SMALL_ORDER_ENCODINGS).size, 8);
  for (const p of pts) assert.ok(p.isSmallOrder());
  const T = pts.find((p) => !p.multiply(4n, false).is0())!; // an order-8 point generates the subgroup
  const generated = new Set<string>();
  let q = ed.Point.ZERO;
  for (let k = 0; k < 8; k++) {
    generated.add(q.toHex());
    q = q.add(T);
  }
  assert.equal([...generated].sort(), [...SMALL_ORDER_ENCODINGS].sort());
});

test('edge cases: small-order A and R in every encoding, S + L, y >= p: all rejected by every backend', () => {
  const id = Identity.fromSecretKey(new Uint8Array(32).fill(1));
  const msg = new TextEncoder().encode('edge cases');
  const good = id.sign(msg);
  const encodings = smallOrderEncodings();
  assert.ok(encodings.length >= 12, `only ${encodings.length} encodings`);
  for (const enc of encodings) {
    // as A: with a real signature, and with S = 0 / R = identity (the "anything verifies" trap)
    for (const sig of [good, concatBytes(fromHex(SMALL_ORDER_ENCODINGS[0]!), new Uint8Array(32))]) {
      assert.equal(verdicts(sig, msg, enc), every(false), `A=${toHex(enc)}`);
    }
    // as R
    const sig = concatBytes(enc, good.subarray(32));
    assert.equal(verdicts(sig, msg, id.publicKey), every(false), `R=${toHex(enc)}`);
  }
  // S + L is the same scalar mod L: cofactorless libraries that reduce S would accept it.
  const s = leToBig(good.subarray(32));
  const malleated = concatBytes(good.subarray(0, 32), le32(s + L));
  assert.equal(verdicts(malleated, msg, id.publicKey), every(false));
  // every y in [p, 2^255) as A and as R: non-canonical, rejected
  for (let k = 0n; k < 19n; k++) {
    for (const sign of [0, 0x80]) {
      const enc = le32(P + k);
      enc[31]! |= sign;
      assert.not.ok(isCanonicalPoint(enc));
      assert.equal(verdicts(good, msg, enc), every(false));
      assert.equal(verdicts(concatBytes(enc, good.subarray(32)), msg, id.publicKey), every(false));
    }
  }
  // and the untouched signature still verifies on all (the test's inputs are not all broken)
  assert.equal(verdicts(good, msg, id.publicKey), every(true));
});

test('wrong lengths are false, never a throw; non-bytes are a TypeError', async () => {
  const id = Identity.generate();
  const msg = new Uint8Array(3);
  const sig = id.sign(msg);
  for (const backend of backends) {
    assert.is(await verifySignature(sig.subarray(0, 63), msg, id.publicKey, { backend }), false);
    assert.is(await verifySignature(concatBytes(sig, new Uint8Array(1)), msg, id.publicKey, { backend }), false);
    assert.is(await verifySignature(sig, msg, id.publicKey.subarray(0, 31), { backend }), false);
    assert.is(await verifySignature(new Uint8Array(0), msg, new Uint8Array(0), { backend }), false);
  }
  await assert.throws(() => verifySignatureSync('x' as unknown as Uint8Array, msg, id.publicKey), TypeError);
  try {
    await verifySignature(sig, msg, id.publicKey, { backend: 'other' as 'native' });
    assert.unreachable('should reject');
  } catch (e) {
    assert.instance(e, RangeError);
  }
});

test('10,000 random signatures: byte-identical from every signer, same verdict on them and on single-bit mutations', () => {
  const seed = testSeed();
  const rng = new Prng(seed);
  const counts = { valid: 0, mutated: 0, mutatedAccepted: 0 };
  try {
    for (let i = 0; i < 10_000; i++) {
      const secret = rng.bytes(32);
      const id = Identity.fromSecretKey(secret);
      const msg = rng.bytes(rng.int(200));
      const sig = id.sign(msg);
      if (i < 2000) {
        assert.is(toHex(signNoble(secret, msg)), toHex(sig), 'signatures differ');
        assert.is(toHex(signWithNative(id, msg)), toHex(sig), 'signatures differ (native)');
        assert.is(toHex(publicKeyNoble(secret)), toHex(id.publicKey));
      }
      assert.equal(verdicts(sig, msg, id.publicKey), every(true));
      counts.valid++;
      // flip one bit in the signature, the message or the key
      const target = rng.int(3);
      const [s2, m2, k2] = [sig.slice(), msg.slice(), id.publicKey.slice()];
      const buf = target === 0 ? s2 : target === 1 && m2.length > 0 ? m2 : k2;
      const bit = rng.int(buf.length * 8);
      buf[bit >> 3]! ^= 1 << (bit & 7);
      const verdict = verdicts(s2, m2, k2);
      assert.ok(agree(verdict), `mutation disagrees (bit ${bit} of ${target}): ${JSON.stringify(verdict)}`);
      assert.is(verdict.native, verdict.noble, `mutation disagrees (bit ${bit} of ${target})`);
      counts.mutated++;
      if (verdict.native) counts.mutatedAccepted++;
    }
  } catch (e) {
    console.error(`signature property test failed with SIGNET_SEED=${seed}`);
    throw e;
  }
  assert.is(counts.valid, 10_000);
  assert.is(counts.mutated, 10_000);
  assert.is(counts.mutatedAccepted, 0);
});

test('prechecks alone: the rule runs before every backend', () => {
  const id = Identity.generate();
  const sig = id.sign(new Uint8Array(1));
  assert.ok(passesPrechecks(sig, id.publicKey));
  assert.not.ok(passesPrechecks(sig, fromHex(SMALL_ORDER_ENCODINGS[4]!)));
  const highS = sig.slice();
  highS[63] = 0xff;
  assert.not.ok(passesPrechecks(highS, id.publicKey));
});

test('signatureEquations() counts every check 5 on every backend, sync and async, and nothing checks 1-4 stopped', async () => {
  const id = Identity.generate();
  const msg = new Uint8Array(8);
  const sig = id.sign(msg);
  const before = signatureEquations();
  for (const backend of backends) {
    verifySignatureSync(sig, msg, id.publicKey, { backend });
    await verifySignature(sig, msg, id.publicKey, { backend });
    verifySignatureSync(sig, msg, fromHex(SMALL_ORDER_ENCODINGS[0]!), { backend });
    await verifySignature(sig.subarray(1), msg, id.publicKey, { backend });
  }
  assert.is(signatureEquations() - before, 2 * backends.length);
});

test.run();
