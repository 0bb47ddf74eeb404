// Node: a member of a mesh. It listens and dials over TCP (or another transport) through the
// secure channel, keeps one multiplexed connection per peer, learns members from their own signed
// records, detects failures, gossips, bans misbehaving peers, and replicates every dataset it hosts.
import { EventEmitter, setMaxListeners } from 'node:events';
import { performance } from 'node:perf_hooks';
import { dial } from '../channel/dial.ts';
import { HandshakeLimiter } from '../channel/handshake-limiter.ts';
import { listen, type SecureListener, CLOSE_TIMEOUT_MS } from '../channel/listen.ts';
import type { ChannelLimits } from '../channel/options.ts';
import type { SecureChannel } from '../channel/secure-channel.ts';
import { assertTransport, tcpTransport, type Transport } from '../channel/transport.ts';
import { open, owner, writers, type WritePolicy } from '../core/policy.ts';
import type { AnyScuttlebutt, ScuttlebuttOptions } from '../core/scuttlebutt.ts';
import { wallClockMicros } from '../envelope/version.ts';
import { isDatasetName } from '../envelope/update.ts';
import { AbortError, PeerMismatchError } from '../errors.ts';
import type { Identity } from '../identity/identity.ts';
import type { SignatureBackend } from '../identity/signature.ts';
import { NETWORK_KEY_LENGTH } from '../identity/key-files.ts';
import { isNodeId, shortId, type NodeId } from '../identity/node-id.ts';
import {
  GOSSIP_INTERVAL_MS, HANDSHAKE_TIMEOUT_MS, HEARTBEAT_INTERVAL_MS, INBOUND_SURPLUS, MAX_CONNECTIONS_PER_ADDRESS, MAX_HEARTBEAT_INTERVAL_MS, MAX_MEMBER_ADDRESSES, MAX_MEMBERS, MAX_PEERS, MUX_MAX_MESSAGE_BYTES,
  PHI_MIN_STD_DEVIATION_MS, PHI_THRESHOLD, RESERVED_OUTBOUND_SLOTS,
} from '../limits.ts';
import { Model } from '../models/model.ts';
import type { Update } from '../envelope/update.ts';
// Datasets replicate through replication streams, whose factory this module registers: without
// it peers would connect and never replicate.
import '../replication/index.ts';
import { HISTORY_ORDERINGS, type HistoryOrdering } from '../replication/batches.ts';
import type { ProtocolError } from '../errors.ts';
import type { Store } from '../store/store.ts';
import { assertInteger } from '../util/bytes.ts';
import { canonicalIp, formatHostPort, isWildcardHost, parseHostPort, parseSeed, type Seed } from '../util/address.ts';
import { Backoff } from './backoff.ts';
import { BanList, type BanListOptions } from './bans.ts';
import { compatible, datasetDescriptor, streamOptions, type Hosted } from './datasets.ts';
import { chooseTarget, type DialTarget } from './gossip.ts';
import { MEMBER_RECORD_MAX_BYTES, MEMBERS_DATASET, Membership, type MemberInfo } from './membership.ts';
import type { OpenInfo } from './mux-messages.ts';
import { Mux, type MuxSession } from './mux.ts';
import { PeerTable, type Connection } from './peers.ts';
import type { PhiAccrualOptions } from './phi-accrual.ts';

/** The well-known network key of a public mesh (all zero): it still encrypts, but anyone may join. */
export const PUBLIC_NETWORK_KEY: Uint8Array = new Uint8Array(NETWORK_KEY_LENGTH);

/** Options of a {@link Node}. Every one but `identity` has a default. */
export interface NodeOptions {
  /** This node's identity: its id, and the key its updates and handshakes are signed with. */
  identity: Identity;
  /** The 32-byte pre-shared network key. Default: PUBLIC_NETWORK_KEY (a public mesh, in which
   *  every dataset must be given a policy explicitly). */
  networkKey?: Uint8Array;
  /** `host:port` to accept connections on (`127.0.0.1:0` picks a free port; see address()).
   *  Default: none, the node only dials. */
  listen?: string;
  /**
   * Where peers should dial this node (telepathine's addressMap, gossipmonger's transport data):
   * one `host:port` or a list of up to MAX_MEMBER_ADDRESSES (8), tried in order. They are signed
   * in this node's membership record instead of the listen address, which is still where it
   * listens; use it behind NAT, port forwarding or a container's published port:
   * ```ts
   * new Node({ identity, networkKey, listen: '0.0.0.0:7420', advertise: ['203.0.113.7:17420', 'node-a.internal:7420'] });
   * ```
   * Each is validated like a seed (no port 0, no wildcard host, no duplicates); `[]` advertises
   * nothing (peers then never dial this node; it still dials them). Default: the bound listen
   * address, unless it is a wildcard (`0.0.0.0`, `::`), which nobody can dial; nothing without `listen`.
   * @throws TypeError / RangeError from the constructor, naming `advertise[i]`.
   */
  advertise?: string | string[];
  /** `host:port` or `host:port#nodeId` (the seed must then prove that id). Default none. */
  seeds?: string[];
  /** Where every dataset (and the membership dataset) keeps its updates. Default: memory only. */
  store?: Store;
  /** Connections this node dials up to; peers may dial it up to maxPeers + INBOUND_SURPLUS (4),
   *  beyond which a newcomer replaces a random inbound peer that is not protected. Default MAX_PEERS (8). */
  maxPeers?: number;
  /** Gossip round interval (ms): failure checks, trimming, one dial. Default GOSSIP_INTERVAL_MS (1 s). */
  gossipIntervalMs?: number;
  /** How often this node signs its liveness record (ms) in a mesh of up to `heartbeatMembers` live
   *  members; beyond, the interval grows in proportion (each record declares its interval, and
   *  every node judges that member on it). Default HEARTBEAT_INTERVAL_MS (5 s). */
  heartbeatIntervalMs?: number;
  /** Live members the heartbeat interval is sized for. Default HEARTBEAT_MEMBERS (100): each node
   *  then verifies about 100 heartbeats per base interval whatever the mesh size. */
  heartbeatMembers?: number;
  /** Failure detector parameters. Defaults follow the heartbeat interval: threshold
   *  PHI_THRESHOLD (8), first estimate = heartbeatIntervalMs, acceptable pause = one interval,
   *  minimum deviation = max(PHI_MIN_STD_DEVIATION_MS, interval / 10). */
  phi?: PhiAccrualOptions;
  /** Established connections per remote IP. Default MAX_CONNECTIONS_PER_ADDRESS (4). */
  maxConnectionsPerAddress?: number;
  /** Handshakes in progress per address and in total. Default: a new HandshakeLimiter. */
  handshakeLimiter?: HandshakeLimiter;
  /** Secure channel limits (handshake deadline, idle timeout...). `maxMessageBytes` is always
   *  MUX_MAX_MESSAGE_BYTES on mesh connections. */
  channelLimits?: Partial<Omit<ChannelLimits, 'maxMessageBytes'>>;
  /** Ban lengths. Default: BanList defaults (1 min, doubling to 24 h). */
  bans?: BanListOptions;
  /** Reconnect backoff. Default RECONNECT_BASE_MS / RECONNECT_MAX_MS. */
  backoff?: { baseMs?: number; maxMs?: number };
  /** Uniform random numbers in [0, 1) (peer choice, jitter). Default Math.random. */
  random?: () => number;
  /** Monotonic clock in ms (failure detector, bans). Default performance.now. */
  now?: () => number;
  /** Wall clock in µs for the datasets this node creates. Default wallClockMicros. */
  wallClock?: () => number;
  /** Signature backend of every dataset this node creates (and of membership). Default: `defaultSignatureBackend()` (`sodium` where sodium-native loads, else `native`). */
  backend?: SignatureBackend;
  /** Timers for the gossip round, heartbeats and the peer-down grace (inject a virtual
   *  scheduler to simulate). Default the global setTimeout/clearTimeout. */
  timers?: NodeTimers;
  /**
   * What to listen and dial over (gossipmonger's pluggable transport): an object that can listen
   * and dial and yields Duplex streams; the secure channel and replication run over it unchanged.
   * `listen`, `advertise`, seeds and members' addresses are `host:port` strings that the transport
   * interprets. Built in: {@link tcpTransport} (the default), {@link unixSocketTransport} (Unix-domain
   * sockets in one directory: `alpha:7420` is the file `alpha_7420.sock`), and
   * {@link MemoryNetwork} (in-process, for tests and simulations).
   * ```ts
   * const transport = unixSocketTransport({ directory: '/run/signet' });
   * const node = new Node({ identity, networkKey, transport, listen: 'alpha:0', seeds: ['beta:7420'] });
   * ```
   * Any object with `createServer(onConnection)` (a server with `listen(port, host)`, `address()`,
   * `close()`, `'listening'`/`'error'` events) and `connect(host, port, signal)` works; accepted
   * streams must carry a `remoteAddress` (limits and bans count by it). Default {@link tcpTransport}.
   */
  transport?: Transport;
}

/** The timer functions a Node uses. */
export interface NodeTimers {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const globalTimers: NodeTimers = {
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

/** Options of {@link Node.dataset}: a model's options, less what the node supplies. */
export type DatasetOptions<O = ScuttlebuttOptions> = Omit<O, 'identity' | 'dataset' | 'store' | 'readOnly'> & {
  /** Follow this master: accept only its signed updates, refuse local writes, never send upstream. */
  replicaOf?: NodeId;
  /** Which sources' history this node sends a peer first when it owes more than fits in a
   *  batch: `'depth'` (the sources the peer is furthest behind on, each as one run) or
   *  `'breadth'` (one update per source in turn). The `ordering` of every replication stream
   *  of this dataset (see StreamOptions.ordering). Default `'depth'`. */
  ordering?: HistoryOrdering;
};

/** Counters since start, as {@link Node.stats} reports them. */
export interface NodeStats {
  /** Multiplexer bytes received and sent on every connection, closed ones included (inside the
   *  encryption: add ~16 bytes per frame for the wire). */
  bytes: { in: number; out: number };
  handshakes: {
    /** Secure channels established, accepted (`in`) and dialed (`out`), before admission. */
    completed: { in: number; out: number };
    /** Inbound connections that never became a channel, by code (ERR_HANDSHAKE, ERR_TIMEOUT...). */
    refused: Record<string, number>;
    /** Dials that failed, by code (ERR_CONNECT, ERR_TIMEOUT, ERR_PEER_MISMATCH...). */
    dialFailed: Record<string, number>;
  };
  /** Per hosted dataset (the membership dataset included). */
  datasets: Record<string, {
    /** Updates waiting for their signature's verdict or their turn now. */
    pendingVerifications: number;
    /** Reconciliation sessions ended on this node's streams, updates they found a peer lacked
     *  (`have`, sent where we send) and that we lacked (`need`), and their message bytes. */
    reconciliation: { sessions: number; have: number; need: number; bytes: number };
  }>;
}

/** A peer as {@link Node.peers} reports it. */
export interface PeerInfo {
  id: NodeId | undefined;
  /** The connection's remote `host:port`, or the banned address. */
  address: string | undefined;
  state: 'connected' | 'banned';
  direction: 'in' | 'out' | undefined;
  /** Failure detector suspicion for this node as a member (Infinity if never heard). */
  phi: number;
  /** When its latest heartbeat arrived (Node clock, ms), or null. */
  lastSeen: number | null;
  /** Connected since (Node clock, ms), or the ban's end for a banned peer. */
  since: number;
  /** Datasets replicating with it now. */
  datasets: string[];
  /** Why it is banned, for a banned peer. */
  reason?: string;
}

/** A ban, as the `'peer:banned'` event reports it. */
export interface BanInfo {
  id: NodeId | undefined;
  address: string | undefined;
  reason: string;
  /** When it ends (Node clock, ms). */
  until: number;
}

/** Events of a Node, typed. There is no `'error'`: nothing a peer does can crash a node. */
export interface NodeEvents {
  'peer:up': [peer: PeerInfo];
  'peer:down': [peer: PeerInfo];
  'peer:banned': [ban: BanInfo];
  'member:new': [member: MemberInfo];
  'member:dead': [member: MemberInfo];
  'member:alive': [member: MemberInfo];
  /** A peer refused a dataset we offered (`not-hosted`, `policy-mismatch`, `config-mismatch`, `master-mismatch`). */
  'dataset:refused': [refusal: { peer: NodeId; dataset: string; reason: string }];
  /** History arriving from a peer that was ahead of us: how far along it is (the stream's
   *  `'progress'`), and a last one with `done` once its SYNC came and all of it applied. */
  'dataset:progress': [progress: { peer: NodeId; dataset: string; sourcesDone: number; sourcesTotal: number; received: number; done: boolean }];
}

/** Replication cuts that only a misbehaving peer causes (an honest one never does): banned. */
/** Stream cuts only a cheat causes (and every reconciliation protocol breach, `reconcile-*`). */
const BANNED_CUTS = new Set(['bad-signature', 'fault-budget', 'too-large', 'malformed', 'unknown-message', 'second-hello', 'second-sync', 'no-hello', 'wrong-dataset', 'wrong-peer']);
/** Every reconciliation breach bans too (an honest session ends itself within its round
 *  budget, however large the difference, so none of them is an honest mistake). */
const isBannedReconcileCut = (reason: string): boolean => reason.startsWith('reconcile-');
/** Handshake failures that ban the address they came from, unless a peer proved itself from it. */
const BANNED_REFUSALS = new Set(['ERR_HANDSHAKE', 'ERR_FRAME_TOO_LARGE', 'ERR_TIMEOUT']);
/** How long (ms) after a peer's connection closes it is reported `'peer:down'`, unless a new
 *  connection to it arrives first (the other end of a simultaneous dial closing its loser). */
export const PEER_DOWN_GRACE_MS = 500;
/** Longest (ms) an offer of a dataset to a new connection waits for its history to finish
 *  arriving on another (see Node.offer). */
const CATCH_UP_WAIT_MS = 5000;

/** Connections whose first exchange of one dataset is under way, and those whose offer waits. */
interface CatchUp {
  syncing: Set<Connection>;
  waiting: Set<Connection>;
  timer: unknown;
}

/** Adds one to a count by code (codes come from our own errors: a small, fixed set). */
function bump(counts: Map<string, number>, code: string): void {
  counts.set(code, (counts.get(code) ?? 0) + 1);
}

/** How long (ms) stop() waits for its leaving record to be stored (and so sent) before closing. */
const LEAVE_FLUSH_MS = 1000;
/** A connection that lasted this long (ms) resets its target's redial backoff when it ends. */
const LASTING_CONNECTION_MS = 60_000;
/** Bound on remembered addresses (proven, dial backoff). */
const MAX_REMEMBERED = 10_000;

/** Model, Events, or a subclass: what {@link Node.dataset} creates. */
export type DatasetClass = new (options: never) => AnyScuttlebutt;

/**
 * A mesh node. Create it, add datasets, `await start()`; `await stop()` when done.
 *
 * ```ts
 * const node = new Node({ identity, networkKey, listen: '127.0.0.1:0', seeds: ['10.0.0.1:7420'] });
 * const chat = node.dataset('chat', Model);
 * await node.start();
 * chat.set('hello', 'world'); // replicated to every member hosting 'chat'
 * ```
 */
export class Node extends EventEmitter<NodeEvents> {
  readonly identity: Identity;
  readonly id: NodeId;
  private readonly networkKey: Uint8Array;
  private readonly isPublic: boolean;
  private readonly listenAt: { host: string; port: number } | undefined;
  /** The `advertise` option, checked; undefined: the bound listen address. */
  private readonly advertise: readonly string[] | undefined;
  private readonly seeds: Seed[];
  private readonly store: Store | undefined;
  private readonly maxPeers: number;
  private readonly gossipIntervalMs: number;
  private readonly heartbeatIntervalMs: number;
  private readonly maxPerAddress: number;
  private readonly limiter: HandshakeLimiter;
  private readonly channelLimits: Partial<ChannelLimits>;
  /** Inbound peers never evicted for a newcomer: the longest-lived maxPeers / 2. */
  private readonly protectedInbound: number;
  /** How long a new connection may take to send its multiplexer hello (the handshake deadline). */
  private readonly helloTimeoutMs: number;
  private readonly random: () => number;
  private readonly now: () => number;
  private readonly wallClock: () => number;
  private readonly options: NodeOptions;
  private readonly bans: BanList;
  private readonly peers_ = new PeerTable('');
  private readonly hosted = new Map<string, Hosted>();
  /** The history ordering chosen per dataset (absent: the stream's default, 'depth'). */
  private readonly orderings = new Map<string, HistoryOrdering>();
  private readonly counters = {
    bytesIn: 0, bytesOut: 0, completedIn: 0, completedOut: 0,
    refused: new Map<string, number>(), dialFailed: new Map<string, number>(),
    reconciliation: new Map<string, { sessions: number; have: number; need: number; bytes: number }>(),
  };
  /** Per hosted dataset: history arriving now, and offers waiting for it (see offer()). */
  private readonly catchUps = new Map<Hosted, CatchUp>();
  private readonly membership: Membership;
  /** Addresses from which a peer completed a handshake: never banned by address. */
  private readonly proven = new Map<string, number>();
  /** Per dial target (address and expected id): its backoff and the earliest time to try it again. */
  private readonly dialing = new Map<string, { backoff: Backoff; notBefore: number; inFlight: boolean }>();
  /** The node id each dialed address proved (an unpinned seed's, say). */
  private readonly learnedIds = new Map<string, NodeId>();
  /** Addresses that turned out to be this node. */
  private readonly selfAddresses = new Set<string>();
  private readonly connections = new Set<Connection>();
  /** Peers whose connection closed, by the timer that reports them down unless they reconnect. */
  private readonly downPending = new Map<NodeId, unknown>();
  /** Channels being closed: stop() waits for them. */
  private readonly closing = new Set<Promise<void>>();
  private readonly stopping = new AbortController();
  private listener: SecureListener | undefined;
  private gossipTimer: unknown;
  private heartbeatTimer: unknown;
  private readonly timers: NodeTimers;
  private readonly transport: Transport;
  private state: 'new' | 'starting' | 'started' | 'stopped' = 'new';
  private stopped: Promise<void> | undefined;
  private starting: Promise<void> | undefined;
  private readonly dials = new Set<Promise<void>>();

  /** @throws TypeError / RangeError for a bad option, naming it. */
  constructor(options: NodeOptions) {
    super();
    if (typeof options !== 'object' || options === null) throw new TypeError('"options" expected an object');
    if (!options.identity || typeof options.identity.sign !== 'function') throw new TypeError('"identity" expected an Identity');
    this.options = options;
    this.identity = options.identity;
    this.id = options.identity.id;
    this.peers_ = new PeerTable(this.id);
    const key = options.networkKey ?? PUBLIC_NETWORK_KEY;
    if (!(key instanceof Uint8Array) || key.length !== NETWORK_KEY_LENGTH) throw new RangeError(`"networkKey" expected ${NETWORK_KEY_LENGTH} bytes`);
    this.networkKey = Uint8Array.from(key);
    this.isPublic = this.networkKey.every((b) => b === 0);
    this.listenAt = options.listen === undefined ? undefined : parseHostPort(options.listen, 'listen', true);
    this.advertise = options.advertise === undefined ? undefined : parseAdvertise(options.advertise);
    if (options.seeds !== undefined && !Array.isArray(options.seeds)) throw new TypeError('"seeds" expected an array of "host:port[#nodeId]" strings');
    this.seeds = (options.seeds ?? []).map((s, i) => parseSeed(s, `seeds[${i}]`));
    this.store = options.store;
    this.maxPeers = options.maxPeers ?? MAX_PEERS;
    assertInteger(this.maxPeers, 'maxPeers', 1, 1024);
    this.protectedInbound = Math.floor(this.maxPeers / 2);
    this.gossipIntervalMs = options.gossipIntervalMs ?? GOSSIP_INTERVAL_MS;
    assertInteger(this.gossipIntervalMs, 'gossipIntervalMs', 1, 2 ** 31 - 1);
    this.heartbeatIntervalMs = options.heartbeatIntervalMs ?? HEARTBEAT_INTERVAL_MS;
    assertInteger(this.heartbeatIntervalMs, 'heartbeatIntervalMs', 1, MAX_HEARTBEAT_INTERVAL_MS);
    if (options.heartbeatMembers !== undefined) assertInteger(options.heartbeatMembers, 'heartbeatMembers', 1, MAX_MEMBERS);
    this.maxPerAddress = options.maxConnectionsPerAddress ?? MAX_CONNECTIONS_PER_ADDRESS;
    assertInteger(this.maxPerAddress, 'maxConnectionsPerAddress', 1, 2 ** 31 - 1);
    if (options.handshakeLimiter !== undefined && !(options.handshakeLimiter instanceof HandshakeLimiter)) throw new TypeError('"handshakeLimiter" expected a HandshakeLimiter');
    this.limiter = options.handshakeLimiter ?? new HandshakeLimiter();
    this.channelLimits = { ...options.channelLimits, maxMessageBytes: MUX_MAX_MESSAGE_BYTES };
    this.helloTimeoutMs = this.channelLimits.handshakeTimeoutMs ?? HANDSHAKE_TIMEOUT_MS;
    for (const f of ['random', 'now', 'wallClock'] as const) {
      if (options[f] !== undefined && typeof options[f] !== 'function') throw new TypeError(`"${f}" expected a function`);
    }
    this.random = options.random ?? Math.random;
    this.now = options.now ?? (() => performance.now());
    this.wallClock = options.wallClock ?? wallClockMicros;
    this.timers = options.timers ?? globalTimers;
    if (options.transport !== undefined) assertTransport(options.transport, 'transport');
    this.transport = options.transport ?? tcpTransport;
    this.bans = new BanList(options.bans);
    setMaxListeners(0, this.stopping.signal); // one listener per dial in progress
    const interval = this.heartbeatIntervalMs;
    const model = new Model({
      identity: this.identity, dataset: MEMBERS_DATASET, policy: owner(), store: this.store, now: this.wallClock,
      maxUpdateBytes: MEMBER_RECORD_MAX_BYTES, backend: options.backend,
    });
    this.membership = new Membership({
      model, now: this.now, wallMicros: this.wallClock, heartbeatIntervalMs: interval, heartbeatMembers: options.heartbeatMembers,
      phi: {
        threshold: PHI_THRESHOLD, firstHeartbeatEstimateMs: interval, acceptableHeartbeatPauseMs: interval,
        minStdDeviationMs: Math.max(PHI_MIN_STD_DEVIATION_MS, Math.round(interval / 10)), ...options.phi,
      },
    });
    this.membership.on('new', (m) => this.emit('member:new', m));
    this.membership.on('dead', (m) => this.emit('member:dead', m));
    this.membership.on('alive', (m) => this.emit('member:alive', m));
    this.register(MEMBERS_DATASET, model, null);
  }

  // ---- datasets -------------------------------------------------------------------------------

  /**
   * Hosts a dataset: creates `Class` (Model, Events, or a subclass) with this node's identity
   * and store, and replicates it with every peer that hosts the same name with a compatible
   * policy. Calling it again with the same name and class returns the same instance.
   *
   * A public node (no network key) requires `policy` (or `replicaOf`): anyone can join a
   * public mesh, so an `open()` default would let anyone write. With a private network key the
   * default is `open()`: every member may write. `replicaOf: masterId` makes a read-only copy
   * that accepts only the master's updates and never sends upstream.
   * @throws RangeError for a bad or reserved name, a name hosted with another class, a
   *   `replicaOf` that is not a node id or is this node; TypeError for `policy` with `replicaOf`,
   *   or a public node without a policy.
   */
  dataset<C extends DatasetClass>(name: string, Class: C, options?: DatasetOptions<ConstructorParameters<C>[0]>): InstanceType<C> {
    if (!isDatasetName(name)) throw new RangeError('"name" expected 1..128 characters without control characters');
    if (name.startsWith('signet:')) throw new RangeError(`"name": dataset names starting with "signet:" are reserved for the node (got ${JSON.stringify(name)})`);
    if (typeof Class !== 'function') throw new TypeError('"Class" expected Model, Events or a subclass');
    const existing = this.hosted.get(name);
    if (existing) {
      if (existing.model.constructor !== Class) throw new RangeError(`dataset ${JSON.stringify(name)} is already hosted as ${existing.model.constructor.name}`);
      return existing.model as InstanceType<C>;
    }
    if (this.state === 'stopped') throw new RangeError('the node is stopped');
    const { replicaOf, ordering, ...rest } = (options ?? {}) as DatasetOptions<ScuttlebuttOptions>;
    if (ordering !== undefined) {
      if (typeof ordering !== 'string') throw new TypeError(`"ordering" expected 'depth' or 'breadth', got ${typeof ordering}`);
      if (!HISTORY_ORDERINGS.includes(ordering)) throw new RangeError(`"ordering" expected 'depth' or 'breadth', got ${JSON.stringify(ordering.slice(0, 40))}`);
    }
    let policy: WritePolicy | undefined = (rest as { policy?: WritePolicy }).policy;
    let readOnly: string | undefined;
    if (replicaOf !== undefined) {
      if (!isNodeId(replicaOf)) throw new RangeError('"replicaOf" expected a node id');
      if (replicaOf === this.id) throw new RangeError('"replicaOf" names this node: a node cannot follow itself');
      if (policy !== undefined) throw new TypeError('"policy" and "replicaOf" exclude each other: a replica accepts only its master\'s updates');
      policy = writers([replicaOf]);
      readOnly = `it is a replica of ${replicaOf}, which alone writes it`;
    } else if (policy === undefined) {
      if (this.isPublic) throw new TypeError(`dataset ${JSON.stringify(name)}: a node on the public network key must choose a policy explicitly (open(), owner() or writers([...]))`);
      policy = open();
    }
    const model = new (Class as unknown as new (o: ScuttlebuttOptions) => InstanceType<C>)({
      now: this.wallClock, backend: this.options.backend, ...rest, identity: this.identity, dataset: name, store: this.store, policy, readOnly,
    });
    if (ordering !== undefined) this.orderings.set(name, ordering);
    this.register(name, model, replicaOf ?? null);
    return model;
  }

  private register(name: string, model: AnyScuttlebutt, replicaOf: NodeId | null): void {
    const hosted: Hosted = { model, info: { name, policy: datasetDescriptor(model.policy, model.replicationProfile), replicaOf }, ready: false };
    this.hosted.set(name, hosted);
    model.ready.then(
      () => {
        hosted.ready = true;
        for (const c of this.connections) this.offer(c, hosted);
      },
      () => {}, // the model reports its own load failure through `ready`; it is never offered
    );
  }

  // ---- lifecycle ------------------------------------------------------------------------------

  /**
   * Loads the membership dataset, binds the listener (if `listen`), signs this node's membership
   * record, dials the seeds, and starts the gossip and heartbeat timers.
   * @throws ListenError if the address cannot be bound; StoreError if the store cannot be read;
   *   AbortError if stop() was called before it finished; Error if called twice.
   */
  start(): Promise<void> {
    if (this.state !== 'new') return Promise.reject(new Error(`start() called on a node that is ${this.state}`));
    this.state = 'starting';
    this.starting = this.startNow();
    return this.starting;
  }

  private async startNow(): Promise<void> {
    try {
      await this.membership.model.ready;
      if (this.listenAt) {
        this.listener = await listen({
          identity: this.identity, networkKey: this.networkKey, host: this.listenAt.host, port: this.listenAt.port,
          limiter: this.limiter, limits: this.channelLimits, signal: this.stopping.signal, transport: this.transport,
          admit: (ip) => !this.bans.isBanned({ address: canonicalIp(ip) }, this.now()),
          onConnection: (channel) => void this.established(channel, 'in', undefined),
        });
        this.listener.on('refused', (r) => this.refused(r.code, r.address));
      }
    } catch (error) {
      this.state = 'stopped';
      this.stopping.abort();
      throw error;
    }
    if (this.state !== 'starting') {
      await this.listener?.close();
      throw new AbortError('the node was stopped while it was starting');
    }
    this.state = 'started';
    this.membership.start(this.advertised());
    for (const seed of this.seeds) this.dialTarget({ address: formatHostPort(seed.host, seed.port), host: seed.host, port: seed.port, id: seed.id, seed: true });
    this.scheduleRound();
    this.scheduleHeartbeat();
  }

  /**
   * Stops: clears the timers, cancels dials, signs a leaving record (so that members who get it see
   * this node dead at once, not after the failure detector's silence), closes the listener and every connection (with the
   * authenticated close frame, forced after CLOSE_TIMEOUT_MS), disposes the membership dataset,
   * and resolves once every socket is closed. The datasets stay readable. Idempotent.
   */
  stop(): Promise<void> {
    this.stopped ??= this.shutdown();
    return this.stopped;
  }

  private async shutdown(): Promise<void> {
    const wasStarted = this.state === 'started';
    this.state = 'stopped';
    this.timers.clearTimeout(this.gossipTimer);
    this.timers.clearTimeout(this.heartbeatTimer);
    for (const timer of this.downPending.values()) this.timers.clearTimeout(timer);
    for (const c of this.catchUps.values()) this.timers.clearTimeout(c.timer);
    this.downPending.clear();
    this.stopping.abort();
    await this.starting?.catch(() => {}); // a start in progress gives up (and closes what it opened)
    await Promise.all(this.dials);
    if (wasStarted) await this.leave();
    for (const c of this.connections) this.close(c.channel);
    await Promise.all([this.listener?.close(), ...this.closing]);
    this.membership.model.dispose();
  }

  /** Signs the leaving record and waits (at most LEAVE_FLUSH_MS) until it is stored and so
   *  handed to every connection, ahead of the close frames that follow. */
  private async leave(): Promise<void> {
    const model = this.membership.model;
    const announced = new Set<string>();
    let hash: string | undefined;
    let wake: () => void = () => {};
    const onUpdate = (u: Update): void => {
      announced.add(u.hashHex);
      if (u.hashHex === hash) wake();
    };
    model.on('update', onUpdate);
    let timer: unknown;
    try {
      hash = this.membership.leave().hashHex; // with no store, announced (and sent) within leave()
      if (!announced.has(hash)) {
        await new Promise<void>((resolve) => {
          wake = resolve;
          timer = this.timers.setTimeout(resolve, LEAVE_FLUSH_MS);
        });
      }
    } catch {
      // the membership dataset failed (store I/O): the others will convict us by silence
    } finally {
      this.timers.clearTimeout(timer);
      model.off('update', onUpdate);
    }
  }

  /** The bound `host:port`, or undefined if the node does not listen (or has not started). */
  address(): string | undefined {
    const bound = this.listener?.address();
    return bound && bound.port !== undefined ? formatHostPort(bound.address, bound.port) : undefined;
  }

  /** What this node signs in its membership record as where to dial it (see NodeOptions.advertise). */
  private advertised(): string[] {
    if (this.advertise) return [...this.advertise];
    const bound = this.listener?.address();
    if (!bound || isWildcardHost(bound.address)) return [];
    return [formatHostPort(bound.address, bound.port)];
  }

  // ---- views ----------------------------------------------------------------------------------

  /** Counters since start: bytes, handshakes, and per dataset the verify queue and reconciliation. */
  stats(): NodeStats {
    const c = this.counters;
    let bytesIn = c.bytesIn;
    let bytesOut = c.bytesOut;
    for (const connection of this.connections) {
      bytesIn += connection.mux.bytesIn;
      bytesOut += connection.mux.bytesOut;
    }
    const datasets: NodeStats['datasets'] = {};
    for (const [name, hosted] of this.hosted) {
      datasets[name] = {
        pendingVerifications: hosted.model.pendingVerifications,
        reconciliation: { ...(c.reconciliation.get(name) ?? { sessions: 0, have: 0, need: 0, bytes: 0 }) },
      };
    }
    return {
      bytes: { in: bytesIn, out: bytesOut },
      handshakes: { completed: { in: c.completedIn, out: c.completedOut }, refused: Object.fromEntries(c.refused), dialFailed: Object.fromEntries(c.dialFailed) },
      datasets,
    };
  }

  /** Connected peers, then banned ones. */
  peers(): PeerInfo[] {
    const now = this.now();
    const out: PeerInfo[] = this.peers_.all().map((c) => this.peerInfo(c));
    for (const b of this.bans.entries(now)) {
      if (b.until <= now) continue;
      const id = 'id' in b.key ? b.key.id : undefined;
      const m = id ? this.membership.get(id) : undefined;
      out.push({
        id, address: 'address' in b.key ? b.key.address : undefined, state: 'banned', direction: undefined,
        phi: m?.phi ?? Infinity, lastSeen: m?.lastSeen ?? null, since: b.until, datasets: [], reason: b.reason,
      });
    }
    return out;
  }

  /** Every member this node has learned of (not itself), with its liveness. */
  members(): MemberInfo[] {
    return this.membership.list();
  }

  private peerInfo(c: Connection): PeerInfo {
    const m = this.membership.get(c.id);
    return {
      id: c.id, address: c.address, state: 'connected', direction: c.direction, phi: m?.phi ?? Infinity,
      lastSeen: m?.lastSeen ?? null, since: c.since, datasets: c.mux.sessionNames(),
    };
  }

  // ---- connections ----------------------------------------------------------------------------

  /** A secure channel completed its handshake (either way). Decides whether to keep it; false if dropped. */
  private established(channel: SecureChannel, direction: 'in' | 'out', target: DialTarget | undefined): boolean {
    if (direction === 'in') this.counters.completedIn++;
    else this.counters.completedOut++;
    const id = channel.remote.id;
    const ip = canonicalIp(channel.remoteAddress ?? target?.host ?? 'unknown');
    const address = formatHostPort(ip, channel.remotePort ?? target?.port ?? 0);
    const drop = (): false => {
      this.close(channel);
      return false;
    };
    if (this.state !== 'started') return drop();
    if (target) this.remember(this.learnedIds, target.address, id);
    if (id === this.id) {
      if (target) this.selfAddresses.add(target.address);
      return drop();
    }
    this.remember(this.proven, ip);
    if (this.bans.isBanned({ id }, this.now())) return drop();
    if (this.peers_.countIp(ip) >= this.maxPerAddress && this.peers_.get(id)?.ip !== ip) return drop();
    if (direction === 'in' && this.peers_.size >= this.maxPeers + INBOUND_SURPLUS && !this.peers_.get(id)) {
      // Full. A member we know alive can go elsewhere: refused (its dial backs off). A node we
      // have never heard of may be joining and must learn the members first: it gets in, in
      // place of an unprotected inbound peer chosen at random (if every slot is protected, no).
      if (this.membership.get(id)?.state === 'alive') return drop();
      const [victim] = this.peers_.surplus(this.peers_.size - 1, this.protectedInbound, this.random);
      if (!victim) return drop();
      this.evict(victim);
    }
    const mux = new Mux(channel, { localId: this.id, remoteId: id, decide: (info) => this.decide(info) });
    const connection: Connection = {
      id, channel, mux, direction, ip, address, since: this.now(), seed: !!target?.seed || this.isSeed(id), replaced: false, announced: false,
      dialKey: target ? dialKey(target) : undefined,
    };
    const added = this.peers_.add(connection);
    if (added.result === 'rejected') {
      // The connection we keep may be the seed's own dial to us: now that we know its id, protect it.
      const kept = this.peers_.get(id);
      if (kept) kept.seed ||= connection.seed;
      mux.destroy();
      this.close(channel);
      return true; // we already hold a connection to this node: no backoff
    }
    this.connections.add(connection);
    // A peer that completed the handshake but never says its multiplexer hello would hold a
    // slot for free (keepalives keep the channel up): it gets the handshake deadline to say it.
    const helloDeadline = this.timers.setTimeout(() => {
      if (!mux.ready && !channel.closed) this.close(channel);
    }, this.helloTimeoutMs);
    channel.once('close', () => {
      this.timers.clearTimeout(helloDeadline);
      this.closed(connection);
    });
    mux.on('session', (session) => this.session(connection, session));
    mux.on('violation', (reason) => this.punish(connection, `multiplexer: ${reason}`));
    mux.on('refused', (dataset, reason) => {
      const hosted = this.hosted.get(dataset);
      if (hosted) this.caughtUp(hosted, connection);
      this.emit('dataset:refused', { peer: id, dataset, reason });
    });
    for (const h of this.hosted.values()) if (h.ready) this.offer(connection, h);
    const pendingDown = this.downPending.get(id);
    if (pendingDown !== undefined) {
      this.timers.clearTimeout(pendingDown);
      this.downPending.delete(id);
    }
    if (added.result === 'replaces') this.close(added.old.channel);
    // The peer was up already (on the connection this one replaces, or one that closed within
    // the grace): it stays up. Otherwise it is up once it speaks the protocol (its multiplexer
    // hello), not at the handshake alone.
    if (pendingDown !== undefined || (added.result === 'replaces' && added.old.announced)) connection.announced = true;
    else {
      mux.once('ready', () => {
        if (this.peers_.get(id) !== connection || connection.announced) return;
        connection.announced = true;
        this.emit('peer:up', this.peerInfo(connection));
      });
    }
    return true;
  }

  private closed(connection: Connection): void {
    this.counters.bytesIn += connection.mux.bytesIn;
    this.counters.bytesOut += connection.mux.bytesOut;
    for (const hosted of this.catchUps.keys()) this.caughtUp(hosted, connection);
    connection.mux.destroy();
    this.connections.delete(connection);
    this.redialLater(connection);
    if (this.peers_.remove(connection)) this.reportDown(connection);
  }

  /** Drops a connection now (the table no longer counts it) and closes it. */
  private evict(connection: Connection): void {
    if (this.peers_.remove(connection)) this.reportDown(connection);
    this.close(connection.channel);
  }

  /** `'peer:down'` for a connection that just left the table, after the grace. */
  private reportDown(connection: Connection): void {
    if (connection.replaced || !connection.announced || this.state !== 'started') return;
    // Two nodes that dialed each other at once each close the connection they lose; one end
    // may see its connection close before the winning one reaches it. A short grace keeps that
    // from showing as the peer going down and coming back.
    const info = this.peerInfo(connection);
    this.downPending.set(connection.id, this.timers.setTimeout(() => {
      this.downPending.delete(connection.id);
      this.emit('peer:down', info);
    }, PEER_DOWN_GRACE_MS));
  }

  /**
   * A connection we dialed closed: that target waits out its backoff before we dial it again,
   * which grows while connections to it keep ending young (it trims us, it is full, it refuses
   * us after the handshake) and starts over after one that lasted. Without it, a full peer and
   * the nodes it trims would redial each other every round.
   */
  private redialLater(connection: Connection): void {
    const d = connection.dialKey === undefined ? undefined : this.dialing.get(connection.dialKey);
    if (!d) return;
    if (this.now() - connection.since >= LASTING_CONNECTION_MS) d.backoff.reset();
    d.notBefore = this.now() + d.backoff.next();
  }

  /** A peer's OPEN: accepted if we host the dataset with a compatible policy. */
  private decide(info: OpenInfo): string | null {
    const hosted = this.hosted.get(info.name);
    if (!hosted) return 'not-hosted';
    return compatible(hosted.info, info);
  }

  /**
   * Offers a dataset on a connection, unless its history is arriving on another connection right
   * now: then the offer waits until that history is in (or CATCH_UP_WAIT_MS), so that a node
   * joining through several peers receives a dataset once and finds its later sessions with only
   * the difference to send, instead of receiving everything from every peer at once.
   */
  private offer(connection: Connection, hosted: Hosted): void {
    const c = this.catchUp(hosted);
    if (c.syncing.size === 0) {
      c.syncing.add(connection); // until its history is in (see session()) or it ends
      connection.mux.open(hosted.info);
      return;
    }
    c.waiting.add(connection);
    c.timer ??= this.timers.setTimeout(() => this.offerWaiting(hosted, true), CATCH_UP_WAIT_MS);
  }

  private catchUp(hosted: Hosted): CatchUp {
    let c = this.catchUps.get(hosted);
    if (!c) this.catchUps.set(hosted, (c = { syncing: new Set(), waiting: new Set(), timer: undefined }));
    return c;
  }

  /** `connection`'s first exchange of `hosted` is over (synced, refused or closed): the next waits no more. */
  private caughtUp(hosted: Hosted, connection: Connection): void {
    const c = this.catchUp(hosted);
    c.waiting.delete(connection);
    if (c.syncing.delete(connection) && c.syncing.size === 0) this.offerWaiting(hosted, false);
  }

  /** Offers what waits: all of it after CATCH_UP_WAIT_MS, else the next connection in line. */
  private offerWaiting(hosted: Hosted, all: boolean): void {
    const c = this.catchUp(hosted);
    this.timers.clearTimeout(c.timer);
    c.timer = undefined;
    for (const connection of [...c.waiting]) {
      c.waiting.delete(connection);
      if (!this.connections.has(connection) || this.state !== 'started') continue;
      if (all) connection.mux.open(hosted.info);
      else {
        this.offer(connection, hosted);
        if (c.syncing.size > 0) break;
      }
    }
    if (c.waiting.size > 0) c.timer = this.timers.setTimeout(() => this.offerWaiting(hosted, true), CATCH_UP_WAIT_MS);
  }

  /** A dataset both sides accepted: one replication stream over the session. */
  private session(connection: Connection, session: MuxSession): void {
    const hosted = this.hosted.get(session.name);
    if (!hosted) return;
    const options = streamOptions(this.id, connection.id, session.local, session.remote);
    const stream = hosted.model.createStream({
      ...options, expectedPeer: connection.id, maxPendingBytes: 1024 * 1024, name: `${session.name}@${shortId(connection.id)}`,
      ordering: this.orderings.get(session.name),
    });
    let behind = false;
    stream.on('progress', (p) => {
      behind = true;
      this.emit('dataset:progress', { peer: connection.id, dataset: session.name, ...p, done: false });
    });
    stream.once('syncReceived', () => {
      if (behind) this.emit('dataset:progress', { peer: connection.id, dataset: session.name, ...stream.progressNow, done: true });
    });
    stream.on('reconciled', (r) => {
      let c = this.counters.reconciliation.get(session.name);
      if (!c) this.counters.reconciliation.set(session.name, (c = { sessions: 0, have: 0, need: 0, bytes: 0 }));
      c.sessions++;
      c.have += r.have;
      c.need += r.need;
      c.bytes += r.bytes;
    });
    // Offers of this dataset to other new connections wait until this history is in.
    const done = (): void => this.caughtUp(hosted, connection);
    if (options.writable === false) done(); // we accept nothing on it: nothing to wait for
    else {
      stream.once('syncReceived', done);
      stream.once('close', done);
    }
    stream.on('cut', (reason: ProtocolError) => {
      if (BANNED_CUTS.has(reason.reason) || isBannedReconcileCut(reason.reason)) this.punish(connection, `${session.name}: ${reason.message}`);
      else this.close(connection.channel);
    });
    session.attach(stream);
  }

  /** Bans a peer that broke the rules and closes its connection. */
  private punish(connection: Connection, reason: string): void {
    this.ban(connection.id, reason);
  }

  /**
   * Bans a node: closes its connection and refuses it (both ways) until the ban ends. Bans
   * escalate with repeat offences (see BanList). Operators use it; the node uses it on peers
   * that send bad signatures, exhaust their fault budget or break the protocol.
   * @throws RangeError unless `id` is a node id.
   */
  ban(id: NodeId, reason = 'banned by the operator'): BanInfo {
    if (!isNodeId(id)) throw new RangeError('"id" expected a node id');
    const entry = this.bans.ban({ id }, reason.slice(0, 256), this.now());
    const connection = this.peers_.get(id);
    connection?.channel.destroy();
    const info: BanInfo = { id, address: connection?.address, reason: entry.reason, until: entry.until };
    this.emit('peer:banned', info);
    return info;
  }

  /** Lifts a node's ban (its offence count is forgotten too); true if it was banned. */
  unban(id: NodeId): boolean {
    if (!isNodeId(id)) throw new RangeError('"id" expected a node id');
    const lifted = this.bans.unban({ id });
    if (lifted) this.dialing.forEach((d) => (d.notBefore = 0));
    return lifted;
  }

  /** A connection that never became a channel: bans its address if it looked hostile and no
   *  peer ever proved itself from there (so a NAT shared with honest members is not banned). */
  private refused(code: string, address: string | undefined): void {
    bump(this.counters.refused, code);
    if (address === undefined || !BANNED_REFUSALS.has(code) || this.state !== 'started') return;
    const ip = canonicalIp(address);
    if (this.proven.has(ip)) return;
    const entry = this.bans.ban({ address: ip }, `handshake failed: ${code}`, this.now());
    this.emit('peer:banned', { id: undefined, address: ip, reason: entry.reason, until: entry.until });
  }

  /** True if `id` is a seed's: pinned, or proved when we dialed the seed's address. (A seed
   *  that dials us comes from an ephemeral port, so its address cannot tell.) */
  private isSeed(id: NodeId): boolean {
    return this.seeds.some((s) => s.id === id || this.learnedIds.get(formatHostPort(s.host, s.port)) === id);
  }

  // ---- gossip ---------------------------------------------------------------------------------

  /** One gossip round: failure checks, trimming inbound peers beyond the cap (possible only after
   *  our own reserved dials), and one dial. Dialing stops at maxPeers while peers may dial us up
   *  to maxPeers + INBOUND_SURPLUS: the gap between the two is what keeps a mesh of nodes that
   *  all want maxPeers connections from trimming and redialing each other forever. */
  /** The next round, at the gossip interval ± 25% (jitter keeps nodes started together from
   *  acting in lockstep: the same late nodes losing every race for a full peer's slots). */
  private scheduleRound(): void {
    const delay = Math.max(1, Math.round(this.gossipIntervalMs * (0.75 + 0.5 * this.random())));
    this.gossipTimer = this.timers.setTimeout(() => {
      this.round();
      if (this.state === 'started') this.scheduleRound();
    }, delay);
  }

  private round(): void {
    if (this.state !== 'started') return;
    this.membership.check();
    for (const victim of this.peers_.surplus(this.maxPeers + INBOUND_SURPLUS, this.protectedInbound, this.random)) this.evict(victim);
    const target = chooseTarget(this.roundView());
    if (target) this.dialTarget(target);
  }

  /** The next heartbeat, after the interval the last one declared (it grows with the mesh). */
  private scheduleHeartbeat(): void {
    this.heartbeatTimer = this.timers.setTimeout(() => {
      if (this.state !== 'started') return;
      try {
        this.membership.heartbeat();
      } catch {
        // the membership dataset failed (store I/O): reported on its own 'error'; the next beat retries
      }
      this.scheduleHeartbeat();
    }, this.membership.heartbeatIntervalMs);
  }

  private roundView(): Parameters<typeof chooseTarget>[0] {
    const now = this.now();
    const usable = (t: DialTarget): boolean => {
      const id = t.id ?? this.learnedIds.get(t.address);
      if (this.selfAddresses.has(t.address) || (id !== undefined && (this.peers_.get(id) || this.bans.isBanned({ id }, now)))) return false;
      const d = this.dialing.get(dialKey(t));
      return !d || (!d.inFlight && d.notBefore <= now);
    };
    const seeds = this.seeds.map((s) => ({ address: formatHostPort(s.host, s.port), host: s.host, port: s.port, id: s.id, seed: true }));
    const live: DialTarget[] = [];
    const dead: DialTarget[] = [];
    for (const m of this.membership.list()) {
      // The first of its addresses that is not backing off (a member may advertise several).
      for (const address of m.addresses) {
        const { host, port } = parseHostPort(address, 'address');
        const t: DialTarget = { address, host, port, id: m.id, seed: false };
        if (!usable(t)) continue;
        (m.state === 'alive' ? live : dead).push(t);
        break;
      }
    }
    const connections = this.peers_.all();
    const members = this.membership.list();
    return {
      seeds: seeds.filter(usable), seedCount: seeds.length, liveMembers: members.filter((m) => m.state === 'alive').length,
      live, dead, connected: connections.length, outbound: this.peers_.outbound,
      seedConnected: connections.some((c) => c.seed), maxPeers: this.maxPeers, reservedOutbound: Math.min(RESERVED_OUTBOUND_SLOTS, this.maxPeers), random: this.random,
    };
  }

  private dialTarget(target: DialTarget): void {
    if (this.state !== 'started') return;
    let d = this.dialing.get(dialKey(target));
    if (d?.inFlight) return;
    if (!d) {
      d = { backoff: new Backoff({ ...this.options.backoff, random: this.random }), notBefore: 0, inFlight: false };
      this.remember(this.dialing, dialKey(target), d);
    }
    const state = d;
    state.inFlight = true;
    const attempt = dial({
      identity: this.identity, networkKey: this.networkKey, host: target.host, port: target.port, expectedPeer: target.id,
      limits: this.channelLimits, signal: this.stopping.signal, transport: this.transport,
    }).then(
      (channel) => {
        state.inFlight = false;
        // Dropped (banned, ourselves, over a limit): not retried before the backoff.
        if (!this.established(channel, 'out', target)) state.notBefore = this.now() + state.backoff.next();
      },
      (error: unknown) => {
        state.inFlight = false;
        state.notBefore = this.now() + state.backoff.next();
        if ((error as { code?: unknown })?.code !== 'ERR_ABORTED') bump(this.counters.dialFailed, String((error as { code?: unknown })?.code ?? 'ERR_UNKNOWN'));
        if (error instanceof PeerMismatchError && target.seed) {
          // A pinned seed that proves another id: refused, and retried only after the backoff.
        }
      },
    );
    const tracked = attempt.finally(() => this.dials.delete(tracked));
    this.dials.add(tracked);
  }

  /** Ends a channel with its close frame; stop() waits for it. */
  private close(channel: SecureChannel): void {
    const done = closeChannel(channel);
    this.closing.add(done);
    void done.then(() => this.closing.delete(done));
  }

  /** Adds to a bounded map (oldest entries go first past MAX_REMEMBERED). */
  private remember<V>(map: Map<string, V>, key: string, value?: V): void {
    map.delete(key);
    map.set(key, (value ?? this.now()) as V);
    if (map.size > MAX_REMEMBERED) map.delete(map.keys().next().value!);
  }

  /** The membership dataset (read-only use: tests, status). */
  get membersDataset(): Model {
    return this.membership.model;
  }
}

/** Ends a channel with its close frame and resolves once it and its socket closed (both are
 *  destroyed after CLOSE_TIMEOUT_MS if the peer does not answer the close). */
function closeChannel(channel: SecureChannel): Promise<void> {
  const socket = channel.transport;
  const closed = (s: { closed: boolean; once(e: 'close', f: () => void): unknown }): Promise<void> =>
    s.closed ? Promise.resolve() : new Promise<void>((resolve) => s.once('close', () => resolve()));
  const done = Promise.all([closed(channel), closed(socket)]);
  if (channel.closed && socket.closed) return Promise.resolve();
  const timer = setTimeout(() => {
    channel.destroy();
    socket.destroy();
  }, CLOSE_TIMEOUT_MS);
  // A channel nobody reads (dropped before its multiplexer started) would never see the peer's
  // close frame: read and discard, so the close completes cleanly instead of at the timeout.
  channel.resume();
  channel.end();
  return done.then(() => clearTimeout(timer));
}

/**
 * The `advertise` option as a list: one `host:port` or an array of at most MAX_MEMBER_ADDRESSES,
 * each dialable (a port, not a wildcard host) and different from the others.
 * @throws TypeError / RangeError naming the option.
 */
function parseAdvertise(value: unknown): string[] {
  const list = typeof value === 'string' ? [value] : value;
  if (!Array.isArray(list)) throw new TypeError('"advertise" expected a "host:port" string or an array of them');
  if (list.length > MAX_MEMBER_ADDRESSES) throw new RangeError(`"advertise" expected at most ${MAX_MEMBER_ADDRESSES} addresses (MAX_MEMBER_ADDRESSES), got ${list.length}`);
  const name = (i: number): string => (typeof value === 'string' ? 'advertise' : `advertise[${i}]`);
  const seen = new Set<string>();
  list.forEach((a: unknown, i) => {
    const { host, port } = parseHostPort(a, name(i));
    if (isWildcardHost(host)) throw new RangeError(`"${name(i)}" is a wildcard address, which nobody can dial: ${JSON.stringify(a)}`);
    const key = formatHostPort(host.toLowerCase(), port);
    if (seen.has(key)) throw new RangeError(`"${name(i)}" repeats an address: ${JSON.stringify(a)}`);
    seen.add(key);
  });
  return [...(list as string[])];
}

/** The key of a dial target's backoff: its address and the id it must prove. A member that
 *  advertises someone else's address (to get us refused there) backs off only its own entry. */
const dialKey = (t: DialTarget): string => `${t.address}#${t.id ?? ''}`;
