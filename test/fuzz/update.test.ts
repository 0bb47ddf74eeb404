// Fuzz: the envelope parser (parseUpdate) and opener (openUpdate): a result for every input,
// never a throw or a rejection; signed updates round-trip; nothing but the signed bytes opens.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { cborHead, encodeCbor, readHead, type Value } from '../../src/envelope/cbor.ts';
import { isDatasetName, openUpdate, parseUpdate, signUpdate, type UpdateResult } from '../../src/envelope/update.ts';
import { Identity } from '../../src/identity/identity.ts';
import { MAX_BODY_DEPTH, MAX_DATASET_LENGTH, MAX_UPDATE_BYTES } from '../../src/limits.ts';
import { concatBytes, utf8 } from '../../src/util/bytes.ts';
import { anyBytes, assertSame, cborHeads, head, mutate, mutations, text, value } from './arbitraries.ts';
import { heapBudget, property, retained } from './harness.ts';

const REASONS = new Set(['bad-shape', 'too-large', 'wrong-dataset', 'bad-version', 'bad-signature']);
const source = Identity.fromSecretKey(new Uint8Array(32).fill(0x0f));

/** What every result must look like, whatever the input. */
function checkResult(r: UpdateResult): void {
  if (r.ok) return;
  assert.ok(REASONS.has(r.reason), `reason ${r.reason}`);
  assert.type(r.detail, 'string');
  assert.ok(r.detail.length > 0, 'a rejection says why');
}

const dataset = text(40).filter(isDatasetName);
const version = fc.oneof(fc.integer({ min: 1, max: 2 ** 32 }), fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }));
const fields = fc.record({ dataset, version, body: value(4) });

/** The bytes of an envelope with `payload` inside it and a signature that is not checked here. */
function envelopeOf(payload: Uint8Array, signature = new Uint8Array(64)): Uint8Array {
  return concatBytes(Uint8Array.of(0x82), cborHead(2, payload.length), payload, Uint8Array.of(0x58, 0x40), signature);
}

/** Offsets worth mutating in a signed envelope: every CBOR head of the envelope and of its payload. */
function marksOf(envelope: Uint8Array): number[] {
  const head = readHead(envelope, 1);
  return [...cborHeads(envelope), ...cborHeads(envelope, head ? 1 + head[2] : 0)];
}

property(
  'parseUpdate: arbitrary bytes, bare or wrapped as [payload, 64-byte signature], never throw; a rejection has a reason',
  fc.property(anyBytes, fc.boolean(), (bytes, wrap) => {
    const r = parseUpdate(wrap ? envelopeOf(bytes) : bytes);
    checkResult(r);
    // random bytes are never a 5-element payload with a canonical header
    if (!wrap) assert.not.ok(r.ok);
  }),
  { weight: 20 },
);

property(
  'parseUpdate(signUpdate(x)) and openUpdate give back x: dataset, version, body, key, source id',
  fc.asyncProperty(fields, async (x) => {
    const signed = signUpdate(source, x);
    for (const r of [parseUpdate(signed.bytes, { dataset: x.dataset }), await openUpdate(signed.bytes, { dataset: x.dataset })]) {
      assert.ok(r.ok, r.ok ? '' : `${r.reason}: ${r.detail}`);
      if (!r.ok) return;
      assert.is(r.update.dataset, x.dataset);
      assert.is(r.update.version, x.version);
      assertSame(r.update.body, x.body, 'body');
      assert.equal([...r.update.publicKey], [...source.publicKey]);
      assert.is(r.update.source, source.id);
      assert.equal([...r.update.bytes], [...signed.bytes]);
    }
    // the dataset is bound: any other name is refused
    const other = parseUpdate(signed.bytes, { dataset: `${x.dataset}.` });
    assert.is(other.ok ? 'ok' : other.reason, 'wrong-dataset');
  }),
  { weight: 2 },
);

// Envelopes built field by field, each field valid or at an edge: parseUpdate accepts exactly
// those whose every field is valid, and when one field is wrong, names the documented reason.
type Field<T> = { value: T; valid: boolean; reason: string };
const ok = <T>(value: T): Field<T> => ({ value, valid: true, reason: '' });
const bad = <T>(value: T, reason = 'bad-shape'): Field<T> => ({ value, valid: false, reason });
type Body = { value: Value } | { levels: number } | { bytes: number } | { trailing: true };
/** A body: a value, arrays nested `levels` deep, a byte string `bytes` long in all, or 0 with a byte after it. */
function bodyBytes(body: Body): Uint8Array {
  if ('value' in body) return encodeCbor(body.value);
  if ('levels' in body) return concatBytes(new Uint8Array(body.levels).fill(0x81), Uint8Array.of(0x00));
  if ('bytes' in body) return concatBytes(cborHead(2, body.bytes - 3), new Uint8Array(body.bytes - 3)); // a 3-byte head here
  return Uint8Array.of(0x00, 0x00);
}
const forged = fc.record({
  format: fc.oneof(fc.constant(ok(1)), fc.constantFrom(0, 2, 24).map((v) => bad(v))),
  dataset: fc.oneof(
    dataset.map((d) => ok(utf8(d))),
    fc.constant(ok(utf8('d'.repeat(MAX_DATASET_LENGTH)))),
    fc.constantFrom('', 'd'.repeat(MAX_DATASET_LENGTH + 1), 'a\u0001b', 'tab\there').map((d) => bad(utf8(d))),
    fc.constant(bad(Uint8Array.of(0x61, 0xc3, 0x28))), // not UTF-8
  ),
  key: fc.oneof(fc.constant(ok(32)), fc.constantFrom(0, 31, 33).map((n) => bad(n))),
  version: fc.oneof(
    version.map((v) => ok<[number | bigint, 0 | 8]>([v, 0])),
    fc.constant(ok<[number | bigint, 0 | 8]>([Number.MAX_SAFE_INTEGER, 0])),
    fc.constantFrom(0, 2 ** 53, 2n ** 64n - 1n).map((v) => bad<[number | bigint, 0 | 8]>([v, 0], 'bad-version')),
    fc.integer({ min: 1, max: 2 ** 32 - 1 }).map((v) => bad<[number | bigint, 0 | 8]>([v, 8])), // not minimal
  ),
  // described, not built, so a counterexample prints small (see bodyBytes)
  body: fc.oneof(
    { weight: 4, arbitrary: value(3).map((v) => ok<Body>({ value: v })) },
    { weight: 1, arbitrary: fc.constantFrom(
      ok<Body>({ levels: MAX_BODY_DEPTH }), bad<Body>({ levels: MAX_BODY_DEPTH + 1 }),
      ok<Body>({ bytes: MAX_UPDATE_BYTES }), bad<Body>({ bytes: MAX_UPDATE_BYTES + 1 }, 'too-large'),
      bad<Body>({ trailing: true }),
    ) },
  ),
  signature: fc.uint8Array({ minLength: 64, maxLength: 64 }),
});

property(
  'parseUpdate: envelopes built field by field are accepted exactly when every field is valid; one bad field gives its documented reason',
  fc.property(forged, (f) => {
    const payload = concatBytes(
      Uint8Array.of(0x85), head(0, f.format.value, 0),
      cborHead(3, f.dataset.value.length), f.dataset.value,
      cborHead(2, f.key.value), source.publicKey.subarray(0, f.key.value), new Uint8Array(Math.max(0, f.key.value - 32)),
      head(0, f.version.value[0], f.version.value[1]),
      bodyBytes(f.body.value),
    );
    const r = parseUpdate(envelopeOf(payload, f.signature));
    checkResult(r);
    const fields = [f.format, f.dataset, f.key, f.version, f.body];
    const wrong = fields.filter((x) => !x.valid);
    assert.is(r.ok, wrong.length === 0, r.ok ? 'accepted with a bad field' : `refused: ${r.reason}: ${r.detail}`);
    if (!r.ok && wrong.length === 1) assert.is(r.reason, wrong[0]!.reason, r.detail);
    if (r.ok) {
      assert.equal([...utf8(r.update.dataset)], [...f.dataset.value]);
      assert.is(r.update.version, f.version.value[0]);
      assert.equal([...r.update.publicKey], [...source.publicKey]);
      assert.equal([...r.update.signature], [...f.signature]);
    }
  }),
  { weight: 10 },
);

// One shared signed update per body keeps this fast; the mutations do the work.
const signedSample = fields.map((x) => signUpdate(source, x));

property(
  'parseUpdate: mutated signed envelopes never throw; what is accepted is well formed',
  fc.property(signedSample, mutations, (signed, list) => {
    const bytes = mutate(signed.bytes, list, marksOf(signed.bytes));
    const r = parseUpdate(bytes);
    checkResult(r);
    if (r.ok) {
      assert.ok(isDatasetName(r.update.dataset));
      assert.ok(Number.isSafeInteger(r.update.version) && r.update.version >= 1);
      assert.is(r.update.publicKey.length, 32);
      assert.is(r.update.signature.length, 64);
      assert.ok(r.update.payload.length <= MAX_UPDATE_BYTES + 1024);
    }
  }),
  { weight: 10 },
);

property(
  'openUpdate: mutated signed envelopes never reject; only the signed payload and signature open',
  fc.asyncProperty(signedSample, mutations, async (signed, list) => {
    const bytes = mutate(signed.bytes, list, marksOf(signed.bytes));
    const r = await openUpdate(bytes);
    checkResult(r);
    if (r.ok) {
      // a different head width around the same payload may open; a different payload or signature never
      assert.equal([...r.update.payload], [...signed.payload], 'a changed payload verified');
      assert.equal([...r.update.signature], [...signed.signature], 'a changed signature verified');
    }
  }),
  { weight: 3 },
);

// Bodies of many small items, up to the body limit: the parsed update holds at most
// heapBudget(envelope bytes), however its body is later read.
const SMALL_ITEMS: ReadonlyArray<[string, number[]]> = [
  ['empty map', [0xa0]], ['empty array', [0x80]], ['empty byte string', [0x40]], ['0', [0x00]], ['empty text', [0x60]],
];
const bodyOfItems = fc.record({
  item: fc.integer({ min: 0, max: SMALL_ITEMS.length - 1 }),
  count: fc.oneof(fc.integer({ min: 1, max: MAX_UPDATE_BYTES - 8 }), fc.constant(MAX_UPDATE_BYTES - 8)),
});

// Failed before the decode budget (4ba77b2): a body of 65,528 empty byte strings held about 190
// heap bytes per envelope byte once read; ed7eebd bounds it.
property(
  'parseUpdate: a body of many small items (up to maxUpdateBytes) holds at most heapBudget(envelope bytes)',
  fc.property(bodyOfItems, ({ item, count }) => {
    const [name, bytes] = SMALL_ITEMS[item]!;
    const body = concatBytes(cborHead(4, count), new Uint8Array(count).fill(bytes[0]!));
    const name8 = utf8('default');
    const header = concatBytes(Uint8Array.of(0x85, 0x01), cborHead(3, name8.length), name8, cborHead(2, 32), source.publicKey, cborHead(0, 1));
    const envelope = envelopeOf(concatBytes(header, body));
    const { result, growth } = retained(() => {
      const r = parseUpdate(envelope);
      return { r, body: r.ok ? r.update.body : null }; // read the body: what a model does with it
    });
    checkResult(result.r);
    const budget = heapBudget(envelope.length);
    assert.ok(growth <= budget, `${count} x ${name} (${envelope.length} bytes) held ${growth} bytes, budget ${budget}`);
  }),
  { weight: 0.2 },
);

test.run();
