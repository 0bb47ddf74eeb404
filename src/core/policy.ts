// Write policies: which source may write which key. Pure and deterministic, so every
// node reaches the same verdict on the same update.
import { isNodeId, type NodeId } from '../identity/node-id.ts';

/** A write policy: true if `source` may write `key`. Must be pure (same answer on every node).
 *  `policyName` names the built-in ones; `writerIds` is the list a `writers()` policy allows. */
export type WritePolicy = ((source: NodeId, key: string) => boolean) & { readonly policyName?: string; readonly writerIds?: readonly NodeId[] };

const named = (name: string, fn: (source: NodeId, key: string) => boolean): WritePolicy =>
  Object.assign(fn, { policyName: name });

/** Any member may write any key. The default for a standalone Model. */
export function open(): WritePolicy {
  return named('open', () => true);
}

/** A source writes only keys under `<its id>/`. */
export function owner(): WritePolicy {
  return named('owner', (source, key) => key.length > source.length + 1 && key.startsWith(source) && key[source.length] === '/');
}

/**
 * Only the listed sources may write (any key).
 * @throws TypeError / RangeError unless `ids` is a non-empty array of node ids.
 */
export function writers(ids: readonly NodeId[]): WritePolicy {
  if (!Array.isArray(ids)) throw new TypeError('"ids" expected an array of node ids');
  if (ids.length === 0) throw new RangeError('"ids" expected at least one node id');
  for (const id of ids) if (!isNodeId(id)) throw new RangeError(`"ids" contains something that is not a node id: ${String(id).slice(0, 60)}`);
  const allowed = new Set(ids);
  return Object.assign(named('writers', (source) => allowed.has(source)), { writerIds: Object.freeze([...allowed].sort()) });
}

/** The named policies, for configuration by name (CLI `--policy`). */
export const policies = { open, owner, writers };
