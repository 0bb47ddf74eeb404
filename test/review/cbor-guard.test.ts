// Review: the CBOR guard admits only safe integers; a negative integer's value is -1 - n, so the
// largest n it may carry is 2^53 - 2 (-1 - (2^53 - 1) = -2^53 is not a safe integer).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { checkCbor, decodeCbor } from '../../src/envelope/cbor.ts';

const neg = (n: bigint) => {
  const out = new Uint8Array(9);
  out[0] = 0x3b;
  new DataView(out.buffer).setBigUint64(1, n);
  return out;
};

test('negative integers: -(2^53 - 1) accepted, -2^53 refused', () => {
  const ok = decodeCbor(neg(2n ** 53n - 2n), { maxDepth: 4 });
  assert.ok(ok.ok && ok.value === -Number.MAX_SAFE_INTEGER);
  assert.is(checkCbor(neg(2n ** 53n - 1n), 4), 'integer outside the safe range');
});

test.run();
