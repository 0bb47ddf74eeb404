// Runs signet's Noise_XXpsk0 handshake over a Duplex: 2-byte length-prefixed messages, exact
// lengths, message 1's timestamp, identity payloads, the deadline, the caller's AbortSignal, cleanup.
import { hkdfSync } from 'node:crypto';
import type { Duplex } from 'node:stream';
import { AbortError, HandshakeAbandonedError, HandshakeError, PeerMismatchError, SignetError, TimeoutError } from '../errors.ts';
import type { Identity } from '../identity/identity.ts';
import type { NodeId } from '../identity/node-id.ts';
import { MAX_HANDSHAKE_FRAME } from '../limits.ts';
import { utf8 } from '../util/bytes.ts';
import type { CipherState } from './cipher-state.ts';
import { FrameReader, lengthPrefix, type Allocate } from './framing.ts';
import { HandshakeState, parseProtocolName, SIGNET_PROTOCOL } from './handshake-state.ts';
import { decodeIdentityPayload, encodeIdentityPayload, IDENTITY_PAYLOAD_BYTES, type RemoteIdentity } from './identity-payload.ts';
import { DEFAULT_PRIMITIVES, type KeyPair, type NoisePrimitives } from './primitives.ts';
import { ReplayGuard } from './replay-guard.ts';
import { checkTimestampPayload, encodeTimestampPayload, TIMESTAMP_PAYLOAD_BYTES } from './timestamp-payload.ts';

/** Prologue mixed into h: names the wire format, so another format's handshake cannot complete. */
export const PROLOGUE = utf8('signet/wire/v1');
/** HKDF info that turns the network key into the Noise psk. */
export const PSK_INFO = 'signet/noise-psk/v1';
/** Message 1 (`psk, e` + timestamp payload): e (32) + timestamp (8+16). */
export const MESSAGE_1_BYTES = 32 + TIMESTAMP_PAYLOAD_BYTES + 16;
/** Message 2 (`e, ee, s, es` + identity payload): e (32) + s (32+16) + payload (96+16). */
export const MESSAGE_2_BYTES = 32 + 48 + IDENTITY_PAYLOAD_BYTES + 16;
/** Message 3 (`s, se` + identity payload): s (32+16) + payload (96+16). */
export const MESSAGE_3_BYTES = 48 + IDENTITY_PAYLOAD_BYTES + 16;

const PROTOCOL = parseProtocolName(SIGNET_PROTOCOL);
const EMPTY = new Uint8Array(0);

/**
 * psk = HKDF-SHA256(ikm = network key, salt = empty, info = "signet/noise-psk/v1", 32 bytes).
 * Salt choice: the network key is already 32 uniformly random bytes, so RFC 5869's extract
 * step needs no salt (empty means HashLen zeros); the info string gives domain separation,
 * and the raw network key never enters the Noise state or the wire.
 */
export function derivePsk(networkKey: Uint8Array): Uint8Array {
  // hkdfSync costs ~15 µs, as much as all the HMACs of a handshake side: a Node passes the same
  // key object to every handshake, so the psk is kept per key object (weakly: it goes with the
  // object) beside a copy of the key bytes, and derived again if the caller changed them.
  const hit = pskCache.get(networkKey);
  if (hit !== undefined && Buffer.compare(hit.key, networkKey) === 0) return Uint8Array.from(hit.psk); // a copy: the cache is never handed out
  const psk = new Uint8Array(hkdfSync('sha256', networkKey, EMPTY, PSK_INFO, 32));
  pskCache.set(networkKey, { key: Uint8Array.from(networkKey), psk });
  return Uint8Array.from(psk);
}
const pskCache = new WeakMap<Uint8Array, { key: Uint8Array; psk: Uint8Array }>();

/** Messages 1 this process accepted as a responder (by their ephemeral key, until their timestamp is stale). */
const replayGuard = new ReplayGuard();

let processStatic: KeyPair | undefined;
/** The Noise static key of this process: generated on first use, held in memory, never stored. */
export function processStaticKey(): KeyPair {
  processStatic ??= DEFAULT_PRIMITIVES.generateKeyPair();
  return processStatic;
}

/** TEST ONLY hooks. Production code never passes them. */
export interface ChannelTestHooks {
  /** Injects the Noise static private key instead of the process key. */
  staticPrivateKey?: Uint8Array;
  /** Injects the ephemeral private key instead of a fresh one. */
  ephemeralPrivateKey?: Uint8Array;
  /** Sees the HandshakeState (its `dhCount` proves a rejected message 1 cost no DH). */
  onHandshakeState?: (state: HandshakeState) => void;
  /** Sees the transport CipherStates (to move a nonce near 2^64-1). */
  onTransport?: (send: CipherState, receive: CipherState) => void;
  /** Watches every buffer the framing allocates for received bytes. */
  allocate?: Allocate;
  /** Sees the handshake's FrameReader (to prove a refused message 1 leaves nothing buffered). */
  onFrameReader?: (reader: FrameReader) => void;
  /** The clock (ms since the Unix epoch) that stamps and checks message 1, instead of Date.now. */
  now?: () => number;
  /** The DH and cipher set (handshake and transport) instead of the default (libsodium where it loads). */
  primitives?: NoisePrimitives;
}

/** What the handshake needs. */
export interface HandshakeOptions {
  identity: Identity;
  psk: Uint8Array;
  initiator: boolean;
  expectedPeer: NodeId | undefined;
  signal: AbortSignal | undefined;
  timeoutMs: number;
  /** Responder: largest distance (ms) between message 1's timestamp and our clock. */
  freshnessMs: number;
  testing: ChannelTestHooks | undefined;
}

/** A completed handshake, ready for the transport. */
export interface HandshakeOutcome {
  send: CipherState;
  receive: CipherState;
  remote: RemoteIdentity;
  handshakeHash: Uint8Array;
  /** Holds any transport bytes that arrived with the last handshake message. */
  reader: FrameReader;
}

/*
 * Cost of one handshake, per side (test/channel/backends.test.ts counts it), against what
 * Noise_XXpsk0 itself requires:
 *   X25519        1 key generation (e) + 3 DH (ee, es, se)     = XX's minimum; e is fresh every time
 *   HMAC-SHA256   18: MixKey(e) 3 + MixKey(re) 3 (psk mode), MixKey per DH 3 x 3, Split 3 = the spec's
 *                 HKDF, nothing extra; 2 calls of libsodium's one-shot SHA-256 each (hashes.ts).
 *                 MixKeyAndHash(psk)'s 4 run once per psk (leading-psk.ts: it follows public
 *                 constants only), so 22 in a process's first handshake with a network key
 *   SHA-256       8 MixHash: prologue, e, re, s and rs (encrypted), 3 payloads (+1, the psk's temp_h,
 *                 the first time); plus HASH(protocol name), once per process
 *   ChaChaPoly    5: our s, their s, 3 payloads (one call each with libsodium; node:crypto builds a
 *                 cipher object per call)
 *   Ed25519       1 verify (the peer's identity payload; inline with libsodium, not through the
 *                 worker pool: see decodeIdentityPayload); 0 signs: the signature over this process's
 *                 static key is made once per identity and static key (identity-payload.ts), never
 *                 per handshake; nothing ephemeral is ever cached
 *   psk HKDF      0: derived once per network-key object (derivePsk)
 * Before (node:crypto only): 22 HMAC and 9 hashes every time, each DH imported the peer's key from DER (~90 µs
 * of a 126 µs DH), the key generation exported DER (115 µs vs 19 µs now), HASH(protocol name)
 * ran every time, and the psk's hkdfSync (~15 µs) ran on every call.
 */

/**
 * Runs the handshake. On success the stream is paused with no listener of ours left on it;
 * on any failure it is destroyed.
 *
 * Policy (issue 7, items 13 and 14): a responder that cannot open message 1, for whatever reason
 * (a length prefix other than MESSAGE_1_BYTES, a frame that does not authenticate under our psk,
 * a timestamp outside the freshness window, a replay, garbage), answers nothing: it writes no byte,
 * does no DH, reads and discards whatever the peer sends (holding none of it), and closes only at
 * the handshake deadline, when the peer closes, or when the caller aborts. Every such failure then
 * looks the same from outside, in bytes and in timing, as a peer that sends nothing at all, so a
 * prober cannot tell a signet listener from a silent one. The promise rejects with one code for
 * all of them, ERR_HANDSHAKE (the reason is its `cause`), or ERR_ABORTED if the caller aborted.
 * @throws HandshakeError, FrameTooLargeError, PeerMismatchError, TimeoutError, AbortError.
 */
export async function performHandshake(stream: Duplex, options: HandshakeOptions): Promise<HandshakeOutcome> {
  const { identity, initiator, testing } = options;
  const now = testing?.now ?? Date.now;
  const reader = new FrameReader(MAX_HANDSHAKE_FRAME, testing?.allocate);
  testing?.onFrameReader?.(reader);
  const primitives = testing?.primitives ?? DEFAULT_PRIMITIVES;
  const s = testing?.staticPrivateKey ? primitives.keyPairFromPrivate(testing.staticPrivateKey) : processStaticKey();
  const hs = new HandshakeState({
    protocol: PROTOCOL, initiator, prologue: PROLOGUE, s, psks: [options.psk], primitives,
    ...(testing?.ephemeralPrivateKey ? { ephemeralPrivateKey: testing.ephemeralPrivateKey } : {}),
  });
  testing?.onHandshakeState?.(hs);

  let rejectFailed!: (error: Error) => void;
  const failed = new Promise<never>((_, reject) => (rejectFailed = reject));
  failed.catch(() => {}); // observed through Promise.race below
  let failure: Error | null = null;
  const fail = (error: Error): void => {
    if (failure) return;
    failure = error;
    rejectFailed(error);
  };
  let wake: (() => void) | null = null;
  /** Length of the frame awaited: a prefix declaring anything else ends the wait at once. */
  let expecting = -1;
  /** True once message 1 was refused: from then on every byte read is dropped. */
  let refused = false;
  /** True once the next frame is complete, or declares a wrong length or too much: nothing more is read until it is used. */
  const frameReady = (): boolean => {
    try {
      const declared = reader.peekLength();
      return declared !== null && (declared !== expecting || reader.buffered >= 2 + declared);
    } catch {
      return true;
    }
  };
  // The stream flows only while a frame is awaited. Anything the peer sends meanwhile (while
  // we verify its identity, say) stays in the stream, pushed back on the sender, and so does
  // its EOF: a peer that sends message 3, a message, the close frame and FIN at once is fine.
  const onData = (chunk: Uint8Array): void => {
    if (refused) return; // read and discarded: a refused peer costs no memory
    reader.push(chunk);
    if (frameReady()) stream.pause();
    wake?.();
  };
  /** Responder: message 1 opened, so the dialer holds the network key; its hanging up from then
   *  on is an abandoned handshake (it expected another id, or gave up), not a probe. */
  let opened = false;
  const hungUp = (how: string): Error => (opened
    ? new HandshakeAbandonedError(`the dialer ${how} after message 2 (it expected another node id, or gave up)`)
    : new HandshakeError(`stream ${how} during the handshake (wrong network key?)`));
  const onEnd = (): void => fail(hungUp('ended'));
  const onClose = (): void => fail(hungUp('closed'));
  const onError = (error: Error): void => fail(new HandshakeError('stream failed during the handshake', { cause: error }));
  const onAbort = (): void => fail(new AbortError('handshake aborted by the caller', { cause: options.signal?.reason }));
  const timer = setTimeout(
    () => fail(new TimeoutError(`handshake did not complete within ${options.timeoutMs} ms`)),
    options.timeoutMs,
  );
  stream.on('data', onData);
  stream.on('end', onEnd);
  stream.on('close', onClose);
  stream.on('error', onError);
  options.signal?.addEventListener('abort', onAbort);
  if (options.signal?.aborted) onAbort();
  if (stream.destroyed) onClose();

  const cleanup = (): void => {
    clearTimeout(timer);
    options.signal?.removeEventListener('abort', onAbort);
    stream.pause();
    stream.removeListener('data', onData);
    stream.removeListener('end', onEnd);
    stream.removeListener('close', onClose);
    stream.removeListener('error', onError);
    wake = null;
  };

  const readFrame = async (expected: number, name: string): Promise<Uint8Array> => {
    expecting = expected;
    for (;;) {
      if (failure) throw failure;
      const declared = reader.peekLength(); // throws FrameTooLargeError past the cap, before reading on
      if (declared !== null && declared !== expected) {
        throw new HandshakeError(`${name} must be ${expected} bytes, got a length prefix of ${declared}`);
      }
      const frame = reader.next();
      if (frame) {
        stream.pause();
        return frame;
      }
      stream.resume();
      await Promise.race([new Promise<void>((resolve) => (wake = resolve)), failed]);
    }
  };
  const send = (message: Uint8Array): void => {
    stream.write(Buffer.concat([lengthPrefix(message.length), message]));
  };
  const verify = async (payload: Uint8Array): Promise<RemoteIdentity> => {
    const result = await Promise.race([decodeIdentityPayload(payload, hs.remoteStatic!), failed]);
    if (!result.ok) throw new HandshakeError(`identity payload rejected: ${result.reason}`);
    if (options.expectedPeer !== undefined && result.remote.id !== options.expectedPeer) {
      throw new PeerMismatchError(`expected peer ${options.expectedPeer}, the remote proved ${result.remote.id}`);
    }
    return result.remote;
  };
  /** Responder: null once message 1 is opened (no DH in psk0), fresh and new; else why it is refused. @throws `failure`. */
  const openMessage1 = async (): Promise<Error | null> => {
    try {
      const payload = hs.readMessage(await readFrame(MESSAGE_1_BYTES, 'message 1'));
      // psk0 authenticates message 1 but cannot make it fresh: its timestamp does (WireGuard's initiation)...
      const at = now();
      const fresh = checkTimestampPayload(payload, at, options.freshnessMs);
      if (!fresh.ok) return new HandshakeError(`message 1 timestamp refused: ${fresh.reason}`);
      // ...and within its window this process's memory refuses a repeat
      if (!replayGuard.firstSight(hs.remoteEphemeral!, at, fresh.timestamp + options.freshnessMs)) {
        return new HandshakeError('message 1 replayed');
      }
      return null;
    } catch (error) {
      if (failure) throw failure; // the deadline, the peer's close or the caller came first
      return error instanceof Error ? error : new HandshakeError('message 1 refused', { cause: error });
    }
  };
  /** Responder: waits out the deadline (or the peer's close, or the caller), reading and dropping everything. */
  const refuse = async (reason: Error): Promise<never> => {
    refused = true;
    reader.clear();
    stream.resume();
    return failed.catch((ended: Error) => {
      if (ended instanceof AbortError) throw ended;
      throw new HandshakeError(`message 1 refused (${reason.message}); closed having sent nothing`, { cause: reason });
    });
  };

  try {
    if (failure) throw failure; // already aborted, or the stream was already gone
    let remote: RemoteIdentity;
    if (initiator) {
      // -> psk, e          (payload: our clock)
      send(hs.writeMessage(encodeTimestampPayload(now())));
      // <- e, ee, s, es    (payload: the responder's identity)
      const payload = hs.readMessage(await readFrame(MESSAGE_2_BYTES, 'message 2'));
      // The responder's signature is checked (inline with libsodium, see decodeIdentityPayload;
      // with node:crypto on the libuv pool, while message 3 is computed here: one DH, two
      // encryptions); message 3 is sent only once the check has passed: a bad signature or a
      // mismatch stops before our identity is ever sent to the wrong peer.
      const verified = verify(payload);
      verified.catch(() => {}); // observed below
      await Promise.resolve(); // lets a verifier that dispatches its work on a microtask start it first
      // -> s, se           (payload: our identity)
      const message3 = hs.writeMessage(encodeIdentityPayload(identity, s.publicKey));
      remote = await verified;
      if (failure) throw failure;
      send(message3);
    } else {
      // -> psk, e          (payload: the initiator's clock; anything we cannot open: silence, see above)
      const refusal = await openMessage1();
      if (refusal) await refuse(refusal);
      opened = true;
      // <- e, ee, s, es    (payload: our identity)
      send(hs.writeMessage(encodeIdentityPayload(identity, s.publicKey)));
      // -> s, se           (payload: the initiator's identity)
      const payload = hs.readMessage(await readFrame(MESSAGE_3_BYTES, 'message 3'));
      remote = await verify(payload);
    }
    if (failure) throw failure;
    cleanup();
    const [c1, c2] = hs.split();
    const [send1, receive] = initiator ? [c1, c2] : [c2, c1];
    return { send: send1, receive, remote, handshakeHash: hs.getHandshakeHash(), reader };
  } catch (error) {
    cleanup();
    stream.destroy();
    if (error instanceof SignetError) throw error;
    throw new HandshakeError('handshake failed', { cause: error });
  }
}
