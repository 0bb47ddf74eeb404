// The two primitive sets (libsodium, node:crypto) give the same bytes and the same verdicts: every
// Noise vector with each, the same handshake and transport bytes for injected keys (in this
// process, and end to end in child processes, one with SIGNET_NO_SODIUM=1), the same refusals of
// small-order X25519 keys and of tampered frames; the operation count of a handshake side; the
// identity signature cached per Noise static key.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { CipherState } from '../../src/channel/cipher-state.ts';
import { HandshakeState, parseProtocolName, SIGNET_PROTOCOL, type Protocol } from '../../src/channel/handshake-state.ts';
import { derivePsk, PROLOGUE } from '../../src/channel/handshake.ts';
import { decodeIdentityPayload, encodeIdentityPayload } from '../../src/channel/identity-payload.ts';
import {
  DEFAULT_PRIMITIVES, NODE_PRIMITIVES, SHA256, SODIUM_PRIMITIVES, TAGLEN,
  type KeyPair, type NoiseHash, type NoisePrimitives,
} from '../../src/channel/primitives.ts';
import { hkdf, NODE_SHA256, SODIUM_HASH_MAX_BYTES, SODIUM_SHA256 } from '../../src/channel/hashes.ts';
import { findLeadingPskState, LEADING_PSK_CACHE_SIZE } from '../../src/channel/leading-psk.ts';
import { defaultSignatureBackend } from '../../src/identity/signature.ts';
import { sodium } from '../../src/util/sodium.ts';
import { toHex } from '../../src/util/bytes.ts';
import { Prng } from '../helpers/prng.ts';
import { extraVectors, mainVectors, normalise, run } from './noise-vectors.ts';
import { alice, networkKey } from './pair.ts';

const sets: NoisePrimitives[] = [NODE_PRIMITIVES, ...(SODIUM_PRIMITIVES ? [SODIUM_PRIMITIVES] : [])];
const EMPTY = new Uint8Array(0);
const key = (fill: number): Uint8Array => new Uint8Array(32).fill(fill);

test('the default set is libsodium exactly when sodium-native loads', () => {
  assert.is(DEFAULT_PRIMITIVES.name, sodium() ? 'sodium' : 'node');
  assert.is(SODIUM_PRIMITIVES === null, sodium() === null);
});

for (const set of sets) {
  test(`every Noise vector passes with the ${set.name} set`, () => {
    const cases = [...mainVectors, ...extraVectors].map(normalise);
    assert.is(cases.length, 44);
    for (const c of cases) run(c, set);
  });
}

/** Both sides of signet's handshake with injected keys, message by message, then the transport keys at work. */
function transcript(set: NoisePrimitives): string[] {
  const protocol = parseProtocolName(SIGNET_PROTOCOL);
  const psks = [derivePsk(networkKey)];
  const init = new HandshakeState({ protocol, initiator: true, prologue: PROLOGUE, s: set.keyPairFromPrivate(key(11)), psks, ephemeralPrivateKey: key(12), primitives: set });
  const resp = new HandshakeState({ protocol, initiator: false, prologue: PROLOGUE, s: set.keyPairFromPrivate(key(21)), psks, ephemeralPrivateKey: key(22), primitives: set });
  const out: string[] = [];
  const m1 = init.writeMessage(Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8));
  out.push(toHex(m1), toHex(resp.readMessage(m1)));
  const m2 = resp.writeMessage(new Uint8Array(96).fill(5));
  out.push(toHex(m2), toHex(init.readMessage(m2)));
  const m3 = init.writeMessage(new Uint8Array(96).fill(6));
  out.push(toHex(m3), toHex(resp.readMessage(m3)));
  out.push(toHex(init.getHandshakeHash()), toHex(resp.getHandshakeHash()));
  const [i1, i2] = init.split();
  const [r1, r2] = resp.split();
  for (const size of [0, 1, 300, 65_519]) {
    const plaintext = Uint8Array.from({ length: size }, (_, j) => j & 0xff);
    const ct = i1.encryptWithAd(EMPTY, plaintext);
    out.push(toHex(ct));
    assert.equal(toHex(r1.decryptWithAd(EMPTY, ct)), toHex(plaintext));
    const back = r2.encryptWithAd(EMPTY, plaintext);
    out.push(toHex(back));
    assert.equal(toHex(i2.decryptWithAd(EMPTY, back)), toHex(plaintext));
  }
  return out;
}

test('libsodium and node:crypto give the same handshake transcript, hash and transport frames for injected keys', () => {
  if (!SODIUM_PRIMITIVES) return; // nothing to compare where sodium-native is absent
  assert.equal(transcript(SODIUM_PRIMITIVES), transcript(NODE_PRIMITIVES));
});

test('a frame sealed by one set opens with the other, in parts or whole; a flipped bit or a short frame fails both', () => {
  const prng = new Prng(14);
  for (const [sealer, opener] of sets.flatMap((x) => sets.map((y) => [x, y] as const))) {
    for (const size of [0, 1, 31, 300, 4096, 32_767, 32_768, 65_519]) {
      const k = prng.bytes(32);
      const ad = prng.bytes(size % 3 === 0 ? 0 : 32);
      const plaintext = prng.bytes(size);
      const enc = new CipherState(sealer);
      const dec = new CipherState(opener);
      enc.initializeKey(k);
      dec.initializeKey(k);
      const out = new Uint8Array(size + TAGLEN + 5).fill(0xee);
      // parts joined, written mid-buffer: the bytes around are untouched
      const written = enc.encryptIntoWithAd(ad, [plaintext.subarray(0, size >> 1), plaintext.subarray(size >> 1)], out, 3);
      assert.is(written, size + TAGLEN);
      assert.equal([out[0], out[1], out[2], out[size + TAGLEN + 3], out[size + TAGLEN + 4]], [0xee, 0xee, 0xee, 0xee, 0xee]);
      const frame = out.subarray(3, 3 + written);
      const split = Math.min(7, frame.length);
      const parts = dec.decryptPartsWithAd(ad, [frame.subarray(0, split), frame.subarray(split)]);
      assert.is(toHex(Buffer.concat(parts)), toHex(plaintext), `${sealer.name} -> ${opener.name}, ${size} B`);
      for (const bad of [Uint8Array.from(frame, (b, i) => (i === frame.length - 1 ? b ^ 1 : b)), frame.subarray(0, TAGLEN - 1)]) {
        const fresh = new CipherState(opener);
        fresh.initializeKey(k);
        assert.throws(() => fresh.decryptPartsWithAd(ad, [bad]), (e: { code?: string }) => e.code === 'ERR_DECRYPT');
        assert.is(fresh.nonce, 0n, 'a failed decryption does not advance the nonce');
      }
    }
  }
});

/** Curve25519 points of small order (0, 1, the two of order 8, p-1, p, p+1), little-endian. */
const SMALL_ORDER = [
  '0000000000000000000000000000000000000000000000000000000000000000',
  '0100000000000000000000000000000000000000000000000000000000000000',
  'e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800',
  '5f9c95bc a3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157'.replace(' ', ''),
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
];

test('X25519: both sets refuse every small-order key (with and without the top bit), agree on random ones and on keys of every length', () => {
  const prng = new Prng(25519);
  const pairs: KeyPair[][] = [0, 1, 2].map(() => {
    const raw = prng.bytes(32);
    return sets.map((set) => set.keyPairFromPrivate(raw));
  });
  for (const [i, hex] of SMALL_ORDER.entries()) {
    for (const top of [false, true]) {
      const point = Buffer.from(hex, 'hex');
      if (top) point[31]! |= 0x80;
      for (const set of sets) for (const kp of pairs[0]!) assert.is(set.dh(kp, point), null, `${set.name}: small-order point ${i}${top ? ' with the top bit' : ''}`);
    }
  }
  const inputs = [...Array.from({ length: 40 }, () => prng.bytes(32)), new Uint8Array(32).fill(0xff), prng.bytes(31), prng.bytes(33), EMPTY];
  for (const publicKey of inputs) {
    for (const group of pairs) {
      const results = sets.flatMap((set) => group.map((kp) => set.dh(kp, publicKey))).map((r) => (r === null ? 'refused' : toHex(r)));
      assert.ok(results.every((r) => r === results[0]), `verdicts differ for ${toHex(publicKey)}: ${results.join(' / ')}`);
      if (publicKey.length !== 32) assert.is(results[0], 'refused');
    }
  }
  // the public keys of one private key agree too
  for (const group of pairs) assert.ok(group.every((kp) => toHex(kp.publicKey) === toHex(group[0]!.publicKey)));
});

test('SHA-256: libsodium is the wire hash exactly when sodium-native loads, and gives node:crypto\'s bytes (RFC 4231 HMAC vectors, every key length to 130, split and long inputs)', () => {
  assert.is(SHA256, SODIUM_SHA256 ?? NODE_SHA256);
  assert.is(SODIUM_SHA256 === null, sodium() === null);
  const hashes = [NODE_SHA256, ...(SODIUM_SHA256 ? [SODIUM_SHA256] : [])];
  // RFC 4231 test cases 1, 2 and 6 (a 131-byte key: hashed first)
  const rfc4231: Array<[string, string, string]> = [
    ['0b'.repeat(20), Buffer.from('Hi There').toString('hex'), 'b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7'],
    [Buffer.from('Jefe').toString('hex'), Buffer.from('what do ya want for nothing?').toString('hex'), '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843'],
    ['aa'.repeat(131), Buffer.from('Test Using Larger Than Block-Size Key - Hash Key First').toString('hex'), '60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54'],
  ];
  for (const h of hashes) {
    for (const [k, m, mac] of rfc4231) assert.is(toHex(h.hmac(Buffer.from(k, 'hex'), Buffer.from(m, 'hex'))), mac, `${h === NODE_SHA256 ? 'node' : 'sodium'} RFC 4231`);
    assert.is(toHex(h.hash(Buffer.from('abc'))), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  }
  if (!SODIUM_SHA256) return;
  const prng = new Prng(4231);
  const lengths = [0, 1, 31, 32, 33, 55, 56, 63, 64, 65, 119, 120, 200, SODIUM_HASH_MAX_BYTES - 64, SODIUM_HASH_MAX_BYTES, SODIUM_HASH_MAX_BYTES + 1, 70_000];
  for (let keyLength = 0; keyLength <= 130; keyLength++) {
    const k = prng.bytes(keyLength);
    const m = prng.bytes(keyLength * 3);
    assert.is(toHex(SODIUM_SHA256.hmac(k, m)), toHex(NODE_SHA256.hmac(k, m)), `HMAC, key of ${keyLength} bytes`);
  }
  for (const length of lengths) {
    const m = prng.bytes(length);
    const parts = [m.subarray(0, length >> 2), EMPTY, m.subarray(length >> 2)];
    const k = prng.bytes(32);
    assert.is(toHex(SODIUM_SHA256.hash(...parts)), toHex(NODE_SHA256.hash(m)), `hash of ${length} bytes in parts`);
    assert.is(toHex(SODIUM_SHA256.hmac(k, ...parts)), toHex(NODE_SHA256.hmac(k, m)), `HMAC of ${length} bytes in parts`);
    // interleaved calls share no state: a long input between two short ones changes nothing
    assert.is(toHex(SODIUM_SHA256.hmac(k, m.subarray(0, 33))), toHex(NODE_SHA256.hmac(k, m.subarray(0, 33))));
  }
  const ck = prng.bytes(32);
  const ikm = prng.bytes(32);
  assert.equal(hkdf(SODIUM_SHA256, ck, ikm, 3).map(toHex), hkdf(NODE_SHA256, ck, ikm, 3).map(toHex), 'Noise HKDF, 3 outputs');
  assert.equal(hkdf(SODIUM_SHA256, ck, EMPTY, 2).map(toHex), hkdf(NODE_SHA256, ck, EMPTY, 2).map(toHex), 'Noise HKDF, 2 outputs');
});

test('with the sodium backend the handshake\'s identity check runs inline (no worker round trip), with the same verdicts', async () => {
  if (defaultSignatureBackend() !== 'sodium') return; // with native it stays on the libuv pool
  const s = DEFAULT_PRIMITIVES.generateKeyPair().publicKey;
  const payload = encodeIdentityPayload(alice, s);
  const bad = Uint8Array.from(payload, (b, i) => (i === 40 ? b ^ 1 : b));
  const results: unknown[] = [];
  void decodeIdentityPayload(payload, s).then((r) => results.push(r.ok));
  void decodeIdentityPayload(bad, s).then((r) => results.push(r.ok));
  await Promise.resolve(); // microtasks only: a worker's answer could not have arrived yet
  assert.equal(results, [true, false]);
});

/** A hash that counts its calls. */
function counting(hash: NoiseHash): NoiseHash & { counts: { hash: number; hmac: number } } {
  const counts = { hash: 0, hmac: 0 };
  return {
    name: hash.name, hashLen: hash.hashLen, counts,
    hash: (...parts) => (counts.hash++, hash.hash(...parts)),
    hmac: (key, ...parts) => (counts.hmac++, hash.hmac(key, ...parts)),
  };
}

/** A primitive set that counts its calls. */
function countingSet(set: NoisePrimitives) {
  const counts = { generateKeyPair: 0, dh: 0, encrypt: 0, decrypt: 0 };
  const wrapped: NoisePrimitives = {
    name: set.name,
    generateKeyPair: () => (counts.generateKeyPair++, set.generateKeyPair()),
    keyPairFromPrivate: (k) => set.keyPairFromPrivate(k),
    dh: (kp, pub) => (counts.dh++, set.dh(kp, pub)),
    encryptInto: (...args) => (counts.encrypt++, set.encryptInto(...args)),
    decryptParts: (...args) => (counts.decrypt++, set.decryptParts(...args)),
  };
  return { wrapped, counts };
}

test('operations per handshake side (Noise_XXpsk0): 1 key generation, 3 DH, 22 HMAC, 9 hashes, 5 AEAD; the same on both sides; 18 HMAC and 8 hashes once the psk\'s leading state is kept', () => {
  const base = parseProtocolName(SIGNET_PROTOCOL);
  const hashes = [counting(SHA256), counting(SHA256)];
  for (const round of [0, 1]) {
    for (const h of hashes) h.counts.hash = h.counts.hmac = 0;
    const counted = [countingSet(DEFAULT_PRIMITIVES), countingSet(DEFAULT_PRIMITIVES)];
    const states = [0, 1].map((i) => {
      const protocol: Protocol = { ...base, hash: hashes[i]! };
      return new HandshakeState({
        protocol, initiator: i === 0, prologue: PROLOGUE, s: DEFAULT_PRIMITIVES.generateKeyPair(),
        psks: [derivePsk(networkKey)], primitives: counted[i]!.wrapped,
      });
    });
    const [init, resp] = states as [HandshakeState, HandshakeState];
    resp.readMessage(init.writeMessage(new Uint8Array(8)));
    init.readMessage(resp.writeMessage(new Uint8Array(96)));
    resp.readMessage(init.writeMessage(new Uint8Array(96)));
    assert.ok(init.isComplete && resp.isComplete);
    assert.is(toHex(init.getHandshakeHash()), toHex(resp.getHandshakeHash()));
    for (const i of [0, 1]) {
      // InitializeSymmetric's HASH(protocol name) is computed once per process, not per handshake;
      // the first MixKeyAndHash(psk) (4 HMAC, 1 hash) once per hash, prologue and psk (leading-psk.ts)
      assert.equal(hashes[i]!.counts, round === 0 ? { hash: 9, hmac: 22 } : { hash: 8, hmac: 18 }, `round ${round}, side ${i}`);
      assert.equal(counted[i]!.counts, { generateKeyPair: 1, dh: 3, encrypt: i === 0 ? 3 : 2, decrypt: i === 0 ? 2 : 3 }, `side ${i}`);
      assert.is(states[i]!.dhCount, 3);
    }
  }
});

test('the leading psk state is kept per psk, prologue and protocol: another psk or prologue gets its own, evicted ones are zeroed', () => {
  const protocol = parseProtocolName(SIGNET_PROTOCOL);
  const run = (psk: Uint8Array, prologue: Uint8Array): string => {
    const init = new HandshakeState({ protocol, initiator: true, prologue, s: DEFAULT_PRIMITIVES.keyPairFromPrivate(key(51)), psks: [psk], ephemeralPrivateKey: key(52) });
    return toHex(init.writeMessage(EMPTY));
  };
  const reference = (psk: Uint8Array, prologue: Uint8Array): string => {
    // the same message 1 computed with an instrumented hash (an object of its own, so nothing kept applies)
    const init = new HandshakeState({ protocol: { ...protocol, hash: counting(SHA256) }, initiator: true, prologue, s: DEFAULT_PRIMITIVES.keyPairFromPrivate(key(51)), psks: [psk], ephemeralPrivateKey: key(52) });
    return toHex(init.writeMessage(EMPTY));
  };
  const psks = Array.from({ length: LEADING_PSK_CACHE_SIZE + 3 }, (_, i) => key(100 + i));
  const prologues = [PROLOGUE, Uint8Array.of(1, 2, 3)];
  for (let pass = 0; pass < 2; pass++) {
    for (const psk of psks) for (const prologue of prologues) assert.is(run(psk, prologue), reference(psk, prologue));
  }
  // an evicted state is zeroed and no longer found
  const first = findLeadingPskState(SHA256, SIGNET_PROTOCOL, PROLOGUE, key(200));
  assert.is(first, undefined);
  run(key(200), PROLOGUE);
  const kept = findLeadingPskState(SHA256, SIGNET_PROTOCOL, PROLOGUE, key(200))!;
  assert.ok(kept && kept.k !== null && kept.ck.some((b) => b !== 0));
  for (let i = 0; i < LEADING_PSK_CACHE_SIZE; i++) run(key(201 + i), PROLOGUE);
  assert.is(findLeadingPskState(SHA256, SIGNET_PROTOCOL, PROLOGUE, key(200)), undefined);
  assert.ok([kept.ck, kept.h, kept.k!].every((bytes) => bytes.every((b) => b === 0)), 'evicted bytes zeroed');
  // a psk changed in place after its state was kept is a new psk
  const mutable = key(7);
  const before = run(mutable, PROLOGUE);
  mutable[0] = 8;
  assert.is.not(run(mutable, PROLOGUE), before);
  assert.is(run(mutable, PROLOGUE), reference(mutable, PROLOGUE));
});

test('the identity signature is made once per Noise static key: cached for it, made anew for a new key', async () => {
  const s1 = DEFAULT_PRIMITIVES.generateKeyPair().publicKey;
  const s2 = DEFAULT_PRIMITIVES.generateKeyPair().publicKey;
  const p1 = encodeIdentityPayload(alice, s1);
  assert.is(encodeIdentityPayload(alice, s1), p1, 'the same static key: the cached payload itself');
  const p2 = encodeIdentityPayload(alice, s2);
  assert.is.not(p2, p1);
  assert.is.not(toHex(p2.subarray(32)), toHex(p1.subarray(32)), 'a new static key: a new signature');
  assert.ok((await decodeIdentityPayload(p2, s2)).ok);
  assert.equal(await decodeIdentityPayload(p2, s1), { ok: false, reason: 'bad-signature' });
  assert.equal(await decodeIdentityPayload(p1, s2), { ok: false, reason: 'bad-signature' });
  const again = encodeIdentityPayload(alice, s1);
  assert.is(toHex(again), toHex(p1), 'back to the first key: its signature again (Ed25519 is deterministic)');
  assert.ok((await decodeIdentityPayload(again, s1)).ok);
});

/** Runs the transcript fixture in a child process; resolves with its JSON line. */
function childTranscript(env: NodeJS.ProcessEnv): Promise<{ primitives: string; delivered: boolean; initiator: string; responder: string }> {
  const script = fileURLToPath(new URL('./fixtures/transcript.ts', import.meta.url));
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', script], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(JSON.parse(stdout)) : reject(new Error(`transcript child exited ${code}: ${stderr}`))));
  });
}

test('end to end in child processes: the SIGNET_NO_SODIUM=1 fallback writes the very bytes the default set writes', async () => {
  const [fallback, preferred] = await Promise.all([childTranscript({ SIGNET_NO_SODIUM: '1' }), childTranscript({ SIGNET_NO_SODIUM: '' })]);
  assert.is(fallback.primitives, 'node');
  assert.is(preferred.primitives, sodium() ? 'sodium' : 'node');
  assert.ok(fallback.delivered && preferred.delivered, 'every message arrived intact');
  assert.ok(fallback.initiator.length > 2 * 200_000, 'the transcript holds the messages');
  assert.is(fallback.initiator, preferred.initiator);
  assert.is(fallback.responder, preferred.responder);
});

test('the Noise vectors pass in a child process where sodium is disabled (SIGNET_NO_SODIUM=1)', async () => {
  const script = fileURLToPath(new URL('./vectors.test.ts', import.meta.url));
  const { code, output } = await new Promise<{ code: number | null; output: string }>((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', script], { env: { ...process.env, SIGNET_NO_SODIUM: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output }));
  });
  const plain = output.replace(/\x1b\[[0-9;]*m/g, '');
  assert.is(code, 0, plain);
  assert.match(plain, /Passed:\s+8/);
});

test.run();
