// Advertised addresses (telepathine's addressMap, gossipmonger's transport data): a Node listens on
// one address and signs others in its membership record; those are what peers dial. Over real
// loopback TCP, with a forwarder standing in for a NAT's published port. Every node and socket is
// closed in a finally.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { Identity, Model, Node } from '../../src/index.ts';
import { MAX_MEMBER_ADDRESSES } from '../../src/limits.ts';
import { Cluster, connectedTo, converged, networkKey, until } from './cluster.ts';

/** A TCP forwarder on 127.0.0.1:0 to `target()` (read when a connection arrives), counting connections. */
async function forwarder(target: () => number | undefined): Promise<{ address: string; connections: () => number; close: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  let connections = 0;
  const track = (s: Socket): void => {
    sockets.add(s);
    s.on('error', () => s.destroy());
    s.once('close', () => sockets.delete(s));
  };
  const server: Server = createServer((inbound) => {
    connections++;
    track(inbound);
    const port = target();
    if (port === undefined) return inbound.destroy();
    const outbound = connect(port, '127.0.0.1');
    track(outbound);
    inbound.pipe(outbound).pipe(inbound);
    inbound.once('close', () => outbound.destroy());
    outbound.once('close', () => inbound.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as { port: number };
  return {
    address: `127.0.0.1:${port}`,
    connections: () => connections,
    close: () => new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    }),
  };
}

const portOf = (address: string): number => Number(address.slice(address.lastIndexOf(':') + 1));

test('a member learned only from membership is dialed at its advertised address, not where it listens', async () => {
  const cluster = new Cluster();
  let listenPort: number | undefined;
  const fwd = await forwarder(() => listenPort);
  try {
    // A listens on a port of its own but tells the mesh to dial the forwarder.
    const a = cluster.node({ advertise: fwd.address });
    const ma = a.dataset('kv', Model);
    await a.start();
    listenPort = portOf(a.address()!);
    assert.is.not(a.address(), fwd.address);
    assert.equal(a.membersDataset.get(`${a.id}/node`), { addresses: [fwd.address] }, 'A signs the advertised address, not the listen one');
    // B knows A's listen address as its seed; C knows only B, and does not listen (so only C can dial A).
    const b = cluster.node({ seeds: [a.address()!] });
    const mb = b.dataset('kv', Model);
    await b.start();
    const c = cluster.node({ listen: undefined, seeds: [b.address()!] });
    const mc = c.dataset('kv', Model);
    await c.start();
    await until('C learns A from membership', () => c.members().some((m) => m.id === a.id), [[c, ['member:new']]]);
    assert.equal(c.members().find((m) => m.id === a.id)!.addresses, [fwd.address]);
    await connectedTo(c, [a.id]);
    const peer = c.peers().find((p) => p.id === a.id)!;
    assert.is(peer.direction, 'out', 'C dialed A');
    assert.is(peer.address, fwd.address, 'through the advertised address');
    assert.ok(fwd.connections() >= 1, `${fwd.connections()} connections through the forwarder`);
    ma.set('from-a', 'over the forwarder');
    await converged([ma, mb, mc], 'from-a', 'over the forwarder');
  } finally {
    await cluster.stopAll();
    await fwd.close();
  }
});

test('several advertised addresses are signed in order; a dead first one does not keep peers away', async () => {
  const cluster = new Cluster();
  let listenPort: number | undefined;
  const dead = await forwarder(() => undefined); // accepts, then hangs up: nothing behind it
  const fwd = await forwarder(() => listenPort);
  try {
    const a = cluster.node({ advertise: [dead.address, fwd.address] });
    await a.start();
    listenPort = portOf(a.address()!);
    assert.equal(a.membersDataset.get(`${a.id}/node`), { addresses: [dead.address, fwd.address] });
    const b = cluster.node({ seeds: [a.address()!] });
    await b.start();
    const c = cluster.node({ listen: undefined, seeds: [b.address()!] });
    await c.start();
    await connectedTo(c, [a.id]);
    assert.is(c.peers().find((p) => p.id === a.id)!.address, fwd.address);
    assert.ok(dead.connections() >= 1, 'the first address was tried first');
  } finally {
    await cluster.stopAll();
    await Promise.all([dead.close(), fwd.close()]);
  }
});

test('advertise: validated like a seed, bounded by MAX_MEMBER_ADDRESSES; the default is the bound listen address', async () => {
  const node = (advertise: unknown, listen?: string): Node => new Node({ identity: Identity.generate(), networkKey, listen, advertise: advertise as string[] });
  const refuses = (advertise: unknown, type: typeof TypeError | typeof RangeError, name: string): void => {
    assert.throws(() => node(advertise), (e: Error) => e instanceof type && e.message.includes(`"${name}"`), JSON.stringify(advertise));
  };
  refuses(7420, TypeError, 'advertise');
  refuses([7420], TypeError, 'advertise[0]');
  refuses('example.org', RangeError, 'advertise');
  refuses('example.org:0', RangeError, 'advertise');
  refuses(['example.org:1', 'example.org:70000'], RangeError, 'advertise[1]');
  refuses(['0.0.0.0:7420'], RangeError, 'advertise[0]');
  refuses(['[::]:7420'], RangeError, 'advertise[0]');
  refuses(['evil host:1'], RangeError, 'advertise[0]');
  refuses(['/tmp/socket:1'], RangeError, 'advertise[0]');
  refuses([`${'x'.repeat(300)}:1`], RangeError, 'advertise[0]');
  refuses(['a.example:1', 'A.example:1'], RangeError, 'advertise[1]');
  const many = Array.from({ length: MAX_MEMBER_ADDRESSES + 1 }, (_, i) => `10.0.0.${i + 1}:7420`);
  refuses(many, RangeError, 'advertise');
  node(many.slice(0, MAX_MEMBER_ADDRESSES)); // at the limit: accepted

  const nodes: Node[] = [];
  try {
    const start = async (advertise: unknown, listen?: string): Promise<Node> => {
      const n = node(advertise, listen);
      nodes.push(n);
      await n.start();
      return n;
    };
    const record = (n: Node): unknown => n.membersDataset.get(`${n.id}/node`);
    const one = await start('example.org:7420', '127.0.0.1:0');
    assert.equal(record(one), { addresses: ['example.org:7420'] });
    const max = await start(many.slice(0, MAX_MEMBER_ADDRESSES), '127.0.0.1:0');
    assert.equal(record(max), { addresses: many.slice(0, MAX_MEMBER_ADDRESSES) });
    const none = await start([], '127.0.0.1:0');
    assert.equal(record(none), { addresses: [] }, 'advertises nothing, though it listens');
    const fallback = await start(undefined, '127.0.0.1:0');
    assert.equal(record(fallback), { addresses: [fallback.address()] }, 'the default: the bound listen address');
    const wildcard = await start(undefined, '0.0.0.0:0');
    assert.equal(record(wildcard), { addresses: [] }, 'a wildcard bind is not advertised');
    const dialer = await start('example.org:7420');
    assert.is(dialer.address(), undefined);
    assert.equal(record(dialer), { addresses: ['example.org:7420'] }, 'advertised even without listen (a forwarder elsewhere)');
  } finally {
    await Promise.all(nodes.map((n) => n.stop()));
  }
});

test.run();
