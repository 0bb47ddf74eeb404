// Range-based set reconciliation: the front door. A pure engine (no I/O, no timers) that the
// replication stream drives; see session.ts for how, and fingerprint.ts for why it is safe.

export { ReconcileSession, type ReconcileSessionOptions, type ReconcileStep, type ReconcileStats } from './session.ts';
export { newNonce, sessionSalt, NONCE_BYTES, SALT_BYTES, FINGERPRINT_BYTES, type SaltShare } from './fingerprint.ts';
export { compareItems, type ReconcileItem } from './items.ts';
export { RECONCILE_FORMAT } from './messages.ts';
export type { ReconcileReason } from './wire.ts';
export {
  MAX_RECONCILE_MESSAGE_BYTES,
  MAX_RANGES_PER_MESSAGE,
  MAX_IDS_PER_MESSAGE,
  MAX_ROUNDS,
  MAX_NEED_PER_SESSION,
  RECONCILE_BRANCHING,
  IDLIST_THRESHOLD,
  DEFAULT_RECONCILE_LIMITS,
  type ReconcileLimits,
} from './limits.ts';
