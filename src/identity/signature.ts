// verifySignature: signet's one acceptance rule, checks 1-4 in front of either backend,
// check 5 by the backend. Domain-separation tags for every signed byte string live here.
import { assertBytes, concatBytes, utf8 } from '../util/bytes.ts';
import { passesPrechecks } from './signature-rule.ts';
import { verifyNative, verifyNativeSync } from './backend-native.ts';
import { verifyNoble, verifyNobleSync } from './backend-noble.ts';

/** Which implementation runs the equation: `native` (OpenSSL, default) or `noble` (pure JS). */
export type SignatureBackend = 'native' | 'noble';

/** Options for {@link verifySignature}. */
export interface VerifyOptions {
  /** Default `native`. Both give the same verdict on every input. */
  backend?: SignatureBackend;
}

/** Domain tags: the first bytes of every signed byte string, naming purpose and version. */
export const DOMAIN = {
  update: 'signet/update/v1',
  noiseStatic: 'signet/noise-static/v1',
} as const;

const tagBytes = new Map<string, Uint8Array>();

/** `tag || message`: the exact bytes signed for a purpose. */
export function domainBytes(tag: string, message: Uint8Array): Uint8Array {
  let prefix = tagBytes.get(tag);
  if (prefix === undefined) tagBytes.set(tag, (prefix = utf8(tag)));
  return concatBytes(prefix, message);
}

function checkArgs(signature: unknown, message: unknown, publicKey: unknown, options: VerifyOptions | undefined): SignatureBackend {
  assertBytes(signature, 'signature');
  assertBytes(message, 'message');
  assertBytes(publicKey, 'publicKey');
  const backend = options?.backend ?? 'native';
  if (backend !== 'native' && backend !== 'noble') {
    throw new RangeError(`"backend" expected 'native' or 'noble', got ${String(backend)}`);
  }
  return backend;
}

/**
 * Verifies an Ed25519 signature under signet's acceptance rule (DESIGN.md, "Signatures"):
 * lengths, S < L, canonical A and R, neither of small order, cofactorless equation.
 * Resolves false for any bytes that fail; never rejects for Uint8Array input.
 * @throws TypeError if an argument is not a Uint8Array; RangeError for an unknown backend.
 */
export function verifySignature(
  signature: Uint8Array,
  message: Uint8Array,
  publicKey: Uint8Array,
  options?: VerifyOptions,
): Promise<boolean> {
  let backend: SignatureBackend;
  try {
    backend = checkArgs(signature, message, publicKey, options);
  } catch (err) {
    return Promise.reject(err);
  }
  if (!passesPrechecks(signature, publicKey)) return Promise.resolve(false);
  return backend === 'native' ? verifyNative(signature, message, publicKey) : verifyNoble(signature, message, publicKey);
}

/** Synchronous {@link verifySignature}, on the event loop. For tests and benchmarks. */
export function verifySignatureSync(
  signature: Uint8Array,
  message: Uint8Array,
  publicKey: Uint8Array,
  options?: VerifyOptions,
): boolean {
  const backend = checkArgs(signature, message, publicKey, options);
  if (!passesPrechecks(signature, publicKey)) return false;
  return backend === 'native' ? verifyNativeSync(signature, message, publicKey) : verifyNobleSync(signature, message, publicKey);
}
