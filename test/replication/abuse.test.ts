// Protocol abuse against the replication stream: every malformed message, a second hello,
// unknown types, data before hello, oversize length prefixes (cut from the 4-byte header
// alone), a second SYNC, the fault budget; and a valid session fed one byte at a time.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Identity, MemoryStore, Model, nodeIdOf, signUpdate } from '../../src/index.ts';
import { MIN_ENVELOPE_BYTES } from '../../src/envelope/update.ts';
import { encodeCbor } from '../../src/envelope/cbor.ts';
import { MAX_MESSAGE_BYTES } from '../../src/limits.ts';
import { MAX_MESSAGE_DEPTH, PROTOCOL_VERSION, encodeHello, encodeSync, encodeUpdates, frame } from '../../src/replication/messages.ts';
import { byteByByte, closed, cutOff, next, synced, until } from '../helpers/streams.ts';

const peer = Identity.fromSecretKey(new Uint8Array(32).fill(0x5e));
const writer = Identity.fromSecretKey(new Uint8Array(32).fill(0x77));
const VERSION = 1_700_000_000_000_000;
const validUpdate = signUpdate(writer, { dataset: 'default', version: VERSION, body: ['set', 'w', 1] });

/** A frame around raw bytes (the body need not be CBOR). */
function rawFrame(body: Uint8Array | number[]): Buffer {
  const bytes = Buffer.from(body);
  const head = Buffer.alloc(4);
  head.writeUInt32BE(bytes.length, 0);
  return Buffer.concat([head, bytes]);
}
const NONCE = new Uint8Array(32);
const hello = (over: Partial<{ dataset: string; id: string; meta: unknown }> = {}) =>
  frame([0, PROTOCOL_VERSION, over.dataset ?? 'default', over.id ?? peer.id, [], over.meta ?? null, 3, 65536, NONCE]);
/** The raw bytes of a hello's last three fields: flags 3, maxUpdateBytes 65536, a zero nonce. */
const RAW_TAIL = [0x03, 0x1a, 0x00, 0x01, 0x00, 0x00, 0x58, 0x20, ...NONCE];
/** A hello with every field as given (for shape abuse). */
const helloOf = (...fields: unknown[]) => frame([0, ...fields]);
const okHello = [PROTOCOL_VERSION, 'default', peer.id, [], null, 3, 65536, NONCE];
const withField = (i: number, v: unknown) => helloOf(...okHello.map((x, j) => (j === i ? v : x)));
const entry = (source: unknown, version: unknown, prefix: unknown) => withField(3, [[source, version, prefix]]);
const prefix8 = new Uint8Array(8);

/** A model with some state and a MemoryStore, and a snapshot to compare against. */
async function target(options: Parameters<Model['createStream']>[0] = {}) {
  const store = new MemoryStore();
  const m = new Model({ identity: Identity.generate(), store });
  await m.ready;
  m.set('a', 1);
  m.set('b', { nested: [1, 2] });
  await until(m, 'update', () => store.size('default') === 2, 'store writes');
  const snapshot = { hash: m.stateHash(), clock: [...m.clock], stored: store.size('default'), json: JSON.stringify(m.toJSON()) };
  const s = m.createStream({ name: 'target', ...options });
  s.resume(); // read what it says; the attacker ignores it
  const errors: Error[] = [];
  s.on('error', (e) => errors.push(e));
  const cuts: unknown[] = [];
  s.on('cut', (r) => cuts.push(r));
  const unchanged = () => {
    assert.is(m.stateHash(), snapshot.hash, 'state unchanged');
    assert.equal([...m.clock], snapshot.clock, 'clock unchanged');
    assert.is(store.size('default'), snapshot.stored, 'store unchanged');
    assert.is(JSON.stringify(m.toJSON()), snapshot.json);
  };
  return { m, s, store, errors, cuts, unchanged };
}

/** Feeds `chunks` to a fresh target and checks the cut: reason, one 'cut', no error, nothing changed. */
async function expectCut(chunks: Buffer[], reason: string, options?: Parameters<typeof target>[0]) {
  const t = await target(options);
  const cut = cutOff(t.s);
  for (const c of chunks) if (!t.s.destroyed) t.s.write(c);
  const err = await cut;
  assert.is(err.code, 'ERR_PROTOCOL');
  assert.is(err.reason, reason, err.message);
  assert.is(t.s.closeReason, err);
  await closed(t.s);
  assert.is(t.cuts.length, 1, "one 'cut' event");
  assert.equal(t.errors, [], "no 'error' event");
  assert.is(t.s.stats.applied, 0);
  t.unchanged();
  assert.is(t.m.streams, 0);
  // the model still works after the abuse
  t.m.set('after', true);
  assert.is(t.m.get('after'), true);
  t.m.dispose();
  return t;
}

// ---- malformed messages of every kind ---------------------------------------------------------------

const deep = (n: number): unknown => (n === 0 ? 1 : [deep(n - 1)]);
const malformed: Array<[string, Buffer]> = [
  ['not CBOR (0xff break)', rawFrame([0xff])],
  ['not CBOR (reserved info 28)', rawFrame([0x1c])],
  ['empty message', rawFrame([])],
  ['truncated array', rawFrame([0x83, 0x00, PROTOCOL_VERSION])],
  ['trailing bytes after the message', rawFrame([...encodeCbor([2]), 0x00])],
  ['two messages in one frame', rawFrame([...encodeCbor([2]), ...encodeCbor([2])])],
  ['indefinite-length array', rawFrame([0x9f, 0x02, 0xff])],
  ['invalid UTF-8 in dataset', rawFrame([0x89, 0x00, PROTOCOL_VERSION, 0x62, 0xc3, 0x28, ...encodeCbor(peer.id), 0x80, 0xf6, ...RAW_TAIL])],
  ['undefined', rawFrame([0x82, 0x02, 0xf7])],
  ['NaN', rawFrame([0x81, 0xf9, 0x7e, 0x00])],
  ['CBOR tag around the message (tag 0)', rawFrame([0xc0, ...encodeCbor([2])])],
  ['CBOR tag 64 (typed array) as the id', rawFrame([0x89, 0x00, PROTOCOL_VERSION, ...encodeCbor('default'), 0xd8, 0x40, ...encodeCbor(new Uint8Array(32)), 0x80, 0xf6, ...RAW_TAIL])],
  ['CBOR tag 258 (set) as the digest', rawFrame([0x89, 0x00, PROTOCOL_VERSION, ...encodeCbor('default'), ...encodeCbor(peer.id), 0xd9, 0x01, 0x02, 0x80, 0xf6, ...RAW_TAIL])],
  ['CBOR tag inside meta', rawFrame([0x89, 0x00, PROTOCOL_VERSION, ...encodeCbor('default'), ...encodeCbor(peer.id), 0x80, 0xc1, 0x00, ...RAW_TAIL])],
  ['a map, not an array', frame({ type: 0 })],
  ['a string', frame('hello')],
  ['a number', frame(0)],
  ['an empty array', frame([])],
  ['type as a string', frame(['0', 1])],
  ['array claiming 2^32-1 items', rawFrame([0x9a, 0xff, 0xff, 0xff, 0xff, 0x00])],
  ['byte string claiming 2^64-1 bytes', rawFrame([0x82, 0x00, 0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])],
  ['map claiming 2^32-1 pairs', rawFrame([0x82, 0x00, 0xba, 0xff, 0xff, 0xff, 0xff])],
  ['text string claiming 2^53 bytes', rawFrame([0x82, 0x00, 0x7b, 0x00, 0x20, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00])],
  ['integer beyond 2^53', rawFrame([0x81, 0x1b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])],
  [`nesting deeper than ${MAX_MESSAGE_DEPTH}`, hello({ meta: deep(MAX_MESSAGE_DEPTH) })],
  ['__proto__ key in meta', hello({ meta: JSON.parse('{"__proto__": {"polluted": true}}') })],
  ['constructor key in meta', hello({ meta: JSON.parse('{"constructor": 1}') })],
  ['hello of 6 fields', frame([0, PROTOCOL_VERSION, 'default', peer.id, [], null])],
  ['hello of 8 fields (no nonce)', frame([0, PROTOCOL_VERSION, 'default', peer.id, [], null, 3, 65536])],
  ['hello of 10 fields', frame([0, PROTOCOL_VERSION, 'default', peer.id, [], null, 3, 65536, NONCE, 'extra'])],
  ['hello nonce of 31 bytes', withField(7, new Uint8Array(31))],
  ['hello nonce of 33 bytes', withField(7, new Uint8Array(33))],
  ['hello nonce as text', withField(7, 'x'.repeat(32))],
  ['hello of protocol version "1"', withField(0, '1')],
  ['hello dataset is a number', withField(1, 7)],
  ['hello dataset is empty', withField(1, '')],
  ['hello dataset of 129 characters', withField(1, 'd'.repeat(129))],
  ['hello dataset with a control character', withField(1, 'def\nault')],
  ['hello id is not a node id', withField(2, 'abc')],
  ['hello id is __proto__', withField(2, '__proto__')],
  ['hello id is constructor', withField(2, 'constructor')],
  ['hello id in upper case', withField(2, peer.id.toUpperCase())],
  ['hello id of 52 non-base32 characters', withField(2, '1'.repeat(52))],
  ['hello id as bytes', withField(2, peer.publicKey)],
  ['hello id as a number', withField(2, 42)],
  ['digest is a map', withField(3, { [peer.id]: [1, prefix8] })],
  ['digest is bytes', withField(3, new Uint8Array(4))],
  ['digest entry of 2 fields', withField(3, [[peer.id, 1]])],
  ['digest entry of 4 fields', withField(3, [[peer.id, 1, prefix8, 0]])],
  ['digest entry is not an array', withField(3, [peer.id])],
  ['digest source is not a node id', entry('source', 1, prefix8)],
  ['digest source is __proto__', entry('__proto__', 1, prefix8)],
  ['digest source is toString', entry('toString', 1, prefix8)],
  ['digest version 0', entry(peer.id, 0, prefix8)],
  ['digest version -1', entry(peer.id, -1, prefix8)],
  ['digest version 1.5', entry(peer.id, 1.5, prefix8)],
  ['digest version 2^53', entry(peer.id, 2 ** 53, prefix8)],
  ['digest version as a string', entry(peer.id, '1', prefix8)],
  ['digest hash prefix of 7 bytes', entry(peer.id, 1, new Uint8Array(7))],
  ['digest hash prefix of 9 bytes', entry(peer.id, 1, new Uint8Array(9))],
  ['digest hash prefix as text', entry(peer.id, 1, 'abcdefgh')],
  ['digest names a source twice', withField(3, [[peer.id, 1, prefix8], [peer.id, 2, prefix8]])],
  ['flags 8', withField(5, 8)],
  ['flags -1', withField(5, -1)],
  ['flags 1.5', withField(5, 1.5)],
  ['flags as a string', withField(5, '3')],
];

test('control: the hand-built raw hello the tag cases start from is accepted without its defect', async () => {
  const t = await target();
  const header = next(t.s, 'header');
  t.s.write(rawFrame([0x89, 0x00, PROTOCOL_VERSION, ...encodeCbor('default'), ...encodeCbor(peer.id), 0x80, 0xf6, ...RAW_TAIL]));
  await header;
  assert.is(t.s.remote?.id, peer.id);
  t.s.destroy();
  await closed(t.s);
  t.m.dispose();
});

for (const [name, bytes] of malformed) {
  test(`malformed first message: ${name} -> cut 'malformed'`, async () => {
    await expectCut([bytes], 'malformed');
  });
}

test("a hello of protocol version 1 (before reconciliation), 2 (before compact items) or 4 -> cut 'unsupported-version'", async () => {
  await expectCut([withField(0, 1)], 'unsupported-version');
  await expectCut([withField(0, 2)], 'unsupported-version');
  await expectCut([withField(0, PROTOCOL_VERSION + 1)], 'unsupported-version');
});

const malformedAfterHello: Array<[string, Buffer]> = [
  ['updates without a list', frame([1])],
  ['updates list is text', frame([1, 'abc'])],
  ['updates list is a map', frame([1, {}])],
  ['updates list holds text', frame([1, ['not bytes']])],
  ['updates list holds a number', frame([1, [validUpdate.bytes, 7]])],
  ['updates with an extra field', frame([1, [validUpdate.bytes], 3])],
  ['updates list nested', frame([1, [[validUpdate.bytes]]])],
  ['sync with a field', frame([2, 0])],
  ['reconcile without its bytes', frame([3])],
  ['reconcile with text', frame([3, 'abc'])],
  ['reconcile with an extra field', frame([3, new Uint8Array(2), 0])],
  ['not CBOR after hello', rawFrame([0xff, 0xff, 0xff])],
  ['CBOR tag after hello', rawFrame([0xd8, 0x40, 0x41, 0x00])],
];

for (const [name, bytes] of malformedAfterHello) {
  test(`malformed after hello: ${name} -> cut 'malformed', the update in it never applied`, async () => {
    await expectCut([hello(), bytes], 'malformed');
  });
}

// ---- protocol order -----------------------------------------------------------------------------------

test("a second hello -> cut 'second-hello'", async () => {
  await expectCut([hello(), hello()], 'second-hello');
});

test("a second hello with another id, in the same chunk as the first -> cut 'second-hello'; the header is the first", async () => {
  const t = await expectCut([Buffer.concat([hello(), hello({ id: writer.id })])], 'second-hello');
  assert.is(t.s.remote?.id, peer.id);
});

for (const [name, bytes] of [
  ['type 4', frame([4])],
  ['type 99 with a payload', frame([99, 'x', [1, 2]])],
  ['type -1', frame([-1])],
  ['type 2.5', frame([2.5])],
  ['type 2^32', frame([2 ** 32])],
] as Array<[string, Buffer]>) {
  test(`unknown message ${name} after hello -> cut 'unknown-message'`, async () => {
    await expectCut([hello(), bytes], 'unknown-message');
  });
  test(`unknown message ${name} before hello -> cut 'unknown-message'`, async () => {
    await expectCut([bytes], 'unknown-message');
  });
}

test("updates before hello -> cut 'no-hello', the update never applied", async () => {
  await expectCut([encodeUpdates([validUpdate.bytes])], 'no-hello');
});

test("an empty updates message before hello -> cut 'no-hello'", async () => {
  await expectCut([encodeUpdates([])], 'no-hello');
});

test("SYNC before hello -> cut 'no-hello'", async () => {
  await expectCut([encodeSync()], 'no-hello');
});

test("a second SYNC -> cut 'second-sync'", async () => {
  await expectCut([hello(), encodeSync(), encodeSync()], 'second-sync');
});

test("a hello for another dataset -> cut 'wrong-dataset'", async () => {
  await expectCut([hello({ dataset: 'other' })], 'wrong-dataset');
});

// ---- oversize length prefixes: refused from the 4-byte header, nothing allocated ------------------------

for (const [name, length] of [
  ['2^32-1', 0xffffffff],
  [`maxMessageBytes + 1 (${MAX_MESSAGE_BYTES + 1})`, MAX_MESSAGE_BYTES + 1],
] as Array<[string, number]>) {
  for (const afterHello of [false, true]) {
    test(`a length prefix of ${name} ${afterHello ? 'after hello' : 'as the first bytes'}: cut 'too-large' with only its 4 bytes delivered`, async () => {
      const head = Buffer.alloc(4);
      head.writeUInt32BE(length, 0);
      const before = process.memoryUsage().arrayBuffers;
      const t = await expectCut(afterHello ? [hello(), head] : [head], 'too-large');
      // the cut came from the header alone: no body byte was ever sent, so nothing waited for one
      assert.ok(t.s.closeReason!.message.includes(String(length)));
      assert.ok(process.memoryUsage().arrayBuffers - before < 1 << 20, 'no buffer of the declared size');
    });
  }
}

/** A hello whose frame body is exactly `size` bytes: a digest of distinct sources (65 bytes
 *  each) fills it, as a node that has heard of many sources sends, and meta pads the rest. */
function helloOfSize(size: number): Buffer {
  const digest = new Map<string, { version: number; hashPrefix: Uint8Array }>();
  const sources = Math.max(0, Math.floor((size - 2000) / 65));
  const key = new Uint8Array(32);
  for (let i = 0; i < sources; i++) {
    new DataView(key.buffer).setUint32(0, i);
    digest.set(nodeIdOf(key), { version: 1, hashPrefix: new Uint8Array(8) });
  }
  const make = (pad: number) => encodeHello({ dataset: 'default', id: peer.id, digest, meta: new Uint8Array(pad), readable: true, writable: true });
  const base = make(0).length - 4 - 1; // without meta's 1-byte head
  for (let pad = 0; pad <= 2100; pad++) {
    if (base + (pad < 24 ? 1 : pad < 256 ? 2 : 3) + pad === size) return make(pad);
  }
  throw new Error(`no hello of ${size} bytes`);
}

test('maxMessageBytes at the limit is accepted; limit + 1 is cut from its header', async () => {
  const limit = 4096;
  // at the limit: the hello arrives whole and is taken
  {
    const t = await target({ maxMessageBytes: limit });
    const header = next(t.s, 'header');
    const f = helloOfSize(limit);
    // delivered in two pieces: the stream must wait for the rest, not cut
    t.s.write(f.subarray(0, 4));
    t.s.write(f.subarray(4));
    await header;
    assert.is(t.s.remote?.id, peer.id);
    assert.is(t.s.closeReason, null);
    t.s.destroy();
    await closed(t.s);
    t.m.dispose();
  }
  // limit + 1: cut with only the header delivered
  const over = helloOfSize(limit + 1);
  await expectCut([over.subarray(0, 4)], 'too-large', { maxMessageBytes: limit });
});

test(`the default limit (${MAX_MESSAGE_BYTES} bytes) is accepted whole`, async () => {
  const t = await target();
  const header = next(t.s, 'header');
  t.s.write(helloOfSize(MAX_MESSAGE_BYTES));
  await header;
  assert.is(t.s.closeReason, null);
  t.s.destroy();
  await closed(t.s);
  t.m.dispose();
});

test('a declared length that never arrives holds only the bytes received (no allocation ahead)', async () => {
  const t = await target();
  const header = next(t.s, 'header');
  t.s.write(hello());
  await header;
  const before = process.memoryUsage().arrayBuffers;
  const head = Buffer.alloc(4);
  head.writeUInt32BE(MAX_MESSAGE_BYTES, 0);
  await new Promise<void>((resolve) => t.s.write(Buffer.concat([head, Buffer.alloc(10)]), () => resolve()));
  assert.ok(process.memoryUsage().arrayBuffers - before < 1 << 20, 'nothing of the declared 16 MiB was allocated');
  assert.is(t.s.closeReason, null, 'waiting, not cut');
  t.s.destroy();
  await closed(t.s);
  t.unchanged();
  t.m.dispose();
});

// ---- the fault budget ------------------------------------------------------------------------------------

test('garbage envelopes count against the fault budget: at the budget the stream stays, budget + 1 cuts it', async () => {
  const budget = 3;
  // each at least MIN_ENVELOPE_BYTES (a smaller one makes the whole message malformed)
  const garbage = [new Uint8Array(MIN_ENVELOPE_BYTES).fill(1), Uint8Array.of(0x82, 0x40, 0x40, ...new Uint8Array(200)), new Uint8Array(300)];
  // exactly `budget` faults: still open, and a later SYNC is taken
  {
    const t = await target({ faultBudget: budget });
    const invalid: string[] = [];
    t.m.on('invalid', (r: { reason: string }) => invalid.push(r.reason));
    const syncReceived = next(t.s, 'syncReceived');
    t.s.write(hello());
    t.s.write(encodeUpdates(garbage));
    t.s.write(encodeSync());
    await syncReceived;
    assert.is(t.s.faults, budget);
    assert.equal(invalid, ['bad-shape', 'bad-shape', 'bad-shape']);
    assert.is(t.s.stats.rejected, budget);
    assert.is(t.s.closeReason, null);
    t.unchanged();
    t.s.destroy();
    await closed(t.s);
    t.m.dispose();
  }
  const t = await expectCut([hello(), encodeUpdates([...garbage, new Uint8Array(MIN_ENVELOPE_BYTES)])], 'fault-budget', { faultBudget: budget });
  assert.is(t.s.faults, budget + 1);
});

// ---- one byte at a time ------------------------------------------------------------------------------------

test('every byte of a valid session in its own 1-byte chunk still replicates both ways', async () => {
  const a = new Model({ identity: Identity.generate() });
  const b = new Model({ identity: Identity.generate() });
  for (let i = 0; i < 20; i++) a.set(`a${i}`, { i, text: 'x'.repeat(i * 7) });
  for (let i = 0; i < 5; i++) b.set(`b${i}`, i);
  b.delete('b2');
  const sa = a.createStream({ name: 'a', meta: { hi: 'there' } });
  const sb = b.createStream({ name: 'b' });
  let chunks = 0;
  const ab = byteByByte();
  const ba = byteByByte();
  ab.on('data', (c: Buffer) => {
    chunks++;
    assert.is(c.length, 1);
  });
  sa.pipe(ab).pipe(sb).pipe(ba).pipe(sa);
  const header = next<[{ meta: unknown }]>(sb, 'header');
  await Promise.all([synced(sa), synced(sb)]);
  assert.equal((await header)[0].meta, { hi: 'there' });
  assert.ok(chunks > 1000, `${chunks} one-byte chunks`);
  assert.is(a.stateHash(), b.stateHash());
  // live, still one byte at a time
  const live = next(b, 'change:late');
  a.set('late', 'yes');
  await live;
  assert.is(b.get('late'), 'yes');
  assert.is(sa.closeReason, null);
  assert.is(sb.closeReason, null);
  a.dispose();
  b.dispose();
  await Promise.all([closed(sa), closed(sb)]);
});

test('a hostile second hello delivered one byte at a time is cut at its last byte, not before', async () => {
  const t = await target();
  const bytes = Buffer.concat([hello(), hello()]);
  const cut = cutOff(t.s);
  const firstLength = hello().length;
  let written = 0;
  for (const byte of bytes) {
    await new Promise<void>((resolve) => t.s.write(Buffer.of(byte), () => resolve()));
    written++;
    if (written < bytes.length) assert.is(t.s.closeReason, null, `not cut after ${written} bytes`);
  }
  const err = await cut;
  assert.is(err.reason, 'second-hello');
  assert.ok(written > firstLength);
  t.unchanged();
  t.m.dispose();
});

test('hostile input to one stream leaves the model\'s other sessions running', async () => {
  const t = await target();
  const friend = new Model({ identity: Identity.generate() });
  const sa = t.m.createStream({ name: 'friend-side' });
  const sf = friend.createStream({ name: 'friend' });
  sa.pipe(sf).pipe(sa);
  await Promise.all([synced(sa), synced(sf)]);
  const cut = cutOff(t.s);
  t.s.write(frame([77]));
  assert.is((await cut).reason, 'unknown-message');
  const live = next(friend, 'change:still');
  t.m.set('still', 'here');
  await live;
  assert.is(friend.get('still'), 'here');
  t.m.dispose();
  friend.dispose();
  await Promise.all([closed(sa), closed(sf)]);
});

test.run();
