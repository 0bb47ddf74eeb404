// CLI plumbing: the io a command writes to, usage errors, and the exit codes
// (0 success, 1 failure, 2 usage).
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { SignetError } from '../errors.ts';
import type { TtyStream } from './progress.ts';

/** Where a command writes: data to `out`, diagnostics to `err`. */
export interface CliIo {
  out: (text: string) => void;
  err: (text: string) => void;
  /** stderr when it is a terminal: long work draws progress bars on it. */
  errTty?: TtyStream;
}

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/** A wrong invocation: printed with the command's usage, exit 2. */
export class UsageError extends Error {}

/** A command's failure with its own code (ERR_NOT_RUNNING, ERR_NOT_FOUND...): exit 1. */
export class CliError extends SignetError {
  override readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/** Strict parseArgs that turns its errors into UsageError. */
type Options = NonNullable<ParseArgsConfig['options']>;
/** What {@link parse} returns for `options` (named, so declarations can be emitted). */
export type Parsed<T extends Options> = ReturnType<typeof parseArgs<{ args: string[]; options: T; strict: true; allowPositionals: boolean }>>;

export function parse<T extends Options>(args: string[], options: T, allowPositionals = false): Parsed<T> {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/** The io of a real process. */
export const processIo: CliIo = {
  out: (text) => process.stdout.write(text.endsWith('\n') ? text : `${text}\n`),
  err: (text) => process.stderr.write(text.endsWith('\n') ? text : `${text}\n`),
  ...(process.stderr.isTTY ? { errTty: process.stderr } : {}),
};
