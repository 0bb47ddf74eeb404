// Membership: who is in the mesh and whether they are alive, learned only from records each
// member signed itself in a system dataset (owner policy), with a phi-accrual detector per member.
import { EventEmitter } from 'node:events';
import type { Value } from '../envelope/cbor.ts';
import type { Update } from '../envelope/update.ts';
import { isNodeId, type NodeId } from '../identity/node-id.ts';
import { MAX_CLOCK_SKEW_MICROS, MAX_MEMBER_ADDRESSES, MAX_MEMBERS } from '../limits.ts';
import type { Model } from '../models/model.ts';
import { isWildcardHost, parseHostPort } from '../util/address.ts';
import { PhiAccrualDetector, type PhiAccrualOptions } from './phi-accrual.ts';

/** Name of the system dataset. Names starting with `signet:` are reserved for the Node. */
export const MEMBERS_DATASET = 'signet:members';
/** Largest membership record (body bytes): room for MAX_MEMBER_ADDRESSES addresses. */
export const MEMBER_RECORD_MAX_BYTES = 4096;
/** A member's record of where it listens: key `<id>/node`, value `{ addresses: ['host:port', ...] }`. */
export const NODE_KEY = 'node';
/** A member's liveness record: key `<id>/alive`, value a counter. Each one replaces the last. */
export const ALIVE_KEY = 'alive';

/** What a Node knows about one member. */
export interface MemberInfo {
  id: NodeId;
  /** Where it said it listens (its own signed record); empty if it does not accept connections. */
  addresses: string[];
  /** The first of `addresses` (what peers dial first), or undefined. */
  address: string | undefined;
  state: 'alive' | 'dead';
  /** Suspicion now (0 right after a heartbeat; `PHI_THRESHOLD` convicts); Infinity before any. */
  phi: number;
  /** When its latest heartbeat arrived, in the Node's clock (ms), or null if none has. */
  lastSeen: number | null;
}

/** Events of a {@link Membership}. */
export interface MembershipEvents {
  /** A member heard alive for the first time (by this process). */
  new: [member: MemberInfo];
  /** A live member's phi reached the threshold. */
  dead: [member: MemberInfo];
  /** A member convicted dead was heard again. */
  alive: [member: MemberInfo];
}

/** Options of a {@link Membership}. */
export interface MembershipOptions {
  /** The system dataset (owner policy), already created for this node. */
  model: Model;
  /** The Node's monotonic clock, in ms. */
  now: () => number;
  /** The wall clock in µs (the clock update versions are signed with). */
  wallMicros: () => number;
  /** How often members sign a heartbeat (ms). */
  heartbeatIntervalMs: number;
  /** Phi-accrual parameters for every member. */
  phi: PhiAccrualOptions;
  /** Members tracked at most. Default MAX_MEMBERS. */
  maxMembers?: number;
}

interface Member {
  id: NodeId;
  addresses: string[];
  state: 'alive' | 'dead';
  detector: PhiAccrualDetector;
  /** 'new' was emitted: it has been heard alive in this process. */
  announced: boolean;
}

/**
 * The membership table. A member exists once it signed a record under its own id (the owner
 * policy refuses anyone else's), so nobody can add, move or kill another member: addresses
 * come from a member's own `node` record, liveness from the arrival of its own `alive` records
 * (each newer than the last, or the core would not apply it). Death is each node's own
 * judgement (phi over arrivals), never a claim someone sends.
 */
export class Membership extends EventEmitter<MembershipEvents> {
  readonly model: Model;
  private readonly options: MembershipOptions;
  private readonly members = new Map<NodeId, Member>();
  private readonly maxMembers: number;
  private beats = 0;

  constructor(options: MembershipOptions) {
    super();
    this.options = options;
    this.model = options.model;
    this.maxMembers = options.maxMembers ?? MAX_MEMBERS;
    this.model.on('change', (change) => this.changed(change.key, change.value, change.update));
  }

  /** Reads the records already held (from a store), then signs ours: where we listen, and a heartbeat. */
  start(addresses: readonly string[]): void {
    for (const key of this.model.keys()) {
      const update = this.model.updateOf(key);
      if (update) this.changed(key, this.model.get(key), update);
    }
    const self = this.model.id;
    const current = this.model.get(`${self}/${NODE_KEY}`);
    const record = { addresses: [...addresses] };
    if (JSON.stringify(current) !== JSON.stringify(record)) this.model.set(`${self}/${NODE_KEY}`, record);
    this.heartbeat();
  }

  /** Signs a new liveness record. */
  heartbeat(): void {
    this.model.set(`${this.model.id}/${ALIVE_KEY}`, ++this.beats);
  }

  /** Convicts members whose phi reached the threshold (`'dead'` events). */
  check(): void {
    const now = this.options.now();
    for (const m of this.members.values()) {
      if (m.state === 'alive' && !m.detector.isAvailable(now)) {
        m.state = 'dead';
        this.emit('dead', this.info(m, now));
      }
    }
  }

  /** Every member but this node. */
  list(): MemberInfo[] {
    const now = this.options.now();
    return [...this.members.values()].map((m) => this.info(m, now));
  }

  get(id: NodeId): MemberInfo | undefined {
    const m = this.members.get(id);
    return m && this.info(m, this.options.now());
  }

  get size(): number {
    return this.members.size;
  }

  private info(m: Member, now: number): MemberInfo {
    // The detector answers 0 before its first heartbeat (not yet suspected); a member known only
    // from its address record has never been heard alive, which MemberInfo reports as Infinity.
    const last = m.detector.lastHeartbeat;
    return { id: m.id, addresses: [...m.addresses], address: m.addresses[0], state: m.state, phi: last === undefined ? Infinity : m.detector.phi(now), lastSeen: last ?? null };
  }

  private changed(key: string, value: Value | undefined, update: Update): void {
    const slash = key.indexOf('/');
    const id = key.slice(0, slash);
    const field = key.slice(slash + 1);
    // The owner policy guarantees id === update.source; checked again, as this is where trust is decided.
    if (id === this.model.id || id !== update.source || !isNodeId(id)) return;
    if (field !== NODE_KEY && field !== ALIVE_KEY) return;
    let m = this.members.get(id);
    if (!m) {
      if (this.members.size >= this.maxMembers && !this.evictOneDead()) return;
      m = { id, addresses: [], state: 'dead', detector: new PhiAccrualDetector(this.options.phi), announced: false };
      this.members.set(id, m);
    }
    if (field === NODE_KEY) m.addresses = addressesOf(value);
    if (field !== ALIVE_KEY || !this.fresh(update)) return;
    // A member back from the dead starts a new window: the silence is not an interval of its
    // heartbeat, and would inflate the mean so that its next death took far longer to see.
    const revived = m.state === 'dead';
    if (revived && m.detector.lastHeartbeat !== undefined) m.detector = new PhiAccrualDetector(this.options.phi);
    m.detector.heartbeat(this.options.now());
    m.state = 'alive';
    const now = this.options.now();
    // 'new' the first time a member is heard alive (one known only from old records is listed,
    // dead, but not announced); 'alive' when a member convicted dead is heard again.
    if (!m.announced) {
      m.announced = true;
      this.emit('new', this.info(m, now));
    } else if (revived) this.emit('alive', this.info(m, now));
  }

  /**
   * Makes room in a full table by forgetting the dead member heard from least recently (one
   * never heard first). Policy: identities cost nothing to mint, so a flood of them must not
   * fill the table for good; to hold a place a member has to keep signing heartbeats. Live
   * members are never evicted: when all are alive, the newcomer is not tracked.
   */
  private evictOneDead(): boolean {
    let victim: Member | undefined;
    for (const m of this.members.values()) {
      if (m.state !== 'dead') continue;
      if (!victim || (m.detector.lastHeartbeat ?? -Infinity) < (victim.detector.lastHeartbeat ?? -Infinity)) victim = m;
      if (victim.detector.lastHeartbeat === undefined) break;
    }
    if (!victim) return false;
    this.members.delete(victim.id);
    return true;
  }

  /** A heartbeat counts as an arrival only if it was signed recently (within the clock skew
   *  members may have, plus two intervals): an old one learned from history says nothing
   *  about whether its member is alive now. */
  private fresh(update: Update): boolean {
    const windowMicros = MAX_CLOCK_SKEW_MICROS + 2 * this.options.heartbeatIntervalMs * 1000;
    return update.version >= this.options.wallMicros() - windowMicros;
  }
}

/** The addresses in a member's `node` record that parse as a dialable `host:port`, from its first
 *  MAX_MEMBER_ADDRESSES entries; anything else in the record (other types, garbage, a wildcard
 *  host, which nobody can dial) is ignored, as the member wrote it under its own id only. */
function addressesOf(value: Value | undefined): string[] {
  const list = (value as { addresses?: unknown } | undefined)?.addresses;
  if (!Array.isArray(list)) return [];
  const out: string[] = [];
  for (const a of list.slice(0, MAX_MEMBER_ADDRESSES)) {
    try {
      if (!isWildcardHost(parseHostPort(a, 'address').host)) out.push(a as string);
    } catch {
      // not an address: ignored
    }
  }
  return out;
}
