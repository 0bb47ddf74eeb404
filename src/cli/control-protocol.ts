// The control protocol between `signet node` and the commands that talk to it: where the
// socket lives, its limits, the request and response shapes, and how values travel as JSON.
import { join, resolve } from 'node:path';
import type { Value } from '../envelope/cbor.ts';

/** The daemon's data directory when `--data` is not given, for the daemon and the commands alike. */
export const DEFAULT_DATA_DIR = './data';
/** The control socket's name inside the data directory. */
export const CONTROL_SOCKET = 'control.sock';
/**
 * Longest request line (bytes, newline excluded). Past it the daemon answers ERR_LINE_TOO_LONG
 * and closes that connection, having buffered no more than this. A request carries at most one
 * value, which the model caps at maxUpdateBytes (64 KiB of CBOR); as JSON (escaped strings,
 * base64 bytes) the same value can take several times that, hence 1 MiB.
 */
export const MAX_CONTROL_LINE_BYTES = 1024 * 1024;
/** Control connections open at once. Past it a new one gets ERR_BUSY and is closed. */
export const MAX_CONTROL_CONNECTIONS = 32;
/** Bytes of answers and change events waiting for a control client to read them. Past it the
 *  daemon stops reading that client's requests until they drain; a `watch` client that falls
 *  this far behind is cut off with ERR_SLOW_CONSUMER. */
export const MAX_CONTROL_OUTPUT_BYTES = 4 * 1024 * 1024;
/** Longest answer line a command reads from its daemon. Past it the command fails (a bug or
 *  a dataset too large for `keys`); the daemon's socket is the user's own (mode 0600). */
export const MAX_CONTROL_RESPONSE_BYTES = 256 * 1024 * 1024;
/** How long a command waits for its daemon's answer. Past it: ERR_TIMEOUT, exit 1. */
export const CONTROL_TIMEOUT_MS = 15_000;
/** How long `set`/`del` wait for the write to be durable before answering ERR_TIMEOUT. */
export const DURABLE_TIMEOUT_MS = 10_000;
/** Longest Unix socket path (sun_path is 108 bytes with its terminating NUL on Linux). */
export const MAX_SOCKET_PATH_BYTES = 107;

/** The socket path as the daemon binds it and a command connects to it (relative paths stay relative). */
export function controlSocketPath(dataDir: string): string {
  return join(dataDir, CONTROL_SOCKET);
}

/** The absolute path, for messages: every path a message names is the real one. */
export const shown = (path: string): string => resolve(path);

/** Operations a request may name. */
export const OPS = ['get', 'set', 'del', 'keys', 'watch', 'peers', 'members', 'status'] as const;
export type Op = (typeof OPS)[number];

/**
 * One request line: `{"id": 1, "op": "get", "dataset": "kv", "key": "a"}`. `id` (a safe integer
 * or a string of at most 64 characters) is echoed in the answer; fields by op:
 * get/del `key`; set `key`, `value` (JSON, bytes as {"$bytes": base64}), `ttl` (ms);
 * keys/watch `prefix`; `dataset` for get/set/del/keys/watch.
 */
export interface ControlRequest {
  id?: number | string;
  op: Op;
  dataset?: string;
  key?: string;
  value?: unknown;
  ttl?: number;
  prefix?: string;
}

/** An error as it travels: a stable code and a sentence. ERR_USAGE means the request was wrong
 *  the way a command line can be (the command exits 2). */
export interface WireError {
  code: string;
  message: string;
}

/** One answer line: `{"id", "ok": true, "result"}` or `{"id", "ok": false, "error": {code, message}}`.
 *  A watch stream then sends `{"id", "event": "change", "change"}` lines, and
 *  `{"id", "event": "end", "error"}` if the daemon ends it. */
export type ControlResponse =
  | { id: number | string | null; ok: true; result: unknown }
  | { id: number | string | null; ok: false; error: WireError }
  | { id: number | string | null; event: 'change'; change: WireChange }
  | { id: number | string | null; event: 'end'; error: WireError };

/** A change as `watch` streams it. */
export interface WireChange {
  dataset: string;
  op: 'set' | 'del';
  key: string;
  /** The new value (absent for `del`), bytes as {"$bytes": base64}. */
  value?: unknown;
  source: string;
  version: number;
}

/** A replicated value as JSON: byte strings become `{"$bytes": "<base64>"}` (JSON has no bytes). */
export function valueToJson(value: Value): unknown {
  if (value instanceof Uint8Array) return { $bytes: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64') };
  if (Array.isArray(value)) return value.map(valueToJson);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
    for (const [k, v] of Object.entries(value)) out[k] = valueToJson(v);
    return out;
  }
  return value;
}

/** Characters a terminal may act on (C0, DEL, C1) or that reorder text (bidi controls, line
 *  separators): a peer chose these bytes, and they must never drive the operator's terminal. */
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;
const UNSAFE_ALL = new RegExp(UNSAFE.source, 'g');
const escapeUnsafe = (json: string): string => json.replace(UNSAFE_ALL, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);

/** JSON text with every unsafe character escaped (still valid JSON). */
export function safeJson(value: unknown): string {
  return escapeUnsafe(JSON.stringify(value) ?? 'null');
}

/** A string for a terminal: as it is, or JSON-quoted (and escaped) if it holds an unsafe character
 *  or is empty (so it stays visible). */
export function printable(text: string): string {
  return text.length > 0 && !UNSAFE.test(text) ? text : safeJson(text);
}
