// The daemon's catch-up progress on a terminal: one bar per dataset and peer being caught up
// with (sources of the peer's digest done, updates received so far), drawn by cli-progress, with
// the log lines printed above the bars. Without a terminal the daemon logs lines instead.
import cliProgress from 'cli-progress';

/** A terminal stream, as cli-progress needs it (process.stderr when it is a TTY). */
export interface TtyStream {
  isTTY?: boolean;
  columns?: number;
  write(text: string): boolean;
}

/** What one bar shows. */
export interface CatchUp {
  dataset: string;
  /** The peer's node id; the bar shows a short prefix. */
  peer: string;
  sourcesDone: number;
  sourcesTotal: number;
  received: number;
}

/** How often (ms) at most the bars are redrawn. */
export const PROGRESS_REDRAW_MS = 200;

const FORMAT = '{label} [{bar}] {value}/{total} sources, {received} updates';

/** Bars of the catch-ups under way; {@link log} prints a line above them. */
export class ProgressBars {
  private readonly multi: cliProgress.MultiBar;
  private readonly bars = new Map<string, cliProgress.SingleBar>();

  constructor(private readonly stream: TtyStream) {
    this.multi = new cliProgress.MultiBar({
      stream: stream as NodeJS.WritableStream, format: FORMAT, fps: 1000 / PROGRESS_REDRAW_MS, hideCursor: false,
      clearOnComplete: true, stopOnComplete: false, autopadding: true, emptyOnZero: true, barsize: 24,
      // A bar is drawn only on a terminal (the daemon does not build this class otherwise); the
      // daemon's own signal handling stops it (cli-progress would add SIGINT handlers of its own).
      noTTYOutput: false, forceRedraw: false, gracefulExit: false,
    }, cliProgress.Presets.shades_classic);
  }

  /** Shows or moves the bar of `p.dataset` with `p.peer`. */
  update(p: CatchUp): void {
    const key = `${p.dataset}@${p.peer}`;
    const payload = { label: `${p.dataset} <- ${p.peer.slice(0, 8)}`, received: p.received };
    const total = Math.max(1, p.sourcesTotal);
    const bar = this.bars.get(key);
    if (bar === undefined) this.bars.set(key, this.multi.create(total, p.sourcesDone, payload));
    else {
      bar.setTotal(total);
      bar.update(p.sourcesDone, payload);
    }
  }

  /** Removes the bar of `dataset` with `peer` (caught up, or the peer went away). */
  finish(dataset: string, peer: string): void {
    const key = `${dataset}@${peer}`;
    const bar = this.bars.get(key);
    if (bar === undefined) return;
    this.bars.delete(key);
    this.multi.remove(bar);
    // No bar left: stop redrawing (a new catch-up starts it again).
    if (this.bars.size === 0) this.multi.stop();
  }

  /** Draws the bars now (they are redrawn every PROGRESS_REDRAW_MS anyway). */
  redraw(): void {
    if (this.bars.size > 0) this.multi.update();
  }

  /** Bars currently shown. */
  get size(): number {
    return this.bars.size;
  }

  /** Prints `line` above the bars (at once while none is shown). */
  log(line: string): void {
    const text = line.endsWith('\n') ? line : `${line}\n`;
    if (this.bars.size === 0) this.stream.write(text);
    else this.multi.log(text);
  }

  /** Removes every bar and stops redrawing. */
  stop(): void {
    this.bars.clear();
    this.multi.stop();
  }
}
