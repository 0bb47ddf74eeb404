// Identity: an Ed25519 key pair and the node id derived from it. The secret never leaves
// this module except as a PKCS#8 PEM for key files; it is never logged or inspected.
import { randomBytes, createPublicKey, type KeyObject } from 'node:crypto';
import { inspect } from 'node:util';
import { assertBytes } from '../util/bytes.ts';
import { nodeIdOf, shortId, type NodeId } from './node-id.ts';
import { privateKeyObject, signNative } from './backend-native.ts';
import { sodiumSigner, type SodiumSigner } from './backend-sodium.ts';

const secrets = new WeakMap<Identity, KeyObject>();
/** libsodium signers (64-byte secret key derived once per identity), where sodium loads. */
const signers = new WeakMap<Identity, SodiumSigner>();
/** Zeroes a signer's secret key once its identity is garbage collected. */
const zeroOnCollect = new FinalizationRegistry<SodiumSigner>((signer) => signer.dispose());

/** An Ed25519 key pair. `id` is base32(sha256(publicKey)). */
export class Identity {
  /** The node id: 52 lower-case base32 characters. */
  readonly id: NodeId;
  /** The 32-byte Ed25519 public key. */
  readonly publicKey: Uint8Array;

  /** `seed`, when given, is only read (the caller zeroes its own copy). */
  private constructor(key: KeyObject, seed?: Uint8Array) {
    let signer: SodiumSigner | null;
    if (seed !== undefined) {
      signer = sodiumSigner(seed);
    } else {
      const copy = seedOf(key);
      signer = sodiumSigner(copy);
      copy.fill(0);
    }
    if (signer !== null) {
      this.publicKey = signer.publicKey;
      signers.set(this, signer);
      zeroOnCollect.register(this, signer);
    } else {
      const jwk = createPublicKey(key).export({ format: 'jwk' });
      this.publicKey = new Uint8Array(Buffer.from(jwk.x!, 'base64url'));
    }
    this.id = nodeIdOf(this.publicKey);
    secrets.set(this, key);
    Object.freeze(this);
  }

  /** A new random identity (node:crypto CSPRNG). */
  static generate(): Identity {
    const seed = randomBytes(32);
    try {
      return Identity.fromSecretKey(seed);
    } finally {
      seed.fill(0);
    }
  }

  /**
   * The identity of a 32-byte Ed25519 seed (RFC 8032 secret key).
   * @throws TypeError / RangeError unless `secretKey` is 32 bytes.
   */
  static fromSecretKey(secretKey: Uint8Array): Identity {
    assertBytes(secretKey, 'secretKey', 32);
    return new Identity(privateKeyObject(secretKey), secretKey);
  }

  /** @internal The identity of an Ed25519 private KeyObject (key files). */
  static fromKeyObject(key: KeyObject): Identity {
    if (key.type !== 'private' || key.asymmetricKeyType !== 'ed25519') {
      throw new TypeError('"key" expected an Ed25519 private key');
    }
    return new Identity(key);
  }

  /**
   * Signs `message` (RFC 8032, deterministic: libsodium where it loads, else node:crypto; the
   * bytes are the same). Callers prefix a domain tag.
   * @throws TypeError unless `message` is a Uint8Array.
   */
  sign(message: Uint8Array): Uint8Array {
    assertBytes(message, 'message');
    const signer = signers.get(this);
    return signer !== undefined ? signer.sign(message) : signNative(secrets.get(this)!, message);
  }

  /** Never reveals the secret: only the id. */
  toJSON(): { id: NodeId } {
    return { id: this.id };
  }

  [inspect.custom](): string {
    return `Identity(${shortId(this.id)}…)`;
  }
}

/** @internal PKCS#8 PEM of an identity's secret key, for key files only. */
export function exportSecretPem(identity: Identity): string {
  const key = secrets.get(identity);
  if (!key) throw new TypeError('"identity" expected an Identity');
  return key.export({ format: 'pem', type: 'pkcs8' }).toString();
}

/** @internal The 32-byte seed, for the test-only noble signer and key round trips. */
export function exportSecretKey(identity: Identity): Uint8Array {
  const key = secrets.get(identity);
  if (!key) throw new TypeError('"identity" expected an Identity');
  return seedOf(key);
}

/** @internal Signs with node:crypto whatever the default, for tests and benchmarks comparing signers. */
export function signWithNative(identity: Identity, message: Uint8Array): Uint8Array {
  const key = secrets.get(identity);
  if (!key) throw new TypeError('"identity" expected an Identity');
  return signNative(key, message);
}

function seedOf(key: KeyObject): Uint8Array {
  return new Uint8Array(Buffer.from(key.export({ format: 'jwk' }).d!, 'base64url'));
}
