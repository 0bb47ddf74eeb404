// Reads published test vectors from ../shared/vectors (never copied into this repo).
import { readFileSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

/** The shared vectors directory: $SIGNET_VECTORS, else ../shared/vectors beside the repo. */
export function vectorsDir(): string {
  const candidates = [process.env.SIGNET_VECTORS, join(repoRoot, '../shared/vectors')].filter(Boolean) as string[];
  const dir = candidates.find((d) => existsSync(d));
  if (!dir) throw new Error(`shared test vectors not found; looked in ${candidates.join(', ')}`);
  return dir;
}

/** Parsed JSON of a vector file, e.g. `ed25519/rfc8032.json`. */
export function readVectors(relativePath: string): unknown {
  return JSON.parse(readFileSync(join(vectorsDir(), relativePath), 'utf8'));
}
