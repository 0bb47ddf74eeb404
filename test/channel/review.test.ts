// Security review of src/channel: each test pins down a problem an attacker (or an unlucky
// peer) could cause, found in review and fixed alongside.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { once } from 'node:events';
import type { Duplex } from 'node:stream';
import { secureChannel } from '../../src/channel/secure-channel.ts';
import type { HandshakeState } from '../../src/channel/handshake-state.ts';
import { alice, bob, networkKey, duplexPair, frameTap, held, outcome, rejection } from './pair.ts';

const closed = (s: Duplex): Promise<void> => new Promise((r) => (s.closed ? r() : s.once('close', () => r())));

test('a replayed message 1 (captured from a real handshake) gets no reply and no DH from a responder', async () => {
  // an eavesdropper records the 50 bytes of a genuine message 1...
  const [ea, eb] = duplexPair();
  const [a, b] = await Promise.all([
    secureChannel(ea, { identity: alice, networkKey, initiator: true }),
    secureChannel(eb, { identity: bob, networkKey, initiator: false }),
  ]);
  const message1 = Buffer.from(ea.wire[0]!);
  assert.is(message1.length, 50);
  a.destroy();
  b.destroy();
  // ...and, not knowing the network key, replays it to the responder
  for (let i = 0; i < 3; i++) {
    const [ex, ey] = duplexPair();
    const states: HandshakeState[] = [];
    const responder = secureChannel(ey, { identity: bob, networkKey, initiator: false, testing: { onHandshakeState: (s) => states.push(s) } });
    ex.write(message1);
    const error = await rejection(responder);
    assert.is(error.code, 'ERR_HANDSHAKE');
    await closed(ey);
    assert.is(ey.bytesWritten, 0, 'no message 2 (and no encrypted identity) for a replayer');
    assert.is(states[0]!.dhCount, 0, 'no DH for a replayer');
    assert.is(states[0]!.localEphemeral, undefined, 'no ephemeral generated for a replayer');
  }
});

test.run();
