// Bans of misbehaving peers, by node id or by remote address: how long each lasts (doubling with
// repeated offences, capped), when offences are forgotten, and a bound on how many are remembered.
import { BAN_BASE_MS, BAN_FORGET_MS, BAN_MAX_MS, MAX_BANS, MAX_BANS_CEILING, MAX_BAN_TEXT_LENGTH } from '../limits.ts';
import { isNodeId, type NodeId } from '../identity/node-id.ts';
import { assertInteger } from '../util/bytes.ts';

/**
 * Who is banned: a node id (known once a handshake has authenticated it), or a remote address
 * (an outsider that never got that far). The two are separate: banning an id does not ban the
 * address it came from, nor the reverse; a caller that knows both bans both. Pass the host
 * without the port (a peer picks its source port freely).
 */
export type BanKey = { readonly id: NodeId } | { readonly address: string };

/** One remembered peer, as status output shows it. */
export interface BanEntry {
  readonly key: BanKey;
  /** Reason given for the latest offence. */
  readonly reason: string;
  /** First `now` (ms) at which the peer is no longer banned. */
  readonly until: number;
  /** Offences remembered, this one included (1 after a first ban). */
  readonly offences: number;
}

/** Options of a BanList; every duration is in integer milliseconds. */
export interface BanListOptions {
  /** Length of a first ban. Default BAN_BASE_MS (1 min). */
  baseMs?: number;
  /** Longest ban, at least baseMs; the doubling stops here. Default BAN_MAX_MS (24 h). */
  maxMs?: number;
  /** Offences are forgotten this long after the latest one; 0 forgets at once (no escalation).
   *  Should exceed maxMs, or a peer at the cap starts over when its ban ends. Default
   *  BAN_FORGET_MS (48 h). */
  forgetMs?: number;
  /** Peers remembered at once (1 to MAX_BANS_CEILING). Default MAX_BANS. */
  maxBans?: number;
}

interface Entry {
  key: BanKey;
  reason: string;
  until: number;
  offences: number;
  lastOffence: number;
}

/**
 * Peers banned for a while (DESIGN, Mesh: "Misbehaving peers are banned for a while"). The n-th
 * offence within forgetMs of the one before is banned for min(maxMs, baseMs·2^(n-1)) from `now`;
 * a ban never shortens one already running. A peer is remembered until both its ban has ended
 * and its offences are forgotten, then dropped lazily: on lookup, by entries(), and when full.
 *
 * Policy, when full (maxBans peers remembered), evict the entry whose ban ends soonest (lapsed
 * bans, kept only for their offence count, go first). An attacker flooding us with fresh
 * addresses earns each one a first, shortest ban, so the flood evicts its own entries and the
 * long bans of repeat offenders stay: to push one out it would need maxBans addresses each
 * banned longer than it, i.e. each caught offending repeatedly. Evicting the oldest entry (FIFO
 * or LRU) would let maxBans cheap offences flush every ban. Finding that entry is a scan of the
 * list, done only when it is full (at most MAX_BANS_CEILING entries).
 *
 * The clock is the caller's: every method takes `now` in ms from a monotonic clock.
 *
 * @throws TypeError / RangeError from the constructor on a bad option, naming it.
 */
export class BanList {
  readonly baseMs: number;
  readonly maxMs: number;
  readonly forgetMs: number;
  readonly maxBans: number;
  /** By `id:<node id>` or `address:<address>`. */
  private readonly map = new Map<string, Entry>();

  constructor(options: BanListOptions = {}) {
    if (typeof options !== 'object' || options === null) {
      throw new TypeError(`"options" expected an object, got ${options === null ? 'null' : typeof options}`);
    }
    const { baseMs = BAN_BASE_MS, maxMs = BAN_MAX_MS, forgetMs = BAN_FORGET_MS, maxBans = MAX_BANS } = options;
    assertInteger(baseMs, 'baseMs', 1, Number.MAX_SAFE_INTEGER);
    assertInteger(maxMs, 'maxMs', baseMs, Number.MAX_SAFE_INTEGER);
    assertInteger(forgetMs, 'forgetMs', 0, Number.MAX_SAFE_INTEGER);
    assertInteger(maxBans, 'maxBans', 1, MAX_BANS_CEILING);
    this.baseMs = baseMs;
    this.maxMs = maxMs;
    this.forgetMs = forgetMs;
    this.maxBans = maxBans;
  }

  /**
   * Records an offence by `key` at `now` and bans it: for baseMs if its offences were forgotten
   * (or it has none), else for twice its previous ban, at most maxMs. Returns the entry.
   * @throws TypeError / RangeError on a bad `key`, `reason` (a non-empty string of at most
   *   MAX_BAN_TEXT_LENGTH) or `now` (a finite number).
   */
  ban(key: BanKey, reason: string, now: number): BanEntry {
    const k = mapKey(key);
    checkText(reason, 'reason');
    checkNow(now);
    let entry = this.map.get(k);
    if (entry !== undefined && now - entry.lastOffence >= this.forgetMs) entry.offences = 0;
    if (entry === undefined) {
      if (this.map.size >= this.maxBans) this.makeRoom(now);
      entry = { key: copyKey(key), reason, until: now, offences: 0, lastOffence: now };
      this.map.set(k, entry);
    }
    entry.offences++;
    entry.reason = reason;
    entry.lastOffence = now;
    // 2^(n-1) overflows to Infinity past n = 1025; the min() still gives maxMs.
    entry.until = Math.max(entry.until, now + Math.min(this.maxMs, this.baseMs * 2 ** (entry.offences - 1)));
    return snapshot(entry);
  }

  /** Whether `key` is banned at `now` (now < until).
   *  @throws TypeError / RangeError on a bad `key` or `now`. */
  isBanned(key: BanKey, now: number): boolean {
    return this.bannedUntil(key, now) !== undefined;
  }

  /** When `key`'s ban ends, if it is banned at `now`; undefined if not.
   *  @throws TypeError / RangeError on a bad `key` or `now`. */
  bannedUntil(key: BanKey, now: number): number | undefined {
    const k = mapKey(key);
    checkNow(now);
    const entry = this.map.get(k);
    if (entry === undefined) return undefined;
    if (this.isDone(entry, now)) {
      this.map.delete(k);
      return undefined;
    }
    return now < entry.until ? entry.until : undefined;
  }

  /** Lifts `key`'s ban and forgets its offences. Returns whether anything was remembered.
   *  @throws TypeError / RangeError on a bad `key`. */
  unban(key: BanKey): boolean {
    return this.map.delete(mapKey(key));
  }

  /** The peers banned at `now`, the ban ending soonest first (for status output); drops every
   *  entry that is done with. @throws TypeError / RangeError on a bad `now`. */
  entries(now: number): BanEntry[] {
    checkNow(now);
    const out: BanEntry[] = [];
    for (const [k, entry] of this.map) {
      if (this.isDone(entry, now)) this.map.delete(k);
      else if (now < entry.until) out.push(snapshot(entry));
    }
    return out.sort((a, b) => a.until - b.until);
  }

  /** Peers remembered: banned, or with offences not yet forgotten. Never above maxBans. */
  get size(): number {
    return this.map.size;
  }

  /** Ban ended and offences forgotten: nothing left to remember. */
  private isDone(entry: Entry, now: number): boolean {
    return now >= entry.until && now - entry.lastOffence >= this.forgetMs;
  }

  /** Drops every entry that is done with; if none was, evicts the one whose ban ends soonest
   *  (the first remembered, among equals). */
  private makeRoom(now: number): void {
    let soonest: [string, Entry] | undefined;
    let dropped = false;
    for (const [k, entry] of this.map) {
      if (this.isDone(entry, now)) {
        this.map.delete(k);
        dropped = true;
      } else if (soonest === undefined || entry.until < soonest[1].until) {
        soonest = [k, entry];
      }
    }
    if (!dropped && soonest !== undefined) this.map.delete(soonest[0]);
  }
}

function mapKey(key: unknown): string {
  if (typeof key !== 'object' || key === null) {
    throw new TypeError(`"key" expected { id } or { address }, got ${key === null ? 'null' : typeof key}`);
  }
  const { id, address } = key as { id?: unknown; address?: unknown };
  if ((id === undefined) === (address === undefined)) {
    throw new TypeError('"key" expected exactly one of { id } or { address }');
  }
  if (id !== undefined) {
    if (typeof id !== 'string') throw new TypeError(`"key.id" expected string, got ${id === null ? 'null' : typeof id}`);
    const length = id.length; // read first: isNodeId narrows a refused id to never
    if (!isNodeId(id)) throw new RangeError(`"key.id" expected a node id (52 base32 characters), got length=${length}`);
    return `id:${id}`;
  }
  checkText(address, 'key.address');
  return `address:${address}`;
}

/** A frozen copy, so nobody mutating a key object can change what an entry reports. */
function copyKey(key: BanKey): BanKey {
  return Object.freeze('id' in key && key.id !== undefined ? { id: key.id } : { address: (key as { address: string }).address });
}

function snapshot(entry: Entry): BanEntry {
  return { key: entry.key, reason: entry.reason, until: entry.until, offences: entry.offences };
}

function checkText(value: unknown, name: string): asserts value is string {
  if (typeof value !== 'string') throw new TypeError(`"${name}" expected string, got ${value === null ? 'null' : typeof value}`);
  if (value.length === 0 || value.length > MAX_BAN_TEXT_LENGTH) {
    throw new RangeError(`"${name}" expected 1 to ${MAX_BAN_TEXT_LENGTH} characters, got length=${value.length}`);
  }
}

function checkNow(now: unknown): void {
  if (typeof now !== 'number') throw new TypeError(`"now" expected number, got ${now === null ? 'null' : typeof now}`);
  if (!Number.isFinite(now)) throw new RangeError(`"now" expected a finite number, got ${now}`);
}
