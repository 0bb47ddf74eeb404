// Fuzz: the CBOR guard and decoder (checkCbor, decodeCbor), which see every byte a peer sends
// before anything else does. Never a throw; what is accepted decodes as CBOR says; values round-trip.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { checkCbor, decodeCbor, encodeCbor, FORBIDDEN_KEYS, type CborResult, type Value } from '../../src/envelope/cbor.ts';
import { anyBytes, assertSame, cborHeads, itemsInput, manyItems, mutate, mutations, text, value } from './arbitraries.ts';
import { encodeWide, headWidths, referenceDecode } from './cbor-model.ts';
import { heapBudget, property, retained } from './harness.ts';

const depth = fc.integer({ min: 0, max: 40 });

/**
 * Everything a decode result must be, whatever the input: a refusal is bad-shape with a reason;
 * an acceptance is what the guard accepts, decodes to what a reference decoder reads, holds no
 * prototype keys, and re-encodes to the same value.
 */
function checkResult(bytes: Uint8Array, maxDepth: number, r: CborResult): void {
  const guard = checkCbor(bytes, maxDepth);
  assert.ok(guard === null || (typeof guard === 'string' && guard.length > 0), 'the guard says null or why');
  if (!r.ok) {
    assert.is(r.reason, 'bad-shape');
    assert.type(r.detail, 'string');
    assert.ok(r.detail.length > 0, 'a refusal says why');
    return;
  }
  assert.is(guard, null, 'decodeCbor accepted what checkCbor refuses');
  assertSame(r.value, referenceDecode(bytes), 'cbor-x and the reference decoder disagree');
  noPrototypeKeys(r.value);
  const again = decodeCbor(encodeCbor(r.value), { maxDepth });
  assert.ok(again.ok, 'an accepted value re-encodes acceptably');
  if (again.ok) assertSame(again.value, r.value, 'decoded again');
}

/** A refusal comes from the guard: cbor-x refusing what the guard let through is a gap in the guard. */
function refusedByTheGuard(r: CborResult): void {
  if (!r.ok) assert.not.match(r.detail, /^cbor:/, `the guard let through what cbor-x refused: ${r.detail}`);
}

/** Decoded maps are plain objects without prototype keys, and Object.prototype is untouched. */
function noPrototypeKeys(v: unknown): void {
  const stack = [v];
  while (stack.length > 0) {
    const x = stack.pop();
    if (x instanceof Uint8Array || x === null || typeof x !== 'object') continue;
    if (Array.isArray(x)) {
      stack.push(...x);
      continue;
    }
    assert.ok(Object.getPrototypeOf(x) === Object.prototype || Object.getPrototypeOf(x) === null, 'a decoded map is a plain object');
    for (const k of Object.keys(x)) {
      assert.not.ok(FORBIDDEN_KEYS.has(k), `decoded key ${k}`);
      stack.push((x as Record<string, unknown>)[k]);
    }
  }
  assert.is(({} as Record<string, unknown>).polluted, undefined);
}

property(
  'decodeCbor: arbitrary bytes never throw; a refusal is bad-shape with a reason from the guard; what is accepted decodes as a reference decoder reads it',
  fc.property(anyBytes, depth, (bytes, maxDepth) => {
    const r = decodeCbor(bytes, { maxDepth });
    checkResult(bytes, maxDepth, r);
    refusedByTheGuard(r);
  }),
  { weight: 20 },
);

property(
  'decodeCbor: mutated valid CBOR (bit flips, insertions, deletions, truncation, edge lengths) never throws; a refusal comes from the guard; what is accepted decodes as a reference decoder reads it',
  fc.property(value(6), mutations, depth, (v, list, maxDepth) => {
    const valid = encodeCbor(v);
    const bytes = mutate(valid, list, cborHeads(valid));
    const r = decodeCbor(bytes, { maxDepth });
    checkResult(bytes, maxDepth, r);
    refusedByTheGuard(r);
  }),
  { weight: 20 },
);

property(
  'decodeCbor(encodeCbor(v)) gives v back for every signet value within the depth limit',
  fc.property(value(8), (v) => {
    const r = decodeCbor(encodeCbor(v), { maxDepth: 8 });
    assert.ok(r.ok, r.ok ? '' : r.detail);
    if (r.ok) assertSame(r.value, v, 'decoded');
  }),
  { weight: 5 },
);

property(
  'decodeCbor: any value written with wider heads than needed (1, 2, 4, 8-byte lengths) never throws; if accepted, it is the value',
  fc.property(value(5), headWidths, (v, widths) => {
    const bytes = encodeWide(v, widths);
    const r = decodeCbor(bytes, { maxDepth: 5 });
    checkResult(bytes, 5, r);
    if (r.ok) assertSame(r.value, v, 'decoded');
  }),
  { weight: 10 },
);

property(
  'decodeCbor: cbor-x never refuses what the guard accepted, whatever the head widths (the guard refuses non-minimal heads, on which native and JS decoding disagreed)',
  fc.property(value(5), headWidths, (v, widths) => {
    refusedByTheGuard(decodeCbor(encodeWide(v, widths), { maxDepth: 5 }));
  }),
  { weight: 10 },
);

property(
  'decodeCbor: text is checked as written: map keys that differ by a leading U+FEFF are distinct and round-trip',
  fc.property(fc.dictionary(text(6).filter((k) => !FORBIDDEN_KEYS.has(k)), value(0), { minKeys: 1, maxKeys: 4, noNullPrototype: true }), (map) => {
    const v: Record<string, Value> = {};
    for (const [k, x] of Object.entries(map)) {
      v[k] = x;
      v[`\uFEFF${k}`] = x;
    }
    const r = decodeCbor(encodeCbor(v), { maxDepth: 2 });
    assert.ok(r.ok, r.ok ? '' : r.detail);
    if (r.ok) assertSame(r.value, v, 'decoded');
  }),
  { weight: 1 },
);

// Nesting of any mix of arrays and maps: accepted up to maxDepth, refused past it, and never a
// RangeError from cbor-x's recursion however deep (100,000 levels).
const nesting = fc.record({
  maxDepth: fc.integer({ min: 0, max: 64 }),
  levels: fc.oneof(fc.integer({ min: 0, max: 130 }), fc.constant(100_000)),
  maps: fc.uint8Array({ minLength: 1, maxLength: 8 }),
});
property(
  'decodeCbor: nesting up to maxDepth is accepted, deeper is refused, and no depth overflows the stack',
  fc.property(nesting, ({ maxDepth, levels, maps }) => {
    const buffer = new Uint8Array(levels * 3 + 1); // each level [x] or {"k": x}, then 0
    let at = 0;
    for (let i = 0; i < levels; i++) {
      const level = maps[i % maps.length]! & 1 ? [0xa1, 0x61, 0x6b] : [0x81];
      buffer.set(level, at);
      at += level.length;
    }
    const bytes = buffer.subarray(0, at + 1);
    const r = decodeCbor(bytes, { maxDepth });
    assert.is(r.ok, levels <= maxDepth, `${levels} levels, limit ${maxDepth}`);
    checkResult(bytes, maxDepth, r);
  }),
  { weight: 2 },
);

// Huge item counts in one value (manyItems): the heap the decoded value holds stays within a
// constant times its wire size (heapBudget).
property(
  'decodeCbor: many small items (2^20 per array, up to 8 MiB) hold at most heapBudget(bytes)',
  fc.property(manyItems(), (items) => {
    const { what, input } = itemsInput(items);
    const { result, growth } = retained(() => decodeCbor(input, { maxDepth: 4 }));
    assert.ok(result.ok || result.detail.length > 0);
    const budget = heapBudget(input.length);
    assert.ok(growth <= budget, `${what} (${input.length} bytes) held ${growth} bytes, budget ${budget}`);
  }),
  { weight: 0.1 },
);

test.run();
