// The datasets a Node hosts: how each is described to peers in an OPEN, which peer OPENs are
// compatible with ours, and the replication stream options for each pair of roles.
import { createHash } from 'node:crypto';
import type { AnyScuttlebutt } from '../core/scuttlebutt.ts';
import type { WritePolicy } from '../core/policy.ts';
import type { NodeId } from '../identity/node-id.ts';
import type { StreamOptions } from '../replication/stream.ts';
import type { OpenInfo } from './mux-messages.ts';

/** A dataset hosted by a Node. */
export interface Hosted {
  model: AnyScuttlebutt;
  info: OpenInfo;
  /** True once the model loaded from the store: only then is it offered to peers. */
  ready: boolean;
}

/** Longest custom policy name carried in a descriptor, in UTF-16 code units (a peer refuses an
 *  OPEN whose policy is longer than 128); past it the name is cut. */
const MAX_CUSTOM_NAME = 90;
/** Longest replication profile carried after the policy (Model's is at most 24 characters). */
const MAX_PROFILE = 30;
/** A surrogate without its other half: what UTF-8 cannot carry (TextEncoder writes U+FFFD). */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/**
 * How a policy is named to peers, so that two nodes whose copies of a dataset would judge the
 * same update differently never replicate it (each would count the other's updates as faults).
 * `writers` carries a digest of its sorted ids; a custom policy its name, which the user keeps
 * meaningful (the function itself cannot be compared). The descriptor is well-formed UTF-16
 * (lone surrogates replaced by U+FFFD, a cut never splitting a pair), so it reads the same after
 * the UTF-8 round trip of an OPEN as it does here.
 */
export function policyDescriptor(policy: WritePolicy): string {
  const name = policy.policyName;
  if (name === 'open' || name === 'owner') return name;
  if (name === 'writers' && policy.writerIds) {
    const digest = createHash('sha256').update([...policy.writerIds].sort().join(',')).digest('hex').slice(0, 32);
    return `writers:${digest}`;
  }
  let custom = (name ?? 'anonymous').replace(LONE_SURROGATE, '\uFFFD');
  if (custom.length > MAX_CUSTOM_NAME) {
    custom = custom.slice(0, MAX_CUSTOM_NAME);
    if (/[\uD800-\uDBFF]$/.test(custom)) custom = custom.slice(0, -1);
  }
  return `custom:${custom}`;
}

/**
 * What an OPEN says of a dataset: its policy descriptor, then `;` and the model's replication
 * profile (kind, merge rule, history bounds; see Scuttlebutt.replicationProfile), so that two
 * copies configured differently are refused rather than offering each other updates forever.
 */
export function datasetDescriptor(policy: WritePolicy, profile: string): string {
  const p = policyDescriptor(policy);
  return profile === '' ? p : `${p};${profile.slice(0, MAX_PROFILE)}`;
}

/**
 * Whether we replicate our copy `ours` with a peer's copy `theirs` of the same dataset; null
 * if so, else the refusal reason sent to the peer.
 * - two ordinary copies need the same policy (`policy-mismatch`) and the same replication
 *   profile (`config-mismatch`);
 * - a replica follows one master: two replicas of different masters do not mix;
 * - a replica and an ordinary copy mix whatever the ordinary copy's policy: the replica accepts
 *   only its master's updates, and the ordinary side sends it nothing else (see streamOptions).
 */
export function compatible(ours: OpenInfo, theirs: OpenInfo): string | null {
  if (ours.replicaOf !== null && theirs.replicaOf !== null) return ours.replicaOf === theirs.replicaOf ? null : 'master-mismatch';
  if (ours.replicaOf !== null || theirs.replicaOf !== null) return null;
  if (ours.policy === theirs.policy) return null;
  const policyOf = (descriptor: string): string => descriptor.split(';')[0]!;
  return policyOf(ours.policy) === policyOf(theirs.policy) ? 'config-mismatch' : 'policy-mismatch';
}

/**
 * Replication stream options for one session, from the two OPENs:
 * - the peer follows us (its replicaOf is our id): we send, and accept nothing from it;
 * - we follow the peer: we receive and never send upstream (our hello carries our clock);
 * - the peer is a replica of someone else: we send it only that master's updates;
 * - otherwise both ways.
 */
export function streamOptions(selfId: NodeId, peerId: NodeId, ours: OpenInfo, theirs: OpenInfo): StreamOptions {
  if (theirs.replicaOf === selfId) return { writable: false, awaitClock: true };
  if (ours.replicaOf === peerId) return { readable: false, sendClock: true };
  const master = theirs.replicaOf;
  if (master !== null) return { filter: (update) => update.source === master };
  return {};
}
