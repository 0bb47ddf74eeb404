// Reads the published test vectors kept in test/vectors/ (sources named in its READMEs).
import { readFileSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

const inRepo = fileURLToPath(new URL('../vectors', import.meta.url));

/** The vectors directory: $SIGNET_VECTORS if set, else test/vectors in this checkout. */
export function vectorsDir(): string {
  const dir = process.env.SIGNET_VECTORS || inRepo;
  if (!existsSync(dir)) throw new Error(`test vectors not found in ${dir}`);
  return dir;
}

/** Parsed JSON of a vector file, e.g. `ed25519/rfc8032.json`. */
export function readVectors(relativePath: string): unknown {
  return JSON.parse(readFileSync(join(vectorsDir(), relativePath), 'utf8'));
}
