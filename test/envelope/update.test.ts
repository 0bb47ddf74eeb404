// The signed envelope: round trip, limits at limit and limit+1, and hostile envelopes
// that must come back as results with a reason, never as a throw.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Identity, signUpdate, openUpdate, parseUpdate, verifyUpdate, nextVersion, nodeIdOf, wallClockMicros, limits } from '../../src/index.ts';
import { decodeCbor, encodeCbor, cborHead } from '../../src/envelope/cbor.ts';
import { bodyHead, bodyLength, compactUpdate, parseAdoptedUpdate, hashId, isCompact, signedId } from '../../src/envelope/update.ts';
import { DOMAIN, domainBytes } from '../../src/identity/signature.ts';
import { concatBytes, toHex, utf8 } from '../../src/util/bytes.ts';

const alice = Identity.fromSecretKey(new Uint8Array(32).fill(0xa1));
const mallory = Identity.fromSecretKey(new Uint8Array(32).fill(0x66));
const good = signUpdate(alice, { dataset: 'chat', version: 1_700_000_000_000_000, body: ['set', 'k', { v: [1, 'two', true, null, 2.5] }] });

/** An envelope around arbitrary payload bytes, signed for real by `signer` under `tag`. */
function craft(payload: Uint8Array, signer = alice, tag: string = DOMAIN.update): Uint8Array {
  const sig = signer.sign(domainBytes(tag, payload));
  return concatBytes(Uint8Array.of(0x82), cborHead(2, payload.length), payload, Uint8Array.of(0x58, 0x40), sig);
}
/** A payload with the canonical header and raw body bytes. */
function payloadWith(body: Uint8Array, opts: { dataset?: string; version?: number; key?: Uint8Array } = {}): Uint8Array {
  const name = utf8(opts.dataset ?? 'chat');
  return concatBytes(Uint8Array.of(0x85, 0x01), cborHead(3, name.length), name, cborHead(2, 32), opts.key ?? alice.publicKey,
    cborHead(0, opts.version ?? 5), body);
}
const reasonOf = async (bytes: Uint8Array, options?: Parameters<typeof openUpdate>[1]) => {
  const r = await openUpdate(bytes, options);
  return r.ok ? 'ok' : r.reason;
};

test('sign then open: fields, derived source id, hash and byte-exact envelope', async () => {
  const r = await openUpdate(good.bytes, { dataset: 'chat' });
  assert.ok(r.ok);
  if (!r.ok) return;
  assert.is(r.update.source, alice.id);
  assert.is(r.update.version, 1_700_000_000_000_000);
  assert.equal(r.update.body, ['set', 'k', { v: [1, 'two', true, null, 2.5] }]);
  assert.is(toHex(r.update.bytes), toHex(good.bytes));
  assert.is(toHex(r.update.hash), toHex(good.hash));
  assert.ok(await verifyUpdate(r.update, { backend: 'noble' }));
});

test('parseUpdate copies its input: a Buffer view changed later does not change the update', () => {
  const backing = Buffer.from(good.bytes);
  const r = parseUpdate(backing);
  assert.ok(r.ok);
  if (!r.ok) return;
  backing.fill(0);
  assert.is(toHex(r.update.bytes), toHex(good.bytes));
  assert.is(toHex(r.update.payload), toHex(good.payload));
});

test('parseAdoptedUpdate keeps a handed-over envelope (with room for its hash) without a copy; any other input is copied', () => {
  // Room for the hash after it, wherever it sits in its buffer (alone, or cut from a shared chunk).
  for (const [offset, extra] of [[0, 32], [7, 32], [0, 40], [100, 500]] as const) {
    const room = new Uint8Array(new ArrayBuffer(offset + good.bytes.length + extra), offset, good.bytes.length);
    room.set(good.bytes);
    const after = new Uint8Array(room.buffer, offset + good.bytes.length + 32); // not the update's
    after.fill(0xaa);
    const kept = parseAdoptedUpdate(room);
    assert.ok(kept.ok);
    if (!kept.ok) return;
    assert.is(toHex(kept.update.bytes), toHex(good.bytes));
    assert.is(toHex(kept.update.hash), toHex(good.hash));
    assert.is(kept.update.bytes.buffer, room.buffer); // the same memory: no copy
    assert.is(kept.update.bytes.byteOffset, offset);
    assert.ok(after.every((b) => b === 0xaa), 'nothing written past the 32 reserved bytes');
  }
  // No room for the hash after it (or a view the caller did not hand over): copied.
  for (const [offset, extra] of [[0, 31], [5, 0], [0, 0]] as const) {
    const other = new Uint8Array(new ArrayBuffer(offset + good.bytes.length + extra), offset, good.bytes.length);
    other.set(good.bytes);
    const r = parseAdoptedUpdate(other);
    assert.ok(r.ok);
    if (!r.ok) return;
    assert.is.not(r.update.bytes.buffer, other.buffer);
    other.fill(0);
    assert.is(toHex(r.update.bytes), toHex(good.bytes));
  }
});

test('envelopes read from a caller\'s resizable buffer as it grows keep their own sources', async () => {
  const ids = [Identity.generate(), Identity.generate(), Identity.generate()];
  const dataset = `grow-${ids[0]!.id.slice(0, 8)}`; // headers no earlier test has seen
  const envelopes = ids.map((id, i) => signUpdate(id, { dataset, version: 1 + i, body: ['set', 'k', i] }).bytes);
  const n = envelopes[0]!.length;
  const grows = new (ArrayBuffer as unknown as new (n: number, o: { maxByteLength: number }) => ArrayBuffer & { resize(n: number): void })(n, { maxByteLength: 3 * n });
  for (let i = 0; i < 3; i++) {
    if (i > 0) grows.resize((i + 1) * n);
    const view = new Uint8Array(grows, i * n, n);
    view.set(envelopes[i]!);
    const r = await openUpdate(view);
    assert.ok(r.ok, `envelope ${i} verifies`);
    if (!r.ok) return;
    assert.is(r.update.source, ids[i]!.id, `envelope ${i} is credited to its signer`);
  }
});

test('a header seen before is matched byte for byte: one key byte apart is another source', () => {
  const first = parseUpdate(good.bytes, { dataset: 'chat' }); // now the most recent header
  assert.ok(first.ok);
  if (!first.ok) return;
  assert.is(first.update.source, alice.id);
  const keyEnd = good.bytes.length - 66 - first.update.bodyBytes.length - 9; // a 9-byte version head follows the key
  for (const at of [keyEnd - 1, keyEnd - 32]) {
    const other = good.bytes.slice();
    other[at]! ^= 1;
    const r = parseUpdate(other, { dataset: 'chat' });
    assert.ok(r.ok);
    if (!r.ok) return;
    assert.is(toHex(r.update.publicKey), toHex(other.subarray(keyEnd - 32, keyEnd)));
    assert.is(r.update.source, nodeIdOf(r.update.publicKey));
    assert.is.not(r.update.source, alice.id);
  }
  const again = parseUpdate(good.bytes, { dataset: 'chat' });
  assert.ok(again.ok && again.update.source === alice.id);
});

test('signedId names the envelope, signature included, alike in the fresh and the compact form', () => {
  const r = parseUpdate(good.bytes);
  const forged = good.bytes.slice();
  forged[forged.length - 1]! ^= 1; // the same payload (and hash) under another signature
  const f = parseUpdate(forged);
  assert.ok(r.ok && f.ok);
  if (!r.ok || !f.ok) return;
  const id = signedId(r.update);
  assert.is(id.length, 96);
  assert.is(hashId(f.update), hashId(r.update));
  assert.is.not(signedId(f.update), id);
  compactUpdate(r.update);
  assert.ok(isCompact(r.update));
  assert.is(signedId(r.update), id);
  assert.is(signedId(good), id); // signUpdate's own update
});

test('bodyLength and bodyHead read the body without making it, alike fresh and compact', () => {
  for (const body of [['set', 'k', 'v'], ['del', 'k'], 7, 'x'.repeat(300)]) {
    const u = signUpdate(alice, { dataset: 'chat', version: 5, body });
    const r = parseUpdate(u.bytes);
    assert.ok(r.ok);
    if (!r.ok) return;
    for (const x of [u, r.update]) {
      assert.is(bodyLength(x), x.bodyBytes.length);
      assert.is(bodyHead(x), x.bodyBytes[0]);
      compactUpdate(x);
      assert.ok(isCompact(x));
      assert.is(bodyLength(x), x.bodyBytes.length);
      assert.is(bodyHead(x), x.bodyBytes[0]);
    }
  }
});

test('every single-byte truncation of a valid envelope is rejected, never thrown', async () => {
  for (let n = 0; n < good.bytes.length; n++) {
    const r = await openUpdate(good.bytes.subarray(0, n));
    assert.not.ok(r.ok, `truncated to ${n}`);
  }
  // and one extra byte
  assert.is(await reasonOf(concatBytes(good.bytes, Uint8Array.of(0))), 'bad-shape');
});

test('a bit flipped anywhere is rejected (shape, version or signature), never thrown', async () => {
  for (let i = 0; i < good.bytes.length; i++) {
    const b = good.bytes.slice();
    b[i]! ^= 0x01;
    const r = await openUpdate(b);
    assert.not.ok(r.ok, `flip at ${i}`);
  }
});

test('deep nesting (100,000 levels) is a bad-shape result: in the guard and in an envelope', async () => {
  const deep = concatBytes(new Uint8Array(100_000).fill(0x81), Uint8Array.of(0x00));
  const d = decodeCbor(deep, { maxDepth: 32 });
  assert.equal(d.ok, false);
  assert.is(await reasonOf(craft(payloadWith(deep))), 'too-large'); // size is checked first
  assert.is(await reasonOf(craft(payloadWith(deep)), { maxUpdateBytes: 1 << 20 }), 'bad-shape');
  // nesting at the limit (32 in the body) is fine, 33 is not
  const nest = (n: number) => concatBytes(new Uint8Array(n).fill(0x81), Uint8Array.of(0x00));
  assert.is(await reasonOf(craft(payloadWith(nest(limits.MAX_BODY_DEPTH)))), 'ok');
  assert.is(await reasonOf(craft(payloadWith(nest(limits.MAX_BODY_DEPTH + 1)))), 'bad-shape');
});

test('claimed lengths of 2^32 and 2^64-1 are rejected before anything is allocated', async () => {
  const huge = [
    Uint8Array.of(0x5a, 0xff, 0xff, 0xff, 0xff), // byte string of 2^32-1
    Uint8Array.of(0x5b, 0, 0, 0, 1, 0, 0, 0, 0), // byte string of 2^32
    Uint8Array.of(0x7b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff), // text of 2^64-1
    Uint8Array.of(0x9b, 0, 0, 0, 1, 0, 0, 0, 0), // array of 2^32 items
    Uint8Array.of(0xbb, 0, 0, 0, 1, 0, 0, 0, 0), // map of 2^32 pairs
  ];
  for (const body of huge) {
    assert.is(await reasonOf(craft(payloadWith(body))), 'bad-shape', toHex(body));
    assert.equal(decodeCbor(body, { maxDepth: 4 }).ok, false);
  }
  // an envelope whose payload length claims 2^32
  assert.is(await reasonOf(concatBytes(Uint8Array.of(0x82, 0x5b, 0, 0, 0, 1, 0, 0, 0, 0), new Uint8Array(80))), 'bad-shape');
});

test('CBOR tags, undefined, simple values, indefinite lengths and non-finite floats are bad-shape', async () => {
  const bodies = {
    'tag 1 (date)': Uint8Array.of(0xc1, 0x00),
    'tag 28 (shareable)': Uint8Array.of(0xd8, 0x1c, 0x80),
    'tag 64 (typed array)': Uint8Array.of(0xd8, 0x40, 0x40),
    'tag 258 (set)': Uint8Array.of(0xd9, 0x01, 0x02, 0x80),
    undefined: Uint8Array.of(0xf7),
    'simple 16': Uint8Array.of(0xf0),
    'simple 255': Uint8Array.of(0xf8, 0xff),
    'indefinite array': Uint8Array.of(0x9f, 0x00, 0xff),
    'indefinite text': Uint8Array.of(0x7f, 0x61, 0x61, 0xff),
    'break alone': Uint8Array.of(0xff),
    NaN: Uint8Array.of(0xf9, 0x7e, 0x00),
    Infinity: Uint8Array.of(0xfa, 0x7f, 0x80, 0x00, 0x00),
    '-Infinity (f64)': Uint8Array.of(0xfb, 0xff, 0xf0, 0, 0, 0, 0, 0, 0),
    'invalid UTF-8': Uint8Array.of(0x62, 0xc3, 0x28),
    'reserved info 28': Uint8Array.of(0x1c),
  };
  for (const [name, body] of Object.entries(bodies)) {
    assert.is(await reasonOf(craft(payloadWith(body))), 'bad-shape', name);
  }
});

test('Maps where arrays belong, non-text map keys, duplicate keys, __proto__/constructor/prototype keys', async () => {
  const mapPayload = encodeCbor({ format: 1, dataset: 'chat' });
  assert.is(await reasonOf(craft(mapPayload)), 'bad-shape');
  const kv = (k: string) => concatBytes(cborHead(3, utf8(k).length), utf8(k));
  const bodies = {
    'int key': Uint8Array.of(0xa1, 0x01, 0x00),
    'duplicate key': concatBytes(Uint8Array.of(0xa2), kv('a'), Uint8Array.of(0x00), kv('a'), Uint8Array.of(0x01)),
    __proto__: concatBytes(Uint8Array.of(0xa1), kv('__proto__'), Uint8Array.of(0xa1), kv('polluted'), Uint8Array.of(0xf5)),
    constructor: concatBytes(Uint8Array.of(0xa1), kv('constructor'), Uint8Array.of(0x00)),
    prototype: concatBytes(Uint8Array.of(0x81, 0xa1), kv('prototype'), Uint8Array.of(0x00)),
  };
  for (const [name, body] of Object.entries(bodies)) {
    assert.is(await reasonOf(craft(payloadWith(body))), 'bad-shape', name);
  }
  assert.is(({} as Record<string, unknown>).polluted, undefined);
  // the same names as plain strings (values, not keys) are ordinary data
  assert.is(await reasonOf(craft(payloadWith(encodeCbor(['set', '__proto__', 'constructor'])))), 'ok');
  // local writes with such keys throw instead
  assert.throws(() => signUpdate(alice, { dataset: 'chat', version: 1, body: JSON.parse('{"__proto__": 1}') }), RangeError);
});

test('wrong dataset, wrong domain tag, signed by another key than it names', async () => {
  assert.is(await reasonOf(good.bytes, { dataset: 'other' }), 'wrong-dataset');
  const body = encodeCbor(['set', 'k', 1]);
  assert.is(await reasonOf(craft(payloadWith(body), alice, DOMAIN.noiseStatic)), 'bad-signature');
  assert.is(await reasonOf(craft(payloadWith(body), alice, 'signet/update/v2')), 'bad-signature');
  assert.is(await reasonOf(craft(payloadWith(body), mallory)), 'bad-signature'); // names alice, signed by mallory
  assert.is(await reasonOf(craft(payloadWith(body, { key: mallory.publicKey }), mallory)), 'ok');
  // a signature over the raw payload (no tag) does not verify either
  const raw = payloadWith(body);
  const sig = alice.sign(raw);
  assert.is(await reasonOf(concatBytes(Uint8Array.of(0x82), cborHead(2, raw.length), raw, Uint8Array.of(0x58, 0x40), sig)), 'bad-signature');
});

test('versions: 2^53, 0, negative, float, NaN, text are rejected; MAX_SAFE_INTEGER is fine', async () => {
  const body = encodeCbor(null);
  const withVersion = (v: Uint8Array) => {
    const name = utf8('chat');
    return craft(concatBytes(Uint8Array.of(0x85, 0x01), cborHead(3, name.length), name, cborHead(2, 32), alice.publicKey, v, body));
  };
  const cases: Record<string, Uint8Array> = {
    '2^53': Uint8Array.of(0x1b, 0, 0x20, 0, 0, 0, 0, 0, 0),
    '2^64-1': Uint8Array.of(0x1b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff),
    zero: Uint8Array.of(0x00),
    negative: Uint8Array.of(0x20),
    float: Uint8Array.of(0xfb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0),
    NaN: Uint8Array.of(0xf9, 0x7e, 0x00),
    text: Uint8Array.of(0x61, 0x31),
  };
  for (const [name, v] of Object.entries(cases)) {
    const reason = await reasonOf(withVersion(v));
    assert.ok(reason === 'bad-version' || reason === 'bad-shape', `${name}: ${reason}`);
  }
  assert.is(await reasonOf(withVersion(cborHead(0, Number.MAX_SAFE_INTEGER))), 'ok');
  // non-minimal encoding of a valid version: one header encoding only
  assert.is(await reasonOf(withVersion(Uint8Array.of(0x1b, 0, 0, 0, 0, 0, 0, 0, 5))), 'bad-shape');
  assert.throws(() => signUpdate(alice, { dataset: 'chat', version: 2 ** 53, body: null }), RangeError);
  assert.throws(() => signUpdate(alice, { dataset: 'chat', version: 1.5, body: null }), RangeError);
});

test('maxUpdateBytes: a body of exactly the limit passes, limit + 1 is too-large (local throws)', async () => {
  /** A byte-string body whose whole encoding (head + content) is exactly n bytes. */
  const contentFor = (n: number) => [n - 1, n - 2, n - 3, n - 5].find((c) => cborHead(2, c).length + c === n)!;
  const bodyOf = (n: number) => concatBytes(cborHead(2, contentFor(n)), new Uint8Array(contentFor(n)));
  for (const limit of [limits.MAX_UPDATE_BYTES, 1000]) {
    const opts = limit === limits.MAX_UPDATE_BYTES ? undefined : { maxUpdateBytes: limit };
    assert.is(bodyOf(limit).length, limit);
    assert.is(await reasonOf(craft(payloadWith(bodyOf(limit))), opts), 'ok', `at ${limit}`);
    assert.is(await reasonOf(craft(payloadWith(bodyOf(limit + 1))), opts), 'too-large', `at ${limit}+1`);
    const bytes = new Uint8Array(contentFor(limit));
    assert.is(signUpdate(alice, { dataset: 'd', version: 1, body: bytes }, opts).bytes.length > limit, true);
    assert.throws(() => signUpdate(alice, { dataset: 'd', version: 1, body: new Uint8Array(bytes.length + 1) }, opts), RangeError);
  }
  assert.throws(() => parseUpdate(good.bytes, { maxUpdateBytes: limits.MAX_UPDATE_BYTES_CEILING + 1 }), RangeError);
});

test('non-bytes input is a result; bodies CBOR cannot carry throw on the local side', async () => {
  assert.is(await reasonOf('nope' as unknown as Uint8Array), 'bad-shape');
  for (const body of [undefined, new Map([[1, 2]]), new Date(0), 2n ** 70n, NaN, Infinity, [undefined]]) {
    assert.throws(() => signUpdate(alice, { dataset: 'chat', version: 1, body }), (e: Error) => e instanceof RangeError || e instanceof TypeError);
  }
  assert.throws(() => signUpdate(alice, { dataset: '', version: 1, body: null }), RangeError);
  assert.throws(() => signUpdate(alice, { dataset: 'a\nb', version: 1, body: null }), RangeError);
});

test('nextVersion: max(last + 1, now), safe integers only', () => {
  assert.is(nextVersion(10, 5), 11);
  assert.is(nextVersion(10, 50), 50);
  const now = wallClockMicros();
  assert.ok(Math.abs(now - Date.now() * 1000) < 5_000_000);
  assert.throws(() => nextVersion(Number.MAX_SAFE_INTEGER, 1), RangeError);
});

test.run();
