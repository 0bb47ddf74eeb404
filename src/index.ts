// signet's public API: a named list of exports. Nothing else is public.

export {
  SignetError, KeyFileError, KeyPermissionError, WriteError, ProtocolError, HandshakeError,
  PeerMismatchError, DecryptError, FrameTooLargeError, TruncationError, TimeoutError,
  AbortError, NonceExhaustedError, StoreError, ChannelProtocolError, HandshakeLimitError, ListenError, ConnectError, BannedError, HandshakeAbandonedError,
  ResolveError,
} from './errors.ts';
export * as limits from './limits.ts';

// identity/
export { Identity } from './identity/identity.ts';
export { nodeIdOf, isNodeId, shortId, type NodeId } from './identity/node-id.ts';
export {
  saveIdentity, loadIdentity, generateNetworkKey, saveNetworkKey, loadNetworkKey,
  NETWORK_KEY_LENGTH, type SaveKeyOptions,
} from './identity/key-files.ts';
export { verifySignature, defaultSignatureBackend, DOMAIN, type SignatureBackend, type VerifyOptions } from './identity/signature.ts';

// envelope/
export {
  parseUpdate, openUpdate, verifyUpdate, signUpdate, nextVersion, wallClockMicros,
  type Update, type UpdateReason, type UpdateResult, type UpdateOptions, type UpdateFields, type Value,
} from './envelope/index.ts';

// core/ and models/
export { Scuttlebutt, type ScuttlebuttOptions, type ScuttlebuttEvents } from './core/scuttlebutt.ts';
export { open, owner, writers, policies, type WritePolicy } from './core/policy.ts';
export { compareUpdates } from './core/order.ts';
export type { RejectReason, Rejection, Equivocation, IngestResult, UpdateOrigin } from './core/types.ts';
export {
  Model, Events, type ModelOptions, type ModelEvents, type SetOptions, type Change, type EventsOptions, type EventsEvents,
  MAX_KEPT_VERSIONS, lastWriterWins, checkResolve, versionRecord, type ResolveFn, type VersionRecord,
  MAX_EVENT_TTL_MS, PATTERN_SEPARATOR, type EmitOptions, type PatternListener,
} from './models/index.ts';

// replication/
export {
  ReplicationStream, createStream, PROTOCOL_VERSION, type StreamOptions, type Header, type StreamStats, type Progress,
  type ReplicationStreamEvents, type CutReason,
} from './replication/index.ts';
export type { HistoryOrdering } from './replication/batches.ts';

// store/
export { MemoryStore, type Store, type StoreBatch, type StoredState, type StoreUpdate, type StoreUpdateName } from './store/store.ts';
export { LmdbStore, LMDB_STORE_FORMAT, type LmdbStoreOptions } from './store/lmdb.ts';

// channel/
export {
  secureChannel, SecureChannel, HandshakeLimiter, listen, SecureListener, dial, replicate,
  CLOSE_TIMEOUT_MS, tcpTransport, MemoryNetwork,
} from './channel/index.ts';
export { unixSocketTransport, unixSocketPath, UNIX_REMOTE_ADDRESS, MAX_UNIX_SOCKET_PATH_BYTES, type UnixSocketTransportOptions } from './channel/unix-transport.ts';
export type {
  SecureChannelOptions, SecureChannelEvents, ChannelLimits, RemoteIdentity, HandshakeLimiterOptions, ReleaseHandshake,
  ListenOptions, Refusal, Disconnect, SecureListenerEvents, CloseOptions, DialOptions, Transport, TransportServer, TransportStream,
} from './channel/index.ts';

// mesh/
export {
  Node, PUBLIC_NETWORK_KEY, type NodeOptions, type NodeEvents, type DatasetOptions, type DatasetClass, type PeerInfo, type BanInfo, type NodeStats,
} from './mesh/node.ts';
export { MEMBERS_DATASET, type MemberInfo } from './mesh/membership.ts';
export { PhiAccrualDetector, type PhiAccrualOptions } from './mesh/phi-accrual.ts';
export { BanList, type BanListOptions, type BanEntry, type BanKey } from './mesh/bans.ts';
export { Backoff, type BackoffOptions } from './mesh/backoff.ts';
