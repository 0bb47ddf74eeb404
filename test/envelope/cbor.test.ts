// The CBOR codec: the guard's rules, cbor-x's size limits proven in force, and fuzzed input
// that must never throw.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { decodeCbor, encodeCbor, checkCbor, cborHead, readHead, skipScanned, CBOR_MAX_ITEMS, FORBIDDEN_KEYS, rawDecoderForTests } from '../../src/envelope/cbor.ts';
import { concatBytes } from '../../src/util/bytes.ts';
import { Prng, testSeed } from '../helpers/prng.ts';

test('plain data round-trips through the configured codec', () => {
  const values = [null, true, false, 0, -1, 2 ** 53 - 1, -(2 ** 53 - 1), 1.5, 'text', 'ünïcode', new Uint8Array([1, 2, 3]),
    [], {}, [1, [2, [3]]], { a: { b: [null, 'c'] } }];
  for (const v of values) {
    const r = decodeCbor(encodeCbor(v), { maxDepth: 8 });
    assert.ok(r.ok, JSON.stringify(v));
    if (r.ok) assert.equal(r.value instanceof Uint8Array ? new Uint8Array(r.value) : r.value, v);
  }
});

test('the encoder writes byte strings untagged and never uses records', () => {
  const enc = encodeCbor({ k: new Uint8Array([7]) });
  assert.equal([...enc], [0xa1, 0x61, 0x6b, 0x41, 0x07]);
  const a = encodeCbor([{ x: 1 }, { x: 2 }]);
  assert.equal([...a], [0x82, 0xa1, 0x61, 0x78, 0x01, 0xa1, 0x61, 0x78, 0x02]);
});

test('cbor-x size limits are in force (setSizeLimits): limit decodes, limit + 1 throws', () => {
  const arrayOf = (n: number) => concatBytes(cborHead(4, n), new Uint8Array(n));
  const ok = rawDecoderForTests.decode(arrayOf(CBOR_MAX_ITEMS)) as unknown[];
  assert.is(ok.length, CBOR_MAX_ITEMS);
  assert.throws(() => rawDecoderForTests.decode(arrayOf(CBOR_MAX_ITEMS + 1)), /exceeds/);
  // through the guarded path it is a result, not a throw
  const r = decodeCbor(arrayOf(CBOR_MAX_ITEMS + 1), { maxDepth: 2 });
  assert.equal(r.ok, false);
});

test('guard: depth limit exactly, truncation, trailing bytes', () => {
  const nest = (n: number) => concatBytes(new Uint8Array(n).fill(0x81), Uint8Array.of(0x00));
  assert.is(checkCbor(nest(5), 5), null);
  assert.match(checkCbor(nest(6), 5)!, /nesting/);
  assert.match(checkCbor(Uint8Array.of(0x82, 0x00), 4)!, /exceeds/);
  assert.match(checkCbor(Uint8Array.of(0x82, 0x00, 0x19, 0x01), 4)!, /truncated/);
  assert.match(checkCbor(Uint8Array.of(0x00, 0x00), 4)!, /trailing/);
  assert.match(checkCbor(new Uint8Array(0), 4)!, /truncated/);
  // maps: values may be containers; the key/value alternation survives nesting
  assert.is(checkCbor(encodeCbor({ a: [1, { b: 2 }], c: 'd' }), 4), null);
  assert.match(checkCbor(concatBytes(Uint8Array.of(0xa1, 0x80, 0x00)), 4)!, /key/);
});

test('readHead and cborHead agree at every width boundary', () => {
  for (const n of [0, 23, 24, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, Number.MAX_SAFE_INTEGER]) {
    const h = cborHead(2, n);
    assert.equal(readHead(h, 0), [2, n, h.length]);
  }
  assert.is(readHead(Uint8Array.of(0x5f), 0), null);
  assert.is(readHead(Uint8Array.of(0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff), 0), null);
});

test('20,000 random byte strings and mutations of valid CBOR never throw', () => {
  const seed = testSeed();
  const rng = new Prng(seed);
  const sample = encodeCbor({ list: [1, 'two', new Uint8Array(3), { deep: [null, true, 1.25] }], n: -7 });
  let accepted = 0;
  try {
    for (let i = 0; i < 20_000; i++) {
      let input: Uint8Array;
      if (i % 2 === 0) input = rng.bytes(rng.int(64));
      else {
        input = sample.slice(0, rng.int(sample.length + 1));
        if (input.length > 0) input[rng.int(input.length)] = rng.u32() & 0xff;
      }
      const r = decodeCbor(input, { maxDepth: 8 });
      if (r.ok) accepted++;
    }
  } catch (e) {
    console.error(`fuzz failed with SIGNET_SEED=${seed}`);
    throw e;
  }
  assert.ok(accepted > 0); // some inputs are valid, so the loop exercises both paths
});

test('text strings: the guard\'s UTF-8 verdict is the strict decoder\'s, as a value and as a map key', () => {
  const seed = testSeed();
  const rng = new Prng(seed);
  const strict = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  // Edge cases (overlong forms, surrogates, past U+10FFFF, truncated sequences, a BOM), then
  // random bytes biased towards the multi-byte ranges.
  const cases: Uint8Array[] = [
    [], [0x41], [0xc0, 0x80], [0xc2, 0x80], [0xe0, 0x80, 0x80], [0xed, 0xa0, 0x80], [0xed, 0x9f, 0xbf], [0xef, 0xbb, 0xbf],
    [0xf0, 0x8f, 0xbf, 0xbf], [0xf4, 0x8f, 0xbf, 0xbf], [0xf4, 0x90, 0x80, 0x80], [0xf8, 0x88, 0x80, 0x80, 0x80], [0xe2, 0x82], [0x7f, 0x80],
  ].map((b) => Uint8Array.from(b));
  const pool = [0x00, 0x41, 0x7f, 0x80, 0xbf, 0xc0, 0xc2, 0xdf, 0xe0, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xff];
  for (let i = 0; i < 5000; i++) cases.push(Uint8Array.from({ length: rng.int(9) }, () => (rng.int(3) === 0 ? rng.u32() & 0xff : pool[rng.int(pool.length)]!)));
  let valid = 0;
  for (const text of cases) {
    let expected = true;
    try {
      strict.decode(text);
    } catch {
      expected = false;
    }
    if (expected) valid++;
    const item = Uint8Array.from([...cborHead(3, text.length), ...text]);
    assert.is(checkCbor(item, 4) === null, expected, `value ${Buffer.from(text).toString('hex')} (SIGNET_SEED=${seed})`);
    const keyed = Uint8Array.from([0xa1, ...item, 0x01]);
    const forbidden = expected && FORBIDDEN_KEYS.has(strict.decode(text));
    assert.is(checkCbor(keyed, 4) === null, expected && !forbidden, `key ${Buffer.from(text).toString('hex')} (SIGNET_SEED=${seed})`);
  }
  assert.ok(valid > 100 && valid < cases.length - 100); // both verdicts exercised
});

test('skipScanned ends exactly where each accepted item ends, for every head width and kind', () => {
  const rng = new Prng(testSeed());
  const pick = (depth: number): unknown => {
    switch (rng.int(depth >= 2 ? 5 : 7)) { // containers only near the top: the items stay small
      case 0: return [0, 23, 24, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, Number.MAX_SAFE_INTEGER][rng.int(10)]! * (rng.int(2) ? 1 : -1);
      case 1: return 'x'.repeat([0, 1, 23, 24, 255, 256, 65536][rng.int(depth === 0 ? 7 : 6)]!); // 3-byte+ lengths at the top only
      case 2: return new Uint8Array([0, 23, 24, 300][rng.int(4)]!);
      case 3: return [1.5, -0.25, 1e300, null, true, false][rng.int(6)];
      case 4: return rng.int(2) ? 'é' : 7;
      case 5: return Array.from({ length: [0, 1, 24, 256][rng.int(depth === 0 ? 4 : 3)]! }, () => pick(depth + 1));
      default: return Object.fromEntries(Array.from({ length: rng.int(30) }, (_, i) => [`k${i}`, pick(depth + 1)]));
    }
  };
  for (let i = 0; i < 300; i++) {
    const item = encodeCbor(pick(0));
    assert.is(checkCbor(item, 8), null);
    const framed = concatBytes(Uint8Array.of(0xff), item, Uint8Array.of(0x01)); // an item amid other bytes
    assert.is(skipScanned(framed, 1), 1 + item.length);
  }
});

test.run();
