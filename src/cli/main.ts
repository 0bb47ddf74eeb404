// The signet command: run(argv, io) -> exit code. Dispatches to one module per command;
// usage errors exit 2, failures exit 1 with a message on stderr and never a secret.
import { pathToFileURL } from 'node:url';
import { SignetError } from '../errors.ts';
import { type CliIo, processIo, UsageError, EXIT_OK, EXIT_FAILURE, EXIT_USAGE } from './io.ts';
import { keygen, netkey, id, keygenHelp, netkeyHelp, idHelp } from './keys.ts';
import { demo, demoHelp } from './demo.ts';

type Command = { run: (args: string[], io: CliIo) => Promise<number>; help: string; summary: string };

const commands: Record<string, Command> = {
  keygen: { run: keygen, help: keygenHelp, summary: 'create an identity key file and print its node id' },
  netkey: { run: netkey, help: netkeyHelp, summary: 'create a random network key file' },
  id: { run: id, help: idHelp, summary: "print this node's id" },
  demo: { run: demo, help: demoHelp, summary: 'run two in-process nodes and show signed replication' },
};

export const mainHelp = `usage: signet <command> [options]   (signet <command> --help for more)

commands:
${Object.entries(commands).map(([name, c]) => `  ${name.padEnd(8)} ${c.summary}`).join('\n')}

Exit codes: 0 success, 1 failure, 2 usage error.`;

/** Runs the CLI. Never throws: every failure becomes an exit code and a line on stderr. */
export async function run(argv: string[], io: CliIo = processIo): Promise<number> {
  const [name, ...args] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    io.out(mainHelp);
    return name === undefined ? EXIT_USAGE : EXIT_OK;
  }
  const command = Object.hasOwn(commands, name) ? commands[name] : undefined;
  if (!command) {
    io.err(`signet: unknown command ${JSON.stringify(name)}\n\n${mainHelp}`);
    return EXIT_USAGE;
  }
  try {
    return await command.run(args, io);
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(`signet ${name}: ${err.message}\n\n${command.help}`);
      return EXIT_USAGE;
    }
    if (err instanceof SignetError) {
      io.err(`signet ${name}: ${err.message}`);
      return EXIT_FAILURE;
    }
    io.err(`signet ${name}: ${(err as Error)?.message ?? String(err)}`);
    return EXIT_FAILURE;
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  process.exitCode = await run(process.argv.slice(2));
}
