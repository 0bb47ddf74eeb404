// SHA-256 written into a caller's buffer: libsodium where it loads (no object or result buffer
// per call: about half node:crypto's createHash on a 200-byte payload), else node:crypto.
import { createHash } from 'node:crypto';
import { sodium } from './sodium.ts';

/** Writes SHA-256(`data`) into `out` (32 bytes; a view into a larger buffer is fine). */
export function sha256Into(data: Uint8Array, out: Uint8Array): void {
  if (out.length !== 32) throw new RangeError('"out" expected 32 bytes');
  const s = sodium();
  if (s !== null) s.crypto_hash_sha256(out, data);
  else out.set(createHash('sha256').update(data).digest());
}
