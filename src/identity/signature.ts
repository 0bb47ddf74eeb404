// verifySignature: signet's one acceptance rule, checks 1-4 in front of every backend,
// check 5 by the backend. Domain-separation tags for every signed byte string live here.
import { assertBytes, concatBytes, utf8 } from '../util/bytes.ts';
import { passesPrechecks } from './signature-rule.ts';
import { verifyNative, verifyNativeSync } from './backend-native.ts';
import { verifyNoble, verifyNobleSync } from './backend-noble.ts';
import { requireSodium, sodiumAvailable, verifySodiumParts, verifySodiumSync } from './backend-sodium.ts';

/**
 * Which implementation runs the equation: `sodium` (libsodium through the optional
 * sodium-native), `native` (node:crypto, OpenSSL) or `noble` (pure JS). All give the same
 * verdict on every input.
 */
export type SignatureBackend = 'native' | 'noble' | 'sodium';

const BACKENDS: readonly SignatureBackend[] = ['native', 'noble', 'sodium'];

/** Options for {@link verifySignature}. */
export interface VerifyOptions {
  /** Default {@link defaultSignatureBackend}(). */
  backend?: SignatureBackend;
}

/**
 * The backend used when none is named: `sodium` where sodium-native loads (about 2x node:crypto
 * on one thread, and its worker pool and the event loop use every core), else `native`. `SIGNET_NO_SODIUM=1`
 * forces `native`.
 */
export function defaultSignatureBackend(): SignatureBackend {
  return sodiumAvailable() ? 'sodium' : 'native';
}

let equations = 0;

/** How many signatures in this process reached check 5 (passed checks 1-4), on any backend, sync
 *  or async: for metrics, and for tests that prove an update is verified once. */
export function signatureEquations(): number {
  return equations;
}

/** Domain tags: the first bytes of every signed byte string, naming purpose and version. */
export const DOMAIN = {
  update: 'signet/update/v1',
  noiseStatic: 'signet/noise-static/v1',
} as const;

const tagBytes = new Map<string, Uint8Array>();
const EMPTY = new Uint8Array(0);

function tagPrefix(tag: string): Uint8Array {
  let prefix = tagBytes.get(tag);
  if (prefix === undefined) tagBytes.set(tag, (prefix = utf8(tag)));
  return prefix;
}

/** `tag || message`: the exact bytes signed for a purpose. */
export function domainBytes(tag: string, message: Uint8Array): Uint8Array {
  return concatBytes(tagPrefix(tag), message);
}

function checkArgs(signature: unknown, message: unknown, publicKey: unknown, options: VerifyOptions | undefined): SignatureBackend {
  assertBytes(signature, 'signature');
  assertBytes(message, 'message');
  assertBytes(publicKey, 'publicKey');
  const backend = options?.backend ?? defaultSignatureBackend();
  if (!BACKENDS.includes(backend)) {
    throw new RangeError(`"backend" expected 'native', 'noble' or 'sodium', got ${String(backend)}`);
  }
  if (backend === 'sodium') requireSodium();
  return backend;
}

/**
 * Verifies an Ed25519 signature under signet's acceptance rule (DESIGN.md, "Signatures"):
 * lengths, S < L, canonical A and R, neither of small order, cofactorless equation.
 * Resolves false for any bytes that fail; never rejects for Uint8Array input. Check 5 runs off
 * the event loop where the backend allows: `sodium` on a pool of worker threads (one per core
 * but one), the event loop verifying waiting requests itself for at most CALLER_RUNS_MS (20 ms)
 * per turn of the loop while every worker is full (VerifyPool); `native` on the libuv pool;
 * `noble` on the event loop.
 * @throws (rejects with) TypeError if an argument is not a Uint8Array; RangeError for an unknown
 * backend, or for `sodium` when sodium-native is not available.
 */
export function verifySignature(
  signature: Uint8Array,
  message: Uint8Array,
  publicKey: Uint8Array,
  options?: VerifyOptions,
): Promise<boolean> {
  return verifyJoined(signature, EMPTY, message, publicKey, options);
}

/** @internal {@link verifySignature}(signature, {@link domainBytes}(tag, message), publicKey):
 *  the same rule and verdict, without joining tag and message where the backend takes them in
 *  parts (sodium's worker pool packs them where the request waits). */
export function verifyInDomain(
  signature: Uint8Array,
  tag: string,
  message: Uint8Array,
  publicKey: Uint8Array,
  options?: VerifyOptions,
): Promise<boolean> {
  return verifyJoined(signature, tagPrefix(tag), message, publicKey, options);
}

/** The rule on the message `prefix || message`; only the backends that need one array get it joined. */
function verifyJoined(
  signature: Uint8Array,
  prefix: Uint8Array,
  message: Uint8Array,
  publicKey: Uint8Array,
  options: VerifyOptions | undefined,
): Promise<boolean> {
  let backend: SignatureBackend;
  try {
    backend = checkArgs(signature, message, publicKey, options);
  } catch (err) {
    return Promise.reject(err);
  }
  if (!passesPrechecks(signature, publicKey)) return Promise.resolve(false);
  equations++;
  if (backend === 'sodium') return verifySodiumParts(signature, prefix, message, publicKey);
  const whole = prefix.length === 0 ? message : concatBytes(prefix, message);
  return backend === 'native' ? verifyNative(signature, whole, publicKey) : verifyNoble(signature, whole, publicKey);
}

/** Synchronous {@link verifySignature}, on the event loop: the same rule and verdict. For tests,
 *  benchmarks, and a lone verification that a pool would not batch (the handshake's identity
 *  payload with `sodium`, src/channel/identity-payload.ts).
 *  @throws as {@link verifySignature} rejects. */
export function verifySignatureSync(
  signature: Uint8Array,
  message: Uint8Array,
  publicKey: Uint8Array,
  options?: VerifyOptions,
): boolean {
  const backend = checkArgs(signature, message, publicKey, options);
  if (!passesPrechecks(signature, publicKey)) return false;
  equations++;
  switch (backend) {
    case 'sodium': return verifySodiumSync(signature, message, publicKey);
    case 'native': return verifyNativeSync(signature, message, publicKey);
    case 'noble': return verifyNobleSync(signature, message, publicKey);
  }
}
