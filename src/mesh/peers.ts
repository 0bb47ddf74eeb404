// The peer table: the one connection a Node keeps to each peer, the rule that settles two
// connections to one node (simultaneous dials), and which connections a full node sheds.
import type { NodeId } from '../identity/node-id.ts';
import type { SecureChannel } from '../channel/secure-channel.ts';
import type { Mux } from './mux.ts';

/** An established, authenticated connection to a peer. */
export interface Connection {
  /** The node id the secure channel proved. */
  readonly id: NodeId;
  readonly channel: SecureChannel;
  readonly mux: Mux;
  /** 'out': we dialed it; 'in': it dialed us. */
  readonly direction: 'in' | 'out';
  /** The remote IP in canonical form (what per-address limits count). */
  readonly ip: string;
  /** The remote `host:port` of the socket. */
  readonly address: string;
  /** When it was established (the Node's clock, ms). */
  readonly since: number;
  /** Dialed as a seed, or the peer is one: protected from trimming. */
  seed: boolean;
  /** Displaced by a newer connection to the same node: its close is not a `'peer:down'`. */
  replaced: boolean;
  /** The backoff key of the dial that made it (ours only). */
  readonly dialKey?: string;
  /** `'peer:up'` was emitted for the peer on this connection (or one it replaced): its close is a `'peer:down'`. */
  announced: boolean;
}

/**
 * Which of two connections to one node to keep, decided the same way at both ends (each side
 * sees the other's direction mirrored, and both know both ids):
 * - one dialed by each side (a simultaneous dial): keep the one dialed by the smaller node id;
 * - both dialed by the same side: keep the newer (that side redialed because the older one
 *   died from where it stands; the other end has simply not noticed yet).
 */
export function keepsNew(selfId: NodeId, existing: Connection, fresh: Connection): boolean {
  if (existing.direction === fresh.direction) return true;
  const initiator = (c: Connection): NodeId => (c.direction === 'out' ? selfId : c.id);
  return initiator(fresh) < initiator(existing);
}

/** The connections of one Node, one per peer id. */
export class PeerTable {
  private readonly selfId: NodeId;
  private readonly byId = new Map<NodeId, Connection>();

  constructor(selfId: NodeId) {
    this.selfId = selfId;
  }

  get(id: NodeId): Connection | undefined {
    return this.byId.get(id);
  }

  get size(): number {
    return this.byId.size;
  }

  all(): Connection[] {
    return [...this.byId.values()];
  }

  /** Connections we dialed. */
  get outbound(): number {
    let n = 0;
    for (const c of this.byId.values()) if (c.direction === 'out') n++;
    return n;
  }

  /** Connections from `ip` (canonical form). */
  countIp(ip: string): number {
    let n = 0;
    for (const c of this.byId.values()) if (c.ip === ip) n++;
    return n;
  }

  /**
   * Adds `fresh` unless a connection to its node should be kept instead (see {@link keepsNew}).
   * @returns 'added'; 'replaces' with the displaced connection (the caller closes it); or
   *   'rejected' (the caller closes `fresh`).
   */
  add(fresh: Connection): { result: 'added' } | { result: 'replaces'; old: Connection } | { result: 'rejected' } {
    const existing = this.byId.get(fresh.id);
    if (existing && !keepsNew(this.selfId, existing, fresh)) return { result: 'rejected' };
    this.byId.set(fresh.id, fresh);
    if (!existing) return { result: 'added' };
    existing.replaced = true;
    return { result: 'replaces', old: existing };
  }

  /** Removes `connection` if it is the current one for its node; true if it was. */
  remove(connection: Connection): boolean {
    if (this.byId.get(connection.id) !== connection) return false;
    this.byId.delete(connection.id);
    return true;
  }

  /**
   * Connections to close so that at most `keep` remain. Protected, never chosen: the ones we
   * dialed and seeds (an attacker cannot make us dial it, so these keep us in the mesh), and
   * the `protectedOldest` longest-lived inbound ones (a flood of new connections cannot
   * displace peers that have been with us). The rest are chosen at random, so a flood mostly
   * evicts itself.
   */
  surplus(keep: number, protectedOldest: number, random: () => number): Connection[] {
    if (this.byId.size <= keep) return [];
    const inbound = [...this.byId.values()].filter((c) => c.direction === 'in' && !c.seed).sort((a, b) => a.since - b.since);
    const candidates = inbound.slice(protectedOldest);
    const victims: Connection[] = [];
    while (victims.length < this.byId.size - keep && candidates.length > 0) {
      victims.push(candidates.splice(Math.floor(random() * candidates.length), 1)[0]!);
    }
    return victims;
  }
}
