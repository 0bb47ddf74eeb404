// sha256Into: the same digest through libsodium (where it loads) and node:crypto (SIGNET_NO_SODIUM=1
// in a child process), written into a view of a larger buffer without touching its neighbours.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { sha256Into } from '../../src/util/sha256.ts';
import { toHex, utf8 } from '../../src/util/bytes.ts';
import { Prng, testSeed } from '../helpers/prng.ts';

/** FIPS 180-2, appendix B.1: SHA-256("abc"). */
const ABC = 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad';

/** Digests of `inputs` as hex, each written at offset 7 of a 48-byte buffer of 0xee. */
function digests(inputs: Uint8Array[]): string[] {
  return inputs.map((input) => {
    const buf = new Uint8Array(48).fill(0xee);
    sha256Into(input, buf.subarray(7, 39));
    if (buf.subarray(0, 7).some((b) => b !== 0xee) || buf.subarray(39).some((b) => b !== 0xee)) throw new Error('wrote outside its view');
    return toHex(buf.subarray(7, 39));
  });
}

const rng = new Prng(testSeed());
// Kept small: the child gets them as one argument (at most 128 KiB on Linux).
const inputs = [utf8('abc'), new Uint8Array(0), ...Array.from({ length: 20 }, () => rng.bytes(rng.int(1500)))];
const expected = inputs.map((i) => createHash('sha256').update(i).digest('hex'));

test('the published vector, and node:crypto\'s digest of random inputs, here', () => {
  const out = digests(inputs);
  assert.is(out[0], ABC);
  assert.equal(out, expected);
});

test('the same digests with sodium disabled (node:crypto path, child process)', async () => {
  const module = fileURLToPath(new URL('../../src/util/sha256.ts', import.meta.url));
  const script = `import { sha256Into } from ${JSON.stringify(module)};
    const inputs = JSON.parse(process.argv[1]).map((h) => Buffer.from(h, 'hex'));
    console.log(JSON.stringify(inputs.map((i) => { const o = new Uint8Array(32); sha256Into(i, o); return Buffer.from(o).toString('hex'); })));`;
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, JSON.stringify(inputs.map(toHex))], {
    env: { ...process.env, SIGNET_NO_SODIUM: '1' }, timeout: 60_000,
  });
  assert.equal(JSON.parse(stdout), expected);
});

test('an output that is not 32 bytes is a RangeError, and nothing is written', () => {
  const out = new Uint8Array(31);
  assert.throws(() => sha256Into(utf8('abc'), out), (e: Error) => e instanceof RangeError && /32 bytes/.test(e.message));
  assert.ok(out.every((b) => b === 0));
});

test.run();
