// The fuzz harness: runs fast-check properties as uvu tests, short and seeded in CI, long
// under `npm run fuzz`; prints the seed, the shrunk counterexample and the command to replay.
import { test } from 'uvu';
import fc from 'fast-check';
import { relative } from 'node:path';
import { MAX_MESSAGE_BYTES } from '../../src/limits.ts';

/**
 * Settings, from the environment:
 * - SIGNET_FUZZ_RUNS     runs per property (default 200; a property's `weight` scales it);
 * - SIGNET_FUZZ_SEED     the seed (default a fixed one, so CI is deterministic);
 * - SIGNET_FUZZ_TIME_MS  long mode: run each property this long instead of counting runs;
 * - SIGNET_FUZZ_ONLY     run only the property of this name (replay);
 * - SIGNET_FUZZ_PATH     fast-check's counterexample path (replay, with the seed and ONLY).
 */
function integerFromEnv(name: string, fallback: number): number {
  const text = process.env[name];
  if (text === undefined || text === '') return fallback;
  const n = Number(text);
  if (!Number.isSafeInteger(n)) throw new RangeError(`${name} expected an integer, got ${JSON.stringify(text)}`);
  return n;
}

export const RUNS = integerFromEnv('SIGNET_FUZZ_RUNS', 200);
export const SEED = integerFromEnv('SIGNET_FUZZ_SEED', 0x51637);
export const TIME_MS = integerFromEnv('SIGNET_FUZZ_TIME_MS', 0);
const ONLY = process.env.SIGNET_FUZZ_ONLY;
const PATH = process.env.SIGNET_FUZZ_PATH;

export interface PropertyOptions {
  /** Runs relative to SIGNET_FUZZ_RUNS (slow properties run fewer). Default 1. */
  weight?: number;
}

type AnyProperty = fc.IRawProperty<unknown, boolean>;

function runner(name: string, prop: AnyProperty, options: PropertyOptions): () => Promise<void> {
  return async () => {
    const numRuns = TIME_MS > 0 ? 1e9 : Math.max(1, Math.round(RUNS * (options.weight ?? 1)));
    const started = performance.now();
    // While it runs, what escapes is recorded rather than fatal: a property that checks
    // takeEscapes() after each case fails with its seed and counterexample.
    process.on('uncaughtException', onEscape);
    process.on('unhandledRejection', onEscape);
    let details: fc.RunDetails<unknown>;
    try {
      details = await fc.check(prop, {
        seed: SEED,
        numRuns,
        includeErrorInReport: true,
        ...(PATH ? { path: PATH } : {}),
        plugins: TIME_MS > 0 ? [fc.interruptAfterTimeLimit(TIME_MS)] : [],
      });
    } finally {
      process.off('uncaughtException', onEscape);
      process.off('unhandledRejection', onEscape);
    }
    const seconds = (performance.now() - started) / 1000;
    const unseen = takeEscapes();
    if (unseen.length > 0) throw new Error(`escaped while ${JSON.stringify(name)} ran: ${unseen.join('; ')}`);
    if (TIME_MS > 0 || process.env.SIGNET_FUZZ_REPORT) {
      // one line per property, read by scripts/fuzz.mjs
      console.log(`fuzz-rate\t${name}\t${details.numRuns}\t${seconds.toFixed(2)}\t${(details.numRuns / seconds).toFixed(1)}`);
    }
    if (details.failed) {
      const file = relative(process.cwd(), process.argv[1] ?? 'test/fuzz');
      const replay = `SIGNET_FUZZ_SEED=${details.seed} SIGNET_FUZZ_PATH=${shellQuote(details.counterexamplePath ?? '')} ` +
        `SIGNET_FUZZ_ONLY=${shellQuote(name)} node --expose-gc --import tsx ${file}`;
      console.log(`fuzz-fail\t${name}\t${details.seed}\t${replay}`);
      throw new Error(`${fc.defaultReportMessage(details)}\n\nreplay: ${replay}`);
    }
  };
}

const shellQuote = (text: string): string => `'${text.replace(/'/g, `'\\''`)}'`;

/** Registers a property as a uvu test. */
export function property(name: string, prop: AnyProperty, options: PropertyOptions = {}): void {
  if (ONLY !== undefined && ONLY !== name) test.skip(name, runner(name, prop, options));
  else test(name, runner(name, prop, options));
}

/** Registers a property that fails on the current code (a `// BUG(issue 7):` comment says why): `test.skip`. */
property.skip = (name: string, prop: AnyProperty, options: PropertyOptions = {}): void => {
  test.skip(name, runner(name, prop, options));
};

// ---- escapes -----------------------------------------------------------------------------------

const escaped: unknown[] = [];
const onEscape = (error: unknown): void => void escaped.push(error);

/** What escaped (uncaught exceptions, unhandled rejections) since the last call, as messages. */
export function takeEscapes(): string[] {
  return escaped.splice(0).map((e) => (e instanceof Error ? `${e.name}: ${e.message}` : String(e)));
}

// ---- resource budgets --------------------------------------------------------------------------

/**
 * Heap a peer's input may cost per byte once decoded and held: 1 GiB for one message of
 * MAX_MESSAGE_BYTES, i.e. 64 bytes (a V8 object or eight pointers) per wire byte. Generous on
 * purpose: it catches amplification (an item per byte that costs a typed array), not tuning.
 */
export const HEAP_BYTES_PER_INPUT_BYTE = 2 ** 30 / MAX_MESSAGE_BYTES;
/** Measurement slack on top of the per-byte budget (a few pages, code and caches warming up). */
export const HEAP_SLACK_BYTES = 2 * 1024 * 1024;

const gc = (globalThis as { gc?: () => void }).gc;
/** Without --expose-gc garbage cannot be told from what is held: the budget doubles (conservative). */
export const HEAP_MEASURE_FACTOR = gc ? 1 : 2;

/** The most heap (and ArrayBuffer) growth an input of `bytes` bytes may cause. */
export const heapBudget = (bytes: number): number =>
  HEAP_MEASURE_FACTOR * (HEAP_BYTES_PER_INPUT_BYTE * bytes + HEAP_SLACK_BYTES);

const used = (): number => {
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
};

/** Runs `fn` and returns its result with the heap growth it holds on to (after a full GC when available). */
export function retained<T>(fn: () => T): { result: T; growth: number } {
  gc?.();
  const before = used();
  const result = fn();
  gc?.();
  const growth = used() - before;
  return { result, growth };
}
