// Every error signet throws, in one place. Tests and callers branch on `code`, never on
// message text. Bad data from a peer is a result ({ ok: false, reason }), not one of these.

/** The message of anything thrown (an Error's, else its string form), for reports and logs. */
export function messageOf(err: unknown): string {
  return (err as Error)?.message ?? String(err);
}

/** Base class: every signet error carries a stable `code`. */
export class SignetError extends Error {
  readonly code: string = 'ERR_SIGNET';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A key file is missing, malformed, or holds the wrong kind of key. */
export class KeyFileError extends SignetError {
  override readonly code = 'ERR_KEY_FILE';
}

/** A secret file can be read by group or other; the message names the file and the fix. */
export class KeyPermissionError extends SignetError {
  override readonly code = 'ERR_KEY_PERMISSIONS';
}

/** A local write was refused (write policy, limits, disposed model). */
export class WriteError extends SignetError {
  override readonly code = 'ERR_WRITE';
}

/** A merge rule broke its contract (see ResolveFn in models/resolve.ts): it picked different winners for the
 *  same two versions, returned something else than one of them, threw, or is not transitive. */
export class ResolveError extends SignetError {
  override readonly code = 'ERR_RESOLVE';
}

/** The replication protocol was broken by the peer; `reason` is the rejection code. */
export class ProtocolError extends SignetError {
  override readonly code = 'ERR_PROTOCOL';
  constructor(readonly reason: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** The Noise handshake failed (bad network key, bad identity payload, wrong length). */
export class HandshakeError extends SignetError {
  override readonly code: string = 'ERR_HANDSHAKE';
}

/** A responder's handshake ended because the dialer hung up after message 2: it held the network
 *  key (message 1 opened), and either expected another node id (a stale or wrong pin, an address
 *  that moved) or gave up. Not a sign of a prober: nothing to ban an address for. */
export class HandshakeAbandonedError extends HandshakeError {
  override readonly code = 'ERR_HANDSHAKE_ABANDONED';
}

/** The remote proved an identity other than the one the dialer expected. */
export class PeerMismatchError extends SignetError {
  override readonly code = 'ERR_PEER_MISMATCH';
}

/** An authenticated frame failed to decrypt: tampering, replay, reordering or loss. */
export class DecryptError extends SignetError {
  override readonly code = 'ERR_DECRYPT';
}

/** A frame or reassembled message was larger than the limit; nothing was allocated for it. */
export class FrameTooLargeError extends SignetError {
  override readonly code = 'ERR_FRAME_TOO_LARGE';
}

/** The transport ended without the authenticated close frame. */
export class TruncationError extends SignetError {
  override readonly code = 'ERR_TRUNCATED';
}

/** A connection was refused because the HandshakeLimiter was full (per address or in total). */
export class HandshakeLimitError extends SignetError {
  override readonly code = 'ERR_HANDSHAKE_LIMIT';
}

/** The listening socket failed: binding (EADDRINUSE, EACCES; `cause` is the system error) or accepting (EMFILE). */
export class ListenError extends SignetError {
  override readonly code = 'ERR_LISTEN';
}

/** The TCP connection could not be made (ECONNREFUSED, EHOSTUNREACH, ENOTFOUND...: see `cause`). */
export class ConnectError extends SignetError {
  override readonly code = 'ERR_CONNECT';
}

/** A deadline passed (handshake, idle). */
export class TimeoutError extends SignetError {
  override readonly code = 'ERR_TIMEOUT';
}

/** The caller's AbortSignal fired. */
export class AbortError extends SignetError {
  override readonly code = 'ERR_ABORTED';
}

/** A CipherState nonce reached 2^64-1; the session must end (Noise spec 5.1). */
export class NonceExhaustedError extends SignetError {
  override readonly code = 'ERR_NONCE_EXHAUSTED';
}

/** A store could not be opened or written: newer format, damage, I/O. */
export class StoreError extends SignetError {
  override readonly code = 'ERR_STORE';
}

/** An authenticated channel frame broke the framing rules (unknown type, stray continuation). */
export class ChannelProtocolError extends SignetError {
  override readonly code = 'ERR_CHANNEL_PROTOCOL';
}

/** A connection from a banned peer or address was refused. */
export class BannedError extends SignetError {
  override readonly code = 'ERR_BANNED';
}
