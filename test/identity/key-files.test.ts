import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync, statSync, writeFileSync, chmodSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import {
  Identity, saveIdentity, loadIdentity, generateNetworkKey, saveNetworkKey, loadNetworkKey,
  KeyFileError, KeyPermissionError,
} from '../../src/index.ts';
import { exportSecretKey } from '../../src/identity/identity.ts';
import { toHex } from '../../src/util/bytes.ts';

const dir = mkdtempSync(join(tmpdir(), 'signet-keys-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const fresh = (name: string) => join(dir, `${n++}-${name}`);

/** Every way a secret could leak into text: hex, base64, PEM body. */
function secretForms(identity: Identity, pemPath?: string): string[] {
  const seed = exportSecretKey(identity);
  const forms = [toHex(seed), Buffer.from(seed).toString('base64'), Buffer.from(seed).toString('base64url')];
  if (pemPath && existsSync(pemPath)) forms.push(readFileSync(pemPath, 'utf8').split('\n')[1]!);
  return forms;
}

async function rejection(fn: () => Promise<unknown>): Promise<Error> {
  try {
    await fn();
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a rejection');
}

test('identity round trip: PKCS#8 PEM written 0600, same id after load', async () => {
  const id = Identity.generate();
  const path = fresh('node.key');
  await saveIdentity(id, path);
  assert.is(statSync(path).mode & 0o777, 0o600);
  assert.ok(readFileSync(path, 'utf8').startsWith('-----BEGIN PRIVATE KEY-----\n'));
  const loaded = await loadIdentity(path);
  assert.is(loaded.id, id.id);
  assert.is(toHex(loaded.publicKey), toHex(id.publicKey));
});

test('saveIdentity refuses to overwrite unless asked', async () => {
  const path = fresh('node.key');
  await saveIdentity(Identity.generate(), path);
  const err = await rejection(() => saveIdentity(Identity.generate(), path));
  assert.instance(err, KeyFileError);
  assert.is((err as KeyFileError).code, 'ERR_KEY_FILE');
  const second = Identity.generate();
  await saveIdentity(second, path, { overwrite: true });
  assert.is((await loadIdentity(path)).id, second.id);
});

test('network key round trip: one line of base64, 32 bytes, 0600', async () => {
  const key = generateNetworkKey();
  assert.is(key.length, 32);
  const path = fresh('network.key');
  await saveNetworkKey(key, path);
  const text = readFileSync(path, 'utf8');
  assert.match(text, /^[A-Za-z0-9+/]{43}=\n$/);
  assert.is(statSync(path).mode & 0o777, 0o600);
  assert.is(toHex(await loadNetworkKey(path)), toHex(key));
});

test('group/other-readable secret files are refused, naming the file and the fix, without the secret', async () => {
  const id = Identity.generate();
  const path = fresh('loose.key');
  await saveIdentity(id, path);
  for (const mode of [0o644, 0o640, 0o604, 0o660]) {
    chmodSync(path, mode);
    const err = await rejection(() => loadIdentity(path));
    assert.instance(err, KeyPermissionError);
    assert.is((err as KeyPermissionError).code, 'ERR_KEY_PERMISSIONS');
    assert.ok(err.message.includes(path));
    assert.ok(err.message.includes(`chmod 600 ${path}`));
    for (const form of secretForms(id, path)) assert.not.ok(err.message.includes(form));
  }
  const netPath = fresh('loose-network.key');
  await saveNetworkKey(generateNetworkKey(), netPath);
  chmodSync(netPath, 0o644);
  const err = await rejection(() => loadNetworkKey(netPath));
  assert.instance(err, KeyPermissionError);
  assert.ok(err.message.includes(`chmod 600 ${netPath}`));
  chmodSync(path, 0o400); // owner-only read is fine
  assert.is((await loadIdentity(path)).id, id.id);
});

test('malformed and missing files fail with KeyFileError naming the file, never echoing contents', async () => {
  const secretish = 'c2VjcmV0LXRoYXQtbXVzdC1ub3QtbGVhaw==';
  const bad: Array<[string, string]> = [
    ['empty', ''],
    ['garbage', `${secretish}\n`],
    ['truncated-pem', `-----BEGIN PRIVATE KEY-----\n${secretish}\n`],
    ['bad-der', `-----BEGIN PRIVATE KEY-----\n${secretish}\n-----END PRIVATE KEY-----\n`],
  ];
  for (const [name, text] of bad) {
    const path = fresh(name);
    writeFileSync(path, text, { mode: 0o600 });
    const err = await rejection(() => loadIdentity(path));
    assert.instance(err, KeyFileError, name);
    assert.ok(err.message.includes(path), name);
    assert.not.ok(err.message.includes(secretish), name);
  }
  const missing = await rejection(() => loadIdentity(join(dir, 'nope.key')));
  assert.instance(missing, KeyFileError);
  assert.match(missing.message, /no such file/);
  for (const [name, text] of [['short', Buffer.alloc(31).toString('base64')], ['long', Buffer.alloc(33).toString('base64')], ['not-b64', 'zz zz'], ['two-lines', 'AAAA\nAAAA']]) {
    const path = fresh(name!);
    writeFileSync(path, text!, { mode: 0o600 });
    const err = await rejection(() => loadNetworkKey(path));
    assert.instance(err, KeyFileError, name);
  }
});

test('an RSA or X25519 key in PKCS#8 is refused as not Ed25519', async () => {
  const { generateKeyPairSync } = await import('node:crypto');
  const { privateKey } = generateKeyPairSync('x25519');
  const path = fresh('x25519.key');
  writeFileSync(path, privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600 });
  const err = await rejection(() => loadIdentity(path));
  assert.instance(err, KeyFileError);
  assert.match(err.message, /x25519.*Ed25519/);
});

const hasOpenssl = spawnSync('openssl', ['version']).status === 0;

test('openssl interop: genpkey-written keys load; signet-written keys read by openssl pkey', async () => {
  if (!hasOpenssl) {
    console.log('  note: openssl not on this machine; interop test skipped');
    return;
  }
  const path = fresh('openssl.key');
  const gen = spawnSync('openssl', ['genpkey', '-algorithm', 'ed25519', '-out', path]);
  assert.is(gen.status, 0, String(gen.stderr));
  chmodSync(path, 0o600);
  const loaded = await loadIdentity(path);
  const pub = spawnSync('openssl', ['pkey', '-in', path, '-pubout', '-outform', 'DER']);
  assert.is(pub.status, 0);
  assert.is(toHex(new Uint8Array(pub.stdout).subarray(-32)), toHex(loaded.publicKey));

  const ours = Identity.generate();
  const ourPath = fresh('ours.key');
  await saveIdentity(ours, ourPath);
  const read = spawnSync('openssl', ['pkey', '-in', ourPath, '-pubout', '-outform', 'DER']);
  assert.is(read.status, 0, String(read.stderr));
  assert.is(toHex(new Uint8Array(read.stdout).subarray(-32)), toHex(ours.publicKey));
});

test.run();
