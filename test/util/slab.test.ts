// Slab (src/util/slab.ts): views of shared chunks are fresh, zero-filled and never overlap, the
// spare bytes after a view are left to it alone, and large requests get an array of their own.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Slab } from '../../src/util/slab.ts';

test('views share a chunk, never overlap, and each is followed by its reserved spare', () => {
  const slab = new Slab(1024);
  const views = [slab.take(10, 32), slab.take(20, 0), slab.take(30, 32)];
  assert.is(views[0]!.buffer, views[1]!.buffer);
  assert.is(views[1]!.buffer, views[2]!.buffer);
  assert.equal(views.map((v) => [v.byteOffset, v.length]), [[0, 10], [42, 20], [62, 30]]);
  for (const v of views) assert.ok(v.every((b) => b === 0), 'zero-filled');
  views.forEach((v, i) => v.fill(i + 1));
  assert.ok(views.every((v, i) => v.every((b) => b === i + 1)), 'writing one view changes no other');
});

test('a full chunk is let go, not reused: the next view starts a new chunk', () => {
  const slab = new Slab(1024);
  const first = slab.take(100, 28); // 128 bytes: an eighth of the chunk, the largest shared request
  const rest = Array.from({ length: 7 }, () => slab.take(128));
  assert.ok(rest.every((v) => v.buffer === first.buffer));
  const next = slab.take(1);
  assert.is.not(next.buffer, first.buffer);
  assert.is(next.byteOffset, 0);
  assert.is(first.buffer.byteLength, 1024);
});

test('a request above an eighth of a chunk gets an array of its own, spare included', () => {
  const slab = new Slab(1024);
  const shared = slab.take(8);
  const big = slab.take(100, 29); // 129 bytes
  assert.is.not(big.buffer, shared.buffer);
  assert.is(big.byteOffset, 0);
  assert.is(big.length, 100);
  assert.is(big.buffer.byteLength, 129);
  assert.is(slab.take(8).buffer, shared.buffer, 'the shared chunk goes on where it was');
});

test.run();
