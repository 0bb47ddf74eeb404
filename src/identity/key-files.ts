// Key files: secret key as PKCS#8 PEM (openssl genpkey/pkey compatible), network key as
// one line of base64 (32 bytes). Written 0600; refused at load when group/other can read.
import { createPrivateKey, randomBytes } from 'node:crypto';
import { mkdir, open, rename, stat, readFile, unlink } from 'node:fs/promises';
import { dirname, basename, join } from 'node:path';
import { KeyFileError, KeyPermissionError } from '../errors.ts';
import { assertBytes } from '../util/bytes.ts';
import { Identity, exportSecretPem } from './identity.ts';

/** Length of a network key in bytes. */
export const NETWORK_KEY_LENGTH = 32;
/** Largest key file read; a larger file is refused unread (key files are ~120 bytes). */
const MAX_KEY_FILE_BYTES = 16 * 1024;

/** Options for writing key files. */
export interface SaveKeyOptions {
  /** Replace an existing file. Default false: an existing file is never overwritten. */
  overwrite?: boolean;
}

/** 32 random bytes from the CSPRNG: a new pre-shared network key. */
export function generateNetworkKey(): Uint8Array {
  return new Uint8Array(randomBytes(NETWORK_KEY_LENGTH));
}

/** Writes `text` to `path` with mode 0600 via a temporary file and rename (never half-written). */
async function writeSecret(path: string, text: string, options: SaveKeyOptions = {}): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  if (!options.overwrite) {
    const exists = await stat(path).then(() => true, () => false);
    if (exists) throw new KeyFileError(`${path} already exists; refusing to overwrite a key file`);
  }
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  const handle = await open(tmp, 'wx', 0o600);
  try {
    await handle.chmod(0o600); // umask cannot widen it, but be explicit
    await handle.writeFile(text);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => {});
    throw err;
  }
}

/** Reads a secret file after refusing group/other-readable modes (as ssh does). */
async function readSecret(path: string, what: string): Promise<string> {
  let info;
  try {
    info = await stat(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new KeyFileError(`cannot read ${what} ${path}: ${code === 'ENOENT' ? 'no such file' : code}`, { cause: err });
  }
  if (!info.isFile()) throw new KeyFileError(`${what} ${path} is not a regular file`);
  if (process.platform !== 'win32' && (info.mode & 0o077) !== 0) {
    const mode = (info.mode & 0o777).toString(8).padStart(4, '0');
    throw new KeyPermissionError(
      `${what} ${path} is readable by group or other (mode ${mode}); fix it with: chmod 600 ${path}`,
    );
  }
  if (info.size > MAX_KEY_FILE_BYTES) throw new KeyFileError(`${what} ${path} is too large to be a key file (${info.size} bytes)`);
  return readFile(path, 'utf8');
}

/**
 * Writes the identity's secret key as PKCS#8 PEM, mode 0600.
 * @throws KeyFileError if the file exists and `overwrite` is not set.
 */
export async function saveIdentity(identity: Identity, path: string, options?: SaveKeyOptions): Promise<void> {
  if (!(identity instanceof Identity)) throw new TypeError('"identity" expected an Identity');
  await writeSecret(path, exportSecretPem(identity), options);
}

/**
 * Loads an identity from a PKCS#8 PEM Ed25519 secret key file (signet's, or one written by
 * `openssl genpkey -algorithm ed25519`).
 * @throws KeyPermissionError if group/other can read the file; KeyFileError if it is
 * missing or malformed. Messages never contain the file's contents.
 */
export async function loadIdentity(path: string): Promise<Identity> {
  const text = await readSecret(path, 'secret key file');
  if (!/^-----BEGIN PRIVATE KEY-----\r?\n[A-Za-z0-9+/=\r\n]+-----END PRIVATE KEY-----\s*$/.test(text.trimStart())) {
    throw new KeyFileError(`secret key file ${path} is not a PKCS#8 PEM private key ("-----BEGIN PRIVATE KEY-----")`);
  }
  let key;
  try {
    key = createPrivateKey({ key: text, format: 'pem' });
  } catch {
    throw new KeyFileError(`secret key file ${path} could not be parsed as a PKCS#8 private key`);
  }
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new KeyFileError(`secret key file ${path} holds a ${key.asymmetricKeyType ?? 'unknown'} key; signet needs Ed25519`);
  }
  return Identity.fromKeyObject(key);
}

/** Writes a network key as one line of base64, mode 0600. */
export async function saveNetworkKey(key: Uint8Array, path: string, options?: SaveKeyOptions): Promise<void> {
  assertBytes(key, 'key', NETWORK_KEY_LENGTH);
  await writeSecret(path, Buffer.from(key).toString('base64') + '\n', options);
}

/**
 * Loads a network key: one line, base64 of exactly 32 bytes.
 * @throws KeyPermissionError / KeyFileError as {@link loadIdentity}.
 */
export async function loadNetworkKey(path: string): Promise<Uint8Array> {
  const text = (await readSecret(path, 'network key file')).trim();
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(text) || text.length % 4 !== 0) {
    throw new KeyFileError(`network key file ${path} is not one line of base64`);
  }
  const key = new Uint8Array(Buffer.from(text, 'base64'));
  if (key.length !== NETWORK_KEY_LENGTH) {
    throw new KeyFileError(`network key file ${path} holds ${key.length} bytes; expected ${NETWORK_KEY_LENGTH}`);
  }
  return key;
}
