// Fuzz: the replication wire: decodeMessage (one CBOR message) and FrameDecoder (4-byte
// big-endian length prefixes over arbitrary chunks). A result for every input, never a throw.
import * as assert from 'uvu/assert';
import { test } from 'uvu';
import fc from 'fast-check';
import { isDatasetName, signUpdate } from '../../src/envelope/update.ts';
import { Identity } from '../../src/identity/identity.ts';
import { nodeIdOf } from '../../src/identity/node-id.ts';
import { MAX_MESSAGE_BYTES } from '../../src/limits.ts';
import {
  decodeMessage, encodeHello, encodeSync, encodeUpdates, FrameDecoder, MAX_MESSAGE_DEPTH, PROTOCOL_VERSION,
  type Hello, type Message, type MessageResult,
} from '../../src/replication/messages.ts';
import { concatBytes } from '../../src/util/bytes.ts';
import {
  anyBytes, assertSame, BYTE_STRING_ITEMS, canonical, chunking, cborHeads, EDGE_VALUES, itemsInput, manyItems, mutate, mutations, split, text, value,
} from './arbitraries.ts';
import { heapBudget, property, retained } from './harness.ts';

const nodeId = fc.uint8Array({ minLength: 32, maxLength: 32 }).map(nodeIdOf);
const hello: fc.Arbitrary<Hello> = fc.record({
  dataset: text(40).filter(isDatasetName),
  id: nodeId,
  digest: fc.uniqueArray(
    fc.record({ source: nodeId, version: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }), hashPrefix: fc.uint8Array({ minLength: 8, maxLength: 8 }) }),
    { selector: (e) => e.source, maxLength: 5 },
  ).map((list) => new Map(list.map(({ source, ...e }) => [source, e]))),
  meta: value(Math.min(3, MAX_MESSAGE_DEPTH - 1)), // small: a meta is a few KiB at most
  readable: fc.boolean(),
  writable: fc.boolean(),
});
/** Real signed envelopes of several sizes: what an updates message carries. */
const writer = Identity.fromSecretKey(new Uint8Array(32).fill(0x3c));
const envelopes = Array.from({ length: 12 }, (_, i) =>
  signUpdate(writer, { dataset: 'default', version: 1 + i, body: ['set', `k${i}`, 'v'.repeat(i * i * 10)] }).bytes);
const message: fc.Arbitrary<Message> = fc.oneof(
  hello.map((h) => ({ type: 'hello' as const, hello: h })),
  fc.array(fc.constantFrom(...envelopes), { maxLength: 8 }).map((updates) => ({ type: 'updates' as const, updates })),
  fc.constant({ type: 'sync' as const }),
);

/** The framed bytes of a message (4-byte length prefix included). */
function encode(m: Message): Buffer {
  return m.type === 'hello' ? encodeHello(m.hello) : m.type === 'updates' ? encodeUpdates(m.updates) : encodeSync();
}

/** A message as comparable text. */
function canonicalMessage(m: Message): string {
  if (m.type !== 'hello') return canonical(m);
  const { dataset, id, digest, meta, readable, writable } = m.hello;
  return canonical({ dataset, id, digest: [...digest].map(([source, e]) => [source, e.version, e.hashPrefix]), meta, readable, writable });
}

/** What every result must look like, whatever the input; whatever is accepted round-trips. */
function checkResult(r: MessageResult): void {
  if (!r.ok) {
    assert.type(r.reason, 'string');
    assert.ok(r.reason.length > 0, 'a refusal says why');
    return;
  }
  assert.ok(['hello', 'updates', 'sync'].includes(r.message.type));
  const again = decodeMessage(encode(r.message).subarray(4));
  assert.ok(again.ok, 'an accepted message re-encodes acceptably');
  if (again.ok) assertSame(canonicalMessage(again.message), canonicalMessage(r.message), 'decoded again');
}

property(
  'decodeMessage: arbitrary bytes never throw; a refusal has a reason',
  fc.property(anyBytes, (bytes) => checkResult(decodeMessage(bytes))),
  { weight: 20 },
);

property(
  'decodeMessage(encode(m)) gives m back: hello (digest, meta, flags), updates, sync',
  fc.property(message, (m) => {
    const r = decodeMessage(encode(m).subarray(4));
    assert.ok(r.ok, r.ok ? '' : r.reason);
    if (r.ok) assertSame(canonicalMessage(r.message), canonicalMessage(m), 'decoded');
  }),
  { weight: 5 },
);

property(
  'decodeMessage: mutated valid messages never throw; whatever is accepted round-trips',
  fc.property(message, mutations, (m, list) => {
    const body = encode(m).subarray(4);
    checkResult(decodeMessage(mutate(body, list, cborHeads(body))));
  }),
  { weight: 20 },
);

// Huge item counts in one message: a hello whose meta, or an updates message whose list, is
// up to 8 arrays of 2^20 small items. What decodeMessage returns holds at most heapBudget(bytes).
const PREFIX = { hello: concatBytes(Uint8Array.of(0x89, 0x00, PROTOCOL_VERSION, 0x67), Buffer.from('default'), Uint8Array.of(0x78, 52), Buffer.from(nodeIdOf(new Uint8Array(32))), Uint8Array.of(0x80)), updates: Uint8Array.of(0x82, 0x01) };
// flags 3, maxUpdateBytes 65536, a 32-byte nonce
const SUFFIX = { hello: concatBytes(Uint8Array.of(0x03, 0x1a, 0x00, 0x01, 0x00, 0x00, 0x58, 0x20), new Uint8Array(32)), updates: new Uint8Array(0) };
// Failed before the decode budget (4ba77b2): 2^20 empty byte strings in an updates message held
// about 190 heap bytes per wire byte; ed7eebd bounds it.
property(
  'decodeMessage: a hello meta or updates list of many small items holds at most heapBudget(bytes)',
  fc.property(fc.oneof(
    manyItems().map((items) => ({ kind: 'hello' as const, items })),
    manyItems(BYTE_STRING_ITEMS).map((items) => ({ kind: 'updates' as const, items: { ...items, arrays: 1 } })), // a list of byte strings
  ), ({ kind, items }) => {
    const { what, input } = itemsInput(items);
    const bytes = concatBytes(PREFIX[kind], input, SUFFIX[kind]);
    const { result, growth } = retained(() => decodeMessage(bytes));
    assert.ok(result.ok || result.reason.length > 0);
    const budget = heapBudget(bytes.length);
    assert.ok(growth <= budget, `${kind} of ${what} (${bytes.length} bytes) held ${growth} bytes, budget ${budget}`);
  }),
  { weight: 0.1 },
);

// ---- FrameDecoder ------------------------------------------------------------------------------

/** The reference reader: messages in order until a declared length over `max` (and where its header ended). */
function reference(bytes: Uint8Array, max: number): { messages: string[]; refusedAt: number } {
  const messages: string[] = [];
  const view = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  let at = 0;
  while (bytes.length - at >= 4) {
    const length = view.readUInt32BE(at);
    if (length > max) return { messages, refusedAt: at + 4 };
    if (bytes.length - at - 4 < length) break;
    messages.push(view.toString('hex', at + 4, at + 4 + length));
    at += 4 + length;
  }
  return { messages, refusedAt: -1 };
}

const maxBytes = fc.oneof(
  fc.constantFrom(...EDGE_VALUES.filter((v): v is number => typeof v === 'number' && v >= 1 && v <= MAX_MESSAGE_BYTES)),
  fc.integer({ min: 1, max: 600 }),
);
/** Framed messages, or those framed bytes mutated (lengths set to edge values, bytes inserted...), or noise. */
const framedStream = fc.oneof(
  fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 8 }).chain((bodies) => {
    const frames = bodies.map((b) => concatBytes(Buffer.from([b.length >>> 24, (b.length >>> 16) & 255, (b.length >>> 8) & 255, b.length & 255]), b));
    const starts = frames.map((_, i) => frames.slice(0, i).reduce((n, f) => n + f.length, 0));
    const bytes = concatBytes(...frames);
    return fc.oneof(fc.constant(bytes), mutations.map((list) => mutate(bytes, list, starts)));
  }),
  anyBytes,
);

property(
  'FrameDecoder: any bytes in any chunking give what the reference reader gives; an over-limit length is refused as soon as its 4 bytes are in',
  fc.property(framedStream, chunking, maxBytes, (bytes, sizes, max) => {
    const decoder = new FrameDecoder(max);
    const expected = reference(bytes, max);
    const got: string[] = [];
    let pushed = 0;
    for (const chunk of split(bytes, sizes)) {
      const before = pushed;
      pushed += chunk.length;
      const out = decoder.push(chunk);
      if (typeof out === 'string') {
        assert.ok(expected.refusedAt > before && expected.refusedAt <= pushed, `refused in bytes ${before}..${pushed}, the bad header ends at ${expected.refusedAt}`);
        assert.ok(out.length > 0);
        assert.equal(got, expected.messages.slice(0, got.length), 'the messages before the refusal');
        return;
      }
      for (const m of out) got.push(Buffer.from(m).toString('hex'));
    }
    assert.is(expected.refusedAt, -1, 'an over-limit length was not refused');
    assert.equal(got, expected.messages);
  }),
  { weight: 10 },
);

property(
  'FrameDecoder: a declared length holds only the bytes that arrived, never the declared size',
  fc.property(fc.integer({ min: 1 << 16, max: MAX_MESSAGE_BYTES }), fc.integer({ min: 0, max: 4096 }), chunking, (declared, sent, sizes) => {
    const head = Buffer.alloc(4);
    head.writeUInt32BE(declared, 0);
    const bytes = concatBytes(head, new Uint8Array(Math.min(sent, declared - 1)));
    const { result, growth } = retained(() => {
      const decoder = new FrameDecoder(MAX_MESSAGE_BYTES);
      const outs = split(bytes, sizes).map((c) => decoder.push(c));
      return { decoder, outs };
    });
    for (const out of result.outs) assert.equal(out, [], 'nothing complete, nothing refused');
    const budget = heapBudget(bytes.length);
    assert.ok(growth <= budget, `declared ${declared}, sent ${bytes.length}: held ${growth} bytes, budget ${budget}`);
  }),
  { weight: 0.2 },
);

test.run();
