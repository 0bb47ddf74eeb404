// HandshakeState (Noise spec section 5.3): runs a handshake pattern token by token. signet
// uses XXpsk0; XX, IK and other psk placements exist so the published vectors can run too.
import { HandshakeError } from '../errors.ts';
import { SymmetricState } from './symmetric-state.ts';
import { findLeadingPskState, keepLeadingPskState } from './leading-psk.ts';
import type { CipherState } from './cipher-state.ts';
import { hashByName, type NoiseHash } from './hashes.ts';
import { copyBytes, DEFAULT_PRIMITIVES, DHLEN, type KeyPair, type NoisePrimitives } from './primitives.ts';

/** A handshake token (spec 7.1 and 9). */
export type Token = 'e' | 's' | 'ee' | 'es' | 'se' | 'ss' | 'psk';

interface Pattern {
  /** Pre-message tokens: [initiator's, responder's]. */
  readonly pre: readonly [readonly Token[], readonly Token[]];
  readonly messages: readonly (readonly Token[])[];
}

/** The base patterns this module knows (spec 7.4 and 7.5). */
const PATTERNS: Record<string, Pattern> = {
  // XX:
  //   -> e
  //   <- e, ee, s, es
  //   -> s, se
  XX: { pre: [[], []], messages: [['e'], ['e', 'ee', 's', 'es'], ['s', 'se']] },
  // IK:
  //   <- s
  //   ...
  //   -> e, es, s, ss
  //   <- e, ee, se
  IK: { pre: [[], ['s']], messages: [['e', 'es', 's', 'ss'], ['e', 'ee', 'se']] },
};

/** The protocol signet speaks. */
export const SIGNET_PROTOCOL = 'Noise_XXpsk0_25519_ChaChaPoly_SHA256';

/** A parsed protocol name: its messages with psk modifiers applied, and its hash. */
export interface Protocol {
  readonly name: string;
  readonly pre: readonly [readonly Token[], readonly Token[]];
  readonly messages: readonly (readonly Token[])[];
  readonly psks: number;
  readonly hash: NoiseHash;
}

/**
 * Parses `Noise_<pattern><modifiers>_25519_ChaChaPoly_<hash>`. psk0 puts `psk` first in the
 * first message; pskN (N >= 1) puts it last in message N (spec 9.2).
 * @throws RangeError for a pattern, DH, cipher or hash this module does not implement.
 */
export function parseProtocolName(name: string): Protocol {
  const m = /^Noise_([A-Z]+)((?:psk\d)(?:\+psk\d)*)?_25519_ChaChaPoly_(SHA256|BLAKE2b)$/.exec(name);
  const base = m ? PATTERNS[m[1]!] : undefined;
  if (!m || !base) throw new RangeError(`"protocolName" is not a supported Noise protocol: ${name}`);
  const messages = base.messages.map((tokens) => [...tokens]);
  const modifiers = m[2] ? m[2].split('+').map((p) => Number(p.slice(3))) : [];
  for (const k of modifiers) {
    if (k === 0) messages[0]!.unshift('psk');
    else if (k <= messages.length) messages[k - 1]!.push('psk');
    else throw new RangeError(`"protocolName" has psk${k} beyond its ${messages.length} messages`);
  }
  return { name, pre: base.pre, messages, psks: modifiers.length, hash: hashByName(m[3]!) };
}

/** Keys and settings for {@link HandshakeState}. */
export interface HandshakeInit {
  readonly protocol: Protocol;
  readonly initiator: boolean;
  readonly prologue: Uint8Array;
  /** Local static key pair (required by XX and IK). */
  readonly s?: KeyPair;
  /** Remote static public key known in advance (IK responder's key for the initiator). */
  readonly rs?: Uint8Array;
  /** Pre-shared keys, 32 bytes each, used in order. */
  readonly psks?: readonly Uint8Array[];
  /** TEST ONLY: the local ephemeral private key; production always generates a fresh one. */
  readonly ephemeralPrivateKey?: Uint8Array;
  /** The DH and cipher implementation. Default: libsodium where it loads, else node:crypto (same bytes). */
  readonly primitives?: NoisePrimitives;
}

/** Noise HandshakeState. */
export class HandshakeState {
  private readonly ss: SymmetricState;
  private readonly protocol: Protocol;
  private readonly initiator: boolean;
  private readonly s: KeyPair | undefined;
  private e: KeyPair | undefined;
  private rs: Uint8Array | undefined;
  private re: Uint8Array | undefined;
  private readonly psks: Uint8Array[];
  private readonly pskMode: boolean;
  private readonly ephemeralPrivateKey: Uint8Array | undefined;
  private readonly primitives: NoisePrimitives;
  private index = 0;
  private result: [CipherState, CipherState] | null = null;
  /** Set until a psk0 handshake's leading psk token is processed: what its state is kept under. */
  private leadingPsk: { readonly protocol: string; readonly prologue: Uint8Array } | null = null;
  /** Diffie-Hellman operations performed so far (tests prove a rejected message 1 costs none). */
  dhCount = 0;

  /**
   * Initialize(handshake_pattern, initiator, prologue, s, e, rs, re): InitializeSymmetric,
   * MixHash(prologue), then the pre-message public keys, initiator's first.
   * @throws RangeError when a key the pattern needs is missing or the psk count is wrong.
   */
  constructor(init: HandshakeInit) {
    this.protocol = init.protocol;
    this.initiator = init.initiator;
    this.s = init.s;
    this.rs = init.rs;
    this.psks = [...(init.psks ?? [])];
    this.pskMode = init.protocol.psks > 0;
    this.ephemeralPrivateKey = init.ephemeralPrivateKey;
    this.primitives = init.primitives ?? DEFAULT_PRIMITIVES;
    if (this.psks.length !== init.protocol.psks) {
      throw new RangeError(`"psks" expected ${init.protocol.psks} keys, got ${this.psks.length}`);
    }
    for (const psk of this.psks) if (psk.length !== 32) throw new RangeError('"psks" expected 32-byte keys');
    this.ss = new SymmetricState(init.protocol.hash, init.protocol.name, this.primitives);
    this.ss.mixHash(init.prologue);
    const [initPre, respPre] = init.protocol.pre;
    for (const [tokens, ours] of [[initPre, this.initiator], [respPre, !this.initiator]] as const) {
      for (const token of tokens) {
        if (token !== 's') throw new RangeError(`unsupported pre-message token ${token}`);
        const key = ours ? this.s?.publicKey : this.rs;
        if (!key) throw new RangeError('"rs"/"s" required by the pre-message');
        this.ss.mixHash(key);
      }
    }
    // psk0 with no pre-message: the first token mixes the psk into a state made of public constants
    // alone, the same for every handshake with this psk, so the result is kept (leading-psk.ts)
    if (initPre.length === 0 && respPre.length === 0 && init.protocol.messages[0]?.[0] === 'psk') {
      this.leadingPsk = { protocol: init.protocol.name, prologue: copyBytes(init.prologue) };
    }
  }

  /** True when it is this side's turn to write. */
  get isMyTurn(): boolean {
    return (this.index % 2 === 0) === this.initiator;
  }

  /** True after the last handshake message. */
  get isComplete(): boolean {
    return this.result !== null;
  }

  /** The remote static public key, once received. */
  get remoteStatic(): Uint8Array | undefined {
    return this.rs;
  }

  /** The remote ephemeral public key, once received. */
  get remoteEphemeral(): Uint8Array | undefined {
    return this.re;
  }

  /** The local ephemeral public key, once generated. */
  get localEphemeral(): Uint8Array | undefined {
    return this.e?.publicKey;
  }

  /** h: the handshake hash (channel binding value once complete). */
  getHandshakeHash(): Uint8Array {
    return this.ss.getHandshakeHash();
  }

  /** The transport CipherStates after the last message: [initiator→responder, responder→initiator]. */
  split(): [CipherState, CipherState] {
    if (!this.result) throw new Error('handshake not complete');
    return this.result;
  }

  private dh(local: KeyPair | undefined, remote: Uint8Array | undefined): void {
    if (!local || !remote) throw new HandshakeError('handshake pattern needs a key that is missing');
    this.dhCount++;
    const secret = this.primitives.dh(local, remote);
    if (secret === null) throw new HandshakeError('remote public key rejected by X25519 (small order)');
    this.ss.mixKey(secret);
  }

  /** MixKeyAndHash(next psk). A psk0 handshake's leading one: the kept state if there is one, else computed and kept. */
  private mixPsk(): void {
    const psk = this.psks.shift()!;
    const leading = this.leadingPsk;
    if (leading === null) return this.ss.mixKeyAndHash(psk);
    this.leadingPsk = null;
    const hash = this.protocol.hash;
    const kept = findLeadingPskState(hash, leading.protocol, leading.prologue, psk);
    if (kept !== undefined) return this.ss.restore(kept);
    this.ss.mixKeyAndHash(psk);
    keepLeadingPskState(hash, leading.protocol, leading.prologue, psk, this.ss.snapshot());
  }

  private token(token: Token): void {
    const i = this.initiator;
    switch (token) {
      case 'ee': return this.dh(this.e, this.re);
      case 'es': return i ? this.dh(this.e, this.rs) : this.dh(this.s, this.re);
      case 'se': return i ? this.dh(this.s, this.re) : this.dh(this.e, this.rs);
      case 'ss': return this.dh(this.s, this.rs);
      case 'psk': return this.mixPsk();
      default: throw new Error(`token ${token} is handled by the caller`);
    }
  }

  private advance(): void {
    this.index++;
    if (this.index === this.protocol.messages.length) {
      this.result = this.ss.split();
      // The ephemeral private key is never used again: wipe it where it is raw bytes (libsodium's
      // form; a node:crypto KeyObject cannot be wiped and is left to the garbage collector).
      if (this.e?.privateKey instanceof Uint8Array) this.e.privateKey.fill(0);
    }
  }

  /**
   * WriteMessage(payload): the next handshake message of this side.
   * @throws Error when it is not this side's turn or the handshake is over (a caller bug).
   */
  writeMessage(payload: Uint8Array): Uint8Array {
    if (this.result || !this.isMyTurn) throw new Error('writeMessage out of turn');
    const out: Uint8Array[] = [];
    for (const token of this.protocol.messages[this.index]!) {
      if (token === 'e') {
        // fresh for every handshake, never cached or reused (only the vectors inject one)
        this.e = this.ephemeralPrivateKey ? this.primitives.keyPairFromPrivate(this.ephemeralPrivateKey) : this.primitives.generateKeyPair();
        out.push(this.e.publicKey);
        this.ss.mixHash(this.e.publicKey);
        if (this.pskMode) this.ss.mixKey(this.e.publicKey); // spec 9.2: e also mixes the key in psk handshakes
      } else if (token === 's') {
        if (!this.s) throw new RangeError('"s" required by the pattern');
        out.push(this.ss.encryptAndHash(this.s.publicKey));
      } else {
        this.token(token);
      }
    }
    out.push(this.ss.encryptAndHash(payload));
    this.advance();
    return Buffer.concat(out);
  }

  /**
   * ReadMessage(message): processes the next message from the remote and returns its payload.
   * @throws HandshakeError when the message is short or does not authenticate.
   */
  readMessage(message: Uint8Array): Uint8Array {
    if (this.result || this.isMyTurn) throw new Error('readMessage out of turn');
    let offset = 0;
    const take = (n: number): Uint8Array => {
      if (offset + n > message.length) throw new HandshakeError('handshake message too short');
      const part = message.subarray(offset, offset + n);
      offset += n;
      return part;
    };
    try {
      for (const token of this.protocol.messages[this.index]!) {
        if (token === 'e') {
          this.re = copyBytes(take(DHLEN));
          this.ss.mixHash(this.re);
          if (this.pskMode) this.ss.mixKey(this.re);
        } else if (token === 's') {
          this.rs = copyBytes(this.ss.decryptAndHash(take(this.ss.hasKey() ? DHLEN + 16 : DHLEN)));
        } else {
          this.token(token);
        }
      }
      const payload = this.ss.decryptAndHash(message.subarray(offset));
      this.advance();
      return payload;
    } catch (error) {
      if (error instanceof HandshakeError) throw error;
      throw new HandshakeError('handshake message did not authenticate', { cause: error });
    }
  }
}
