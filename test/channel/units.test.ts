import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { CipherState, MAX_NONCE } from '../../src/channel/cipher-state.ts';
import { FrameReader, lengthPrefix, messageFrames, Reassembler, MAX_FRAME_PLAINTEXT } from '../../src/channel/framing.ts';
import { HandshakeLimiter } from '../../src/channel/handshake-limiter.ts';
import { derivePsk, MESSAGE_1_BYTES, processStaticKey } from '../../src/channel/handshake.ts';
import { decodeIdentityPayload, encodeIdentityPayload } from '../../src/channel/identity-payload.ts';
import { nonceBytes } from '../../src/channel/primitives.ts';
import { MAX_PENDING_HANDSHAKES, MAX_PENDING_HANDSHAKES_PER_ADDRESS } from '../../src/limits.ts';
import { alice } from './pair.ts';

const EMPTY = new Uint8Array(0);
const code = (c: string) => (e: { code?: string }) => e.code === c;

test('nonce layout is 4 zero bytes then the 64-bit counter little-endian', () => {
  assert.is(nonceBytes(0x0102030405060708n).toString('hex'), '000000000807060504030201');
});

test('CipherState: 2^64-2 encrypts and decrypts; at 2^64-1 both refuse; a failed decrypt does not advance n', () => {
  const key = new Uint8Array(32).fill(5);
  const enc = new CipherState();
  const dec = new CipherState();
  enc.initializeKey(key);
  dec.initializeKey(key);
  enc.setNonce(MAX_NONCE - 1n);
  dec.setNonce(MAX_NONCE - 1n);
  const ct = enc.encryptWithAd(EMPTY, Uint8Array.of(1, 2, 3));
  assert.throws(() => dec.decryptWithAd(EMPTY, Uint8Array.from(ct, (b, i) => (i === 0 ? b ^ 1 : b))), code('ERR_DECRYPT'));
  assert.is(dec.nonce, MAX_NONCE - 1n);
  assert.equal([...dec.decryptWithAd(EMPTY, ct)], [1, 2, 3]);
  assert.throws(() => enc.encryptWithAd(EMPTY, EMPTY), code('ERR_NONCE_EXHAUSTED'));
  assert.throws(() => dec.decryptWithAd(EMPTY, ct), code('ERR_NONCE_EXHAUSTED'));
  assert.throws(() => enc.setNonce(MAX_NONCE + 1n), RangeError);
  assert.throws(() => enc.setNonce(-1n), RangeError);
});

test('CipherState without a key passes data through; rekey changes the key deterministically', () => {
  const cs = new CipherState();
  assert.equal([...cs.encryptWithAd(EMPTY, Uint8Array.of(9))], [9]);
  const a = new CipherState();
  const b = new CipherState();
  a.initializeKey(new Uint8Array(32));
  b.initializeKey(new Uint8Array(32));
  a.rekey();
  b.rekey();
  const ct = a.encryptWithAd(EMPTY, Uint8Array.of(1));
  assert.equal([...b.decryptWithAd(EMPTY, ct)], [1]);
  const c = new CipherState();
  c.initializeKey(new Uint8Array(32));
  assert.throws(() => c.decryptWithAd(EMPTY, ct), code('ERR_DECRYPT'));
});

test('FrameReader: frames split across one-byte chunks, zero-length frames, copies only complete frames', () => {
  const sizes: number[] = [];
  const reader = new FrameReader(65535, (n) => (sizes.push(n), new Uint8Array(n)));
  const wire = Buffer.concat([lengthPrefix(3), Buffer.from('abc'), lengthPrefix(0), lengthPrefix(65535), Buffer.alloc(65535, 1)]);
  const frames: Uint8Array[] = [];
  for (const byte of wire) {
    reader.push(Uint8Array.of(byte));
    for (let f = reader.next(); f; f = reader.next()) frames.push(f);
  }
  assert.equal(frames.map((f) => f.length), [3, 0, 65535]);
  assert.is(Buffer.from(frames[0]!).toString(), 'abc');
  assert.equal(sizes, [65535]); // 'abc' lies in one coalescing buffer (a view); the 65535 frame spans several (one copy)
  assert.is(reader.buffered, 0);
});

test('FrameReader: the cap at its value passes and value+1 throws from the prefix alone', () => {
  for (const cap of [0, MESSAGE_1_BYTES, 1024, 65534]) {
    const ok = new FrameReader(cap);
    ok.push(lengthPrefix(cap));
    assert.is(ok.peekLength(), cap);
    const over = new FrameReader(cap);
    over.push(lengthPrefix(cap + 1));
    assert.throws(() => over.next(), code('ERR_FRAME_TOO_LARGE'));
  }
});

test('messageFrames: every plaintext fits 65519 bytes and the Reassembler restores the message', () => {
  for (const size of [0, 1, MAX_FRAME_PLAINTEXT - 5, MAX_FRAME_PLAINTEXT - 4, 3 * MAX_FRAME_PLAINTEXT]) {
    const data = Buffer.alloc(size, 7);
    const frames = messageFrames(data).map((parts) => Buffer.concat(parts));
    assert.ok(frames.every((f) => f.length <= MAX_FRAME_PLAINTEXT));
    const r = new Reassembler(size);
    const results = frames.map((f) => r.accept(f));
    const last = results.pop()!;
    assert.ok(results.every((x) => x.kind === 'partial'));
    assert.is(last.kind, 'message');
    assert.ok(Buffer.from((last as { data: Uint8Array }).data).equals(data));
    assert.is(r.pending, 0);
  }
});

test('Reassembler: cap at its value accepted, value+1 refused at the first frame without allocating', () => {
  const sizes: number[] = [];
  const cap = 100_000;
  const r = new Reassembler(cap, (n) => (sizes.push(n), new Uint8Array(n)));
  const first = Buffer.concat(messageFrames(Buffer.alloc(cap + 1))[0]!);
  assert.throws(() => r.accept(first), code('ERR_FRAME_TOO_LARGE'));
  const huge = Buffer.from([1, 0xff, 0xff, 0xff, 0xff]); // claims 4 GiB - 1
  assert.throws(() => new Reassembler(cap).accept(huge), code('ERR_FRAME_TOO_LARGE'));
  assert.equal(sizes, []);
  const ok = new Reassembler(cap, (n) => (sizes.push(n), new Uint8Array(n)));
  for (const f of messageFrames(Buffer.alloc(cap))) ok.accept(Buffer.concat(f));
  assert.equal(sizes, [cap]);
});

test('psk derivation: HKDF-SHA256 of the network key with info signet/noise-psk/v1, never the key itself', () => {
  const key = new Uint8Array(32);
  const psk = derivePsk(key);
  assert.is(psk.length, 32);
  assert.not.equal([...psk], [...key]);
  assert.not.equal([...derivePsk(new Uint8Array(32).fill(1))], [...psk]);
  assert.equal([...derivePsk(key)], [...psk]);
});

test('the process static key is generated once and reused', () => {
  assert.is(processStaticKey(), processStaticKey());
  assert.is(processStaticKey().publicKey.length, 32);
});

test('identity payload: 96 bytes, verifies for its static key only, any other length refused', async () => {
  const s = processStaticKey().publicKey;
  const payload = encodeIdentityPayload(alice, s);
  assert.is(payload.length, 96);
  const ok = await decodeIdentityPayload(payload, s);
  assert.ok(ok.ok && ok.remote.id === alice.id);
  const other = Uint8Array.from(s, (b, i) => (i === 0 ? b ^ 1 : b));
  assert.equal(await decodeIdentityPayload(payload, other), { ok: false, reason: 'bad-signature' });
  assert.equal(await decodeIdentityPayload(payload.subarray(0, 95), s), { ok: false, reason: 'bad-length' });
  assert.equal(await decodeIdentityPayload(Buffer.concat([payload, Buffer.of(0)]), s), { ok: false, reason: 'bad-length' });
});

test('HandshakeLimiter: per-address and total caps at limit and limit+1; release is idempotent', () => {
  const limiter = new HandshakeLimiter();
  const held = [];
  for (let i = 0; i < MAX_PENDING_HANDSHAKES_PER_ADDRESS; i++) held.push(limiter.tryAcquire('10.0.0.1'));
  assert.ok(held.every(Boolean));
  assert.is(limiter.tryAcquire('10.0.0.1'), null);
  held[0]!();
  held[0]!();
  assert.is(limiter.pendingFor('10.0.0.1'), MAX_PENDING_HANDSHAKES_PER_ADDRESS - 1);
  assert.ok(limiter.tryAcquire('10.0.0.1'));
  const total = new HandshakeLimiter({ perAddress: 1 });
  for (let i = 0; i < MAX_PENDING_HANDSHAKES; i++) assert.ok(total.tryAcquire(`h${i}`));
  assert.is(total.tryAcquire('another'), null);
  assert.is(total.pending, MAX_PENDING_HANDSHAKES);
  assert.throws(() => new HandshakeLimiter({ perAddress: 0 }), RangeError);
  assert.throws(() => limiter.tryAcquire(''), RangeError);
  assert.throws(() => limiter.tryAcquire(1 as never), TypeError);
});

test.run();
