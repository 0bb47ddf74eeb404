import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Duplex } from 'node:stream';
import { randomBytes } from 'node:crypto';
import { secureChannel } from '../../src/channel/secure-channel.ts';
import { HandshakeError } from '../../src/errors.ts';
import { derivePsk, MESSAGE_1_BYTES, PROLOGUE } from '../../src/channel/handshake.ts';
import { HandshakeState, parseProtocolName, SIGNET_PROTOCOL } from '../../src/channel/handshake-state.ts';
import { FrameReader, lengthPrefix } from '../../src/channel/framing.ts';
import { generateKeyPair, type KeyPair } from '../../src/channel/primitives.ts';
import { DOMAIN, domainBytes } from '../../src/identity/signature.ts';
import { MAX_HANDSHAKE_FRAME } from '../../src/limits.ts';
import type { Identity } from '../../src/identity/identity.ts';
import { alice, bob, mallory, networkKey, connect, duplexPair, rejection, settle, byteByByte, readMessages, type End } from './pair.ts';

const LISTENED = ['data', 'end', 'close', 'error', 'drain', 'readable'] as const;
const listeners = (s: Duplex): number => LISTENED.reduce((n, e) => n + s.listenerCount(e), 0);
const closed = (s: Duplex): Promise<void> => new Promise((r) => (s.closed ? r() : s.once('close', () => r())));

test('a handshake authenticates both identities and agrees on the handshake hash', async () => {
  const { a, b } = await connect();
  assert.is(a.remote.id, bob.id);
  assert.is(b.remote.id, alice.id);
  assert.equal([...a.remote.publicKey], [...bob.publicKey]);
  assert.equal([...b.remote.publicKey], [...alice.publicKey]);
  assert.is(a.handshakeHash.length, 32);
  assert.equal([...a.handshakeHash], [...b.handshakeHash]);
  const got = readMessages(b, 1);
  a.write('hi');
  assert.is((await got)[0]!.toString(), 'hi');
  a.destroy();
  b.destroy();
});

test('expectedPeer that matches is accepted on either side', async () => {
  const { a, b } = await connect({ expectedPeer: bob.id }, { expectedPeer: alice.id });
  assert.is(a.remote.id, bob.id);
  a.destroy();
  b.destroy();
});

test('handshake messages on the wire are exactly 2+56, 2+192, 2+160 bytes', async () => {
  const [ea, eb] = duplexPair();
  try {
    const { a, b } = await connect({}, {}, [ea, eb]);
    a.destroy();
    b.destroy();
    const sizes = [...ea.wire.map((c) => c.length), ...eb.wire.map((c) => c.length)];
    assert.is(MESSAGE_1_BYTES, 56);
    assert.equal(sizes, [2 + MESSAGE_1_BYTES, 162, 194]);
  } finally {
    ea.destroy();
    eb.destroy();
  }
});

/**
 * A responder that has a wrong network key, or any key: checks it writes nothing and does no DH.
 * It now waits out its deadline before closing (issue 7 item 13), so the deadline is short here.
 */
async function silentResponder(raw: Buffer[] | null, initiatorKey = networkKey, responderKey = new Uint8Array(32).fill(8)) {
  const [ea, eb] = duplexPair();
  const states: HandshakeState[] = [];
  const responder = secureChannel(eb, {
    identity: bob, networkKey: responderKey, initiator: false, limits: { handshakeTimeoutMs: 30 },
    testing: { onHandshakeState: (s) => states.push(s) },
  });
  let initiator: Promise<unknown> | null = null;
  if (raw) for (const chunk of raw) ea.write(chunk);
  else initiator = secureChannel(ea, { identity: alice, networkKey: initiatorKey, initiator: true });
  const responderError = await rejection(responder);
  const initiatorError = initiator ? await rejection(initiator) : null;
  await closed(eb);
  assert.is(eb.bytesWritten, 0, 'responder wrote nothing');
  assert.is(states[0]!.dhCount, 0, 'responder performed no DH');
  assert.is(states[0]!.localEphemeral, undefined, 'responder generated no ephemeral');
  assert.ok(eb.destroyed, 'responder closed the stream');
  assert.is(listeners(eb), 0);
  return { responderError, initiatorError, ea };
}

test('wrong network key: responder writes zero bytes, does no DH, closes; initiator gets ERR_HANDSHAKE', async () => {
  const { responderError, initiatorError, ea } = await silentResponder(null);
  assert.is(responderError.code, 'ERR_HANDSHAKE');
  assert.is(initiatorError!.code, 'ERR_HANDSHAKE');
  assert.ok(ea.destroyed);
  assert.is(listeners(ea), 0);
});

test('message 1 one byte short or long (or a correct-length random one): silent close, no DH', async () => {
  for (const length of [MESSAGE_1_BYTES - 1, MESSAGE_1_BYTES + 1, MESSAGE_1_BYTES]) {
    const body = randomBytes(length);
    const { responderError } = await silentResponder([Buffer.concat([lengthPrefix(length), body])]);
    assert.is(responderError.code, 'ERR_HANDSHAKE', `length ${length}`);
  }
});

test('a wrong-length message 1 is refused from its length prefix alone, before its body arrives', async () => {
  const { responderError } = await silentResponder([Buffer.from(lengthPrefix(MESSAGE_1_BYTES - 1))]);
  assert.is(responderError.code, 'ERR_HANDSHAKE');
});

test('random garbage and an HTTP request to a responder: silent close, no DH', async () => {
  for (const input of [randomBytes(300), Buffer.from('GET / HTTP/1.1\r\nHost: example.com\r\n\r\n'), Buffer.from('SSH-2.0-OpenSSH_9.6\r\n')]) {
    const { responderError } = await silentResponder([input]);
    assert.is(responderError.code, 'ERR_HANDSHAKE'); // one code for every refused message 1, whatever the prefix
  }
});

test('garbage answering an initiator ends its handshake with a typed error and destroys the stream', async () => {
  for (const reply of [randomBytes(400), Buffer.from('HTTP/1.1 400 Bad Request\r\n\r\n'), Buffer.concat([lengthPrefix(192), randomBytes(192)])]) {
    const [ea, eb] = duplexPair();
    eb.once('data', () => eb.write(reply));
    const error = await rejection(secureChannel(ea, { identity: alice, networkKey, initiator: true }));
    assert.ok(['ERR_HANDSHAKE', 'ERR_FRAME_TOO_LARGE'].includes(error.code!), error.code);
    await closed(ea);
    assert.is(listeners(ea), 0);
  }
});

test('a handshake frame of 1024 bytes is read; 1025 is refused from its 2 prefix bytes (no body allocated)', () => {
  const allocations: number[] = [];
  const reader = new FrameReader(MAX_HANDSHAKE_FRAME, (n) => (allocations.push(n), new Uint8Array(n)));
  reader.push(lengthPrefix(1024));
  for (let i = 0; i < 1024; i++) reader.push(Uint8Array.of(i & 0xff));
  assert.is(reader.next()!.length, 1024);
  reader.push(lengthPrefix(1025));
  assert.throws(() => reader.next(), (e: { code?: string }) => e.code === 'ERR_FRAME_TOO_LARGE');
  assert.equal(allocations, []); // one-byte chunks are coalesced as they arrive; the frame is a view of them
});

test('an initiator refuses a message 2 whose prefix is over 1 KiB as soon as the prefix arrives', async () => {
  const [ea, eb] = duplexPair();
  eb.once('data', () => eb.write(lengthPrefix(MAX_HANDSHAKE_FRAME + 1))); // and nothing else, ever
  const error = await rejection(secureChannel(ea, { identity: alice, networkKey, initiator: true }));
  assert.is(error.code, 'ERR_FRAME_TOO_LARGE');
});

test('half a handshake then a stall: the deadline fires (ERR_TIMEOUT), the stream is destroyed, listeners gone', async () => {
  const [ea, eb] = duplexPair();
  ea.write(Buffer.concat([lengthPrefix(MESSAGE_1_BYTES), randomBytes(20)])); // part of message 1, then silence
  const started = Date.now();
  const error = await rejection(secureChannel(eb, { identity: bob, networkKey, initiator: false, limits: { handshakeTimeoutMs: 40 } }));
  assert.is(error.code, 'ERR_TIMEOUT');
  assert.ok(Date.now() - started < 5000);
  await closed(eb);
  assert.is(eb.bytesWritten, 0);
  assert.is(listeners(eb), 0);
});

test('an initiator whose responder never answers times out too, even with a signal passed', async () => {
  const [ea] = duplexPair();
  const controller = new AbortController();
  const error = await rejection(secureChannel(ea, { identity: alice, networkKey, initiator: true, signal: controller.signal, limits: { handshakeTimeoutMs: 30 } }));
  assert.is(error.code, 'ERR_TIMEOUT');
  assert.ok(ea.destroyed);
});

test('the caller AbortSignal cancels a pending handshake (ERR_ABORTED) despite a long deadline; pre-aborted too', async () => {
  const [ea] = duplexPair();
  const controller = new AbortController();
  const pending = secureChannel(ea, { identity: alice, networkKey, initiator: true, signal: controller.signal, limits: { handshakeTimeoutMs: 60_000 } });
  setImmediate(() => controller.abort(new Error('user cancelled')));
  const error = await rejection(pending);
  assert.is(error.code, 'ERR_ABORTED');
  assert.is((error.cause as Error).message, 'user cancelled');
  await closed(ea);
  assert.is(listeners(ea), 0);
  const [eb] = duplexPair();
  const again = await rejection(secureChannel(eb, { identity: alice, networkKey, initiator: true, signal: AbortSignal.abort() }));
  assert.is(again.code, 'ERR_ABORTED');
  assert.is(eb.bytesWritten, 0);
});

test('expectedPeer mismatch: the dialer aborts with ERR_PEER_MISMATCH before revealing its identity', async () => {
  const [ea, eb] = duplexPair();
  const [x, y] = await settle(
    secureChannel(ea, { identity: alice, networkKey, initiator: true, expectedPeer: mallory.id }),
    secureChannel(eb, { identity: bob, networkKey, initiator: false }),
  );
  assert.is(x.status, 'rejected');
  assert.is((x as PromiseRejectedResult).reason.code, 'ERR_PEER_MISMATCH');
  // the responder sees a dialer that held the network key hang up: abandoned, not a probe
  assert.is((y as PromiseRejectedResult).reason.code, 'ERR_HANDSHAKE_ABANDONED');
  assert.ok((y as PromiseRejectedResult).reason instanceof HandshakeError, 'still a HandshakeError');
  assert.is(ea.bytesWritten, 2 + MESSAGE_1_BYTES, 'only message 1 was sent: message 3 (our identity) never was');
});

test('expectedPeer mismatch on the responder side aborts too', async () => {
  const [ea, eb] = duplexPair();
  const [p, q] = await settle(
    secureChannel(ea, { identity: alice, networkKey, initiator: true }),
    secureChannel(eb, { identity: bob, networkKey, initiator: false, expectedPeer: mallory.id }),
  );
  assert.is((q as PromiseRejectedResult).reason.code, 'ERR_PEER_MISMATCH');
  // the initiator finished its side; it then sees the stream end without a close frame
  if (p.status === 'fulfilled') {
    const err = await new Promise<Error & { code?: string }>((r) => p.value.once('error', r).resume());
    assert.is(err.code, 'ERR_TRUNCATED');
  }
});

/**
 * A rogue responder holding the network key: it speaks correct Noise but sends the identity
 * payload that `payload(staticKey)` builds.
 */
function rogueResponder(end: End, payload: (staticKey: KeyPair) => Uint8Array): void {
  const s = generateKeyPair();
  const hs = new HandshakeState({ protocol: parseProtocolName(SIGNET_PROTOCOL), initiator: false, prologue: PROLOGUE, s, psks: [derivePsk(networkKey)] });
  const reader = new FrameReader(MAX_HANDSHAKE_FRAME);
  let answered = false;
  end.on('data', (chunk: Buffer) => {
    reader.push(chunk);
    const frame = reader.next();
    if (!frame || answered) return;
    answered = true;
    hs.readMessage(frame);
    const m2 = hs.writeMessage(payload(s));
    end.write(Buffer.concat([lengthPrefix(m2.length), m2]));
  });
}

const signedBy = (who: Identity, key: Identity, s: KeyPair): Uint8Array =>
  Buffer.concat([key.publicKey, who.sign(domainBytes(DOMAIN.noiseStatic, s.publicKey))]);

test('identity payloads that must abort: bad signature, key of another node, signature over another static', async () => {
  const cases: Array<[string, (s: KeyPair) => Uint8Array, string]> = [
    ['flipped signature bit', (s) => { const p = signedBy(mallory, mallory, s); p[40]! ^= 1; return p; }, 'ERR_HANDSHAKE'],
    // claims bob's identity key but can only sign with mallory's: the signature does not verify
    ['bob key, mallory signature', (s) => signedBy(mallory, bob, s), 'ERR_HANDSHAKE'],
    // a real signature by mallory, but over a different Noise static key (replayed payload)
    ['signature over another static', () => signedBy(mallory, mallory, generateKeyPair()), 'ERR_HANDSHAKE'],
    ['wrong domain tag', (s) => Buffer.concat([mallory.publicKey, mallory.sign(domainBytes(DOMAIN.update, s.publicKey))]), 'ERR_HANDSHAKE'],
    ['all-zero payload', () => new Uint8Array(96), 'ERR_HANDSHAKE'],
    ['95-byte payload', (s) => signedBy(mallory, mallory, s).subarray(0, 95), 'ERR_HANDSHAKE'],
  ];
  for (const [name, payload, code] of cases) {
    const [ea, eb] = duplexPair();
    rogueResponder(eb, payload);
    const error = await rejection(secureChannel(ea, { identity: alice, networkKey, initiator: true }));
    assert.is(error.code, code, name);
    assert.is(ea.bytesWritten, 2 + MESSAGE_1_BYTES, `${name}: message 3 never sent`);
  }
});

test('a valid payload whose key does not hash to the expected id aborts with ERR_PEER_MISMATCH', async () => {
  const [ea, eb] = duplexPair();
  rogueResponder(eb, (s) => signedBy(mallory, mallory, s));
  const error = await rejection(secureChannel(ea, { identity: alice, networkKey, initiator: true, expectedPeer: bob.id }));
  assert.is(error.code, 'ERR_PEER_MISMATCH');
  // and without expectedPeer the same rogue is accepted as mallory: ids are derived, never claimed
  const [ec, ed] = duplexPair();
  rogueResponder(ed, (s) => signedBy(mallory, mallory, s));
  const channel = await secureChannel(ec, { identity: alice, networkKey, initiator: true });
  assert.is(channel.remote.id, mallory.id);
  channel.destroy();
});

test('every byte in its own chunk, both directions: handshake and messages work', async () => {
  const [ea, eb] = duplexPair();
  ea.tap = byteByByte;
  eb.tap = byteByByte;
  const { a, b } = await connect({}, {}, [ea, eb]);
  const got = readMessages(b, 2);
  a.write(Buffer.alloc(70_000, 3));
  a.write('x');
  const [m1, m2] = await got;
  assert.is(m1!.length, 70_000);
  assert.is(m2!.toString(), 'x');
  a.destroy();
  b.destroy();
});

test('bad options are refused with named TypeError / RangeError, and the stream is destroyed', async () => {
  const bad: Array<[Record<string, unknown>, RegExp, ErrorConstructor]> = [
    [{ identity: {} }, /"identity"/, TypeError],
    [{ networkKey: new Uint8Array(31) }, /"networkKey".*length=31/, RangeError],
    [{ networkKey: 'secret' }, /"networkKey"/, TypeError],
    [{ initiator: 1 }, /"initiator"/, TypeError],
    [{ expectedPeer: 'not-an-id' }, /"expectedPeer"/, TypeError],
    [{ signal: {} }, /"signal"/, TypeError],
    [{ limits: { handshakeTimeoutMs: 0 } }, /"handshakeTimeoutMs"/, RangeError],
    [{ limits: { maxMessageBytes: -1 } }, /"maxMessageBytes"/, RangeError],
    [{ limits: { idleTimeoutMs: 1.5 } }, /"idleTimeoutMs"/, RangeError],
  ];
  for (const [override, pattern, type] of bad) {
    const [ea] = duplexPair();
    const options = { identity: alice, networkKey, initiator: true, ...override };
    const error = await rejection(secureChannel(ea, options as never));
    assert.instance(error, type);
    assert.match(error.message, pattern);
    assert.ok(ea.destroyed);
  }
  await rejection(secureChannel({} as never, { identity: alice, networkKey, initiator: true })).then((e) => assert.instance(e, TypeError));
});

test.run();
