// The signet command: run(argv, io) -> exit code. Dispatches to one module per command;
// usage errors exit 2, failures exit 1 with a message on stderr and never a secret.
import { pathToFileURL } from 'node:url';
import { SignetError } from '../errors.ts';
import { type CliIo, processIo, UsageError, EXIT_OK, EXIT_FAILURE, EXIT_USAGE } from './io.ts';
import { keygen, netkey, id, keygenHelp, netkeyHelp, idHelp } from './keys.ts';
import { demo, demoHelp } from './demo.ts';
import { node, nodeHelp } from './node.ts';
import { set, get, del, keys, watch, setHelp, getHelp, delHelp, keysHelp, watchHelp } from './control.ts';
import { peers, members, status, peersHelp, membersHelp, statusHelp } from './inspect.ts';
import { version } from './version.ts';

type Command = { run: (args: string[], io: CliIo) => Promise<number>; help: string; summary: string };

const commands: Record<string, Command> = {
  keygen: { run: keygen, help: keygenHelp, summary: 'create an identity key file and print its node id' },
  netkey: { run: netkey, help: netkeyHelp, summary: 'create a random network key file' },
  id: { run: id, help: idHelp, summary: "print this node's id" },
  node: { run: node, help: nodeHelp, summary: 'run a mesh node (the daemon) until SIGINT/SIGTERM' },
  set: { run: set, help: setHelp, summary: 'set a key on the running node (signed, replicated)' },
  get: { run: get, help: getHelp, summary: "print a key's value on the running node" },
  del: { run: del, help: delHelp, summary: 'delete a key on the running node (a signed tombstone)' },
  keys: { run: keys, help: keysHelp, summary: "list the running node's keys" },
  watch: { run: watch, help: watchHelp, summary: 'print changes on the running node until Ctrl-C' },
  peers: { run: peers, help: peersHelp, summary: "list the running node's peers (connected, banned)" },
  members: { run: members, help: membersHelp, summary: 'list the members the running node knows' },
  status: { run: status, help: statusHelp, summary: "show the running node: id, address, datasets, peers, counters" },
  demo: { run: demo, help: demoHelp, summary: 'run two in-process nodes and show signed replication' },
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
  const command = Object.hasOwn(commands, name) ? commands[name] : undefined;
  if (!command) return fail('ERR_USAGE', `signet: unknown command ${JSON.stringify(name)}`, mainHelp, EXIT_USAGE);
  try {
    return await command.run(args, io);
  } catch (err) {
    if (err instanceof UsageError) return fail('ERR_USAGE', `signet ${name}: ${err.message}`, command.help, EXIT_USAGE);
    const code = err instanceof SignetError ? err.code : 'ERR_SIGNET';
    return fail(code, `signet ${name}: ${(err as Error)?.message ?? String(err)}`, null, EXIT_FAILURE);
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  process.exitCode = await run(process.argv.slice(2));
}
