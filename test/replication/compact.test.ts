// Compact update items (src/replication/compact.ts, protocol 3): every envelope comes back bit
// for bit, a key is named once and then referred to by index, the table stops at
// MAX_STREAM_KEYS on both sides alike, envelopes the compact forms cannot rebuild go whole, and
// an item that stands for nothing is garbage, never a crash.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Identity, Model, signUpdate, parseUpdate } from '../../src/index.ts';
import { cborHead, minimalHeadLength, writeHead } from '../../src/envelope/cbor.ts';
import { MSG_UPDATES, encodeUpdates, frame } from '../../src/replication/messages.ts';
import { EXPANDED_SPARE, KeyTableReader, KeyTableWriter, MIN_ITEM_BYTES } from '../../src/replication/compact.ts';
import { parseAdoptedUpdate } from '../../src/envelope/update.ts';
import { MAX_STREAM_KEYS } from '../../src/limits.ts';
import { closed, synced } from '../helpers/streams.ts';

const VERSION = 1_700_000_000_000_000;
const alice = Identity.generate();
const bob = Identity.generate();
const update = (who: Identity, version: number, body: unknown = ['set', `k${version}`, 'v'.repeat(version % 300)], dataset = 'default') =>
  signUpdate(who, { dataset, version: VERSION + version, body: body as never });

test('round trip: every envelope rebuilt bit for bit; the key goes once, then a 1-byte index', () => {
  const writer = new KeyTableWriter('default');
  const reader = new KeyTableReader('default');
  const updates = [update(alice, 1), update(alice, 2), update(bob, 3), update(alice, 4, null), update(bob, 5, { deep: [1, [2, [3]]] })];
  const items = updates.map((u) => writer.encode(u));
  items.forEach((item, i) => assert.equal(reader.expand(item), updates[i]!.bytes, `update ${i}`));
  // alice's key named in item 0, bob's in item 2; the others carry an index instead
  // outer 0x82, the payload head, [1, the dataset "default" and the signature head are left out
  assert.is(items[0]!.length, updates[0]!.bytes.length - 1 - 2 - 2 - 8 - 2);
  assert.is(items[1]![0], 0, "alice's index");
  assert.is(items[3]![0], 0, "alice's index");
  assert.is(items[4]![0], 1, "bob's index");
  assert.is(updates[1]!.bytes.length - items[1]!.length, 1 + 2 + 2 + 8 + 34 + 2 - 1, 'an indexed item saves the heads, the dataset and the key');
  assert.is(reader.size, 2);
});

test('expanded envelopes are cut from shared chunks, each followed by room for its hash that no neighbour uses', () => {
  const writer = new KeyTableWriter('default');
  const reader = new KeyTableReader('default');
  const updates = [1, 2, 3, 4].map((v) => update(alice, v));
  const expanded = updates.map((u) => reader.expand(writer.encode(u)) as Uint8Array);
  assert.ok(expanded.every((e) => e.buffer === expanded[0]!.buffer), 'one ArrayBuffer for all four');
  for (let i = 1; i < expanded.length; i++) {
    assert.ok(expanded[i]!.byteOffset >= expanded[i - 1]!.byteOffset + expanded[i - 1]!.length + EXPANDED_SPARE, `envelope ${i} starts after ${i - 1} and its room`);
  }
  // Adopted in any order: each keeps its own bytes and writes its hash only into its own room.
  const parsed = [2, 0, 3, 1].map((i) => [i, parseAdoptedUpdate(expanded[i]!)] as const);
  for (const [i, r] of parsed) {
    assert.ok(r.ok);
    if (!r.ok) return;
    assert.is(r.update.bytes.buffer, expanded[i]!.buffer, 'kept without a copy');
    assert.equal(r.update.bytes, updates[i]!.bytes);
    assert.equal(r.update.hash, updates[i]!.hash);
  }
  expanded.forEach((e, i) => assert.equal(e, updates[i]!.bytes, `envelope ${i} intact after its neighbours were adopted`));
});

test('an envelope of another dataset or a non-minimal outer head goes whole, and comes back as it is', () => {
  const writer = new KeyTableWriter('default');
  const reader = new KeyTableReader('default');
  const other = update(alice, 1, ['set', 'x', 1], 'other');
  assert.equal(writer.encode(other), other.bytes);
  // the same payload and signature behind a 2-byte payload head where 1 byte would do
  const u = update(alice, 2, ['set', 'x', 'y']);
  const payload = u.payload;
  const wide = new Uint8Array([0x82, 0x59, payload.length >> 8, payload.length & 0xff, ...payload, 0x58, 0x40, ...u.signature]);
  assert.ok(cborHead(2, payload.length).length < 3);
  const parsed = parseUpdate(wide);
  assert.ok(parsed.ok);
  if (!parsed.ok) return;
  assert.equal(writer.encode(parsed.update), wide, "sent whole");
  assert.is(reader.expand(wide), wide);
  assert.is(reader.size, 0);
});

test('items that stand for no envelope are refused with a reason, before any table change', () => {
  const reader = new KeyTableReader('default');
  assert.match(String(reader.expand(new Uint8Array(MIN_ITEM_BYTES).fill(1))), /key index 1 not named/);
  assert.match(String(reader.expand(new Uint8Array(MIN_ITEM_BYTES))), /key index 0 not named/);
  assert.match(String(reader.expand(Uint8Array.of(0x60, ...new Uint8Array(80)))), /neither an envelope/);
  assert.match(String(reader.expand(Uint8Array.of(0x58, 0x20, ...new Uint8Array(32 + 64 + 1)))), /too short/);
  assert.is(reader.size, 0);
  // a key named with a valid item, then an index item too short for a version and a body
  const writer = new KeyTableWriter('default');
  reader.expand(writer.encode(update(alice, 1)));
  assert.match(String(reader.expand(Uint8Array.of(0x00, 0x01, ...new Uint8Array(64)))), /too short/);
});

test(`the table holds MAX_STREAM_KEYS (${MAX_STREAM_KEYS}) keys on both sides; the next source's key goes in full every time`, () => {
  const writer = new KeyTableWriter('default');
  const reader = new KeyTableReader('default');
  const signers = Array.from({ length: MAX_STREAM_KEYS + 1 }, () => Identity.generate());
  for (const [i, s] of signers.entries()) {
    const u = update(s, i + 1, null);
    assert.equal(reader.expand(writer.encode(u)), u.bytes);
  }
  assert.is(reader.size, MAX_STREAM_KEYS);
  const last = signers[MAX_STREAM_KEYS]!;
  for (let v = 0; v < 2; v++) {
    const u = update(last, MAX_STREAM_KEYS + 10 + v, null);
    const item = writer.encode(u);
    assert.is(item[0], 0x58, 'the key again, not an index');
    assert.equal(reader.expand(item), u.bytes);
  }
  // the first source still goes by index
  const u = update(signers[0]!, MAX_STREAM_KEYS + 20, null);
  const item = writer.encode(u);
  assert.is(item[0], 0);
  assert.equal(reader.expand(item), u.bytes);
  assert.is(reader.size, MAX_STREAM_KEYS);
});

test('a forged item (signature of another update) rebuilds an envelope that fails verification, never applies', async () => {
  const a = new Model({ identity: alice });
  const b = new Model({ identity: Identity.generate() });
  const invalid: string[] = [];
  b.on('invalid', (r: { reason: string }) => invalid.push(r.reason));
  const writer = new KeyTableWriter('default');
  const reader = new KeyTableReader('default');
  const one = a.set('x', 1);
  const two = a.set('y', 2);
  const first = writer.encode(one);
  const second = writer.encode(two);
  const forged = new Uint8Array(second);
  forged.set(one.signature, forged.length - 64);
  assert.equal(reader.expand(first), one.bytes);
  const rebuilt = reader.expand(forged);
  assert.ok(rebuilt instanceof Uint8Array);
  const r = await b.ingest(rebuilt as Uint8Array);
  assert.is(r.status, 'rejected');
  assert.equal(invalid, ['bad-signature']);
  assert.is(b.has('y'), false);
  a.dispose();
  b.dispose();
});

test('over a stream: two sources replicate and the wire carries each key once per direction', async () => {
  const a = new Model({ identity: alice });
  const b = new Model({ identity: bob });
  for (let i = 0; i < 50; i++) a.set(`a${i}`, i);
  for (let i = 0; i < 50; i++) b.set(`b${i}`, i);
  const sa = a.createStream({ name: 'a' });
  const sb = b.createStream({ name: 'b' });
  const wire: Buffer[] = [];
  sa.on('data', (c: Buffer) => wire.push(c));
  sa.pipe(sb).pipe(sa);
  await Promise.all([synced(sa), synced(sb)]);
  assert.is(b.stateHash(), a.stateHash());
  const sent = Buffer.concat(wire);
  const count = (needle: Uint8Array) => {
    let n = 0;
    for (let at = sent.indexOf(needle); at >= 0; at = sent.indexOf(needle, at + 1)) n++;
    return n;
  };
  assert.is(count(alice.publicKey), 1, "alice's key once on a's side of the wire");
  a.dispose();
  b.dispose();
  await Promise.all([closed(sa), closed(sb)]);
});

test('encodeUpdates writes the bytes cbor-x framing makes, for every head width of count and length', () => {
  for (const count of [0, 1, 23, 24, 255, 256]) {
    for (const size of [0, 1, 23, 24, 255, 256, 65535, 65536]) {
      if (count * size > 4_000_000) continue;
      const items = Array.from({ length: count }, (_, i) => new Uint8Array(size).fill(i & 0xff));
      assert.ok(encodeUpdates(items).equals(frame([MSG_UPDATES, items])), `${count} items of ${size} bytes`);
    }
  }
});

test('writeHead writes cborHead\'s bytes in place, for every width up to 2^53 - 1', () => {
  for (const n of [0, 23, 24, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, Number.MAX_SAFE_INTEGER]) {
    for (const major of [0, 2, 4]) {
      const out = new Uint8Array(12).fill(0xee);
      const size = writeHead(out, 1, major, n);
      assert.is(size, minimalHeadLength(n));
      assert.equal([...out.subarray(1, 1 + size)], [...cborHead(major, n)]);
      assert.is(out[0], 0xee);
      assert.is(out[1 + size], 0xee);
    }
  }
});

test.run();
