// Types shared by the core pipeline and the streams that feed it.
import type { Update, UpdateReason } from '../envelope/update.ts';
import type { NodeId } from '../identity/node-id.ts';

/** Why an update from a peer was refused. Each counts against that peer's fault budget,
 *  except `quarantined` and `future` (validly signed updates an honest peer may relay unknowingly). */
export type RejectReason = UpdateReason | 'future' | 'forbidden' | 'quarantined';

/** Where an update came from: a stream, which counts faults and never gets it echoed back. */
export interface UpdateOrigin {
  /** Records a rejection against this peer (and may close the connection). */
  fault(rejection: Rejection): void;
}

/** An update that was refused, with the reason code and the peer that sent it. */
export interface Rejection {
  reason: RejectReason;
  detail: string;
  /** The parsed update, when it got that far (never applied). */
  update: Update | undefined;
  origin: UpdateOrigin | null;
}

/** Two different validly signed updates from one source with one version. */
export interface Equivocation {
  source: NodeId;
  version: number;
  /** Both updates, as signed: the evidence. */
  updates: [Update, Update];
}

/** What became of one ingested envelope. */
export type IngestResult =
  | { status: 'applied'; update: Update }
  | { status: 'old' }
  /** Verified, from the future: held and applied when its time comes. */
  | { status: 'deferred' }
  | { status: 'ignored' }
  | { status: 'rejected'; reason: RejectReason };
