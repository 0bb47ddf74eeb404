// The Node over a second real transport: Unix-domain sockets in a temporary directory
// (unixSocketTransport). Nodes replicate, find each other through membership, and leave no socket
// file behind; addresses that would leave the directory, stale and foreign files, and paths too
// long for the kernel are handled. Every node is stopped and the directory removed in a finally.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  Identity, MAX_UNIX_SOCKET_PATH_BYTES, Model, Node, UNIX_REMOTE_ADDRESS, dial, listen, unixSocketPath, unixSocketTransport,
  type NodeOptions,
} from '../../src/index.ts';
import { FAST, connectedTo, converged, networkKey } from './cluster.ts';
import { deadline, rejection } from '../helpers/streams.ts';

/** A fresh directory for sockets; `done()` removes it. */
function socketDir(): { dir: string; done: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'signet-unix-'));
  return { dir, done: () => rmSync(dir, { recursive: true, force: true }) };
}

test('three Nodes over Unix sockets: replicate both ways, the third finds the first through membership, no socket file is left', async () => {
  const { dir, done } = socketDir();
  const transport = unixSocketTransport({ directory: dir });
  const nodes: Node[] = [];
  const node = (options: Partial<NodeOptions>): Node => {
    const n = new Node({ identity: Identity.generate(), networkKey, transport, ...FAST, ...options });
    nodes.push(n);
    return n;
  };
  try {
    const a = node({ listen: 'alpha:0' });
    const ma = a.dataset('kv', Model);
    await a.start();
    assert.match(a.address()!, /^alpha:\d+$/);
    const [, port] = a.address()!.split(':');
    const file = unixSocketPath(dir, 'alpha', Number(port));
    assert.ok('path' in file && existsSync(file.path), 'A listens on its socket file');
    assert.equal(a.membersDataset.get(`${a.id}/node`), { addresses: [a.address()] });

    const b = node({ listen: 'beta:7420', seeds: [a.address()!] });
    const mb = b.dataset('kv', Model);
    await b.start();
    assert.is(b.address(), 'beta:7420');
    ma.set('from-a', 1);
    mb.set('from-b', 2);
    await converged([ma, mb], 'from-a', 1);
    await converged([ma, mb], 'from-b', 2);
    assert.is(b.peers().find((p) => p.id === a.id)!.address, a.address(), 'B dialed A at its address');
    assert.is(a.peers().find((p) => p.id === b.id)!.address, `${UNIX_REMOTE_ADDRESS}:0`, 'a Unix socket does not say who dialed');

    // C knows only B and does not listen: it dials A at the address A signed in its record.
    const c = node({ seeds: ['beta:7420'] });
    const mc = c.dataset('kv', Model);
    await c.start();
    await connectedTo(c, [a.id, b.id]);
    const toA = c.peers().find((p) => p.id === a.id)!;
    assert.is(toA.direction, 'out');
    assert.is(toA.address, a.address());
    await converged([mc], 'from-a', 1);
    await converged([mc], 'from-b', 2);
    assert.is(mc.stateHash(), ma.stateHash());
  } finally {
    await Promise.all(nodes.map((n) => n.stop()));
    const left = readdirSync(dir);
    done();
    assert.equal(left, [], 'every socket file removed on stop');
  }
});

test('Unix transport: an address can never leave the directory; refusals are ConnectErrors, never throws', async () => {
  const { dir, done } = socketDir();
  const transport = unixSocketTransport({ directory: dir });
  const signal = new AbortController().signal;
  try {
    for (const host of ['../etc', 'a/b', '/tmp/x', '', 'a\u0000b', 'a b', '\u00e9', 'x'.repeat(254)]) {
      const error = await rejection(transport.connect(host, 7420, signal));
      assert.is(error.code, 'ERR_CONNECT', JSON.stringify(host));
      assert.ok('error' in unixSocketPath(dir, host, 7420), JSON.stringify(host));
    }
    for (const port of [0, -1, 65536, 1.5, NaN]) assert.is((await rejection(transport.connect('alpha', port, signal))).code, 'ERR_CONNECT', String(port));
    assert.is((await rejection(transport.connect('nobody', 7420, signal))).code, 'ERR_CONNECT', 'nothing listens there');
    const aborted = AbortSignal.abort();
    assert.is((await rejection(transport.connect('nobody', 7420, aborted))).code, 'ERR_ABORTED');
    // The Node refuses such addresses earlier, as for TCP: a path is not a host:port.
    assert.throws(() => new Node({ identity: Identity.generate(), networkKey, transport, listen: '/tmp/x.sock' }), RangeError);
    assert.throws(() => new Node({ identity: Identity.generate(), networkKey, transport, seeds: ['../x:1'] }), RangeError);
    assert.throws(() => unixSocketTransport({ directory: 'relative/dir' }), RangeError);
    assert.throws(() => unixSocketTransport({ directory: 7 as unknown as string }), TypeError);
    assert.throws(() => unixSocketTransport(null as unknown as { directory: string }), TypeError);
  } finally {
    done();
  }
});

test('Unix transport: a live socket or a foreign file in the way is EADDRINUSE; a dead process\'s socket is replaced', async () => {
  const { dir, done } = socketDir();
  const transport = unixSocketTransport({ directory: dir });
  const identity = Identity.generate();
  const listeners: Array<{ close(): Promise<void> }> = [];
  try {
    const first = await listen({ identity, networkKey, transport, host: 'taken', port: 7420 });
    listeners.push(first);
    const busy = await rejection(listen({ identity, networkKey, transport, host: 'taken', port: 7420 }));
    assert.is(busy.code, 'ERR_LISTEN');
    assert.match(busy.message, /EADDRINUSE/);
    // the live listener still answers
    const channel = await dial({ identity: Identity.generate(), networkKey, transport, host: 'taken', port: 7420 });
    assert.is(channel.remote.id, identity.id);
    channel.destroy();

    const foreign = unixSocketPath(dir, 'file', 7420);
    assert.ok('path' in foreign);
    writeFileSync(foreign.path, 'not a socket');
    assert.match((await rejection(listen({ identity, networkKey, transport, host: 'file', port: 7420 }))).message, /EADDRINUSE/);
    assert.ok(existsSync(foreign.path), 'a file that is not a socket is never removed');

    // A process killed while listening leaves its socket file behind.
    const stale = unixSocketPath(dir, 'stale', 7420);
    assert.ok('path' in stale);
    const child = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(stale.path)}, () => process.kill(process.pid, 'SIGKILL'))`], { stdio: 'ignore' });
    await deadline(new Promise((resolve) => child.once('exit', resolve)), 'the child to die');
    assert.ok(existsSync(stale.path), 'the dead child left its socket file');
    const again = await listen({ identity, networkKey, transport, host: 'stale', port: 7420 });
    listeners.push(again);
    const c2 = await dial({ identity: Identity.generate(), networkKey, transport, host: 'stale', port: 7420 });
    assert.is(c2.remote.id, identity.id);
    c2.destroy();
  } finally {
    await Promise.all(listeners.map((l) => l.close()));
    done();
  }
});

test('Unix transport: a socket path too long for the kernel is refused, not silently cut', async () => {
  const { dir, done } = socketDir();
  const deep = join(dir, 'd'.repeat(Math.max(1, MAX_UNIX_SOCKET_PATH_BYTES - dir.length - 12)));
  const transport = unixSocketTransport({ directory: deep });
  try {
    const fits = unixSocketPath(deep, 'a', 1);
    assert.ok('path' in fits && Buffer.byteLength(fits.path) <= MAX_UNIX_SOCKET_PATH_BYTES, 'the short name fits');
    assert.ok('error' in unixSocketPath(deep, 'a-much-longer-name', 7420));
    const error = await rejection(listen({ identity: Identity.generate(), networkKey, transport, host: 'a-much-longer-name', port: 7420 }));
    assert.is(error.code, 'ERR_LISTEN');
    assert.is((await rejection(transport.connect('a-much-longer-name', 7420, new AbortController().signal))).code, 'ERR_CONNECT');
    assert.equal(readdirSync(dir), [], 'no file was created anywhere');
  } finally {
    done();
  }
});

test('Unix transport: close() during a bind calls back only once the socket file is gone', async () => {
  const { dir, done } = socketDir();
  try {
    const server = unixSocketTransport({ directory: dir }).createServer(() => {});
    const heard: string[] = [];
    server.on('listening', () => heard.push('listening'));
    server.on('error', (e) => heard.push(`error ${e.message}`));
    server.listen(0, 'gone');
    await deadline(new Promise<void>((resolve) => server.close(() => resolve())), 'close');
    assert.equal(readdirSync(dir), [], 'no socket file outlives close()');
    assert.equal(heard, [], 'a server closed while binding reports neither listening nor an error');
    assert.is(server.address(), null);
  } finally {
    done();
  }
});

test.run();
