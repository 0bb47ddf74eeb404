// Security review of src/channel: each test pins down a problem an attacker (or an unlucky
// peer) could cause, found in review and fixed alongside.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { once } from 'node:events';
import type { Duplex } from 'node:stream';
import { secureChannel } from '../../src/channel/secure-channel.ts';
import type { HandshakeState } from '../../src/channel/handshake-state.ts';
import { FrameReader, lengthPrefix } from '../../src/channel/framing.ts';
import { MESSAGE_1_BYTES } from '../../src/channel/handshake.ts';
import { alice, bob, networkKey, duplexPair, frameTap, held, outcome, rejection } from './pair.ts';

const closed = (s: Duplex): Promise<void> => new Promise((r) => (s.closed ? r() : s.once('close', () => r())));

test('a replayed message 1 (captured from a real handshake) gets no reply and no DH from a responder', async () => {
  // an eavesdropper records the 2 + 56 bytes of a genuine message 1...
  const [ea, eb] = duplexPair();
  const [a, b] = await Promise.all([
    secureChannel(ea, { identity: alice, networkKey, initiator: true }),
    secureChannel(eb, { identity: bob, networkKey, initiator: false }),
  ]);
  const message1 = Buffer.from(ea.wire[0]!);
  assert.is(message1.length, 2 + MESSAGE_1_BYTES);
  a.destroy();
  b.destroy();
  // ...and, not knowing the network key, replays it to the responder
  for (let i = 0; i < 3; i++) {
    const [ex, ey] = duplexPair();
    const states: HandshakeState[] = [];
    const responder = secureChannel(ey, {
      identity: bob, networkKey, initiator: false, limits: { handshakeTimeoutMs: 30 }, // a refusal waits out the deadline
      testing: { onHandshakeState: (s) => states.push(s) },
    });
    ex.write(message1);
    const error = await rejection(responder);
    assert.is(error.code, 'ERR_HANDSHAKE');
    await closed(ey);
    assert.is(ey.bytesWritten, 0, 'no message 2 (and no encrypted identity) for a replayer');
    assert.is(states[0]!.dhCount, 0, 'no DH for a replayer');
    assert.is(states[0]!.localEphemeral, undefined, 'no ephemeral generated for a replayer');
  }
});

test('EOF right after message 3, a message and the close frame: the responder still completes and delivers', async () => {
  // A one-shot client: handshake, one message, close frame, FIN. The FIN reaches the responder
  // while it verifies the identity payload of message 3; that is not a handshake failure.
  const [ea, eb] = duplexPair();
  const responder = secureChannel(eb, { identity: bob, networkKey, initiator: false });
  responder.catch(() => {});
  const a = await secureChannel(ea, { identity: alice, networkKey, initiator: true });
  a.write('one shot');
  a.end(); // the close frame
  await once(a, 'finish');
  ea.end(); // and the FIN, without waiting for the responder's close frame
  const b = await responder;
  const result = await outcome(b);
  assert.is(result.error, null);
  assert.equal(result.messages.map(String), ['one shot']);
});

test('the handshake does not pull in what the peer sends while message 3 is verified (bounded buffering)', async () => {
  const [ea, eb] = duplexPair();
  const responder = secureChannel(eb, { identity: bob, networkKey, initiator: false });
  const a = await secureChannel(ea, { identity: alice, networkKey, initiator: true });
  const FLOOD = 8 * 1024 * 1024;
  const chunk = Buffer.alloc(64 * 1024, 0xee);
  for (let sent = 0; sent < FLOOD; sent += chunk.length) ea.write(chunk); // arrives during verification
  const b = await responder;
  // what the handshake did not read is still in the underlying stream (over TCP: in the kernel, pushed back on the sender)
  assert.ok(eb.readableLength >= FLOOD - 64 * 1024, `the handshake took ${FLOOD - eb.readableLength} bytes into its own buffer`);
  const ob = outcome(b);
  assert.is((await ob).error?.code, 'ERR_DECRYPT');
  a.destroy();
});

test('a reader applying backpressure longer than idleTimeoutMs is not an idle peer (no ERR_TIMEOUT)', async () => {
  const [ea, eb] = duplexPair();
  let keepalives = 0;
  let enough!: () => void;
  const seen = new Promise<void>((r) => (enough = r));
  ea.tap = frameTap((f, i) => {
    if (i >= 2 && f.length === 2 + 1 + 16 && ++keepalives === 12) enough();
    return [f];
  });
  const [a, b] = await Promise.all([
    secureChannel(ea, { identity: alice, networkKey, initiator: true, limits: { keepaliveMs: 5 } }),
    secureChannel(eb, { identity: bob, networkKey, initiator: false, limits: { idleTimeoutMs: 30, keepaliveMs: 0 } }),
  ]);
  const got: Buffer[] = [];
  let bError: Error | null = null;
  b.on('error', (e) => (bError = e));
  b.on('data', (m: Buffer) => got.push(m));
  b.pause(); // a slow consumer: its read buffer fills, the channel stops reading the stream
  for (let i = 0; i < 40; i++) a.write(Buffer.alloc(1000, i));
  await held(seen); // 12 keepalives from a live peer, 5 ms apart: well past b's 30 ms idle timeout
  assert.is(bError, null, 'the session survived a consumer that was busy for longer than the idle timeout');
  const all = new Promise<void>((r) => b.on('data', () => got.length === 40 && r()));
  b.resume();
  await all;
  assert.ok(got.every((m, i) => m[0] === i));
  a.destroy();
  b.destroy();
});

test('a frame arriving a byte at a time is held in a few buffers, not one Buffer per byte', () => {
  const reader = new FrameReader(65535);
  const body = Buffer.alloc(65535);
  for (let i = 0; i < body.length; i++) body[i] = (i * 7) & 0xff;
  for (const byte of lengthPrefix(65535)) reader.push(Uint8Array.of(byte));
  for (let i = 0; i < body.length - 1; i++) reader.push(body.subarray(i, i + 1)); // all but the last byte: a stall
  assert.is(reader.next(), null);
  assert.ok(reader.held <= 5, `${reader.held} chunks held for ${reader.buffered} bytes`);
  reader.push(body.subarray(body.length - 1));
  assert.ok(Buffer.from(reader.next()!).equals(body));
  assert.is(reader.buffered, 0);
  // and the same reader, small and large chunks mixed, frames consumed in between
  const wire = Buffer.concat([lengthPrefix(3), Buffer.from('abc'), lengthPrefix(600), Buffer.alloc(600, 9), lengthPrefix(1), Buffer.from('z')]);
  const frames: string[] = [];
  for (const piece of [wire.subarray(0, 4), wire.subarray(4, 7), wire.subarray(7, 607), wire.subarray(607)]) {
    reader.push(piece);
    for (let f = reader.next(); f; f = reader.next()) frames.push(Buffer.from(f).toString('latin1'));
  }
  assert.equal(frames, ['abc', '\x09'.repeat(600), 'z']);
});

test('a local write of maxMessageBytes goes through; maxMessageBytes + 1 fails the write with a RangeError', async () => {
  const limit = 100_000;
  const [ea, eb] = duplexPair();
  const [a, b] = await Promise.all([
    secureChannel(ea, { identity: alice, networkKey, initiator: true, limits: { maxMessageBytes: limit } }),
    secureChannel(eb, { identity: bob, networkKey, initiator: false, limits: { maxMessageBytes: limit } }),
  ]);
  const got = once(b, 'data');
  a.write(Buffer.alloc(limit, 1));
  const [message] = (await got) as [Buffer];
  assert.is(message.length, limit);
  a.on('error', () => {});
  b.on('error', () => {});
  const failed = new Promise<Error>((resolve) => a.write(Buffer.alloc(limit + 1), (err) => resolve(err!)));
  const error = await failed;
  assert.instance(error, RangeError);
  assert.match(error.message, /maxMessageBytes/);
  a.destroy();
  b.destroy();
});

test.run();
