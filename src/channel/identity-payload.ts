// The identity payload of handshake messages 2 and 3: binds a signet identity (Ed25519) to the
// sender's Noise static key. Fixed layout, 96 bytes: identity public key (32) || signature (64).
import type { Identity } from '../identity/identity.ts';
import { nodeIdOf, type NodeId } from '../identity/node-id.ts';
import { copyBytes } from './primitives.ts';
import { defaultSignatureBackend, DOMAIN, domainBytes, verifySignature, verifySignatureSync } from '../identity/signature.ts';

/** Exact length of an identity payload. Any other length is rejected before parsing. */
export const IDENTITY_PAYLOAD_BYTES = 96;

/** A verified remote identity. */
export interface RemoteIdentity {
  /** Node id derived from `publicKey` (never claimed by the peer). */
  readonly id: NodeId;
  /** The peer's Ed25519 identity public key. */
  readonly publicKey: Uint8Array;
}

/** Result of reading a payload: bad bytes from a peer are a result, not an exception. */
export type PayloadResult =
  | { readonly ok: true; readonly remote: RemoteIdentity }
  | { readonly ok: false; readonly reason: 'bad-length' | 'bad-signature' };

const cache = new WeakMap<Identity, { staticKey: Uint8Array; payload: Uint8Array }>();

/**
 * The payload `identity.publicKey || sign("signet/noise-static/v1" || noiseStatic)`.
 * Cached per identity for the process's static key (the signature is deterministic).
 */
export function encodeIdentityPayload(identity: Identity, noiseStatic: Uint8Array): Uint8Array {
  const hit = cache.get(identity);
  if (hit && Buffer.compare(hit.staticKey, noiseStatic) === 0) return hit.payload;
  const payload = new Uint8Array(IDENTITY_PAYLOAD_BYTES);
  payload.set(identity.publicKey, 0);
  payload.set(identity.sign(domainBytes(DOMAIN.noiseStatic, noiseStatic)), 32);
  cache.set(identity, { staticKey: Uint8Array.from(noiseStatic), payload });
  return payload;
}

/**
 * Checks a received payload against the Noise static key the same message delivered: exact
 * length, then signet's signature rule over the domain-tagged static key; derives the node id.
 * Never rejects for Uint8Array input.
 *
 * Policy: with the `sodium` backend this one verification runs inline, on the event loop,
 * through the same rule (checks 1-4, then libsodium's cofactorless equation:
 * `verifySignatureSync`). A handshake side has exactly one to do, alone: the worker pool would
 * batch nothing, and handing a lone request over costs the event loop more (postMessage alone
 * measured ~55 µs) than the ~45 µs of the equation itself, plus a thread hop of latency on a
 * busy machine. With `native` (no libsodium) it stays on the libuv pool, where the sync form
 * would cost ~100 µs of event loop. Updates keep the pool; this is only the handshake's check.
 */
export async function decodeIdentityPayload(payload: Uint8Array, noiseStatic: Uint8Array): Promise<PayloadResult> {
  if (payload.length !== IDENTITY_PAYLOAD_BYTES) return { ok: false, reason: 'bad-length' };
  const publicKey = copyBytes(payload.subarray(0, 32));
  const signature = payload.subarray(32, 96);
  const message = domainBytes(DOMAIN.noiseStatic, noiseStatic);
  const valid = defaultSignatureBackend() === 'sodium'
    ? verifySignatureSync(signature, message, publicKey, { backend: 'sodium' })
    : await verifySignature(signature, message, publicKey);
  if (!valid) return { ok: false, reason: 'bad-signature' };
  return { ok: true, remote: Object.freeze({ id: nodeIdOf(publicKey), publicKey }) };
}
