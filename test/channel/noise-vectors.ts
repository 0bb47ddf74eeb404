// The published Noise vectors (test/vectors/noise/, sources in its README), normalised from both
// of their formats, and a runner that checks every message, payload and handshake hash with a
// given primitive set (the default set unless one is named).
import * as assert from 'uvu/assert';
import { HandshakeState, parseProtocolName } from '../../src/channel/handshake-state.ts';
import { keyPairFromPrivate, type NoisePrimitives } from '../../src/channel/primitives.ts';
import type { CipherState } from '../../src/channel/cipher-state.ts';
import { fromHex, toHex } from '../../src/util/bytes.ts';
import { readVectors } from '../helpers/vectors.ts';

export interface Entry { source: string; protocol: string; vector: Record<string, unknown> }
export interface Case {
  label: string;
  protocol: string;
  prologue: Uint8Array;
  initStatic?: Uint8Array; respStatic?: Uint8Array;
  initEphemeral: Uint8Array; respEphemeral: Uint8Array;
  initRemoteStatic?: Uint8Array;
  initPsks: Uint8Array[]; respPsks: Uint8Array[];
  handshakeHash?: Uint8Array;
  // each message: who sends it (true = initiator), payload, ciphertext
  messages: Array<{ fromInitiator: boolean; payload: Uint8Array; ciphertext: Uint8Array }>;
}

const hex = (v: unknown): Uint8Array => fromHex(String(v ?? ''));
const opt = (v: unknown): Uint8Array | undefined => (typeof v === 'string' ? fromHex(v) : undefined);

/** Both vector formats, normalised (README "Format notes"). */
export function normalise(entry: Entry, index: number): Case {
  const v = entry.vector;
  const label = `${entry.source}#${index} ${entry.protocol}`;
  if (entry.source === 'flynn') {
    const hsCount = parseProtocolName(entry.protocol).messages.length;
    const messages: Case['messages'] = [];
    for (let i = 0; `msg_${i}_ciphertext` in v; i++) {
      // handshake messages alternate from the initiator; then msg_n is initiator→responder
      // and msg_n+1 responder→initiator
      const fromInitiator = i < hsCount ? i % 2 === 0 : (i - hsCount) % 2 === 0;
      messages.push({ fromInitiator, payload: hex(v[`msg_${i}_payload`]), ciphertext: hex(v[`msg_${i}_ciphertext`]) });
    }
    const psk = opt(v.preshared_key);
    const psks = psk ? Array(parseProtocolName(entry.protocol).psks).fill(psk) : [];
    const respStatic = opt(v.resp_static);
    return {
      label, protocol: entry.protocol, prologue: hex(v.prologue),
      initStatic: opt(v.init_static), respStatic,
      initEphemeral: hex(v.gen_init_ephemeral), respEphemeral: hex(v.gen_resp_ephemeral),
      // flynn's IK initiator knows the responder's static in advance
      initRemoteStatic: entry.protocol.includes('_IK') && respStatic ? keyPairFromPrivate(respStatic).publicKey : undefined,
      initPsks: psks, respPsks: psks, messages,
    };
  }
  const msgs = v.messages as Array<{ payload: string; ciphertext: string }>;
  return {
    label, protocol: String(v.protocol_name ?? v.name), prologue: hex(v.init_prologue),
    initStatic: opt(v.init_static), respStatic: opt(v.resp_static),
    initEphemeral: hex(v.init_ephemeral), respEphemeral: hex(v.resp_ephemeral),
    initRemoteStatic: opt(v.init_remote_static),
    initPsks: ((v.init_psks as string[] | undefined) ?? []).map(fromHex),
    respPsks: ((v.resp_psks as string[] | undefined) ?? []).map(fromHex),
    handshakeHash: opt(v.handshake_hash),
    messages: msgs.map((m, i) => ({ fromInitiator: i % 2 === 0, payload: fromHex(m.payload), ciphertext: fromHex(m.ciphertext) })),
  };
}

export function run(c: Case, primitives?: NoisePrimitives): void {
  const protocol = parseProtocolName(c.protocol);
  const fromPrivate = primitives ? primitives.keyPairFromPrivate.bind(primitives) : keyPairFromPrivate;
  const init = new HandshakeState({
    protocol, initiator: true, prologue: c.prologue,
    s: c.initStatic && fromPrivate(c.initStatic), rs: c.initRemoteStatic,
    psks: c.initPsks, ephemeralPrivateKey: c.initEphemeral, ...(primitives ? { primitives } : {}),
  });
  const resp = new HandshakeState({
    protocol, initiator: false, prologue: c.prologue,
    s: c.respStatic && fromPrivate(c.respStatic),
    psks: c.respPsks, ephemeralPrivateKey: c.respEphemeral, ...(primitives ? { primitives } : {}),
  });
  let transport: { i2r: [CipherState, CipherState]; r2i: [CipherState, CipherState] } | null = null;
  for (const [i, m] of c.messages.entries()) {
    const [sender, receiver] = m.fromInitiator ? [init, resp] : [resp, init];
    let ciphertext: Uint8Array;
    let payload: Uint8Array;
    if (!transport) {
      assert.is(sender.isMyTurn, true, `${c.label}: message ${i} turn`);
      ciphertext = sender.writeMessage(m.payload);
      payload = receiver.readMessage(ciphertext);
      if (init.isComplete) {
        assert.ok(resp.isComplete);
        const [ic1, ic2] = init.split();
        const [rc1, rc2] = resp.split();
        transport = { i2r: [ic1, rc1], r2i: [rc2, ic2] };
        assert.is(toHex(init.getHandshakeHash()), toHex(resp.getHandshakeHash()));
        if (c.handshakeHash) assert.is(toHex(init.getHandshakeHash()), toHex(c.handshakeHash), `${c.label}: handshake hash`);
      }
    } else {
      const [enc, dec] = m.fromInitiator ? transport.i2r : transport.r2i;
      ciphertext = enc.encryptWithAd(new Uint8Array(0), m.payload);
      payload = dec.decryptWithAd(new Uint8Array(0), ciphertext);
    }
    assert.is(toHex(ciphertext), toHex(m.ciphertext), `${c.label}: message ${i} ciphertext`);
    assert.is(toHex(payload), toHex(m.payload), `${c.label}: message ${i} payload`);
  }
  assert.ok(transport, `${c.label}: handshake completed`);
}

/** Every vector of vectors.json, then of vectors-extra.json. */
export const mainVectors = (readVectors('noise/vectors.json') as { vectors: Entry[] }).vectors;
export const extraVectors = (readVectors('noise/vectors-extra.json') as { vectors: Entry[] }).vectors;
