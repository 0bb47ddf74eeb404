// signet set / get / del / keys / watch: read and write a running node's datasets through its
// control socket. Data on stdout, diagnostics on stderr; a peer's strings never drive the terminal.
import { withClient } from './control-client.ts';
import { CONTROL_SOCKET, DEFAULT_DATA_DIR, printable, safeJson, type WireChange } from './control-protocol.ts';
import { type CliIo, parse, UsageError, EXIT_OK, EXIT_FAILURE } from './io.ts';

/** Options every control command takes. */
export const commonOptions = {
  data: { type: 'string', default: DEFAULT_DATA_DIR },
  json: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} as const;
const datasetOptions = { ...commonOptions, dataset: { type: 'string' } } as const;

/** The help lines every control command shares; `output` describes what --json prints. */
export const commonHelp = (output: string): string => `  --data DIR      the node's data directory (default ${DEFAULT_DATA_DIR}); its socket is DIR/${CONTROL_SOCKET}
  --json          print ${output}; errors as {"error": {"code", "message"}} on stderr`;
const datasetHelp = `  --dataset NAME  the dataset (default: the node's only dataset; required if it hosts several)`;

export const setHelp = `usage: signet set KEY VALUE [--ttl DURATION] [--string] [--dataset NAME] [--data DIR] [--json]
Sets KEY to VALUE on the running node (signed by it, replicated to its peers); answers once the
write is stored. VALUE is read as JSON if it parses as JSON (42, true, null, "text", [1,2],
{"a":1}), otherwise as the string it is; --string always takes it as a string. A replica
refuses (only its master writes).
  --ttl DURATION  the key expires after DURATION on every node: a number and a unit, ms, s, m, h
                  or d (500ms, 30s, 10m, 2h, 7d)
  --string        store VALUE as a string even if it parses as JSON ("42" stays "42")
${datasetHelp}
${commonHelp('{"dataset", "key", "source", "version", "time"}')}

example:
  signet set greeting "hello world"
  signet set config '{"replicas": 3}' --ttl 1h --dataset chat`;

export const getHelp = `usage: signet get KEY [--dataset NAME] [--data DIR] [--json]
Prints KEY's value on the running node: a string as it is, anything else as JSON (bytes as
{"$bytes": base64}). A string holding control characters (newlines too) or bidi controls is
printed JSON-quoted, so a peer's bytes never act on your terminal. Exit 1 if the key is absent.
${datasetHelp}
${commonHelp('{"dataset", "key", "value", "source", "version", "time", "expires"}')}

example:
  signet get greeting`;

export const delHelp = `usage: signet del KEY [--dataset NAME] [--data DIR] [--json]
Deletes KEY on the running node with a signed tombstone (replicated like a write); answers once
it is stored. Deleting an absent key is not an error.
${datasetHelp}
${commonHelp('{"dataset", "key", "existed", "source", "version", "time"}')}

example:
  signet del greeting`;

export const keysHelp = `usage: signet keys [PREFIX] [--dataset NAME] [--data DIR] [--json]
Lists the live keys of the running node's dataset (those starting with PREFIX), sorted, one per
line; a key holding control characters is printed JSON-quoted.
${datasetHelp}
${commonHelp('{"dataset", "prefix", "keys": [...]}')}

example:
  signet keys config/`;

export const watchHelp = `usage: signet watch [PREFIX] [--dataset NAME] [--data DIR] [--json]
Prints every change to the running node's dataset (keys starting with PREFIX), from now on, as it
is stored, until Ctrl-C (exit 0): "set KEY VALUE" (VALUE as JSON) or "del KEY". A line on
stderr says when it is watching. Exit 1 if the node stops.
${datasetHelp}
${commonHelp('one {"dataset", "op", "key", "value", "source", "version"} per line')}

example:
  signet watch config/`;

/** A duration (`500ms`, `30s`, `10m`, `2h`, `7d`) in whole milliseconds. @throws UsageError. */
export function parseDuration(text: string, name: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(text);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
  const ms = m ? Math.round(Number(m[1]) * unit[m[2] as keyof typeof unit]) : NaN;
  if (!Number.isSafeInteger(ms) || ms < 1) throw new UsageError(`${name} expects a duration of at least 1ms: a number and a unit ms, s, m, h or d (30s, 10m), got ${JSON.stringify(text)}`);
  return ms;
}

/** VALUE from the command line: JSON if it parses, else the string itself (always, with --string). */
export function parseValue(text: string, asString: boolean): unknown {
  if (asString) return text;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

/** Exactly `count` positionals (their names for the message). @throws UsageError. */
function positionals(given: string[], names: string[], optional = 0): string[] {
  if (given.length < names.length - optional) throw new UsageError(`missing ${names.slice(given.length).join(' ')}`);
  if (given.length > names.length) throw new UsageError(`unexpected argument ${JSON.stringify(given[names.length])}`);
  return given;
}

export async function set(args: string[], io: CliIo): Promise<number> {
  const { values, positionals: given } = parse(args, { ...datasetOptions, ttl: { type: 'string' }, string: { type: 'boolean', default: false } }, true);
  if (values.help) return io.out(setHelp), EXIT_OK;
  const [key, text] = positionals(given, ['KEY', 'VALUE']) as [string, string];
  const ttl = values.ttl === undefined ? undefined : parseDuration(values.ttl, '--ttl');
  const result = await withClient(values.data, (c) => c.request({ op: 'set', dataset: values.dataset, key, value: parseValue(text, values.string), ttl }));
  if (values.json) io.out(JSON.stringify(result));
  return EXIT_OK;
}

export async function get(args: string[], io: CliIo): Promise<number> {
  const { values, positionals: given } = parse(args, datasetOptions, true);
  if (values.help) return io.out(getHelp), EXIT_OK;
  const [key] = positionals(given, ['KEY']) as [string];
  const result = (await withClient(values.data, (c) => c.request({ op: 'get', dataset: values.dataset, key }))) as { value: unknown };
  if (values.json) io.out(JSON.stringify(result));
  else if (typeof result.value === 'string') io.out(result.value === '' ? '' : printable(result.value));
  else io.out(safeJson(result.value));
  return EXIT_OK;
}

export async function del(args: string[], io: CliIo): Promise<number> {
  const { values, positionals: given } = parse(args, datasetOptions, true);
  if (values.help) return io.out(delHelp), EXIT_OK;
  const [key] = positionals(given, ['KEY']) as [string];
  const result = await withClient(values.data, (c) => c.request({ op: 'del', dataset: values.dataset, key }));
  if (values.json) io.out(JSON.stringify(result));
  return EXIT_OK;
}

export async function keys(args: string[], io: CliIo): Promise<number> {
  const { values, positionals: given } = parse(args, datasetOptions, true);
  if (values.help) return io.out(keysHelp), EXIT_OK;
  const [prefix] = positionals(given, ['PREFIX'], 1);
  const result = (await withClient(values.data, (c) => c.request({ op: 'keys', dataset: values.dataset, prefix }))) as { keys: string[] };
  if (values.json) io.out(JSON.stringify(result));
  else if (result.keys.length > 0) io.out(result.keys.map(printable).join('\n'));
  return EXIT_OK;
}

/** A change as `watch` prints it without --json. */
export const changeLine = (c: WireChange): string => (c.op === 'set' ? `set ${printable(c.key)} ${safeJson(c.value)}` : `del ${printable(c.key)}`);

export async function watch(args: string[], io: CliIo): Promise<number> {
  const { values, positionals: given } = parse(args, datasetOptions, true);
  if (values.help) return io.out(watchHelp), EXIT_OK;
  const [prefix] = positionals(given, ['PREFIX'], 1);
  return withClient(values.data, async (c) => {
    const { result, ended } = await c.watch({ dataset: values.dataset, prefix }, (change) => io.out(values.json ? JSON.stringify(change) : changeLine(change)));
    const { dataset } = result as { dataset: string };
    io.err(values.json ? JSON.stringify({ watching: result }) : `watching dataset ${printable(dataset)}${prefix ? ` (keys starting with ${printable(prefix)})` : ''}; Ctrl-C to stop`);
    // Until Ctrl-C (or SIGTERM, or a closed stdout: `signet watch | head`): exit 0. The node ending it: exit 1.
    let onStop = (): void => {};
    const stopped = new Promise<number>((resolve) => (onStop = () => resolve(EXIT_OK)));
    const interrupted = ['SIGINT', 'SIGTERM'] as const;
    for (const s of interrupted) process.once(s, onStop);
    process.stdout.once('error', onStop);
    try {
      return await Promise.race([stopped, ended.then((e) => {
        io.err(values.json ? JSON.stringify({ error: e }) : `signet watch: ${e.message}`);
        return EXIT_FAILURE;
      })]);
    } finally {
      for (const s of interrupted) process.off(s, onStop);
      process.stdout.off('error', onStop);
    }
  });
}
