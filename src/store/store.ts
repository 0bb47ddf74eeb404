// The Store interface every model persists through, and MemoryStore for tests and
// ephemeral use. A store holds verified envelopes and the clock, per dataset.
import type { NodeId } from '../identity/node-id.ts';

/** What a store returns for a dataset: envelopes verified before they were stored, and the clock. */
export interface StoredState {
  updates: Uint8Array[];
  /** For each of `updates`, true if it is stored under its name (source, version, hash), where
   *  {@link Store.readEnvelope} finds it; absent: none is (a model then keeps what it loaded in
   *  memory, and backs only what it commits itself). */
  byName?: boolean[];
  clock: Array<[NodeId, number]>;
  /** Named numbers a model keeps beside its updates (Model: its purge floor). */
  meta?: Array<[string, number]>;
}

/**
 * A verified update as a store holds it, named by its source, version and hash (an `Update` is
 * one). A store may keep these side by side per source in version order (LmdbStore does: one
 * source's updates then fill whole pages, and a batch of them touches few), which it cannot do
 * for an update named by its hash alone.
 */
export interface StoreUpdate {
  /** The signing source's node id. */
  readonly source: NodeId;
  /** Its version: a safe integer >= 0. */
  readonly version: number;
  /** SHA-256 of the signed payload (32 bytes): two updates with one source and version differ here. */
  readonly hash: Uint8Array;
  /** The envelope bytes (read for `put` only; lmdb-js reads them when it writes, so they must
   *  not change until the commit resolves). */
  readonly bytes: Uint8Array;
}

/** An update to drop: its source, version and hash (an `Update` or a {@link StoreUpdate} is one). */
export type StoreUpdateName = Pick<StoreUpdate, 'source' | 'version' | 'hash'>;

/** One atomic change to a dataset's stored state, applied in order: put, then drop, then clock
 *  (an update that lost last-writer-wins on arrival is put and dropped in the same batch).
 *  An update is dropped in the form it was put: a {@link StoreUpdate} by its name, a
 *  `[hash, bytes]` pair by its hash. */
export interface StoreBatch {
  /** Envelopes now held: an update (by source, version and hash), or `[hash (hex), bytes]`. */
  put: Array<StoreUpdate | [string, Uint8Array]>;
  /** Updates no longer needed (superseded, expired, compacted), named as they were put. */
  drop: Array<StoreUpdateName | string>;
  /** Clock entries that advanced. */
  clock: Array<[NodeId, number]>;
  /** Named numbers to set (each replaces its previous value). */
  meta?: Array<[string, number]>;
}

/** Persistence for replicated datasets. */
export interface Store {
  /** Everything stored for `dataset` (empty for a new one). */
  load(dataset: string): Promise<StoredState>;
  /** Applies a batch atomically; resolves once it is durable. */
  commit(dataset: string, batch: StoreBatch): Promise<void>;
  /** Releases resources; later calls reject. */
  close(): Promise<void>;
  /**
   * Optional: the envelope committed for `update` (by source, version and hash) in `dataset`, read
   * synchronously, as a new array the caller owns (it may be handed to users, who may write into
   * it), or undefined if the store does not hold it. A store that has it lets a model
   * keep the envelopes of the updates it holds on disk rather than in memory (a model then reads
   * them back here, and checks them against the hash it keeps). LmdbStore has it.
   * @throws after close.
   */
  readEnvelope?(dataset: string, update: StoreUpdateName): Uint8Array | undefined;
}

/** A Store in memory: nothing survives the process. */
export class MemoryStore implements Store {
  private readonly datasets = new Map<string, { updates: Map<string, Uint8Array>; clock: Map<NodeId, number>; meta: Map<string, number> }>();
  private closed = false;

  private get(dataset: string) {
    if (this.closed) throw new Error('MemoryStore is closed');
    let d = this.datasets.get(dataset);
    if (!d) this.datasets.set(dataset, (d = { updates: new Map(), clock: new Map(), meta: new Map() }));
    return d;
  }

  async load(dataset: string): Promise<StoredState> {
    const d = this.get(dataset);
    return { updates: [...d.updates.values()], clock: [...d.clock], meta: [...d.meta] };
  }

  async commit(dataset: string, batch: StoreBatch): Promise<void> {
    this.commitSync(dataset, batch);
  }

  /** Synchronous commit (memory is durable as soon as it is written). */
  commitSync(dataset: string, batch: StoreBatch): void {
    const d = this.get(dataset);
    for (const item of batch.put) {
      if (Array.isArray(item)) d.updates.set(item[0], item[1]);
      else d.updates.set(memoryKey(item), item.bytes);
    }
    for (const item of batch.drop) d.updates.delete(typeof item === 'string' ? item : memoryKey(item));
    for (const [source, version] of batch.clock) if (version > (d.clock.get(source) ?? 0)) d.clock.set(source, version);
    for (const [name, value] of batch.meta ?? []) d.meta.set(name, value);
  }

  /** Number of envelopes held for a dataset (tests, status). */
  size(dataset: string): number {
    return this.get(dataset).updates.size;
  }

  /** Later calls reject; a commit made by a microtask queued before close() still lands (a model
   *  commits what it applied in a turn at its end). */
  async close(): Promise<void> {
    await Promise.resolve();
    this.closed = true;
  }
}

/** MemoryStore's key for an update named by source, version and hash (never a 64-digit hex hash,
 *  the other form's key). */
const memoryKey = (u: StoreUpdateName): string => `${u.source}/${u.version}/${Buffer.from(u.hash.buffer, u.hash.byteOffset, u.hash.length).toString('hex')}`;
