// Events: a reliable, replicated event emitter (npm scuttlebutt `events`). emit(name, data)
// is signed and replayed to late joiners; history is bounded with a 'compaction' hook.
import { EventEmitter } from 'node:events';
import type { Update } from '../envelope/update.ts';
import type { Value } from '../envelope/cbor.ts';
import type { NodeId } from '../identity/node-id.ts';
import { Scuttlebutt, type ScuttlebuttOptions } from '../core/scuttlebutt.ts';
import { compareUpdates } from '../core/order.ts';
import { assertInteger } from '../util/bytes.ts';

/** Default number of events kept for late joiners. Past it: the oldest are compacted away. */
export const DEFAULT_MAX_HISTORY = 10_000;
/** Longest event name. */
export const MAX_EVENT_NAME_LENGTH = 256;
/** Names the emitter itself uses; replicated events may not take them. */
export const RESERVED_EVENT_NAMES: ReadonlySet<string> = new Set([
  'update', 'invalid', 'old_data', 'equivocation', 'dispose', 'unstream', 'compaction', 'error', 'newListener', 'removeListener',
]);

/** Events options: the Scuttlebutt options plus the history bound. */
export interface EventsOptions extends ScuttlebuttOptions {
  /** Events kept for late joiners. Default 10,000. */
  maxHistory?: number;
}

const emitLocal = EventEmitter.prototype.emit;

function nameOf(body: Value): string | null {
  if (!Array.isArray(body) || body.length !== 3 || body[0] !== 'emit') return null;
  const name = body[1];
  if (typeof name !== 'string' || name.length === 0 || name.length > MAX_EVENT_NAME_LENGTH || RESERVED_EVENT_NAMES.has(name)) return null;
  return name;
}

/** A replicated event emitter. `emit(name, data)` signs and replicates; `on(name, fn)` hears
 *  every event from every source, including history replayed when a stream connects. */
export class Events extends Scuttlebutt {
  private readonly log: Update[] = [];
  private readonly maxHistory: number;

  constructor(options: EventsOptions) {
    super(options);
    this.maxHistory = options.maxHistory ?? DEFAULT_MAX_HISTORY;
    assertInteger(this.maxHistory, 'maxHistory', 1, 1e9);
  }

  protected keyOf(body: Value): string | null {
    return nameOf(body);
  }

  /**
   * Emits a replicated event. Internal names (`update`, `invalid`, ...) are refused.
   * @throws RangeError for a reserved or over-long name; TypeError for data CBOR cannot carry.
   */
  override emit(name: string | symbol, ...args: unknown[]): boolean {
    if (typeof name === 'symbol') return emitLocal.call(this, name, ...args);
    if (RESERVED_EVENT_NAMES.has(name)) return emitLocal.call(this, name, ...args);
    if (name.length === 0 || name.length > MAX_EVENT_NAME_LENGTH) {
      throw new RangeError(`"name" expected 1..${MAX_EVENT_NAME_LENGTH} characters`);
    }
    const data = args[0] === undefined ? null : args[0];
    this.localUpdate(['emit', name, data]);
    return true;
  }

  /** Retained events `clock` lacks, in the total order (oldest first). */
  history(clock?: ReadonlyMap<NodeId, number>): Update[] {
    return this.log.filter((u) => u.version > (clock?.get(u.source) ?? 0));
  }

  applyUpdate(update: Update): boolean {
    if (nameOf(update.body) === null) return false;
    // insert in total order (usually at the end)
    let i = this.log.length;
    while (i > 0 && compareUpdates(this.log[i - 1]!, update) > 0) i--;
    this.log.splice(i, 0, update);
    if (this.log.length > this.maxHistory) {
      const removed = this.log.splice(0, this.log.length - this.maxHistory);
      for (const u of removed) this.dropUpdate(u); // same store batch as the put
      emitLocal.call(this, 'compaction', removed);
    }
    return true;
  }

  protected override announced(update: Update): void {
    const [, name, data] = update.body as [string, string, Value];
    emitLocal.call(this, name, data, update);
  }
}
