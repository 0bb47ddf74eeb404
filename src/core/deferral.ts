// Verified updates from the near future, held per source until their time comes (see DESIGN,
// "Future bound"). Bounded by MAX_DEFERRED_BYTES per dataset; order per source is kept.
import { compactUpdate, sameHash, type Update } from '../envelope/update.ts';
import type { NodeId } from '../identity/node-id.ts';
import { MAX_DEFERRED_BYTES } from '../limits.ts';
import type { UpdateOrigin } from './types.ts';

/** A verified update held until its version is no longer in the future. Its origin is held
 *  weakly: a closed stream (with its buffers) must not live on for the minutes a deferral lasts. */
export interface Deferred {
  update: Update;
  origin: WeakRef<UpdateOrigin> | null;
  seq: number;
}

/** Hooks of a {@link Deferrals}: the clock, and what to do when an update's time comes. */
export interface DeferralHooks {
  /** Now, in µs (the dataset's wall clock). */
  now: () => number;
  /** How far ahead (µs) an update may be and still apply. */
  skew: number;
  /** Applies an update whose time came (it is verified already). */
  due: (deferred: Deferred) => void;
  /** Reports a failure of `due` without stopping the others. */
  fail: (error: unknown) => void;
}

export class Deferrals {
  private readonly bySource = new Map<NodeId, Deferred[]>();
  private bytes = 0;
  private timer: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(private readonly hooks: DeferralHooks) {}

  /** True if `update` must wait: it is from the future, or behind a held update of its source. */
  mustWait(update: Update): boolean {
    const queue = this.bySource.get(update.source);
    return update.version > this.hooks.now() + this.hooks.skew || (queue !== undefined && queue[0]!.update.version < update.version);
  }

  /** Holds a verified update. @returns 'held', 'duplicate' (this very update is held), or
   *  'full' (past MAX_DEFERRED_BYTES: not held). */
  hold(update: Update, origin: UpdateOrigin | null, seq: number): 'held' | 'duplicate' | 'full' {
    if (this.bytes + update.byteLength > MAX_DEFERRED_BYTES) return 'full';
    let queue = this.bySource.get(update.source);
    if (!queue) this.bySource.set(update.source, (queue = []));
    if (queue.some((q) => sameHash(q.update, update))) return 'duplicate';
    let i = queue.length;
    while (i > 0 && queue[i - 1]!.update.version > update.version) i--;
    queue.splice(i, 0, { update, origin: origin ? new WeakRef(origin) : null, seq });
    // Held for minutes: a record of its own, not a view that would keep a shared chunk alive.
    compactUpdate(update);
    this.bytes += update.byteLength;
    this.schedule();
    return 'held';
  }

  /** Hands over, in version order per source, the updates whose time has come. @returns how many. */
  flush(): number {
    let taken = 0;
    for (const [source, queue] of this.bySource) {
      while (queue.length > 0 && queue[0]!.update.version <= this.hooks.now() + this.hooks.skew && !this.closed) {
        const d = queue.shift()!;
        this.bytes -= d.update.byteLength;
        if (queue.length === 0) this.bySource.delete(source);
        taken++;
        try {
          this.hooks.due(d);
        } catch (err) {
          this.hooks.fail(err);
        }
      }
    }
    this.schedule();
    return taken;
  }

  /** Updates held (memory: at most MAX_DEFERRED_BYTES of envelopes). */
  get count(): number {
    let n = 0;
    for (const q of this.bySource.values()) n += q.length;
    return n;
  }

  /** Stops the timer for good (the dataset was disposed). */
  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private schedule(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.closed || this.bySource.size === 0) return;
    let due = Infinity;
    for (const q of this.bySource.values()) due = Math.min(due, q[0]!.update.version - this.hooks.skew);
    const ms = Math.min(2 ** 31 - 1, Math.max(1, Math.ceil((due - this.hooks.now()) / 1000)));
    this.timer = setTimeout(() => this.flush(), ms);
    this.timer.unref();
  }
}
