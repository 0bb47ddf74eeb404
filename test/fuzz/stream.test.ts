// Fuzz: the replication stream state machine, fed a peer's bytes in arbitrary chunkings.
// Nothing escapes (no throw, no 'error'); it ends normally or is cut with a reason.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { cborHead } from '../../src/envelope/cbor.ts';
import { signUpdate } from '../../src/envelope/update.ts';
import { DOMAIN, domainBytes } from '../../src/identity/signature.ts';
import { concatBytes, utf8 } from '../../src/util/bytes.ts';
import { Identity, Model, ProtocolError, type ReplicationStream } from '../../src/index.ts';
import { nodeIdOf } from '../../src/identity/node-id.ts';
import { encodeHello, encodeSync, encodeUpdates, frame, type DigestEntry } from '../../src/replication/messages.ts';
import { closed } from '../helpers/streams.ts';
import { anyBytes, assertSame, chunking, cborHeads, mutate, mutations, split, value } from './arbitraries.ts';
import { encodeWide, headWidths } from './cbor-model.ts';
import { property, takeEscapes } from './harness.ts';

const self = Identity.fromSecretKey(new Uint8Array(32).fill(0x11));
const peer = Identity.fromSecretKey(new Uint8Array(32).fill(0x5e));
const writer = Identity.fromSecretKey(new Uint8Array(32).fill(0x77));
/** Signed updates a session may carry: versions 1..12 of one writer, one key each. */
const signed = Array.from({ length: 12 }, (_, i) =>
  signUpdate(writer, { dataset: 'default', version: i + 1, body: ['set', `k${i}`, { i, pad: 'x'.repeat(i * 40) }] }));
const signedVersions = new Set(signed.map((u) => u.version));

const hello = (meta: unknown = null, dataset = 'default', id = peer.id, digest = new Map<string, DigestEntry>()) =>
  encodeHello({ dataset, id, digest, meta: meta as null, readable: true, writable: true });

/** What a peer's digest may hold: sources we have never heard of, at versions as real clocks make them (µs). */
const digest = fc.uniqueArray(
  fc.record({
    source: fc.uint8Array({ minLength: 32, maxLength: 32 }).map(nodeIdOf),
    version: fc.oneof(fc.integer({ min: 1, max: 2 ** 32 }), fc.integer({ min: 1_600_000_000_000_000, max: 2_000_000_000_000_000 })),
    hashPrefix: fc.uint8Array({ minLength: 8, maxLength: 8 }),
  }),
  { selector: (e) => e.source, maxLength: 3 },
).map((list) => new Map(list.map(({ source, ...e }) => [source, e])));

/** A valid session, described (a counterexample prints small): see {@link sessionFrames}. */
const validSession = fc.record({
  count: fc.integer({ min: 0, max: signed.length }),
  batches: fc.integer({ min: 1, max: 3 }),
  meta: value(2),
  digest,
});

/** Hello, the first `count` signed updates in `batches` messages, SYNC. */
function sessionFrames({ count, batches, meta, digest }: { count: number; batches: number; meta: unknown; digest: Map<string, DigestEntry> }): Buffer[] {
  const frames = [hello(meta, 'default', peer.id, digest)];
  const per = Math.ceil(count / batches) || 1;
  for (let i = 0; i < count; i += per) frames.push(encodeUpdates(signed.slice(i, Math.min(count, i + per)).map((u) => u.bytes)));
  frames.push(encodeSync());
  return frames;
}

/** Messages in any order, well formed or not: a walk through the stream's states. */
const anyFrame = fc.oneof(
  fc.constant(hello()),
  fc.constant(hello(null, 'other')),
  fc.constant(hello(null, 'default', writer.id)),
  fc.subarray(signed).map((us) => encodeUpdates(us.map((u) => u.bytes))),
  fc.array(fc.uint8Array({ maxLength: 200 }), { maxLength: 4 }).map((junk) => encodeUpdates(junk)),
  fc.constant(encodeSync()),
  fc.integer({ min: 3, max: 300 }).map((type) => frame([type])),
  anyBytes.map((b) => Buffer.concat([Buffer.from([0, 0, b.length >> 8, b.length & 255]), b])),
);
const sequence = fc.array(anyFrame, { minLength: 1, maxLength: 6 });

/** Frame starts and every CBOR head inside the frames: where mutations hurt most. */
function marksOf(frames: Buffer[]): number[] {
  const marks: number[] = [];
  let at = 0;
  for (const f of frames) {
    marks.push(at, ...cborHeads(f, 4).map((h) => at + h));
    at += f.length;
  }
  return marks;
}

interface Outcome {
  stream: ReplicationStream;
  model: Model;
  errors: Error[];
  cuts: number;
}

/** Feeds `bytes` in chunks to a fresh model's stream, then ends or destroys it, and waits for 'close'. */
async function feed(bytes: Uint8Array, sizes: number[], finish: 'end' | 'destroy'): Promise<Outcome> {
  const model = new Model({ identity: self, dataset: 'default' });
  await model.ready;
  const stream = model.createStream({ name: 'fuzz' });
  const errors: Error[] = [];
  let cuts = 0;
  stream.on('error', (e) => errors.push(e));
  stream.on('cut', () => cuts++);
  stream.resume(); // read what it says; the peer here ignores it
  for (const chunk of split(bytes, sizes)) {
    if (stream.destroyed) break;
    stream.write(chunk);
  }
  if (finish === 'end') {
    if (!stream.destroyed) stream.end();
  } else {
    stream.destroy();
  }
  await closed(stream);
  await new Promise((resolve) => setImmediate(resolve)); // anything thrown late surfaces now
  return { stream, model, errors, cuts };
}

/** What every outcome must satisfy, whatever was sent. */
function checkOutcome({ stream, model, errors, cuts }: Outcome): void {
  assert.equal(takeEscapes(), [], 'an exception escaped');
  assert.equal(errors.map((e) => e.message), [], "an 'error' event");
  const reason = stream.closeReason;
  if (reason !== null) {
    assert.ok(reason instanceof ProtocolError, 'closeReason is a ProtocolError');
    assert.is(reason.code, 'ERR_PROTOCOL');
    assert.match(reason.reason, /^[a-z]+(-[a-z]+)*$/);
    assert.is.not(reason.reason, 'internal-error', `an exception inside the stream: ${reason.message}`);
    assert.is(cuts, 1, "one 'cut'");
  } else {
    assert.is(cuts, 0, "a 'cut' without a closeReason");
  }
  // only what was signed is applied
  for (const [source, version] of model.clock) {
    assert.is(source, writer.id, 'a clock entry for a source nobody signed for');
    assert.ok(signedVersions.has(version), `version ${version} was never signed`);
  }
  assert.is(model.streams, 0, 'the stream is detached from the model');
  model.set('after', true); // the model still works
  assert.is(model.get('after'), true);
  model.dispose();
}

const finish = fc.constantFrom('end' as const, 'destroy' as const);

property(
  'stream: a valid session (hello, updates, SYNC) in any chunking applies every update and ends normally',
  fc.asyncProperty(validSession, chunking, async (session, sizes) => {
    const count = session.count;
    const outcome = await feed(Buffer.concat(sessionFrames(session)), sizes, 'end');
    assert.is(outcome.stream.closeReason, null, outcome.stream.closeReason?.message);
    assert.is(outcome.stream.stats.applied, count);
    for (const u of signed.slice(0, count)) assert.equal(outcome.model.get(`k${u.version - 1}`), { i: u.version - 1, pad: 'x'.repeat((u.version - 1) * 40) });
    checkOutcome(outcome);
  }),
  { weight: 0.5 },
);

property(
  "stream: arbitrary bytes in any chunking: no throw, no 'error'; ends normally or cut with a reason; nothing applied",
  fc.asyncProperty(anyBytes, chunking, finish, async (bytes, sizes, how) => {
    const outcome = await feed(bytes, sizes, how);
    assert.is(outcome.model.clock.size, 0);
    checkOutcome(outcome);
  }),
  { weight: 1 },
);

property(
  "stream: mutated and reordered valid sessions in any chunking: no throw, no 'error'; ends normally or cut with a reason; only signed updates applied",
  fc.asyncProperty(
    fc.oneof(validSession, sequence),
    fc.option(mutations, { nil: undefined }),
    chunking,
    finish,
    async (session, list, sizes, how) => {
      const frames = Array.isArray(session) ? session : sessionFrames(session);
      const bytes = Buffer.concat(frames);
      checkOutcome(await feed(list ? mutate(bytes, list, marksOf(frames)) : bytes, sizes, how));
    },
  ),
  { weight: 1 },
);

/** An envelope signed over a body given as raw bytes (signUpdate re-encodes, minimally). */
function signRaw(body: Uint8Array, version: number): Uint8Array {
  const name = utf8('default');
  const payload = concatBytes(Uint8Array.of(0x85, 0x01), cborHead(3, name.length), name, cborHead(2, 32), writer.publicKey, cborHead(0, version), body);
  const signature = writer.sign(domainBytes(DOMAIN.update, payload));
  return concatBytes(Uint8Array.of(0x82), cborHead(2, payload.length), payload, Uint8Array.of(0x58, 0x40), signature);
}

property(
  'stream: a signed update whose value uses wider heads than needed is applied and reads back, or refused; model.get never throws',
  fc.asyncProperty(value(4), headWidths, chunking, async (v, widths, sizes) => {
    const body = concatBytes(Uint8Array.of(0x83, 0x63, 0x73, 0x65, 0x74, 0x61, 0x6b), encodeWide(v, widths)); // ['set', 'k', value]
    const session = Buffer.concat([hello(), encodeUpdates([signRaw(body, 1)]), encodeSync()]);
    const outcome = await feed(session, sizes, 'end');
    if (outcome.model.clock.get(writer.id) === 1) {
      let read: unknown;
      try {
        read = outcome.model.get('k');
      } catch (error) {
        throw new Error(`an applied update's value cannot be read: ${(error as Error).message}`);
      }
      assertSame(read, v, 'the value read back');
    }
    checkOutcome(outcome);
  }),
  { weight: 0.5 },
);

// The control the properties above rely on: a stream that is cut reports it (so "nothing
// escaped, cut with a reason" is observed, not assumed).
test('control: a frame of garbage after hello is cut with a reason, observed by checkOutcome', async () => {
  const outcome = await feed(Buffer.concat([hello(), frame('junk')]), [7], 'end');
  assert.is(outcome.stream.closeReason?.reason, 'malformed');
  checkOutcome(outcome);
});

test.run();
