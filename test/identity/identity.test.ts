import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { inspect } from 'node:util';
import { Identity, nodeIdOf, isNodeId, verifySignature } from '../../src/index.ts';
import { base32 } from '../../src/identity/node-id.ts';
import { exportSecretKey } from '../../src/identity/identity.ts';
import { fromHex, toHex } from '../../src/util/bytes.ts';
import { readVectors } from '../helpers/vectors.ts';

test('base32 matches RFC 4648 section 10 test vectors (lower case, no padding)', () => {
  const cases: Array<[string, string]> = [
    ['', ''], ['f', 'my'], ['fo', 'mzxq'], ['foo', 'mzxw6'], ['foob', 'mzxw6yq'],
    ['fooba', 'mzxw6ytb'], ['foobar', 'mzxw6ytboi'],
  ];
  for (const [input, expected] of cases) assert.is(base32(new TextEncoder().encode(input)), expected);
});

test('nodeIdOf is base32(sha256(publicKey)): 52 chars, lower case, checked form', () => {
  const { vectors } = readVectors('ed25519/rfc8032.json') as { vectors: Array<{ pub_key: string }> };
  for (const v of vectors) {
    const pk = fromHex(v.pub_key);
    const id = nodeIdOf(pk);
    const expected = Buffer.from(createHash('sha256').update(pk).digest());
    assert.is(id.length, 52);
    assert.ok(isNodeId(id), id);
    // decode back and compare with sha256
    const alphabet = 'abcdefghijklmnopqrstuvwxyz234567';
    let bits = '';
    for (const c of id) bits += alphabet.indexOf(c).toString(2).padStart(5, '0');
    const bytes = Buffer.from(bits.slice(0, 256).match(/.{8}/g)!.map((b) => parseInt(b, 2)));
    assert.ok(bytes.equals(expected));
  }
  assert.not.ok(isNodeId('A'.repeat(52)));
  assert.not.ok(isNodeId(nodeIdOf(new Uint8Array(32)).slice(0, 51) + 'b'));
});

test('nodeIdOf rejects non-32-byte keys with a named RangeError / TypeError', () => {
  assert.throws(() => nodeIdOf(new Uint8Array(31)), (e: Error) => e instanceof RangeError && /"publicKey".*length=31/.test(e.message));
  assert.throws(() => nodeIdOf('x' as unknown as Uint8Array), (e: Error) => e instanceof TypeError);
});

test('Identity.fromSecretKey reproduces RFC 8032 public keys and signatures', () => {
  const { vectors } = readVectors('ed25519/rfc8032.json') as { vectors: Array<{ secret_key: string; pub_key: string; msg: string; signature: string }> };
  for (const v of vectors) {
    const id = Identity.fromSecretKey(fromHex(v.secret_key));
    assert.is(toHex(id.publicKey), v.pub_key);
    assert.is(id.id, nodeIdOf(id.publicKey));
    assert.is(toHex(id.sign(fromHex(v.msg))), v.signature);
    assert.is(toHex(exportSecretKey(id)), v.secret_key);
  }
});

test('generate gives distinct identities whose signatures verify', async () => {
  const a = Identity.generate();
  const b = Identity.generate();
  assert.is.not(a.id, b.id);
  const msg = new TextEncoder().encode('hello');
  assert.ok(await verifySignature(a.sign(msg), msg, a.publicKey));
  assert.not.ok(await verifySignature(a.sign(msg), msg, b.publicKey));
});

test('an identity never shows its secret in JSON, inspect or enumerable fields', () => {
  const id = Identity.fromSecretKey(new Uint8Array(32).fill(7));
  const secretHex = toHex(exportSecretKey(id));
  const secretB64 = Buffer.from(exportSecretKey(id)).toString('base64');
  for (const text of [JSON.stringify(id), inspect(id, { showHidden: true, depth: 10 }), String(Object.keys(id))]) {
    assert.not.ok(text.includes(secretHex));
    assert.not.ok(text.includes(secretB64));
  }
  assert.equal(Object.keys(id).sort(), ['id', 'publicKey']);
});

test('fromSecretKey checks its argument', () => {
  assert.throws(() => Identity.fromSecretKey(new Uint8Array(33)), (e: Error) => e instanceof RangeError && /"secretKey"/.test(e.message));
  assert.throws(() => Identity.fromSecretKey(null as unknown as Uint8Array), (e: Error) => e instanceof TypeError);
});

test.run();
