// signet demo: the main job on embedded defaults, in one process. Two nodes replicate a
// signed dataset through the Noise secure channel over loopback TCP; an outsider without the
// network key gets nothing, and forged or clock-poisoning updates are refused and counted.
import { connect } from 'node:net';
import { once } from 'node:events';
import { Identity } from '../identity/identity.ts';
import { generateNetworkKey } from '../identity/key-files.ts';
import { shortId } from '../identity/node-id.ts';
import { signUpdate } from '../envelope/update.ts';
import { Model } from '../models/model.ts';
import '../replication/index.ts';
import { dial, listen, replicate, secureChannel, type Refusal, type SecureListener } from '../channel/index.ts';
import { type CliIo, parse, EXIT_OK, EXIT_FAILURE } from './io.ts';

export const demoHelp = `usage: signet demo [--json]
Runs two nodes in this process with fresh identities and a fresh network key (nothing is
written to disk). They replicate a signed dataset through the Noise secure channel over
127.0.0.1; then an outsider without the network key tries to connect, and forged and
clock-poisoning updates are sent. Exit 0 if every check holds.
  --json   print the outcome as one JSON object`;

/** Waits for `event` on `emitter`, rejecting after `ms` so the demo can never hang. */
async function within<T extends unknown[]>(emitter: NodeJS.EventEmitter, event: string, ms = 10_000): Promise<T> {
  return (await once(emitter, event, { signal: AbortSignal.timeout(ms) })) as T;
}

export async function demo(args: string[], io: CliIo): Promise<number> {
  const { values } = parse(args, { json: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h', default: false } });
  if (values.help) return io.out(demoHelp), EXIT_OK;
  const say = (line: string) => { if (!values.json) io.out(line); };
  const networkKey = generateNetworkKey();
  const alice = new Model({ identity: Identity.generate(), dataset: 'demo' });
  const bob = new Model({ identity: Identity.generate(), dataset: 'demo' });
  const mallory = Identity.generate();
  const outsider = { bytesFromAlice: -1, error: '', aliceSaw: '' };
  let listener: SecureListener | undefined;
  try {
    say(`alice ${shortId(alice.id)}…  bob ${shortId(bob.id)}…  (node id = base32(sha256(public key)))`);
    alice.set('greeting', 'hello from alice');
    alice.set('config/replicas', 3);
    bob.set('status', { ok: true });

    // Alice listens; every connection must complete the Noise XXpsk0 handshake first, and each
    // one replicates alice's dataset (README's "Use it" wiring).
    listener = await listen({ identity: alice.identity, networkKey, host: '127.0.0.1', port: 0, onConnection: (ch) => replicate(alice, ch) });
    const port = listener.address().port;

    const channel = await dial({ identity: bob.identity, networkKey, host: '127.0.0.1', port, expectedPeer: alice.id });
    say(`bob dialed 127.0.0.1:${port}: Noise XXpsk0 handshake done, alice proved ${shortId(channel.remote.id)}…`);
    const bobStream = replicate(bob, channel);
    await within(bobStream, 'sync');
    say(`synced: bob sees greeting=${JSON.stringify(bob.get('greeting'))}, replicas=${bob.get('config/replicas')}`);

    const live = within(bob, 'change:greeting');
    alice.set('greeting', 'updated live');
    await live;
    say(`live: bob sees greeting=${JSON.stringify(bob.get('greeting'))} (signed by alice, verified by bob)`);

    // An outsider without the network key: alice answers nothing and does no Diffie-Hellman.
    const refused = within<[Refusal]>(listener, 'refused');
    const probe = connect(port, '127.0.0.1');
    probe.on('error', () => {});
    try {
      await secureChannel(probe, { identity: mallory, networkKey: generateNetworkKey(), initiator: true, limits: { handshakeTimeoutMs: 1000 } });
    } catch (err) {
      outsider.error = (err as { code?: string }).code ?? String(err);
    }
    outsider.bytesFromAlice = probe.bytesRead;
    outsider.aliceSaw = (await refused)[0].code;
    say(`outsider without the network key: no answer, it gave up after 1 s (${outsider.error}); it read ${outsider.bytesFromAlice} bytes; alice logged a refusal (${outsider.aliceSaw})`);

    // Mallory signs updates that name alice as their source: the signatures cannot verify.
    const rejections: string[] = [];
    bob.on('invalid', (r) => rejections.push(r.reason));
    const forge = (version: number) => {
      const real = signUpdate(mallory, { dataset: 'demo', version, body: ['set', 'greeting', 'pwned'] });
      const forged = real.bytes.slice();
      forged.set(alice.identity.publicKey, Buffer.from(forged).indexOf(Buffer.from(mallory.publicKey)));
      return forged;
    };
    const clockBefore = bob.clock.get(alice.id);
    const forgedNow = await bob.ingest(forge(Date.now() * 1000 + 1_000_000), null);
    const poison = await bob.ingest(forge(Number.MAX_SAFE_INTEGER - 1), null);
    const clockKept = bob.clock.get(alice.id) === clockBefore;
    say(`forged update claiming alice: ${forgedNow.status}; far-future clock poisoning: ${poison.status} (${rejections.join(', ')})`);

    const after = within(bob, 'change:greeting');
    alice.set('greeting', 'alice still gets through');
    await after;
    say(`after the attacks: alice's clock at bob unchanged until her real write; bob sees ${JSON.stringify(bob.get('greeting'))}`);

    const ok = clockKept && forgedNow.status === 'rejected' && poison.status === 'rejected' && outsider.bytesFromAlice === 0
      && bob.get('greeting') === 'alice still gets through' && alice.stateHash() === bob.stateHash();
    if (values.json) {
      io.out(JSON.stringify({ ok, alice: alice.id, bob: bob.id, stateHash: bob.stateHash(), rejected: rejections, outsider }));
    } else {
      say(ok ? `converged: state hash ${bob.stateHash().slice(0, 16)}… on both nodes` : 'demo FAILED: a check did not hold');
    }
    return ok ? EXIT_OK : EXIT_FAILURE;
  } finally {
    await listener?.close(); // close frames to bob, every socket closed
    alice.dispose();
    bob.dispose();
  }
}
