// Fuzz: the secure channel's byte parsers: FrameReader (2-byte length prefixes, arbitrary
// chunks), Reassembler (frame plaintexts to messages), and the handshake responder.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { secureChannel, type SecureChannel } from '../../src/channel/secure-channel.ts';
import { FrameReader, FrameType, MAX_FRAME_PLAINTEXT, messageFrames, Reassembler, SMALL_CHUNK_BYTES } from '../../src/channel/framing.ts';
import { SignetError } from '../../src/errors.ts';
import { MAX_HANDSHAKE_FRAME, NOISE_MAX_FRAME } from '../../src/limits.ts';
import { concatBytes } from '../../src/util/bytes.ts';
import { alice, bob, duplexPair, networkKey } from '../channel/pair.ts';
import { closed, deadline } from '../helpers/streams.ts';
import { anyBytes, chunking, mutate, mutations, split } from './arbitraries.ts';
import { property, takeEscapes } from './harness.ts';

const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');

/** Asserts `error` is one of signet's errors with one of `codes`. */
function assertSignetError(error: unknown, codes?: readonly string[]): asserts error is SignetError {
  assert.ok(error instanceof SignetError, `not a SignetError: ${String(error)}`);
  assert.match(error.code, /^ERR_[A-Z_]+$/);
  if (codes) assert.ok(codes.includes(error.code), `code ${error.code}`);
}

// ---- FrameReader ---------------------------------------------------------------------------------

/** The reference reader: frames in order until one declares more than `cap` (and where that header ended). */
function reference(bytes: Uint8Array, cap: number): { frames: string[]; refusedAt: number } {
  const frames: string[] = [];
  let at = 0;
  while (bytes.length - at >= 2) {
    const length = (bytes[at]! << 8) | bytes[at + 1]!;
    if (length > cap) return { frames, refusedAt: at + 2 };
    if (bytes.length - at - 2 < length) break;
    frames.push(hex(bytes.subarray(at + 2, at + 2 + length)));
    at += 2 + length;
  }
  return { frames, refusedAt: -1 };
}

const cap = fc.oneof(
  fc.constantFrom(0, 1, 23, 24, 255, 256, MAX_HANDSHAKE_FRAME, MAX_HANDSHAKE_FRAME + 1, NOISE_MAX_FRAME - 1, NOISE_MAX_FRAME),
  fc.integer({ min: 0, max: 2000 }),
);
const prefixed = (body: Uint8Array): Uint8Array => concatBytes(Uint8Array.of(body.length >> 8, body.length & 255), body);
/** Framed bodies (sometimes one of 65535 bytes), the same mutated (lengths set to edge values...), or noise. */
const framedStream = fc.oneof(
  fc.array(fc.oneof({ weight: 9, arbitrary: fc.uint8Array({ maxLength: 1200 }) }, { weight: 1, arbitrary: fc.constant(new Uint8Array(NOISE_MAX_FRAME)) }), { maxLength: 6 })
    .chain((bodies) => {
      const frames = bodies.map(prefixed);
      const starts = frames.map((_, i) => frames.slice(0, i).reduce((n, f) => n + f.length, 0));
      const bytes = concatBytes(...frames);
      return fc.oneof(fc.constant(bytes), mutations.map((list) => mutate(bytes, list, starts)));
    }),
  anyBytes,
);

property(
  'FrameReader: any bytes in any chunking give what the reference reader gives; an over-cap length throws FrameTooLargeError once its 2 bytes are in; memory held stays bounded',
  fc.property(framedStream, chunking, cap, fc.boolean(), (bytes, sizes, max, parts) => {
    const allocations: number[] = [];
    const reader = new FrameReader(max, (n) => {
      allocations.push(n);
      return Buffer.allocUnsafe(n);
    });
    const expected = reference(bytes, max);
    const got: string[] = [];
    let pushed = 0;
    let taken = 0;
    for (const chunk of split(bytes, sizes)) {
      const before = pushed;
      reader.push(chunk);
      pushed += chunk.length;
      try {
        for (;;) {
          const frame = parts ? reader.nextParts() : reader.next();
          if (frame === null) break;
          const body = parts ? concatBytes(...(frame as Uint8Array[])) : (frame as Uint8Array);
          got.push(hex(body));
          taken += 2 + body.length;
        }
      } catch (error) {
        assertSignetError(error, ['ERR_FRAME_TOO_LARGE']);
        assert.ok(expected.refusedAt > before && expected.refusedAt <= pushed, `thrown in bytes ${before}..${pushed}, the bad prefix ends at ${expected.refusedAt}`);
        assert.equal(got, expected.frames.slice(0, got.length));
        return;
      }
      assert.is(reader.buffered, pushed - taken, 'buffered counts the unread bytes');
      // small chunks are coalesced: a byte-at-a-time sender cannot make us hold a Buffer per byte
      assert.ok(reader.held <= 2 + 2 * Math.ceil(reader.buffered / SMALL_CHUNK_BYTES), `${reader.held} chunks held for ${reader.buffered} bytes`);
    }
    assert.is(expected.refusedAt, -1, 'an over-cap length was not refused');
    assert.equal(got, expected.frames);
    for (const n of allocations) assert.ok(n <= max && n <= pushed, `allocated ${n} bytes (cap ${max}, received ${pushed})`);
  }),
  { weight: 10 },
);

// ---- Reassembler ---------------------------------------------------------------------------------

/** Frame plaintexts: whole messages (split into frames as the sender does), close, keepalive, and noise. */
const plaintexts = fc.array(
  fc.oneof(
    { weight: 4, arbitrary: fc.oneof(fc.integer({ min: 0, max: 300 }), fc.constantFrom(MAX_FRAME_PLAINTEXT - 5, MAX_FRAME_PLAINTEXT - 4, 2 * MAX_FRAME_PLAINTEXT))
      .map((n) => ({ message: new Uint8Array(n).map((_, i) => i & 255) })) },
    { weight: 1, arbitrary: fc.constantFrom(FrameType.close, FrameType.keepalive).map((type) => ({ control: Uint8Array.of(type) })) },
    { weight: 1, arbitrary: anyBytes.map((noise) => ({ noise })) },
  ),
  { maxLength: 6 },
);

property(
  'Reassembler: any frame plaintexts give messages, close or keepalive, or a SignetError (too large, protocol); whole messages come back intact',
  fc.property(plaintexts, fc.option(mutations, { nil: undefined }), fc.constantFrom(0, 1, 300, MAX_FRAME_PLAINTEXT, 3 * MAX_FRAME_PLAINTEXT), (items, list, max) => {
    const reassembler = new Reassembler(max);
    const sent: string[] = [];
    const frames: Uint8Array[] = [];
    for (const item of items) {
      if ('message' in item) {
        sent.push(hex(item.message));
        for (const parts of messageFrames(item.message)) frames.push(concatBytes(...parts));
      } else frames.push('control' in item ? item.control : item.noise);
    }
    const clean = list === undefined && items.every((i) => !('noise' in i)) && items.every((i) => !('message' in i) || i.message.length <= max);
    const got: string[] = [];
    for (const [index, plaintext] of frames.entries()) {
      const input = list === undefined ? plaintext : mutate(plaintext, list);
      try {
        const r = reassembler.accept(input);
        assert.ok(['message', 'partial', 'close', 'keepalive'].includes(r.kind));
        if (r.kind === 'message') {
          assert.ok(r.data.length <= max, `a message of ${r.data.length} bytes, over ${max}`);
          got.push(hex(r.data));
        }
        assert.ok(reassembler.pending <= max, 'holds no more than one message');
      } catch (error) {
        assertSignetError(error, ['ERR_FRAME_TOO_LARGE', 'ERR_CHANNEL_PROTOCOL']);
        assert.not.ok(clean, `a clean sequence refused at frame ${index}: ${(error as Error).message}`);
        return; // the session ends here
      }
    }
    if (clean) assert.equal(got, sent);
  }),
  { weight: 5 },
);

// ---- the handshake responder -------------------------------------------------------------------

/** The injected handshake deadline: small, so a responder left waiting gives up quickly. */
const HANDSHAKE_TIMEOUT_MS = 40;
/** Only a guard against a hang (the test fails if the handshake outlives it); not a timing assertion. */
const HANG_GUARD_MS = 20_000;

/** A genuine message 1 (with its length prefix) from alice, dialling with the given ephemeral key. */
async function messageOne(ephemeralPrivateKey: Uint8Array): Promise<Uint8Array> {
  const [ea, eb] = duplexPair();
  let captured!: (chunk: Buffer) => void;
  const first = new Promise<Buffer>((resolve) => (captured = resolve));
  ea.tap = (chunk) => {
    captured(Buffer.from(chunk));
    return [];
  };
  const dial = secureChannel(ea, { identity: alice, networkKey, initiator: true, testing: { ephemeralPrivateKey } });
  const bytes = await deadline(first, 'message 1', HANG_GUARD_MS);
  ea.destroy();
  eb.destroy();
  await dial.then((c) => c.destroy(), () => {}); // it can only fail now: its transport is gone
  await Promise.all([closed(ea), closed(eb)]);
  return bytes;
}

const LISTENED = ['data', 'end', 'close', 'error', 'readable'] as const;

property(
  'handshake responder: arbitrary bytes, or a genuine message 1 mutated or followed by noise, in any chunking, with or without EOF: rejects with a coded SignetError, never throws, writes nothing for a message 1 it cannot open, leaves no listener',
  fc.asyncProperty(
    fc.record({
      genuine: fc.boolean(),
      ephemeral: fc.uint8Array({ minLength: 32, maxLength: 32 }),
      list: fc.option(mutations, { nil: undefined }),
      rest: anyBytes,
      sizes: chunking,
      eof: fc.boolean(),
    }),
    async ({ genuine, ephemeral, list, rest, sizes, eof }) => {
      const one = genuine ? await messageOne(ephemeral) : new Uint8Array(0);
      const sentOne = list === undefined ? one : mutate(one, list, [0, 2]);
      const bytes = concatBytes(sentOne, rest);
      const intact = genuine && hex(bytes.subarray(0, one.length)) === hex(one);
      const [attacker, victim] = duplexPair();
      const listeners = LISTENED.map((e) => victim.listenerCount(e));
      let handshake: Promise<SecureChannel>;
      try {
        handshake = secureChannel(victim, { identity: bob, networkKey, initiator: false, limits: { handshakeTimeoutMs: HANDSHAKE_TIMEOUT_MS } });
      } catch (error) {
        throw new Error(`secureChannel threw synchronously: ${String(error)}`);
      }
      for (const chunk of split(bytes, sizes)) attacker.write(chunk);
      if (eof) attacker.end();
      const outcome = await deadline(handshake.then((channel) => ({ channel }), (error: unknown) => ({ error })), 'the responder to give up', HANG_GUARD_MS);
      attacker.destroy();
      await closed(attacker);
      if ('channel' in outcome) {
        outcome.channel.destroy();
        throw new Error('a handshake completed with bytes that hold no valid message 3');
      }
      assertSignetError(outcome.error);
      assert.ok(victim.destroyed, 'the transport is destroyed');
      assert.equal(LISTENED.map((e) => victim.listenerCount(e)), listeners, 'listeners left on the transport');
      if (!intact) assert.is(victim.bytesWritten, 0, 'the responder answered a message 1 it could not open');
      await new Promise((resolve) => setImmediate(resolve));
      assert.equal(takeEscapes(), [], 'an exception escaped');
    },
  ),
  { weight: 0.5 },
);

test('control: a genuine message 1 alone gets message 2 back, then the deadline (ERR_TIMEOUT)', async () => {
  const one = await messageOne(new Uint8Array(32).fill(0x42));
  const [attacker, victim] = duplexPair();
  const handshake = secureChannel(victim, { identity: bob, networkKey, initiator: false, limits: { handshakeTimeoutMs: HANDSHAKE_TIMEOUT_MS } });
  attacker.write(one);
  const error = await handshake.then(() => null, (e: unknown) => e);
  assertSignetError(error, ['ERR_TIMEOUT']);
  assert.ok(victim.bytesWritten > 0, 'message 2 was sent');
  attacker.destroy();
  await closed(attacker);
});

test.run();
