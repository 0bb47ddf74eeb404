// signet demo: the main job on embedded defaults, in one process. Two nodes replicate a
// signed dataset; a forged update and a clock-poisoning attempt are refused and counted.
import { Identity } from '../identity/identity.ts';
import { signUpdate } from '../envelope/update.ts';
import { Model } from '../models/model.ts';
import '../replication/index.ts';
import type { ReplicationStream } from '../replication/stream.ts';
import { shortId } from '../identity/node-id.ts';
import { type CliIo, parse, EXIT_OK, EXIT_FAILURE } from './io.ts';

export const demoHelp = `usage: signet demo [--json]
Runs two in-process nodes (fresh identities, nothing written to disk) that replicate a signed
dataset, then shows a forged update and a clock-poisoning attempt being refused.
  --json   print the outcome as one JSON object`;

const once = <T extends unknown[]>(emitter: { once(e: string, f: (...a: T) => void): unknown }, event: string) =>
  new Promise<T>((resolve) => emitter.once(event, (...args: T) => resolve(args)));

export async function demo(args: string[], io: CliIo): Promise<number> {
  const { values } = parse(args, { json: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h', default: false } });
  if (values.help) return io.out(demoHelp), EXIT_OK;
  const say = (line: string) => { if (!values.json) io.out(line); };

  const alice = new Model({ identity: Identity.generate(), dataset: 'demo' });
  const bob = new Model({ identity: Identity.generate(), dataset: 'demo' });
  const mallory = Identity.generate();
  say(`alice ${shortId(alice.id)}…  bob ${shortId(bob.id)}…  (node id = base32(sha256(public key)))`);

  alice.set('greeting', 'hello from alice');
  alice.set('config/replicas', 3);
  bob.set('status', { ok: true });

  const a: ReplicationStream = alice.createStream({ meta: 'alice' });
  const b: ReplicationStream = bob.createStream({ meta: 'bob' });
  const synced = Promise.all([once(a, 'sync'), once(b, 'sync')]);
  a.pipe(b).pipe(a);
  await synced;
  say(`synced: bob sees greeting=${JSON.stringify(bob.get('greeting'))}, alice sees status=${JSON.stringify(alice.get('status'))}`);

  const live = once<[unknown]>(bob, 'change:greeting');
  alice.set('greeting', 'updated live');
  await live;
  say(`live: bob sees greeting=${JSON.stringify(bob.get('greeting'))} (signed by alice, verified by bob)`);

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
  const verdict = forgedNow.status === 'rejected' && poison.status === 'rejected' ? forgedNow : { status: 'applied' };
  say(`forged update claiming alice: ${forgedNow.status}; far-future clock-poisoning attempt: ${poison.status} (reasons: ${rejections.join(', ')})`);
  say(`alice's clock at bob unchanged: ${bob.clock.get(alice.id) === clockBefore}`);

  const after = once(bob, 'change:greeting');
  alice.set('greeting', 'alice still gets through');
  await after;
  say(`after the attack: bob sees greeting=${JSON.stringify(bob.get('greeting'))}`);

  const ok = bob.get('greeting') === 'alice still gets through' && verdict.status === 'rejected' && alice.stateHash() === bob.stateHash();
  if (values.json) {
    io.out(JSON.stringify({ ok, alice: alice.id, bob: bob.id, stateHash: bob.stateHash(), rejected: rejections }));
  } else {
    say(ok ? `converged: state hash ${bob.stateHash().slice(0, 16)}… on both nodes` : 'demo FAILED: the nodes did not converge');
  }
  a.destroy();
  b.destroy();
  alice.dispose();
  bob.dispose();
  return ok ? EXIT_OK : EXIT_FAILURE;
}
