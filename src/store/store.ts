// The Store interface every model persists through, and MemoryStore for tests and
// ephemeral use. A store holds verified envelopes and the clock, per dataset.
import type { NodeId } from '../identity/node-id.ts';

/** What a store returns for a dataset: envelopes verified before they were stored, and the clock. */
export interface StoredState {
  updates: Uint8Array[];
  clock: Array<[NodeId, number]>;
  /** Named numbers a model keeps beside its updates (Model: its purge floor). */
  meta?: Array<[string, number]>;
}

/** One atomic change to a dataset's stored state, applied in order: put, then drop, then clock
 *  (an update that lost last-writer-wins on arrival is put and dropped in the same batch). */
export interface StoreBatch {
  /** Envelope bytes now held, keyed by update hash (hex). */
  put: Array<[string, Uint8Array]>;
  /** Hashes (hex) of updates no longer needed (superseded, expired, compacted). */
  drop: string[];
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
    for (const [hash, bytes] of batch.put) d.updates.set(hash, bytes);
    for (const hash of batch.drop) d.updates.delete(hash);
    for (const [source, version] of batch.clock) if (version > (d.clock.get(source) ?? 0)) d.clock.set(source, version);
    for (const [name, value] of batch.meta ?? []) d.meta.set(name, value);
  }

  /** Number of envelopes held for a dataset (tests, status). */
  size(dataset: string): number {
    return this.get(dataset).updates.size;
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}
