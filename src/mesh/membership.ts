// Membership: who is in the mesh and whether they are alive, learned only from records each
// member signed itself in a system dataset (owner policy), with a phi-accrual detector per member.
import { EventEmitter } from 'node:events';
import type { Value } from '../envelope/cbor.ts';
import type { Update } from '../envelope/update.ts';
import { isNodeId, type NodeId } from '../identity/node-id.ts';
import {
  HEARTBEAT_MEMBERS, MAX_CLOCK_SKEW_MICROS, MAX_HEARTBEAT_INTERVAL_MS, MAX_MEMBER_ADDRESSES, MAX_MEMBERS,
  PHI_ACCEPTABLE_HEARTBEAT_PAUSE_MS, PHI_FIRST_HEARTBEAT_ESTIMATE_MS, PHI_MIN_STD_DEVIATION_MS,
} from '../limits.ts';
import type { Model } from '../models/model.ts';
import { isWildcardHost, parseHostPort } from '../util/address.ts';
import { PhiAccrualDetector, type PhiAccrualOptions } from './phi-accrual.ts';

/** Name of the system dataset. Names starting with `signet:` are reserved for the Node. */
export const MEMBERS_DATASET = 'signet:members';
/** Largest membership record (body bytes): room for MAX_MEMBER_ADDRESSES addresses. */
export const MEMBER_RECORD_MAX_BYTES = 4096;
/** A member's record of where it listens: key `<id>/node`, value `{ addresses: ['host:port', ...] }`. */
export const NODE_KEY = 'node';
/** A member's liveness record: key `<id>/alive`, value `{ beat, every }`: a counter and the
 *  interval (ms) its member signs them at; `{ beat, every, left: true }` when it stops cleanly.
 *  Each one replaces the last. */
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
  /** The interval (ms) it says it signs heartbeats at (our base interval until it said). */
  heartbeatIntervalMs: number;
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
  /** How often this node signs a heartbeat (ms) while the mesh has at most `heartbeatMembers`
   *  live members; and the interval assumed of a member whose record does not say. */
  heartbeatIntervalMs: number;
  /** Live members the interval is sized for; beyond, it grows in proportion (up to
   *  MAX_HEARTBEAT_INTERVAL_MS). Default HEARTBEAT_MEMBERS. */
  heartbeatMembers?: number;
  /** Phi-accrual parameters for a member heartbeating at `heartbeatIntervalMs`; for one that
   *  declares another interval, the durations in them are scaled in proportion. */
  phi: PhiAccrualOptions;
  /** Members tracked at most. Default MAX_MEMBERS. */
  maxMembers?: number;
}

interface Member {
  id: NodeId;
  addresses: string[];
  state: 'alive' | 'dead';
  detector: PhiAccrualDetector;
  /** The heartbeat interval (ms) it declared, which its detector is sized for. */
  every: number;
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
  private readonly heartbeatMembers: number;
  private beats = 0;
  private interval: number;

  constructor(options: MembershipOptions) {
    super();
    this.options = options;
    this.model = options.model;
    this.maxMembers = options.maxMembers ?? MAX_MEMBERS;
    this.heartbeatMembers = options.heartbeatMembers ?? HEARTBEAT_MEMBERS;
    this.interval = Math.min(options.heartbeatIntervalMs, MAX_HEARTBEAT_INTERVAL_MS);
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

  /** Signs a new liveness record, declaring the interval until the next (see {@link heartbeatIntervalMs}). */
  heartbeat(): void {
    this.interval = this.nextInterval();
    this.model.set(`${this.model.id}/${ALIVE_KEY}`, { beat: ++this.beats, every: this.interval });
  }

  /** Signs a leaving record: members who get it judge this node dead at once (a graceful leave, as
   *  memberlist has), instead of after the failure detector's silence. Only the member itself
   *  can sign it; a later heartbeat (a restart) makes it alive again. */
  leave(): Update {
    return this.model.set(`${this.model.id}/${ALIVE_KEY}`, { beat: ++this.beats, every: this.interval, left: true });
  }

  /** The interval (ms) this node signs heartbeats at now: the base interval, stretched in
   *  proportion to the live members beyond `heartbeatMembers` (HEARTBEAT_MEMBERS explains why). */
  get heartbeatIntervalMs(): number {
    return this.interval;
  }

  /** The base interval times ceil(live members / heartbeatMembers), capped. It grows as soon as
   *  the mesh does, and shrinks only once the mesh is a quarter below the step, so that a
   *  membership that hovers at a step does not make every member reset its detector each beat. */
  private nextInterval(): number {
    let alive = 1; // this node
    for (const m of this.members.values()) if (m.state === 'alive') alive++;
    const base = this.options.heartbeatIntervalMs;
    const factor = (members: number): number => Math.max(1, Math.ceil(members / this.heartbeatMembers));
    const current = Math.round(this.interval / base);
    const up = factor(alive);
    const next = up > current ? up : Math.min(current, factor(alive * 1.25));
    return Math.min(base * next, MAX_HEARTBEAT_INTERVAL_MS);
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
    return {
      id: m.id, addresses: [...m.addresses], address: m.addresses[0], state: m.state,
      phi: last === undefined ? Infinity : m.detector.phi(now), lastSeen: last ?? null, heartbeatIntervalMs: m.every,
    };
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
      const every = this.options.heartbeatIntervalMs;
      m = { id, addresses: [], state: 'dead', detector: this.detector(every), every, announced: false };
      this.members.set(id, m);
    }
    if (field === NODE_KEY) m.addresses = addressesOf(value);
    if (field !== ALIVE_KEY) return;
    const every = declaredInterval(value, this.options.heartbeatIntervalMs);
    if (!this.fresh(update, every)) return;
    if ((value as { left?: unknown } | undefined)?.left === true) {
      // It left: dead now. Its detector is kept, so a heartbeat after a restart revives it.
      if (m.state === 'alive') {
        m.state = 'dead';
        if (m.announced) this.emit('dead', this.info(m, this.options.now()));
      }
      return;
    }
    // A member back from the dead starts a new window: the silence is not an interval of its
    // heartbeat, and would inflate the mean so that its next death took far longer to see. So
    // does one that changed its interval: the old intervals would convict it (longer) or shield
    // it (shorter).
    const revived = m.state === 'dead';
    if ((revived && m.detector.lastHeartbeat !== undefined) || every !== m.every) {
      m.detector = this.detector(every);
      m.every = every;
    }
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
   *  members may have, plus two of its intervals): an old one learned from history says nothing
   *  about whether its member is alive now. */
  private fresh(update: Update, every: number): boolean {
    const windowMicros = MAX_CLOCK_SKEW_MICROS + 2 * every * 1000;
    return update.version >= this.options.wallMicros() - windowMicros;
  }

  /** A detector for a member heartbeating every `every` ms: the configured parameters, their
   *  durations scaled from the base interval to this one (the threshold and sample size stay). */
  private detector(every: number): PhiAccrualDetector {
    const phi = this.options.phi;
    const ratio = every / this.options.heartbeatIntervalMs;
    return new PhiAccrualDetector(ratio === 1 ? phi : {
      ...phi,
      firstHeartbeatEstimateMs: Math.round((phi.firstHeartbeatEstimateMs ?? PHI_FIRST_HEARTBEAT_ESTIMATE_MS) * ratio),
      acceptableHeartbeatPauseMs: Math.round((phi.acceptableHeartbeatPauseMs ?? PHI_ACCEPTABLE_HEARTBEAT_PAUSE_MS) * ratio),
      minStdDeviationMs: Math.round((phi.minStdDeviationMs ?? PHI_MIN_STD_DEVIATION_MS) * ratio),
    });
  }
}

/** The interval a heartbeat record declares: `every`, an integer of ms, at most
 *  MAX_HEARTBEAT_INTERVAL_MS (more counts as that); `fallback` if it declares none (a bare counter). */
function declaredInterval(value: Value | undefined, fallback: number): number {
  const every = (value as { every?: unknown } | undefined)?.every;
  if (typeof every !== 'number' || !Number.isSafeInteger(every) || every < 1) return fallback;
  return Math.min(every, MAX_HEARTBEAT_INTERVAL_MS);
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
