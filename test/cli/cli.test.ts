// The real `signet` binary, run as a user would: exit codes, stdout and stderr separately.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, chmodSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadNetworkKey } from '../../src/index.ts';

const bin = fileURLToPath(new URL('../../bin/signet.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'signet-cli-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

function signet(...args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test('--help lists the commands on stdout, exit 0; no command is a usage error', () => {
  const r = signet('--help');
  assert.is(r.code, 0);
  for (const c of ['keygen', 'netkey', 'id', 'demo']) assert.match(r.out, c);
  assert.is(signet().code, 2);
});

test('--version prints the package version on stdout, exit 0 (with --json, as JSON)', () => {
  const pkg = JSON.parse(readFileSync(fileURLToPath(new URL('../../package.json', import.meta.url)), 'utf8')) as { version: string };
  const r = signet('--version');
  assert.is(r.code, 0);
  assert.is(r.out.trim(), pkg.version);
  assert.is(r.err, '');
  assert.equal(JSON.parse(signet('--version', '--json').out), { version: pkg.version });
});

test('with --json, failures are one JSON object on stderr with a code; stdout stays empty', () => {
  const missing = signet('id', '--keys', join(dir, 'nowhere'), '--json');
  assert.is(missing.code, 1);
  assert.is(missing.out, '');
  const e = JSON.parse(missing.err) as { error: { code: string; message: string } };
  assert.is(e.error.code, 'ERR_NO_IDENTITY');
  assert.match(e.error.message, /nowhere/);
  assert.match(e.error.message, /signet keygen --keys .*nowhere/, 'names the command that makes one');
  const usage = signet('id', '--bogus', '--json');
  assert.is(usage.code, 2);
  assert.equal(JSON.parse(usage.err).error.code, 'ERR_USAGE');
  const unknown = signet('frobnicate', '--json');
  assert.is(unknown.code, 2);
  assert.equal(JSON.parse(unknown.err).error.code, 'ERR_USAGE');
});

test('every command has --help (exit 0, usage on stdout)', () => {
  for (const c of ['keygen', 'netkey', 'id', 'demo']) {
    const r = signet(c, '--help');
    assert.is(r.code, 0, c);
    assert.match(r.out, `usage: signet ${c}`);
    assert.is(r.err, '');
  }
});

test('unknown command and unknown option exit 2 with the usage on stderr', () => {
  const a = signet('frobnicate');
  assert.is(a.code, 2);
  assert.match(a.err, /unknown command/);
  assert.is(a.out, '');
  const b = signet('keygen', '--bogus');
  assert.is(b.code, 2);
  assert.match(b.err, /usage: signet keygen/);
});

test('keygen writes a 0600 key and prints the id that id prints; refuses to overwrite', () => {
  const keys = join(dir, 'k1');
  const g = signet('keygen', '--keys', keys);
  assert.is(g.code, 0, g.err);
  const nodeId = g.out.trim();
  assert.match(nodeId, /^[a-z2-7]{52}$/);
  assert.is(statSync(join(keys, 'identity.key')).mode & 0o777, 0o600);
  const i = signet('id', '--keys', keys, '--json');
  assert.is(i.code, 0);
  assert.is(JSON.parse(i.out).id, nodeId);
  const again = signet('keygen', '--keys', keys);
  assert.is(again.code, 1);
  assert.match(again.err, /already exists/);
  // the secret never reaches stdout or stderr
  const pemBody = readFileSync(join(keys, 'identity.key'), 'utf8').split('\n')[1]!;
  for (const r of [g, i, again]) assert.not.ok((r.out + r.err).includes(pemBody));
});

test('id refuses a group-readable key with the fix, exit 1', () => {
  const keys = join(dir, 'k2');
  assert.is(signet('keygen', '--keys', keys).code, 0);
  chmodSync(join(keys, 'identity.key'), 0o640);
  const r = signet('id', '--keys', keys);
  assert.is(r.code, 1);
  assert.match(r.err, /chmod 600/);
  assert.is(r.out, '');
});

test('netkey writes 32 random bytes as base64 0600 and never prints the key', async () => {
  const keys = join(dir, 'k3');
  const r = signet('netkey', '--keys', keys, '--json');
  assert.is(r.code, 0, r.err);
  const path = JSON.parse(r.out).path;
  const key = await loadNetworkKey(path);
  assert.is(key.length, 32);
  assert.not.ok(r.out.includes(Buffer.from(key).toString('base64')));
});

test.run();
