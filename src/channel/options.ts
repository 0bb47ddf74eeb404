// Options of secureChannel(): checked where they enter (TypeError / RangeError naming the
// argument), with every limit resolved to its named default from limits.ts.
import { Duplex } from 'node:stream';
import { Identity } from '../identity/identity.ts';
import { isNodeId, type NodeId } from '../identity/node-id.ts';
import {
  HANDSHAKE_FRESHNESS_MS,
  HANDSHAKE_TIMEOUT_MS,
  IDLE_TIMEOUT_MS,
  KEEPALIVE_INTERVAL_MS,
  MAX_MESSAGE_BYTES,
} from '../limits.ts';
import { assertBytes, assertInteger } from '../util/bytes.ts';
import type { ChannelTestHooks } from './handshake.ts';

/** Per-channel limits; each defaults to the named constant in limits.ts. */
export interface ChannelLimits {
  /** Handshake deadline, combined with (never replacing) `signal`. Default HANDSHAKE_TIMEOUT_MS (10 s). */
  handshakeTimeoutMs: number;
  /**
   * Responder: how far (ms, either way) the timestamp in message 1 may be from our clock; past it
   * message 1 is refused like any other we cannot open. Default HANDSHAKE_FRESHNESS_MS (2 min).
   */
  handshakeFreshnessMs: number;
  /** Largest application message received; past it the session ends (ERR_FRAME_TOO_LARGE). Default MAX_MESSAGE_BYTES (16 MiB). */
  maxMessageBytes: number;
  /** Send an encrypted keepalive after this long without sending; 0 disables. Default KEEPALIVE_INTERVAL_MS (15 s). */
  keepaliveMs: number;
  /** End the session (ERR_TIMEOUT) after this long without an authenticated frame; 0 disables. Default IDLE_TIMEOUT_MS (60 s). */
  idleTimeoutMs: number;
}

/** Options of {@link secureChannel}. */
export interface SecureChannelOptions {
  /** This node's identity; its public key and a signature over the Noise static key go to the peer. */
  identity: Identity;
  /** 32-byte network key; only holders of the same key can complete a handshake. */
  networkKey: Uint8Array;
  /** True for the dialer (sends message 1), false for the listener. */
  initiator: boolean;
  /** Node id the peer must prove, else ERR_PEER_MISMATCH. Default: any member. */
  expectedPeer?: NodeId;
  /** Cancels the handshake (ERR_ABORTED). The handshake deadline applies as well. */
  signal?: AbortSignal;
  /** Overrides of {@link ChannelLimits}. */
  limits?: Partial<ChannelLimits>;
  /** Keep sending after the peer's close frame until `end()` is called. Default false (like net.Socket). */
  allowHalfOpen?: boolean;
  /** TEST ONLY: key injection and observation hooks. Never set in production. */
  testing?: ChannelTestHooks;
}

const MAX_TIMER_MS = 2 ** 31 - 1;
/** A wider freshness window than a day would make the message 1 timestamp meaningless. */
const MAX_FRESHNESS_MS = 24 * 60 * 60 * 1000;

/** Checks the options and fills in the limits. @throws TypeError / RangeError naming the option. */
export function resolveOptions(stream: unknown, options: SecureChannelOptions): ChannelLimits {
  if (!(stream instanceof Duplex)) throw new TypeError('"stream" expected a Duplex stream');
  if (typeof options !== 'object' || options === null) throw new TypeError('"options" expected an object');
  if (!(options.identity instanceof Identity)) throw new TypeError('"identity" expected an Identity');
  assertBytes(options.networkKey, 'networkKey', 32);
  if (typeof options.initiator !== 'boolean') throw new TypeError('"initiator" expected boolean');
  if (options.expectedPeer !== undefined && !isNodeId(options.expectedPeer)) {
    throw new TypeError('"expectedPeer" expected a node id (52 base32 characters)');
  }
  if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) {
    throw new TypeError('"signal" expected an AbortSignal');
  }
  if (options.allowHalfOpen !== undefined && typeof options.allowHalfOpen !== 'boolean') {
    throw new TypeError('"allowHalfOpen" expected boolean');
  }
  const limits: ChannelLimits = {
    handshakeTimeoutMs: options.limits?.handshakeTimeoutMs ?? HANDSHAKE_TIMEOUT_MS,
    handshakeFreshnessMs: options.limits?.handshakeFreshnessMs ?? HANDSHAKE_FRESHNESS_MS,
    maxMessageBytes: options.limits?.maxMessageBytes ?? MAX_MESSAGE_BYTES,
    keepaliveMs: options.limits?.keepaliveMs ?? KEEPALIVE_INTERVAL_MS,
    idleTimeoutMs: options.limits?.idleTimeoutMs ?? IDLE_TIMEOUT_MS,
  };
  assertInteger(limits.handshakeTimeoutMs, 'handshakeTimeoutMs', 1, MAX_TIMER_MS);
  assertInteger(limits.handshakeFreshnessMs, 'handshakeFreshnessMs', 0, MAX_FRESHNESS_MS);
  assertInteger(limits.maxMessageBytes, 'maxMessageBytes', 0, 2 ** 32 - 1);
  assertInteger(limits.keepaliveMs, 'keepaliveMs', 0, MAX_TIMER_MS);
  assertInteger(limits.idleTimeoutMs, 'idleTimeoutMs', 0, MAX_TIMER_MS);
  return limits;
}
