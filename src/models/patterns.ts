// Event-name patterns for Events listeners, in the EventEmitter2 style: segments split by '.',
// `*` matches exactly one segment, `**` any number of them (none included). Matched in linear time.

/** Separator between the segments of an event name (`'alerts.disk.full'`). */
export const PATTERN_SEPARATOR = '.';
/** A whole segment `*`: matches exactly one segment (any text, empty included). */
export const ONE_SEGMENT = '*';
/** A whole segment `**`: matches zero or more segments, so `'**'` alone matches every name. */
export const ANY_SEGMENTS = '**';

/** A compiled pattern: its segments, runs of `**` collapsed into one. */
export type Pattern = readonly string[];

/**
 * True if `name` is a pattern: one of its segments is exactly `*` or `**`. A `*` inside a
 * segment (`'a*b'`) is literal text. Listeners on a pattern hear every replicated event whose
 * name it matches; listeners on any other name hear that exact name.
 */
export function isPattern(name: string): boolean {
  // A plain scan: no regular expression is built from the name.
  for (const segment of name.split(PATTERN_SEPARATOR)) {
    if (segment === ONE_SEGMENT || segment === ANY_SEGMENTS) return true;
  }
  return false;
}

/** Splits a pattern into segments, collapsing `**.**` (equivalent, and cheaper to match). */
export function compilePattern(pattern: string): Pattern {
  const out: string[] = [];
  for (const segment of pattern.split(PATTERN_SEPARATOR)) {
    if (segment === ANY_SEGMENTS && out[out.length - 1] === ANY_SEGMENTS) continue;
    out.push(segment);
  }
  return out;
}

/**
 * True if `name` matches `pattern`. A simulation of the pattern's automaton over the name's
 * segments (a set of positions in the pattern, advanced once per segment): no backtracking, so
 * the cost is O(segments of the pattern x length of the name) whatever the input; both are
 * bounded by MAX_EVENT_NAME_LENGTH.
 */
export function matchPattern(pattern: Pattern, name: string): boolean {
  const m = pattern.length;
  let states = new Uint8Array(m + 1);
  let next = new Uint8Array(m + 1);
  states[0] = 1;
  closure(pattern, states);
  let start = 0;
  for (;;) {
    const end = name.indexOf(PATTERN_SEPARATOR, start);
    const segment = end < 0 ? name.slice(start) : name.slice(start, end);
    next.fill(0);
    let any = false;
    for (let i = 0; i < m; i++) {
      if (states[i] === 0) continue;
      const p = pattern[i]!;
      if (p === ANY_SEGMENTS) next[i] = 1; // `**` takes this segment and stays
      else if (p === ONE_SEGMENT || p === segment) next[i + 1] = 1;
      else continue;
      any = true;
    }
    if (!any) return false;
    closure(pattern, next);
    [states, next] = [next, states];
    if (end < 0) break;
    start = end + 1;
  }
  return states[m] === 1;
}

/** Adds the positions reachable without taking a segment (past each `**`, which may take none). */
function closure(pattern: Pattern, states: Uint8Array): void {
  for (let i = 0; i < pattern.length; i++) {
    if (states[i] === 1 && pattern[i] === ANY_SEGMENTS) states[i + 1] = 1;
  }
}

/**
 * The patterns that have (or recently had) listeners on an emitter, compiled once. Listeners
 * themselves stay ordinary EventEmitter listeners under the pattern string, so `once`, `off`,
 * `removeAllListeners` and `listenerCount` work on them unchanged; a pattern whose listeners are
 * all gone is forgotten the next time events are matched.
 */
export class PatternSet {
  private readonly patterns = new Map<string, Pattern>();

  constructor(private readonly listenerCount: (pattern: string) => number) {}

  /** Records `name` if it is a pattern. @returns whether it is one. */
  track(name: string): boolean {
    if (!isPattern(name)) return false;
    if (!this.patterns.has(name)) this.patterns.set(name, compilePattern(name));
    return true;
  }

  /** The patterns with listeners that match `name`, in the order they were first listened to. */
  matching(name: string): string[] {
    const out: string[] = [];
    for (const [text, pattern] of this.patterns) {
      if (this.listenerCount(text) === 0) this.patterns.delete(text);
      else if (matchPattern(pattern, name)) out.push(text);
    }
    return out;
  }
}
