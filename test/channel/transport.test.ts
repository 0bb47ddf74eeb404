import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import type { CipherState } from '../../src/channel/cipher-state.ts';
import { MAX_NONCE } from '../../src/channel/cipher-state.ts';
import { FrameType, lengthPrefix, MAX_FRAME_PLAINTEXT } from '../../src/channel/framing.ts';
import { MAX_MESSAGE_BYTES } from '../../src/limits.ts';
import { secureChannel } from '../../src/channel/secure-channel.ts';
import { alice, bob, networkKey, connect, duplexPair, held, frameTap, outcome, readMessages } from './pair.ts';

const EMPTY = new Uint8Array(0);
/** Transport frames in the initiator→responder direction start after message 1 and message 3. */
const FIRST_TRANSPORT = 2;

test('one write is one message: sizes around every frame boundary arrive whole and in order', async () => {
  const { a, b } = await connect();
  const sizes = [0, 1, 300, MAX_FRAME_PLAINTEXT - 5, MAX_FRAME_PLAINTEXT - 4, MAX_FRAME_PLAINTEXT, 65536,
    2 * MAX_FRAME_PLAINTEXT - 6, 2 * MAX_FRAME_PLAINTEXT - 5, 200_000, 1 << 20];
  const sent = sizes.map((n) => randomBytes(n));
  const got = readMessages(b, sent.length);
  for (const m of sent) a.write(m);
  const received = await got;
  assert.is(received.length, sent.length);
  for (const [i, m] of received.entries()) assert.ok(m.equals(sent[i]!), `message ${i} (${sizes[i]} bytes)`);
  // and the other direction, strings included
  const back = readMessages(a, 2);
  b.write('héllo');
  b.write(new Uint8Array([1, 2, 3]));
  const [s, u] = await back;
  assert.is(s!.toString(), 'héllo');
  assert.equal([...u!], [1, 2, 3]);
  a.destroy();
  b.destroy();
});

test('clean close: end() on one side ends both, no error, both streams closed, no listeners left', async () => {
  const { a, b, ea, eb } = await connect();
  const [oa, ob] = [outcome(a), outcome(b)];
  a.write('last words');
  a.end();
  const [ra, rb] = [await oa, await ob];
  assert.is(ra.error, null);
  assert.is(rb.error, null);
  assert.equal(rb.messages.map(String), ['last words']);
  await Promise.all([ea, eb].map((s) => new Promise((r) => (s.closed ? r(0) : s.once('close', r)))));
  for (const s of [ea, eb]) for (const e of ['data', 'end', 'close', 'error', 'drain']) assert.is(s.listenerCount(e), 0, e);
});

test('EOF without the close frame is truncation (ERR_TRUNCATED), distinct from a clean close', async () => {
  const { a, b, ea } = await connect();
  const ob = outcome(b);
  a.write('partial');
  await new Promise((r) => setImmediate(r));
  ea.end(); // the raw stream ends under the channel: no authenticated close frame
  const r = await ob;
  assert.is(r.error?.code, 'ERR_TRUNCATED');
  assert.equal(r.messages.map(String), ['partial']);
  a.destroy();
});

test('destroying one channel without end() is truncation for the other', async () => {
  const { a, b } = await connect();
  const ob = outcome(b);
  a.destroy();
  assert.is((await ob).error?.code, 'ERR_TRUNCATED');
});

/** Runs alice→bob with a frame tap on alice's raw stream; sends `messages`; returns bob's outcome. */
async function tampered(tap: (frame: Buffer, index: number) => Buffer[], messages: Buffer[], limits = { idleTimeoutMs: 300 }) {
  const [ea, eb] = duplexPair();
  ea.tap = frameTap(tap);
  const { a, b } = await connect({}, { limits }, [ea, eb]);
  const ob = outcome(b);
  for (const m of messages) a.write(m);
  a.end();
  const result = await held(ob);
  a.destroy();
  return result;
}

const three = [Buffer.from('one'), Buffer.from('two'), Buffer.from('three')];

test('one flipped bit anywhere in a transport frame ends the session; nothing after the fault is delivered', async () => {
  // frame layout: [2-byte length][type + data ciphertext][16-byte tag]; try every byte of frame 2 ("two")
  const frameLength = 2 + 1 + 4 + 3 + 16;
  for (let byte = 0; byte < frameLength; byte++) {
    for (const bit of [0, 7]) {
      const r = await tampered((f, i) => {
        if (i !== FIRST_TRANSPORT + 1) return [f];
        const g = Buffer.from(f);
        g[byte]! ^= 1 << bit;
        return [g];
      }, three);
      assert.ok(r.error, `byte ${byte} bit ${bit}: session ended`);
      // a flipped length prefix desynchronises framing: a decrypt failure, or (when it claims
      // more bytes than ever come) the idle timeout
      const codes = byte < 2 ? ['ERR_DECRYPT', 'ERR_TIMEOUT'] : ['ERR_DECRYPT'];
      assert.ok(codes.includes(r.error!.code!), `byte ${byte} bit ${bit}: ${r.error!.code}`);
      assert.equal(r.messages.map(String), ['one'], `byte ${byte} bit ${bit}: nothing after the fault`);
    }
  }
});

test('a replayed frame, reordered frames and a dropped frame each end the session with ERR_DECRYPT', async () => {
  const t = FIRST_TRANSPORT;
  const attacks: Record<string, (f: Buffer, i: number) => Buffer[]> = {
    replay: (f, i) => (i === t ? [f, f] : [f]),
    replayLater: (() => { let first: Buffer; return (f: Buffer, i: number) => { if (i === t) first = f; return i === t + 2 ? [first, f] : [f]; }; })(),
    reorder: (() => { let kept: Buffer | null = null; return (f: Buffer, i: number) => { if (i === t + 1) { kept = f; return []; } if (i === t + 2) return [f, kept!]; return [f]; }; })(),
    drop: (f, i) => (i === t + 1 ? [] : [f]),
  };
  for (const [name, tap] of Object.entries(attacks)) {
    const r = await tampered(tap, three);
    assert.is(r.error?.code, 'ERR_DECRYPT', name);
    const expected = name === 'replayLater' ? ['one', 'two'] : ['one'];
    assert.equal(r.messages.map(String), expected, name);
  }
});

test('a dropped close frame is truncation; a frame shorter than a tag is a decrypt failure', async () => {
  // an attacker drops the close frame and sends its own FIN
  const [ea, eb] = duplexPair();
  ea.tap = frameTap((f, i) => {
    if (i !== FIRST_TRANSPORT + 3) return [f];
    setImmediate(() => eb.push(null));
    return [];
  });
  const { a, b } = await connect({}, {}, [ea, eb]);
  const ob = outcome(b);
  for (const m of three) a.write(m);
  a.end();
  const dropped = await ob;
  assert.is(dropped.error?.code, 'ERR_TRUNCATED');
  assert.equal(dropped.messages.map(String), ['one', 'two', 'three']);
  a.destroy();
  const short = await tampered((f, i) => (i === FIRST_TRANSPORT + 1 ? [Buffer.concat([lengthPrefix(16), randomBytes(16)])] : [f]), three);
  assert.is(short.error?.code, 'ERR_DECRYPT');
});

test('a length prefix cannot declare 65536+: 2 bytes cap it at 65535, and a 65535 frame of garbage fails to decrypt', async () => {
  assert.throws(() => lengthPrefix(65536), RangeError);
  const r = await tampered((f, i) => (i === FIRST_TRANSPORT + 1 ? [Buffer.concat([lengthPrefix(65535), randomBytes(65535)])] : [f]), three);
  assert.is(r.error?.code, 'ERR_DECRYPT');
  assert.equal(r.messages.map(String), ['one']);
});

/** Connect with an allocation spy on bob's side; returns the sizes bob's framing allocated. */
async function spied(maxMessageBytes: number, send: number) {
  const allocations: number[] = [];
  const allocate = (n: number): Uint8Array => (allocations.push(n), new Uint8Array(n));
  // the sender's own cap admits the message, so it is the receiver's cap under test
  const { a, b } = await connect({ limits: { maxMessageBytes: Math.max(send, MAX_MESSAGE_BYTES) } }, { limits: { maxMessageBytes }, testing: { allocate } });
  const ob = outcome(b);
  a.on('error', () => {});
  a.write(Buffer.alloc(send, 1));
  a.end();
  const r = await ob;
  a.destroy();
  return { ...r, allocations };
}

test('reassembly cap at its limit delivers; limit+1 ends the session, allocating nothing of the claimed size', async () => {
  const limit = 3 * MAX_FRAME_PLAINTEXT;
  const ok = await spied(limit, limit);
  assert.is(ok.error, null);
  assert.is(ok.messages[0]!.length, limit);
  const over = await spied(limit, limit + 1);
  assert.is(over.error?.code, 'ERR_FRAME_TOO_LARGE');
  assert.is(over.messages.length, 0);
  assert.ok(over.allocations.every((n) => n <= 65535), `allocations ${over.allocations}`);
});

test('a message claiming MAX_MESSAGE_BYTES+1 (16 MiB + 1) is refused at its first frame, before the rest is read', async () => {
  const over = await spied(MAX_MESSAGE_BYTES, MAX_MESSAGE_BYTES + 1);
  assert.is(over.error?.code, 'ERR_FRAME_TOO_LARGE');
  assert.ok(over.allocations.every((n) => n <= 65535), `largest allocation ${Math.max(0, ...over.allocations)}`);
});

/** Writes a frame the peer will authenticate, with any plaintext: a member breaking the framing rules. */
async function rogueFrames(plaintexts: Uint8Array[]) {
  let send!: CipherState;
  const [ea, eb] = duplexPair();
  const { a, b } = await connect({ testing: { onTransport: (s) => (send = s) } }, {}, [ea, eb]);
  const ob = outcome(b);
  for (const p of plaintexts) {
    const ct = send.encryptWithAd(EMPTY, p);
    ea.write(Buffer.concat([lengthPrefix(ct.length), ct]));
  }
  const r = await ob;
  a.destroy();
  return r;
}

test('authenticated frames that break the framing rules end the session with ERR_CHANNEL_PROTOCOL', async () => {
  const bad: Record<string, Uint8Array[]> = {
    'unknown type': [Uint8Array.of(9)],
    'empty plaintext': [new Uint8Array(0)],
    'continuation without a message': [Uint8Array.of(FrameType.continuation, 1, 2)],
    'close with a body': [Uint8Array.of(FrameType.close, 0)],
    'keepalive with a body': [Uint8Array.of(FrameType.keepalive, 0)],
    'short message header': [Uint8Array.of(FrameType.message, 0, 0)],
    'data longer than the declared total': [Uint8Array.of(FrameType.message, 0, 0, 0, 1, 7, 7)],
    'short non-final frame': [Uint8Array.of(FrameType.message, 0, 1, 0, 0, 7)],
  };
  for (const [name, frames] of Object.entries(bad)) {
    const r = await rogueFrames(frames);
    assert.is(r.error?.code, 'ERR_CHANNEL_PROTOCOL', name);
  }
});

test('the raw bytes on the wire never contain the plaintext, the identity keys or node ids', async () => {
  const [ea, eb] = duplexPair();
  const { a, b } = await connect({}, {}, [ea, eb]);
  const secret = Buffer.from('attack at dawn: the password is hunter2');
  const big = Buffer.alloc(100_000, secret);
  const got = readMessages(b, 2);
  a.write(secret);
  a.write(big);
  await got;
  const back = readMessages(a, 1);
  b.write(secret);
  await back;
  const wire = Buffer.concat([...ea.wire, ...eb.wire]);
  for (const needle of [secret.subarray(0, 12), Buffer.from(alice.publicKey), Buffer.from(bob.publicKey), Buffer.from(alice.id), Buffer.from(bob.id)]) {
    assert.is(wire.indexOf(needle), -1, needle.toString('hex'));
  }
  a.destroy();
  b.destroy();
});

/** Connect and set both ends of the alice→bob direction to nonce `n`. */
async function nearExhaustion(n: bigint) {
  let send!: CipherState;
  let receive!: CipherState;
  const pair = await connect({ testing: { onTransport: (s) => (send = s) } }, { testing: { onTransport: (_s, r) => (receive = r) } });
  send.setNonce(n);
  receive.setNonce(n);
  return pair;
}

test('nonce 2^64-2 is the last usable; the next message aborts with ERR_NONCE_EXHAUSTED', async () => {
  const { a, b } = await nearExhaustion(MAX_NONCE - 1n);
  const got = readMessages(b, 1);
  a.write('last');
  assert.is((await got)[0]!.toString(), 'last');
  const oa = outcome(a);
  const ob = outcome(b);
  a.write('one too many');
  assert.is((await oa).error?.code, 'ERR_NONCE_EXHAUSTED');
  assert.is((await ob).error?.code, 'ERR_TRUNCATED');
});

test('keepalives flow while idle and hold off the peer idle timeout', async () => {
  const [ea, eb] = duplexPair();
  let keepalives = 0;
  let enough!: () => void;
  const seen = new Promise<void>((r) => (enough = r));
  ea.tap = frameTap((f, i) => {
    if (i >= FIRST_TRANSPORT && f.length === 2 + 1 + 16 && ++keepalives === 5) enough();
    return [f];
  });
  const { a, b } = await connect({ limits: { keepaliveMs: 5 } }, { limits: { idleTimeoutMs: 200, keepaliveMs: 0 } }, [ea, eb]);
  const ob = outcome(b);
  let bError: Error | null = null;
  b.on('error', (e) => (bError = e));
  await held(seen); // 5 keepalives ≈ 25 ms of idleness, well inside bob's 200 ms timeout
  assert.is(bError, null);
  assert.is(b.destroyed, false);
  a.end();
  assert.is((await ob).error, null);
});

test('idle timeout: no frame from the peer for idleTimeoutMs ends the session with ERR_TIMEOUT', async () => {
  const { a, b } = await connect({ limits: { keepaliveMs: 0 } }, { limits: { idleTimeoutMs: 30 } });
  const [oa, ob] = [outcome(a), outcome(b)];
  assert.is((await held(ob)).error?.code, 'ERR_TIMEOUT');
  assert.is((await oa).error?.code, 'ERR_TRUNCATED');
});

test('backpressure: a reader that stops reading pauses the underlying stream; everything arrives once it reads', async () => {
  const { a, b, eb } = await connect();
  const count = 200;
  const got: Buffer[] = [];
  b.on('data', (m: Buffer) => got.push(m));
  b.pause(); // a consumer that has stopped reading
  await new Promise((r) => setImmediate(r)); // let the stream's own resume() from on('data') settle first
  const paused = once(eb, 'pause');
  for (let i = 0; i < count; i++) a.write(Buffer.alloc(10_000, i));
  await paused;
  assert.ok(eb.isPaused(), 'underlying stream paused while the channel read buffer is full');
  // bounded: the high-water mark (16) plus the messages of the one underlying chunk being decoded
  assert.ok(b.readableLength <= 16 + Math.ceil((256 * 1024) / 10_000) + 1, `read buffer holds ${b.readableLength} messages`);
  assert.is(got.length, 0);
  const done = new Promise<void>((r) => b.on('data', () => got.length === count && r()));
  b.resume();
  await done;
  assert.ok(got.every((m, i) => m.length === 10_000 && m[0] === (i & 0xff)));
  a.destroy();
  b.destroy();
});

test('a message sent in the same chunk as message 3 is delivered (handshake leftovers reach the transport)', async () => {
  const [ea, eb] = duplexPair();
  let chunks = 0;
  let kept: Buffer | null = null;
  ea.tap = (chunk) => {
    chunks++;
    if (chunks === 2) { kept = chunk; return []; } // message 3: hold it back
    if (kept) { const out = [Buffer.concat([kept, chunk])]; kept = null; return out; }
    return [chunk];
  };
  const responder = secureChannel(eb, { identity: bob, networkKey, initiator: false });
  const a = await secureChannel(ea, { identity: alice, networkKey, initiator: true });
  a.write('early');
  const b = await responder;
  assert.is((await readMessages(b, 1))[0]!.toString(), 'early');
  a.destroy();
  b.destroy();
});

test.run();
