// SHA-256 written into a caller's buffer: libsodium where it loads (no object or result buffer
// per call: about half node:crypto's createHash on a 200-byte payload), else node:crypto.
import { createHash, hash as nodeHash } from 'node:crypto';
import { sodium } from './sodium.ts';

/** SHA-256(`data`) as a new Buffer, through node:crypto. Its one-shot hash() (Node >= 20.12) is
 *  ~1.5x createHash() for short inputs, whose object setup dominates; older Node 20 falls back. */
export const sha256: (data: Uint8Array) => Uint8Array = typeof nodeHash === 'function'
  ? (data) => nodeHash('sha256', data, 'buffer') as unknown as Uint8Array
  : (data) => createHash('sha256').update(data).digest();

/** Writes SHA-256(`data`) into `out` (32 bytes; a view into a larger buffer is fine). */
export function sha256Into(data: Uint8Array, out: Uint8Array): void {
  if (out.length !== 32) throw new RangeError('"out" expected 32 bytes');
  const s = sodium();
  if (s !== null) s.crypto_hash_sha256(out, data);
  else out.set(sha256(data));
}
