// Identity: an Ed25519 key pair and the node id derived from it. The secret never leaves
// this module except as a PKCS#8 PEM for key files; it is never logged or inspected.
import { randomBytes, createPublicKey, type KeyObject } from 'node:crypto';
import { inspect } from 'node:util';
import { assertBytes } from '../util/bytes.ts';
import { nodeIdOf, shortId, type NodeId } from './node-id.ts';
import { privateKeyObject, signNative } from './backend-native.ts';

const secrets = new WeakMap<Identity, KeyObject>();

/** An Ed25519 key pair. `id` is base32(sha256(publicKey)). */
export class Identity {
  /** The node id: 52 lower-case base32 characters. */
  readonly id: NodeId;
  /** The 32-byte Ed25519 public key. */
  readonly publicKey: Uint8Array;

  private constructor(key: KeyObject) {
    const jwk = createPublicKey(key).export({ format: 'jwk' });
    this.publicKey = new Uint8Array(Buffer.from(jwk.x!, 'base64url'));
    this.id = nodeIdOf(this.publicKey);
    secrets.set(this, key);
    Object.freeze(this);
  }

  /** A new random identity (node:crypto CSPRNG). */
  static generate(): Identity {
    return Identity.fromSecretKey(randomBytes(32));
  }

  /**
   * The identity of a 32-byte Ed25519 seed (RFC 8032 secret key).
   * @throws TypeError / RangeError unless `secretKey` is 32 bytes.
   */
  static fromSecretKey(secretKey: Uint8Array): Identity {
    assertBytes(secretKey, 'secretKey', 32);
    return new Identity(privateKeyObject(secretKey));
  }

  /** @internal The identity of an Ed25519 private KeyObject (key files). */
  static fromKeyObject(key: KeyObject): Identity {
    if (key.type !== 'private' || key.asymmetricKeyType !== 'ed25519') {
      throw new TypeError('"key" expected an Ed25519 private key');
    }
    return new Identity(key);
  }

  /**
   * Signs `message` (RFC 8032, deterministic). Callers prefix a domain tag.
   * @throws TypeError unless `message` is a Uint8Array.
   */
  sign(message: Uint8Array): Uint8Array {
    assertBytes(message, 'message');
    return signNative(secrets.get(this)!, message);
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
  return new Uint8Array(Buffer.from(key.export({ format: 'jwk' }).d!, 'base64url'));
}
