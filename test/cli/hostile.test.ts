// A hostile member against a real daemon: it equivocates and then sends a forged signature.
// The daemon logs the equivocation and the rejection by reason, bans the forger, and its
// status, peers and /metrics count both.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Duplex } from 'node:stream';
import { Identity, dial, loadNetworkKey, signUpdate, wallClockMicros } from '../../src/index.ts';
import { Mux, type MuxSession } from '../../src/mesh/mux.ts';
import { encodeHello, encodeUpdates } from '../../src/replication/messages.ts';
import { parseHostPort } from '../../src/util/address.ts';
import { deadline } from '../helpers/streams.ts';
import { COMMAND_MS, Scratch } from './daemons.ts';
import { daemonDescriptor } from '../../src/cli/demo-peers.ts';

const scratch = new Scratch();
test.after(() => scratch.cleanup());

test('equivocation and a forged signature: logged with their reasons, counted by status and /metrics, the forger banned', async () => {
  const daemon = await scratch.daemon(['--dataset', 'kv', '--metrics', '127.0.0.1:0']);
  const mallory = Identity.generate();
  const version = wallClockMicros();
  const first = signUpdate(mallory, { dataset: 'kv', version, body: ['set', 'e1', 'one'] });
  const second = signUpdate(mallory, { dataset: 'kv', version, body: ['set', 'e2', 'two'] }); // same version: equivocation
  const forged = Uint8Array.from(signUpdate(mallory, { dataset: 'kv', version: version + 1, body: ['set', 'f', 'x'] }).bytes);
  forged[forged.length - 1]! ^= 1; // the signature is the envelope's last 64 bytes

  const { host, port } = parseHostPort(daemon.started['address'] as string, 'address');
  const channel = await dial({ identity: mallory, networkKey: await loadNetworkKey(scratch.networkKeyFile), host, port });
  try {
    const mux = new Mux(channel, { localId: mallory.id, remoteId: channel.remote.id, decide: () => null });
    const session = new Promise<MuxSession>((resolve) => mux.once('session', resolve));
    mux.open({ name: 'kv', policy: daemonDescriptor(mallory), replicaOf: null });
    const messages = [
      encodeHello({ dataset: 'kv', id: mallory.id, digest: new Map(), meta: null, readable: true, writable: true }),
      encodeUpdates([first.bytes, second.bytes]),
      encodeUpdates([forged]),
    ];
    (await deadline(session, 'the kv session', COMMAND_MS)).attach(new Duplex({
      read() {},
      write: (_chunk, _encoding, callback) => callback(),
      construct(callback) {
        for (const m of messages) this.push(m);
        callback();
      },
    }));

    const equivocation = await daemon.logged((e) => e['event'] === 'equivocation', "the daemon's equivocation line");
    assert.equal([equivocation['dataset'], equivocation['source'], equivocation['version']], ['kv', mallory.id, version]);
    assert.equal((equivocation['updates'] as string[]).sort(), [first.hashHex, second.hashHex].sort());
    const rejected = await daemon.logged((e) => e['event'] === 'rejected', "the daemon's rejected line");
    assert.equal([rejected['dataset'], rejected['reason'], rejected['source']], ['kv', 'bad-signature', mallory.id]);
    assert.match(rejected['from'] as string, /^kv@/);
    await daemon.logged((e) => e['event'] === 'peer:banned' && e['peer'] === mallory.id, 'the forger banned');
  } finally {
    channel.destroy();
  }

  const status = JSON.parse((await scratch.run(['status', '--data', daemon.data, '--json'])).out) as {
    datasets: Array<{ name: string; rejected: Record<string, number>; equivocations: number; evidence: number }>;
    updates: { rejected: Record<string, number>; equivocations: number }; peers: { banned: number };
  };
  const kv = status.datasets.find((d) => d.name === 'kv')!;
  assert.equal(kv.rejected, { 'bad-signature': 1 });
  assert.is(kv.equivocations, 1);
  assert.is(kv.evidence, 1);
  assert.equal(status.updates.rejected, { 'bad-signature': 1 });
  assert.is(status.updates.equivocations, 1);
  assert.is(status.peers.banned, 1);
  const peers = JSON.parse((await scratch.run(['peers', '--data', daemon.data, '--json'])).out) as { peers: Array<Record<string, unknown>> };
  const ban = peers.peers.find((p) => p['id'] === mallory.id)!;
  assert.is(ban['state'], 'banned');
  assert.match(ban['reason'] as string, /signature/);
  assert.type(ban['banEndsInMs'], 'number');

  const metrics = await (await fetch(`http://${daemon.started['metrics'] as string}/metrics`)).text();
  assert.match(metrics, /^signet_updates_rejected_total\{dataset="kv",reason="bad-signature"\} 1$/m);
  assert.match(metrics, /^signet_equivocations_total\{dataset="kv"\} 1$/m);
  assert.match(metrics, /^signet_updates_applied_total\{dataset="kv",origin="peer"\} 2$/m);
  assert.match(metrics, /^signet_peers\{state="banned"\} 1$/m);
  assert.match(metrics, /^signet_node_events_total\{event="peer:banned"\} 1$/m);
});

test.run();
