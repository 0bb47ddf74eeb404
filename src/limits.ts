// Every limit signet enforces, as a named default in one place. Each comment says what
// happens past the limit; each limit is tested at its value and at value + 1.

/** Longest ttl of a Model entry or an Events event (ms): 2^32 - 1, about 49.7 days, the largest
 *  the codec writes as a CBOR integer. Past it: `set`/`emit` throw RangeError, and a received
 *  body carrying one is `bad-shape`. */
export const MAX_TTL_MS = 0xffff_ffff;

/** Largest update body (CBOR bytes). Past it: local writes throw, received updates are rejected `too-large`. */
export const MAX_UPDATE_BYTES = 64 * 1024;
/** Highest value `maxUpdateBytes` may be configured to. */
export const MAX_UPDATE_BYTES_CEILING = 16 * 1024 * 1024;
/** Bytes an envelope may add around the body (framing, dataset name, key, version, signature). */
export const ENVELOPE_OVERHEAD_BYTES = 1024;
/** Longest dataset name in UTF-16 code units. Past it: rejected `bad-shape`. */
export const MAX_DATASET_LENGTH = 128;
/** Deepest nesting of arrays/maps inside an update body. Past it: rejected `bad-shape`. */
export const MAX_BODY_DEPTH = 32;
/**
 * Decode budget: a CBOR value from a peer may decode to at most this many times its wire
 * size (estimated heap, see DECODED_COST in envelope/cbor.ts) plus DECODE_SLACK_BYTES,
 * checked while scanning, before cbor-x builds anything. Past it: an update is rejected
 * `too-large` (a local write throws RangeError), a replication message cuts the peer off
 * `malformed`. Ordinary data (objects, strings, numbers) expands 2-10x; what passes 32x is
 * built from empty containers or empty byte strings, whose decoding costs 40-190 heap bytes
 * per wire byte.
 */
export const MAX_DECODE_EXPANSION = 32;
/** Estimated decoded bytes any value may use beyond MAX_DECODE_EXPANSION x its size (so `{}` and small values always pass). */
export const DECODE_SLACK_BYTES = 4096;
/** Largest `meta` a peer may send in its replication hello (CBOR bytes); kept for the stream's
 *  life. Past it: the peer is cut off `malformed`, after reading no more than this. */
export const MAX_META_BYTES = 16 * 1024;
/** Bytes of received envelopes a stream holds while their signatures are verified. Past it
 *  the stream stops reading (backpressure) until verdicts free room; one update larger than
 *  this is still taken alone. */
export const MAX_PENDING_BYTES = 8 * 1024 * 1024;
/** Largest reassembled replication/channel message. Past it: the session ends, nothing allocated. */
export const MAX_MESSAGE_BYTES = 16 * 1024 * 1024;
/** Largest Noise transport message (spec section 3). A longer length prefix cannot occur. */
export const NOISE_MAX_FRAME = 65535;
/** Handshake deadline. Past it: the handshake aborts with ERR_TIMEOUT. */
export const HANDSHAKE_TIMEOUT_MS = 10_000;
/** A store commit still unsettled after this long is reported (`'error'`, a StoreError), once per
 *  commit: until it settles, nothing applied after it is announced or forwarded. */
export const STORE_STALL_MS = 30_000;
/** Largest handshake message. Past it: the handshake aborts before reading it. */
export const MAX_HANDSHAKE_FRAME = 1024;
/** How far in the future (µs) an update's version may be. Past it: not applied now (`future`). */
export const MAX_CLOCK_SKEW_MICROS = 60_000_000;
/** Equivocations kept as evidence per source. Reaching it quarantines the source (its further
 *  updates are refused, blamelessly for the relays), so minting equivocations costs bounded memory. */
export const MAX_EVIDENCE_PER_SOURCE = 16;
/** Bytes of verified future updates (beyond maxClockSkew) held per dataset until their time.
 *  Past it: refused `future`, charged to nobody; the peer offers it again on a later connection. */
export const MAX_DEFERRED_BYTES = 1024 * 1024;
/** How far beyond maxClockSkew (µs) a verified update may be and still be held. Past it:
 *  refused `future`, charged to nobody. */
export const MAX_DEFER_MICROS = 10 * 60_000_000;
/** How far (µs) ahead of its newest local write a node reserves own versions in its store.
 *  After a restart its next version is above the reservation, so a write signed but killed
 *  before it was stored is never reused (unless more than this was signed in that window). */
export const OWN_VERSION_RESERVE_MICROS = 1_000_000;
/** Signature verifications in flight per stream. Past it: the stream stops reading (backpressure). */
export const MAX_PENDING_VERIFICATIONS = 1024;
/** Envelopes of one payload (same hash, other signatures: forgeries) whose verifications a
 *  dataset dedupes at once. Past it: another is verified on its own, not shared (see
 *  core/inflight.ts: they would otherwise all meet in one probe run). */
export const MAX_SIGNATURES_PER_HASH = 4;
/** How long a replication stream waits for the peer's hello. Past it: the stream is cut
 *  `hello-timeout` (instead of hanging on a peer that never speaks). */
export const HELLO_TIMEOUT_MS = 30_000;
/** Rejections a connection may cause. Past it: the connection is closed. */
export const FAULT_BUDGET = 64;
/** Gossip round interval. */
export const GOSSIP_INTERVAL_MS = 1000;
/** Phi-accrual threshold above which a peer is considered down. */
export const PHI_THRESHOLD = 8;
/** Most simultaneous peer connections a Node keeps. */
export const MAX_PEERS = 8;
/** Public keys whose parsed key objects / node ids are cached. Past it: least recently used evicted. */
export const KEY_CACHE_SIZE = 4096;
/** Secure channel: after this long without sending anything, an encrypted keepalive frame is sent. */
export const KEEPALIVE_INTERVAL_MS = 15_000;
/** Secure channel: after this long without an authenticated frame from the peer, the session ends with ERR_TIMEOUT. */
export const IDLE_TIMEOUT_MS = 60_000;
/** Handshakes in progress from one remote address. Past it: HandshakeLimiter refuses the connection (closed unread). */
export const MAX_PENDING_HANDSHAKES_PER_ADDRESS = 4;
/** Handshakes in progress in total. Past it: HandshakeLimiter refuses the connection (closed unread). */
export const MAX_PENDING_HANDSHAKES = 128;
/**
 * Ephemeral keys of accepted messages 1 remembered per process. Past it the oldest is forgotten,
 * and a message 1 recorded before that could be replayed once more (costing us a DH and a reply,
 * never a session: the replayer cannot finish the handshake). 16,384 keys is about 1.5 MiB.
 */
export const MESSAGE_1_REPLAY_MEMORY = 16_384;
/**
 * How far (ms, either way) the timestamp inside handshake message 1 may be from the responder's
 * clock. Past it the responder refuses message 1 like any other it cannot open: it writes nothing,
 * does no DH and closes at the handshake deadline. So a recorded message 1 goes stale this long
 * after it was sent, and members' clocks must agree to within it. Inside the window, the replay
 * memory (MESSAGE_1_REPLAY_MEMORY) refuses a repeat within one process; it keeps each key until
 * that key's timestamp leaves this window.
 */
export const HANDSHAKE_FRESHNESS_MS = 120_000;
/** LmdbStore: longest source id and meta name, in UTF-16 code units. Past it `commit` rejects
 *  with RangeError. Keeps every key within 1 + 2·128 + 1 + 2·128 = 514 bytes (lmdb-js allows
 *  1978 with 4 KiB pages). */
export const MAX_STORE_NAME_LENGTH = 128;
/** Phi-accrual detector (src/mesh/phi-accrual.ts): heartbeat intervals kept per member, in a
 *  buffer allocated once (8 bytes each). Past it the oldest interval is forgotten, so memory
 *  stays fixed however often a member sends heartbeats. */
export const PHI_MAX_SAMPLE_SIZE = 200;
/** Highest value `maxSampleSize` may be configured to (80 KB per member). Past it the detector's
 *  constructor throws RangeError. */
export const PHI_MAX_SAMPLE_SIZE_CEILING = 10_000;
/** Phi-accrual detector: floor on the standard deviation of heartbeat intervals (ms). Below it
 *  the floor is used, so that perfectly regular heartbeats do not make phi leap to the threshold
 *  at the first sign of lateness. */
export const PHI_MIN_STD_DEVIATION_MS = 100;
/** Phi-accrual detector: lateness (ms) added to the mean interval before phi rises in earnest,
 *  so one lost round or a GC pause does not convict a member. Akka's cluster default. */
export const PHI_ACCEPTABLE_HEARTBEAT_PAUSE_MS = 3000;
/** Phi-accrual detector: heartbeat interval (ms) assumed until one is measured; the first
 *  heartbeat seeds the window with this ± a quarter of it. Set it to the liveness rate. */
export const PHI_FIRST_HEARTBEAT_ESTIMATE_MS = 1000;
/** Reconnect backoff (src/mesh/backoff.ts): ceiling of the first retry's random delay (ms); the
 *  ceiling doubles with each failed attempt. */
export const RECONNECT_BASE_MS = 500;
/** Reconnect backoff: highest ceiling of the random delay (ms). Past it the ceiling stops
 *  doubling: a dead peer is retried after 0-30 s, 15 s on average. */
export const RECONNECT_MAX_MS = 30_000;
/** Ban list (src/mesh/bans.ts): length of a peer's first ban (ms). Each further offence within
 *  BAN_FORGET_MS of the previous one doubles it. */
export const BAN_BASE_MS = 60_000;
/** Ban list: longest ban (ms), 24 h. Past it the doubling stops: a peer that keeps offending is
 *  banned for 24 h at a time. */
export const BAN_MAX_MS = 86_400_000;
/** Ban list: how long (ms) a peer's offences are remembered after its latest one, 48 h. Past it
 *  they are forgotten and the next ban is BAN_BASE_MS again. Longer than BAN_MAX_MS so a peer
 *  at the cap is still remembered when its ban ends. */
export const BAN_FORGET_MS = 172_800_000;
/** Ban list: peers (ids and addresses together) remembered at once, banned or with offences not
 *  yet forgotten. Past it the entry whose ban ends soonest is evicted (see BanList). */
export const MAX_BANS = 10_000;
/** Highest value `maxBans` may be configured to; past it the BanList constructor throws
 *  RangeError. Keeps the eviction scan of a full list under ~1 ms. */
export const MAX_BANS_CEILING = 100_000;
/** Ban list: longest address and reason, in UTF-16 code units. Past it `ban` throws RangeError
 *  (a caller's bug: addresses and reasons are short), so MAX_BANS entries stay small. */
export const MAX_BAN_TEXT_LENGTH = 256;
/** Mesh multiplexer (src/mesh/mux.ts): largest DATA payload, so each mux message fits in one
 *  Noise transport frame. A peer's DATA beyond it cuts the connection. */
export const MUX_MAX_DATA_BYTES = 60 * 1024;
/** Mesh multiplexer: largest control message (hello, OPEN, REFUSE...). Past it the connection is cut. */
export const MUX_MAX_CONTROL_BYTES = 1024;
/** Largest secure-channel message on a mesh connection: a DATA message with its 3-byte header.
 *  Past it the channel ends (ERR_FRAME_TOO_LARGE) before anything is allocated for it. */
export const MUX_MAX_MESSAGE_BYTES = MUX_MAX_DATA_BYTES + 3;
/** Mesh multiplexer: bytes a peer may send on one dataset before we grant more (its credit
 *  window). What one slow dataset can hold is this, so it never stalls another. Past it: cut. */
export const MUX_WINDOW_BYTES = 256 * 1024;
/** Mesh multiplexer: datasets a peer may open on one connection (accepted or refused). Past it: cut. */
export const MUX_MAX_OPENS = 256;
/** Mesh: how often (ms) a Node signs its liveness record in the membership dataset while the
 *  mesh has at most HEARTBEAT_MEMBERS live members; beyond, the interval grows with the mesh. */
export const HEARTBEAT_INTERVAL_MS = 5000;
/** Mesh: live members a heartbeat interval is sized for. Every node hears every member's
 *  heartbeats (that is what lets it judge each one alive or dead), so with a fixed interval the
 *  cost per node grows with the mesh: at 1,000 members and 5 s, 200 verifications/s and, as each
 *  record reaches a node once per connection, ~400 KB/s. Past this many live members a node
 *  stretches its interval to heartbeatIntervalMs x ceil(members / HEARTBEAT_MEMBERS) and says so
 *  in the record, so each node verifies about HEARTBEAT_MEMBERS heartbeats per base interval
 *  (20/s at 5 s, ~0.2% of a core) whatever the size; the price is slower conviction of distant
 *  members (at 1,000 members, a 50 s interval). Connected peers are seen down at once anyway. */
export const HEARTBEAT_MEMBERS = 100;
/** Mesh: longest heartbeat interval (ms) a node uses or a record may declare (a longer one counts
 *  as this), so that a member, or a flood of identities inflating the member count, cannot make
 *  a member's death take longer than a few of these to see. */
export const MAX_HEARTBEAT_INTERVAL_MS = 300_000;
/** Mesh: established connections per remote IP (IPv4-mapped IPv6 counted as IPv4). Past it a
 *  new one is closed after its handshake. */
export const MAX_CONNECTIONS_PER_ADDRESS = 4;
/** Mesh: inbound connections accepted beyond maxPeers (a node dials up to maxPeers; peers may
 *  dial it up to maxPeers + this). Past it a newcomer replaces an unprotected inbound peer chosen
 *  at random (not a seed, not one we dialed, not among the maxPeers / 2 longest-lived), or is
 *  closed if there is none. */
export const INBOUND_SURPLUS = 4;
/** Mesh: outbound connections a Node dials even when inbound peers fill maxPeers, so that an
 *  attacker opening maxPeers connections cannot cut it off from its seeds (eclipse). */
export const RESERVED_OUTBOUND_SLOTS = 2;
/** Mesh: members tracked (failure detector and dial candidates). Past it new members are not tracked. */
export const MAX_MEMBERS = 10_000;
/** Mesh: addresses one membership record may carry. Past it the extra ones are ignored. */
export const MAX_MEMBER_ADDRESSES = 8;
/** Replication: how often (ms) a long-lived stream reconciles the set of updates it holds with
 *  its peer's, besides once after history (and after the live tail has been quiet for
 *  RECONCILE_QUIET_MS). Each session hashes every held update once under a fresh salt
 *  (~1 µs each) and costs one round trip when nothing differs. */
export const RECONCILE_INTERVAL_MS = 60_000;
/** Replication: quiet time (ms) after live updates before a stream reconciles again, so that
 *  what a relay withheld from a burst is repaired soon after it. */
export const RECONCILE_QUIET_MS = 2_000;
/** Core: superseded arrivals remembered per dataset (by source and version), so that the two sides
 *  of an equivocation that both lost last-writer-wins here are still recognised when a peer sends
 *  them as evidence. Oldest forgotten first. */
export const RECENT_SUPERSEDED = 4096;
/** Replication: a peer that starts a reconciliation session sooner than this (ms, or the
 *  responder's own quiet time if shorter) after the last one ended is charged one fault: each
 *  session costs the responder a pass over all it holds. */
export const RECONCILE_MIN_GAP_MS = 1_000;

/** Source keys one direction of a replication stream names in its table (protocol 3: a key is
 *  sent once, then by index). Past it: further sources' keys travel in full in every update. */
export const MAX_STREAM_KEYS = 4096;
