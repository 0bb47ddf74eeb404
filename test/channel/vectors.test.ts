import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { HandshakeState, parseProtocolName } from '../../src/channel/handshake-state.ts';
import { keyPairFromPrivate } from '../../src/channel/primitives.ts';
import { extraVectors, mainVectors, normalise, run } from './noise-vectors.ts';

const main = mainVectors;
const extra = extraVectors;

test('vectors.json has the 20 vectors the README lists', () => {
  assert.is(main.length, 20);
});

for (const protocol of [
  'Noise_XXpsk0_25519_ChaChaPoly_SHA256',
  'Noise_XXpsk0_25519_ChaChaPoly_BLAKE2b',
  'Noise_XXpsk3_25519_ChaChaPoly_SHA256',
  'Noise_XX_25519_ChaChaPoly_SHA256',
]) {
  test(`every ${protocol} vector in vectors.json passes (ciphertexts, payloads, handshake hash)`, () => {
    const cases = main.map(normalise).filter((c) => c.protocol === protocol);
    assert.ok(cases.length >= 4, `${cases.length} vectors`);
    for (const c of cases) run(c);
  });
}

test('every vector in vectors-extra.json passes too (XX/XXpsk3 BLAKE2b, IKpsk2, XXpsk0+psk3)', () => {
  assert.is(extra.length, 24);
  for (const c of extra.map(normalise)) run(c);
});

test('a flipped bit in an XXpsk0 vector message 1 fails to authenticate, with no DH done', () => {
  const c = main.map(normalise).find((x) => x.protocol === 'Noise_XXpsk0_25519_ChaChaPoly_SHA256')!;
  const protocol = parseProtocolName(c.protocol);
  const resp = new HandshakeState({ protocol, initiator: false, prologue: c.prologue, s: keyPairFromPrivate(c.respStatic!), psks: c.respPsks });
  const bad = Uint8Array.from(c.messages[0]!.ciphertext);
  bad[40]! ^= 1;
  assert.throws(() => resp.readMessage(bad), (e: { code?: string }) => e.code === 'ERR_HANDSHAKE');
  assert.is(resp.dhCount, 0);
});

test('parseProtocolName places psk tokens as the spec says and rejects unknown names', () => {
  assert.equal(parseProtocolName('Noise_XXpsk0_25519_ChaChaPoly_SHA256').messages, [['psk', 'e'], ['e', 'ee', 's', 'es'], ['s', 'se']]);
  assert.equal(parseProtocolName('Noise_XXpsk3_25519_ChaChaPoly_SHA256').messages, [['e'], ['e', 'ee', 's', 'es'], ['s', 'se', 'psk']]);
  for (const bad of ['Noise_NN_25519_ChaChaPoly_SHA256', 'Noise_XX_448_ChaChaPoly_SHA256', 'Noise_XX_25519_AESGCM_SHA256', 'Noise_XXpsk4_25519_ChaChaPoly_SHA256']) {
    assert.throws(() => parseProtocolName(bad), RangeError, bad);
  }
});

test.run();
