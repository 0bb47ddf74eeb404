// The signet command: run(argv, io) -> exit code. Dispatches to one module per command;
// usage errors exit 2, failures exit 1 with a message on stderr and never a secret.
import { pathToFileURL } from 'node:url';
import { SignetError, messageOf } from '../errors.ts';
import { type CliIo, processIo, UsageError, EXIT_OK, EXIT_FAILURE, EXIT_USAGE } from './io.ts';
import { version } from './version.ts';

/** A command's code and usage, loaded when it runs: `signet get` need not load the daemon
 *  (LMDB, the mesh, prom-client), which would double its start-up time. */
type Loaded = { run: (args: string[], io: CliIo) => Promise<number>; help: string };
type Command = { load: () => Promise<Loaded>; summary: string };

/** Loads `module` and picks its command function and usage text. */
function lazy<M>(module: () => Promise<M>, run: keyof M, help: keyof M): () => Promise<Loaded> {
  return async () => {
    const m = await module();
    return { run: m[run] as Loaded['run'], help: m[help] as string };
  };
}
const control = () => import('./control.ts');
const inspect = () => import('./inspect.ts');
const keys = () => import('./keys.ts');
const commands: Record<string, Command> = {
  keygen: { load: lazy(keys, 'keygen', 'keygenHelp'), summary: 'create an identity key file and print its node id' },
  netkey: { load: lazy(keys, 'netkey', 'netkeyHelp'), summary: 'create a random network key file' },
  id: { load: lazy(keys, 'id', 'idHelp'), summary: "print this node's id" },
  node: { load: lazy(() => import('./node.ts'), 'node', 'nodeHelp'), summary: 'run a mesh node (the daemon) until SIGINT/SIGTERM' },
  set: { load: lazy(control, 'set', 'setHelp'), summary: 'set a key on the running node (signed, replicated)' },
  get: { load: lazy(control, 'get', 'getHelp'), summary: "print a key's value on the running node" },
  del: { load: lazy(control, 'del', 'delHelp'), summary: 'delete a key on the running node (a signed tombstone)' },
  keys: { load: lazy(control, 'keys', 'keysHelp'), summary: "list the running node's keys" },
  watch: { load: lazy(control, 'watch', 'watchHelp'), summary: 'print changes on the running node until Ctrl-C' },
  peers: { load: lazy(inspect, 'peers', 'peersHelp'), summary: "list the running node's peers (connected, banned)" },
  members: { load: lazy(inspect, 'members', 'membersHelp'), summary: 'list the members the running node knows' },
  status: { load: lazy(inspect, 'status', 'statusHelp'), summary: 'show the running node: id, address, datasets, peers, counters' },
  demo: { load: lazy(() => import('./demo.ts'), 'demo', 'demoHelp'), summary: 'run a private mesh on loopback: replica, outsider, forger, withholding relay' },
};

export const mainHelp = `usage: signet <command> [options]   (signet <command> --help for more)

commands:
${Object.entries(commands).map(([name, c]) => `  ${name.padEnd(8)} ${c.summary}`).join('\n')}

  --version  print the version

Exit codes: 0 success, 1 failure, 2 usage error. With --json, errors are JSON on stderr:
{"error": {"code", "message"}}.`;

export { version };

/** Runs the CLI. Never throws: every failure becomes an exit code and a line on stderr. */
export async function run(argv: string[], io: CliIo = processIo): Promise<number> {
  const [name, ...args] = argv;
  const json = argv.includes('--json');
  // Under --json an error is one JSON line on stderr; otherwise a sentence (and usage).
  const fail = (code: string, message: string, usage: string | null, exit: number): number => {
    io.err(json ? JSON.stringify({ error: { code, message } }) : usage ? `${message}\n\n${usage}` : message);
    return exit;
  };
  if (name === '--version' || name === '-V') {
    io.out(json ? JSON.stringify({ version: version() }) : version());
    return EXIT_OK;
  }
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    io.out(mainHelp);
    return name === undefined ? EXIT_USAGE : EXIT_OK;
  }
  const known = Object.hasOwn(commands, name) ? commands[name] : undefined;
  if (!known) return fail('ERR_USAGE', `signet: unknown command ${JSON.stringify(name)}`, mainHelp, EXIT_USAGE);
  const command = await known.load();
  try {
    return await command.run(args, io);
  } catch (err) {
    if (err instanceof UsageError) return fail('ERR_USAGE', `signet ${name}: ${err.message}`, command.help, EXIT_USAGE);
    const code = err instanceof SignetError ? err.code : 'ERR_SIGNET';
    return fail(code, `signet ${name}: ${messageOf(err)}`, null, EXIT_FAILURE);
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  process.exitCode = await run(process.argv.slice(2));
}
