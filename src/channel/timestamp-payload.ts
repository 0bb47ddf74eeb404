// The payload of handshake message 1: the initiator's clock, which psk0 encrypts and authenticates,
// so a recorded message 1 goes stale (WireGuard's initiation timestamp). Fixed layout, 8 bytes.

/** Exact length of the timestamp payload: u64 big-endian, milliseconds since the Unix epoch. */
export const TIMESTAMP_PAYLOAD_BYTES = 8;

/** Result of checking a received timestamp: bad bytes from a peer are a result, not an exception. */
export type FreshnessResult =
  | { readonly ok: true; readonly timestamp: number }
  | { readonly ok: false; readonly reason: 'bad-length' | 'stale' | 'future' };

/**
 * The payload for a message 1 written at `nowMs` (milliseconds since the Unix epoch).
 * @throws RangeError unless `nowMs` is an integer in [0, 2^53-1] (a caller bug: an injected clock).
 */
export function encodeTimestampPayload(nowMs: number): Uint8Array {
  if (!Number.isSafeInteger(nowMs) || nowMs < 0) {
    throw new RangeError(`"now" expected an integer in [0, ${Number.MAX_SAFE_INTEGER}] (ms since the epoch), got ${nowMs}`);
  }
  const payload = new Uint8Array(TIMESTAMP_PAYLOAD_BYTES);
  new DataView(payload.buffer).setBigUint64(0, BigInt(nowMs));
  return payload;
}

/**
 * Checks a received timestamp against our clock: fresh when |timestamp - nowMs| <= windowMs (both
 * edges included), else `stale` (too old) or `future` (too far ahead). Compared as 64-bit integers,
 * so no timestamp a peer can send is rounded into the window. Never throws for Uint8Array input.
 */
export function checkTimestampPayload(payload: Uint8Array, nowMs: number, windowMs: number): FreshnessResult {
  if (payload.length !== TIMESTAMP_PAYLOAD_BYTES) return { ok: false, reason: 'bad-length' };
  const timestamp = new DataView(payload.buffer, payload.byteOffset, payload.length).getBigUint64(0);
  const now = BigInt(nowMs);
  const window = BigInt(windowMs);
  if (timestamp < now - window) return { ok: false, reason: 'stale' };
  if (timestamp > now + window) return { ok: false, reason: 'future' };
  return { ok: true, timestamp: Number(timestamp) }; // within now ± window: a safe integer
}
