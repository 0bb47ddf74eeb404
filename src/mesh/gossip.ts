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
  /** Seeds configured (dialable or not), and members the failure detector holds alive. */
  seedCount: number;
  liveMembers: number;
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
 * - a seed, while fewer members are alive than there are seeds (gossipmonger gossips with a
 *   seed while live peers are fewer than seeds), or while nothing we dialed and no seed is
 *   connected (inbound peers alone, perhaps an attacker's, never decide our view); a seed that
 *   is backing off is not dialable, so a node that knows the mesh then goes to a member, and the
 *   seeds are not the bottleneck of every (re)join;
 * - otherwise a dead member with probability dead / (live + 1) (so partitions heal, and a
 *   member wrongly convicted is retried), else a live member; either list stands in for the other.
 */
export function chooseTarget(round: GossipRound): DialTarget | null {
  const { seeds, live, dead, connected, outbound, random } = round;
  if (connected >= round.maxPeers && outbound >= round.reservedOutbound) return null;
  const needSeed = connected === 0 || round.liveMembers < round.seedCount || (outbound === 0 && !round.seedConnected);
  if (needSeed && seeds.length > 0) return pick(seeds, random);
  if (dead.length > 0 && (live.length === 0 || random() < dead.length / (live.length + 1))) return pick(dead, random);
  return pick(live, random) ?? pick(seeds, random);
}
