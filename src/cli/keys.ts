// signet keygen / netkey / id: create and show key files (secrets are never printed).
import { join } from 'node:path';
import { Identity } from '../identity/identity.ts';
import { saveIdentity, loadIdentity, generateNetworkKey, saveNetworkKey } from '../identity/key-files.ts';
import { type CliIo, CliError, parse, EXIT_OK } from './io.ts';

/** Default key directory and file names. */
export const DEFAULT_KEYS_DIR = './keys';
export const IDENTITY_FILE = 'identity.key';
export const NETWORK_KEY_FILE = 'network.key';

const keyOptions = {
  keys: { type: 'string', default: DEFAULT_KEYS_DIR },
  force: { type: 'boolean', default: false },
  json: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

export const keygenHelp = `usage: signet keygen [--keys DIR] [--force] [--json]
Creates an Ed25519 identity in DIR/${IDENTITY_FILE} (PKCS#8 PEM, mode 0600) and prints its node id.
  --keys DIR   key directory (default ${DEFAULT_KEYS_DIR})
  --force      replace an existing identity file
  --json       print {"id", "path"} as JSON`;

export async function keygen(args: string[], io: CliIo): Promise<number> {
  const { values } = parse(args, keyOptions);
  if (values.help) return io.out(keygenHelp), EXIT_OK;
  const path = join(values.keys, IDENTITY_FILE);
  const identity = Identity.generate();
  await saveIdentity(identity, path, { overwrite: values.force });
  io.out(values.json ? JSON.stringify({ id: identity.id, path }) : identity.id);
  if (!values.json) io.err(`wrote ${path} (mode 0600)`);
  return EXIT_OK;
}

export const netkeyHelp = `usage: signet netkey [--keys DIR] [--force] [--json]
Creates a random 32-byte network key in DIR/${NETWORK_KEY_FILE} (base64, mode 0600). Share it with
every member over a channel you trust; the key itself is never printed.
  --keys DIR   key directory (default ${DEFAULT_KEYS_DIR})
  --force      replace an existing network key file
  --json       print {"path"} as JSON`;

export async function netkey(args: string[], io: CliIo): Promise<number> {
  const { values } = parse(args, keyOptions);
  if (values.help) return io.out(netkeyHelp), EXIT_OK;
  const path = join(values.keys, NETWORK_KEY_FILE);
  await saveNetworkKey(generateNetworkKey(), path, { overwrite: values.force });
  io.out(values.json ? JSON.stringify({ path }) : path);
  return EXIT_OK;
}

export const idHelp = `usage: signet id [--keys DIR] [--json]
Prints the node id of DIR/${IDENTITY_FILE}: base32(sha256(public key)), 52 characters.
  --keys DIR   key directory (default ${DEFAULT_KEYS_DIR})
  --json       print {"id", "publicKey"} as JSON (public key in hex)`;

export async function id(args: string[], io: CliIo): Promise<number> {
  const { values } = parse(args, { keys: keyOptions.keys, json: keyOptions.json, help: keyOptions.help });
  if (values.help) return io.out(idHelp), EXIT_OK;
  const identity = await loadKeysIdentity(values.keys);
  io.out(values.json ? JSON.stringify({ id: identity.id, publicKey: Buffer.from(identity.publicKey).toString('hex') }) : identity.id);
  return EXIT_OK;
}

/** The identity in key directory `dir`; a missing file fails with the command that makes one. */
export async function loadKeysIdentity(dir: string): Promise<Identity> {
  const path = join(dir, IDENTITY_FILE);
  try {
    return await loadIdentity(path);
  } catch (err) {
    if ((err as { cause?: NodeJS.ErrnoException }).cause?.code !== 'ENOENT') throw err;
    throw new CliError('ERR_NO_IDENTITY', `no identity at ${path}: create one with "signet keygen${dir === DEFAULT_KEYS_DIR ? '' : ` --keys ${dir}`}", or pass --keys DIR`, { cause: err });
  }
}
