// The gossip scheduler's choice: whom to dial this round. Pure, with the randomness injected,
// after gossipmonger: a seed while few peers are live, sometimes a dead member, else a live one.
import type { NodeId } from '../identity/node-id.ts';

/** Something the Node may dial. */
export interface DialTarget {
  /** `host:port`: the key of its backoff. */
  address: string;
  host: string;
  port: number;
  /** The id it must prove: a pinned seed's, or a member's (learned from its own signed record). */
  id: NodeId | undefined;
  seed: boolean;
}

/** What the scheduler knows this round; every list holds only dialable targets (not connected,
 *  not banned, not backing off, not ourselves). */
export interface GossipRound {
  seeds: DialTarget[];
  /** Members judged alive / dead by the failure detector. */
  live: DialTarget[];
  dead: DialTarget[];
  /** Peers connected now, and how many of those we dialed. */
  connected: number;
  outbound: number;
  /** Whether any connection now is to a seed. */
  seedConnected: boolean;
  maxPeers: number;
  /** Outbound connections made even when inbound peers fill maxPeers (eclipse resistance). */
  reservedOutbound: number;
  random: () => number;
}

const pick = <T>(list: T[], random: () => number): T | null => (list.length === 0 ? null : list[Math.floor(random() * list.length)]!);

/**
 * The target of this round's dial, or null. Dials while fewer than `maxPeers` are connected, and
 * while fewer than `reservedOutbound` of them are our own dials, however many peers dialed us.
 * - a seed, while fewer peers are connected than there are seeds, or while no seed is among the
 *   reserved outbound slots (gossipmonger gossips with a seed while few peers are live);
 * - otherwise a dead member with probability dead / (live + 1) (so partitions heal, and a
 *   member wrongly convicted is retried), else a live member; either list stands in for the other.
 */
export function chooseTarget(round: GossipRound): DialTarget | null {
  const { seeds, live, dead, connected, outbound, random } = round;
  if (connected >= round.maxPeers && outbound >= round.reservedOutbound) return null;
  const needSeed = connected < seeds.length || (outbound < round.reservedOutbound && !round.seedConnected);
  if (needSeed && seeds.length > 0) return pick(seeds, random);
  if (dead.length > 0 && (live.length === 0 || random() < dead.length / (live.length + 1))) return pick(dead, random);
  return pick(live, random) ?? pick(seeds, random);
}
