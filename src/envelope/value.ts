// What a replicated value may be, checked where it enters (set, emit, signUpdate): plain data
// that comes back from every node exactly as it was written, or a TypeError naming what is not.
import { MAX_BODY_DEPTH } from '../limits.ts';

/** The value types signet replicates, as `typeof`-style names for messages and docs. */
export const SUPPORTED_VALUE_TYPES = 'null, boolean, finite number, string, Uint8Array (Buffer), array, plain object';

/**
 * Throws unless `value` is plain data that round-trips unchanged: null, booleans, finite
 * numbers, strings, Uint8Array (a Buffer reads back as a Uint8Array), dense arrays and plain
 * objects (prototype Object.prototype or null) of those, at most MAX_BODY_DEPTH deep.
 * Everything else would be refused by peers or come back changed (a Date as a tag, a bigint
 * as a number, undefined as nothing), so it is refused here, with its path.
 * @throws TypeError naming the argument, the path and the type: `"value.a[2]" is a Date; supported: ...`.
 */
export function assertValue(value: unknown, name: string): void {
  // Paths are made only for an error message: each frame names its parent and its key.
  type Frame = { v: unknown; parent: Frame | null; key: string | number; depth: number };
  const pathOf = (f: Frame): string => {
    let path = '';
    for (let at: Frame | null = f; at !== null; at = at.parent) path = at.parent === null ? `${name}${path}` : typeof at.key === 'number' ? `[${at.key}]${path}` : `.${at.key}${path}`;
    return path;
  };
  const stack: Frame[] = [{ v: value, parent: null, key: '', depth: 0 }];
  while (stack.length > 0) {
    const f = stack.pop()!;
    const v = f.v;
    const problem = unsupported(v);
    if (problem !== null) throw new TypeError(`"${pathOf(f)}" is ${problem}; supported: ${SUPPORTED_VALUE_TYPES}`);
    if (v === null || typeof v !== 'object' || v instanceof Uint8Array) continue;
    if (f.depth >= MAX_BODY_DEPTH) throw new RangeError(`"${name}" is nested deeper than ${MAX_BODY_DEPTH}`);
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) {
        if (!(i in v)) throw new TypeError(`"${pathOf(f)}[${i}]" is a hole in a sparse array; supported: ${SUPPORTED_VALUE_TYPES}`);
        const item: unknown = v[i];
        // Plain scalars need no frame: checked here (a string for surrogates, a number for finiteness).
        if (typeof item === 'boolean' || (typeof item === 'number' && Number.isFinite(item)) || (typeof item === 'string' && !hasLoneSurrogate(item))) continue;
        stack.push({ v: item, parent: f, key: i, depth: f.depth + 1 });
      }
    } else {
      for (const key of Object.keys(v)) {
        if (hasLoneSurrogate(key)) throw new TypeError(`"${pathOf(f)}" has a key with a lone surrogate (not valid Unicode)`);
        stack.push({ v: (v as Record<string, unknown>)[key], parent: f, key, depth: f.depth + 1 });
      }
    }
  }
}

/** Why `v` itself (not its contents) cannot be replicated, or null. */
function unsupported(v: unknown): string | null {
  switch (typeof v) {
    case 'boolean':
      return null;
    case 'string':
      return hasLoneSurrogate(v) ? 'a string with a lone surrogate (not valid Unicode: it would not read back the same)' : null;
    case 'number':
      return Number.isFinite(v) ? null : `${v} (not a finite number)`;
    case 'undefined':
      return 'undefined';
    case 'bigint':
      return 'a bigint (use a number up to 2^53 or a string)';
    case 'function':
      return 'a function';
    case 'symbol':
      return 'a symbol';
  }
  if (v === null || Array.isArray(v)) return null;
  if (v instanceof Uint8Array) return v.constructor === Uint8Array || Buffer.isBuffer(v) ? null : `a ${v.constructor.name}`;
  const proto = Object.getPrototypeOf(v);
  if (proto === Object.prototype || proto === null) return null;
  const ctor = (proto as { constructor?: { name?: string } }).constructor?.name;
  return ctor ? `a ${ctor}` : 'an object that is not plain';
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** True if `text` holds a UTF-16 surrogate without its pair: CBOR (UTF-8) cannot carry it as is. */
export function hasLoneSurrogate(text: string): boolean {
  return LONE_SURROGATE.test(text);
}
