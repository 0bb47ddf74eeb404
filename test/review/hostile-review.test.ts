// Hostile review of the byte-level parsing rewrite (scanCbor, parseUpdate, readBody/readName,
// decodeMessage, the receive pipeline, deferral). Each test is a minimal reproduction of one
// finding; each was fixed after the review and its test now guards the fix.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Events, MemoryStore, Model, signUpdate } from '../../src/index.ts';
import { cborHead, checkCbor, decodeCbor } from '../../src/envelope/cbor.ts';
import { parseUpdate } from '../../src/envelope/update.ts';
import { FrameDecoder } from '../../src/replication/messages.ts';
import { concatBytes } from '../../src/util/bytes.ts';
import {
  DATASET, NOW, claimedFrame, envelopeOf, framed, rawPayload, repeated, self, setBody, text, updatesMessage, validHello, writer,
} from '../hostile/build.ts';
import { heldBytes, mib, settledEscapes, takeEscapes } from '../hostile/measure.ts';

const MiB = 1024 * 1024;

// ---- 1. the guard admits what cbor-x's decoder refuses ----------------------------------------

/** [2^20 + 1 zeros]: 1 MiB + 6 bytes, one item over cbor-x's maxArraySize (CBOR_MAX_ITEMS). */
const overItemLimit = () => repeated(0x00, (1 << 20) + 1);

// Found in review: scanCbor checked the decode budget but not cbor-x's per-container item limit
// (setSizeLimits, 2^20), so with maxUpdateBytes above ~1 MiB a signed body holding an array of
// 2^20 + 1 items was applied and then could never be decoded (get() threw on every node; with a
// store the throw became an unhandled rejection). Fixed: the guard refuses it 'too-large', and
// announce() routes any listener throw to fail().
test('guard vs cbor-x: a container over cbor-x\'s item limit is refused too-large; nothing escapes', async () => {
  takeEscapes();
  const body = overItemLimit();
  assert.match(checkCbor(body, 4) ?? '', /container of 1048577 items; the limit is 1048576/);
  const ev = new Events({ identity: self, dataset: DATASET, now: () => NOW, maxUpdateBytes: 2 * MiB, store: new MemoryStore() });
  await ev.ready;
  const emitBody = concatBytes(Uint8Array.of(0x83), text('emit'), text('x'), body);
  assert.equal(await ev.ingest(envelopeOf(rawPayload(writer.publicKey, NOW - 1000, emitBody), writer)), { status: 'rejected', reason: 'too-large' });
  ev.dispose();
  const m = new Model({ identity: self, dataset: DATASET, now: () => NOW, maxUpdateBytes: 2 * MiB });
  await m.ready;
  assert.equal(await m.ingest(envelopeOf(rawPayload(writer.publicKey, NOW - 1000, setBody('k', body)), writer)), { status: 'rejected', reason: 'too-large' });
  m.dispose();
  assert.equal(await settledEscapes(), [], 'nothing escaped');
  // at the limit the guard and cbor-x agree: accepted and decodable
  const atLimit = repeated(0x00, 1 << 20);
  assert.is(checkCbor(atLimit, 4), null);
  assert.ok(decodeCbor(atLimit, { maxDepth: 4 }).ok);
});

test('a change listener that throws after a store commit is routed to the model\'s error event, not an unhandled rejection', async () => {
  takeEscapes();
  const m = new Model({ identity: self, dataset: DATASET, now: () => NOW, store: new MemoryStore() });
  await m.ready;
  const errors: unknown[] = [];
  m.on('error', (e) => errors.push(e));
  m.on('change', () => {
    throw new Error('listener bug');
  });
  const updated = new Promise((resolve) => m.once('update', resolve));
  m.set('k', 1);
  await updated;
  assert.is((errors[0] as Error)?.message, 'listener bug');
  assert.equal(await settledEscapes(), []);
  m.dispose();
});

test('an \'error\' listener that throws: later writes are still announced, its throw is a warning, nothing else escapes', async () => {
  takeEscapes();
  const m = new Model({ identity: self, dataset: DATASET, now: () => NOW, store: new MemoryStore() });
  await m.ready;
  m.on('error', () => {
    throw new Error('error listener bug');
  });
  m.on('change', (change: { key: string }) => {
    if (change.key === 'a') throw new Error('change listener bug');
  });
  const seen: string[] = [];
  const all = new Promise<void>((resolve) => m.on('update', (u) => seen.push(String((u.body as unknown[])[1])) === 3 && resolve()));
  m.set('a', 1); // its change listener throws, then the 'error' listener throws
  m.set('b', 2);
  await Promise.resolve();
  m.set('c', 3); // a later group, announced after the failing one
  await all;
  assert.equal(seen, ['a', 'b', 'c'], 'every write announced, in order');
  const escaped = await settledEscapes();
  assert.is(escaped.length, 1, escaped.join('; '));
  assert.match(escaped[0]!, /an 'error' listener threw \(error listener bug\) on: change listener bug/);
  m.dispose();
});

// ---- 2. FrameDecoder: quadratic reassembly of a message in many small chunks -------------------

// Found in review (fixed: a head index and coalesced small chunks): FrameDecoder kept every chunk in an array and take() consumes it with chunks.shift(),
// which is O(chunks) per call on a large array: reassembling a message that arrived in n small
// chunks costs O(n^2) on the event loop. Through the secure channel every 1-byte channel message
// (24 wire bytes) is one chunk, so a member that claims a 1.6 MB replication message and sends it
// a byte per channel message (about 38 MB on the wire) stalls the node for minutes (measured:
// 100k chunks 2.7 s, 400k chunks 46 s). The pending chunks also cost ~210 heap bytes per byte
// (333 MiB held for 1.6M pending bytes), far past the maxMessageBytes the decoder promises.
// Fix: once a frame's length is known (and checked), allocate that buffer and copy each chunk
// into it as it arrives (or keep a head index instead of shift()); memory = the declared length.
test('FrameDecoder: a message in 300k one-byte chunks is reassembled in linear time', () => {
  const n = 300_000;
  const d = new FrameDecoder(16 * MiB);
  const head = Buffer.alloc(4);
  head.writeUInt32BE(n, 0);
  assert.equal(d.push(head), []);
  for (let i = 0; i < n - 1; i++) d.push(Buffer.of(i & 0xff));
  const t = performance.now();
  const out = d.push(Buffer.of(0));
  const ms = performance.now() - t;
  assert.ok(Array.isArray(out) && out.length === 1 && out[0]!.length === n);
  assert.ok(ms < 1000, `reassembling ${n} one-byte chunks took ${ms.toFixed(0)} ms on the event loop`);
});

// ---- 3. a deferred update pins its closed origin stream ----------------------------------------

// Found in review (fixed: deferred entries hold their origin weakly): Scuttlebutt.defer() kept `origin` (the ReplicationStream) in each Deferred entry for up
// to maxClockSkew + MAX_DEFER_MICROS (11 min), after the stream has closed. MAX_DEFERRED_BYTES
// (1 MiB) counts only the envelope bytes, but the stream drags along everything it holds: the
// FrameDecoder's partial message (up to maxMessageBytes, 16 MiB), the peer's digest maps
// (remote.clock, known, behind: tens of MiB for a big hello), its meta. One ~130-byte future
// update per connection, ~8,000 connections per MiB of budget: each pins ~16 MiB. Measured: 10
// closed streams, 10 deferred updates, 80 MiB retained. Fix: do not keep the origin past the
// stream's life (hold a WeakRef, or clear the origin of deferred entries on 'close'; deferral is
// blameless and origins are only used for echo suppression then), and/or release the stream's
// decoder and maps on close.
test('deferral: closed streams are not kept alive by the future updates they delivered', async () => {
  const m = new Model({ identity: self, dataset: DATASET, now: () => NOW });
  await m.ready;
  const K = 6;
  const refs: Array<WeakRef<object>> = [];
  const before = heldBytes();
  for (let i = 0; i < K; i++) {
    const s = m.createStream({ name: `attacker-${i}` });
    s.resume();
    refs.push(new WeakRef(s));
    s.write(validHello());
    // verified, within MAX_DEFER_MICROS beyond the skew: held by the model (blameless)
    const u = signUpdate(writer, { dataset: DATASET, version: NOW + 120_000_000 + i, body: ['set', `k${i}`, i] });
    const deferred = new Promise<void>((resolve) => m.once('deferred', () => resolve()));
    s.write(framed(updatesMessage([u.bytes])));
    await deferred;
    // an unfinished message (taken in by the stream once the write callback runs), then hang up
    await new Promise<void>((resolve) => s.write(Buffer.from(claimedFrame(16 * MiB, 8 * MiB)), () => resolve()));
    s.destroy();
    await new Promise<void>((resolve) => s.once('close', () => resolve())); // (the closed() helper's deadline timer would hold it)
  }
  await new Promise((resolve) => setImmediate(resolve)); // one loop turn: the last stream's close work ends
  assert.is(m.deferredCount, K);
  const held = heldBytes() - before;
  const alive = refs.filter((r) => r.deref() !== undefined).length;
  m.dispose();
  assert.is(alive, 0, `${alive} of ${K} closed streams still reachable; ${mib(held)} held for ${K} deferred updates`);
});

// ---- 4. local writes: a lone surrogate lands under another key --------------------------------

// Found in review (fixed: refused where they enter): set()/checkKey() and assertValue() accepted strings with lone surrogates. cbor-x encodes a
// short one as WTF-8 (signUpdate then throws 'invalid UTF-8'), but a string of 64+ UTF-8 bytes
// goes through Buffer's encoder, which writes U+FFFD: the write is signed, applied and
// replicated under a different key than the one asked for (get(key) is undefined right after
// set(key)), and values come back changed, breaking value.ts's "round-trips unchanged".
// Whether it throws or silently rewrites depends on the string's length. Fix: refuse lone
// surrogates in keys, event names and values where they enter (e.g. !str.isWellFormed() on
// Node 20+, or a /\p{Cs}/u test), with a TypeError naming the path.
test('set(): a key with a lone surrogate is refused or read back under the same key', async () => {
  const m = new Model({ identity: self, dataset: DATASET, now: () => NOW });
  await m.ready;
  const shortKey = '\uD800k';
  const longKey = '\uD800' + 'k'.repeat(100);
  const outcome = (key: string) => {
    try {
      m.set(key, 1);
    } catch (err) {
      return `throws ${(err as Error).name}`;
    }
    return m.get(key) === 1 ? 'stored under that key' : `stored under ${JSON.stringify(m.keys())}`;
  };
  const short = outcome(shortKey);
  const long = outcome(longKey);
  m.dispose();
  assert.ok(short !== 'stored under that key' || long !== 'stored under that key', 'precondition');
  assert.is(long, short, `short key: ${short}; long key: ${long}`);
  assert.ok(long === 'stored under that key' || long.startsWith('throws'), long);
});

// ---- controls: what the review checked and found sound ---------------------------------------

test('parseUpdate: payload header heads must be minimal (dataset length, version)', () => {
  const body = setBody('k', Uint8Array.of(0x01));
  const good = rawPayload(writer.publicKey, 30, body);
  assert.ok(parseUpdate(envelopeOf(good, writer), { dataset: DATASET }).ok);
  // version 30 as 0x19 00 1e (2-byte head) instead of 0x18 1e
  const at = good.length - body.length - 2;
  assert.equal([...good.subarray(at, at + 2)], [0x18, 30]);
  const wide = concatBytes(good.subarray(0, at), Uint8Array.of(0x19, 0x00, 30), body);
  const r = parseUpdate(envelopeOf(wide, writer), { dataset: DATASET });
  assert.ok(!r.ok && r.reason === 'bad-shape', JSON.stringify(r));
});

test('readBody: a model body whose key carries a BOM keeps it on every path (guard, readBody, cbor-x)', async () => {
  const m = new Model({ identity: self, dataset: DATASET, now: () => NOW });
  await m.ready;
  const key = '\uFEFF' + 'b'.repeat(80);
  const u = signUpdate(writer, { dataset: DATASET, version: NOW - 10, body: ['set', key, '\uFEFFv'] });
  assert.is((await m.ingest(u.bytes)).status, 'applied');
  assert.equal(m.keys(), [key]);
  assert.is(m.get(key), '\uFEFFv');
  assert.is((u.body as string[])[1], key);
  m.dispose();
});

test('the envelope byte-string head is not canonicalised, but both encodings are one update (same hash)', () => {
  const u = signUpdate(writer, { dataset: DATASET, version: 5, body: ['set', 'k', 1] });
  const p = u.payload;
  const wide = concatBytes(Uint8Array.of(0x82, 0x5a), Uint8Array.of(0, 0, (p.length >> 8) & 0xff, p.length & 0xff), p, Uint8Array.of(0x58, 0x40), u.signature);
  const r = parseUpdate(wide, { dataset: DATASET });
  assert.ok(r.ok);
  assert.is(r.update.hashHex, u.hashHex);
  assert.is(cborHead(2, p.length).length, 2);
});

test.run();
