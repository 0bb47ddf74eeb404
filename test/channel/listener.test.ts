// listen() and dial() over real TCP on 127.0.0.1: a listener wired as README shows keeps serving
// an honest peer through probes, resets and a killed peer, and nothing escapes as an unhandled
// rejection or 'error'; dial() rejects with a code.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, type ChildProcess } from 'node:child_process';
import type { EventEmitter } from 'node:events';
import { connect as tcpConnect, createServer, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import {
  dial, generateNetworkKey, HandshakeLimiter, Identity, listen, Model, secureChannel,
  type Disconnect, type Refusal, type SecureChannel, type SecureListener,
} from '../../src/index.ts';
import { Prng, testSeed } from '../helpers/prng.ts';

const faults: unknown[] = [];
process.on('unhandledRejection', (error) => faults.push(error));
process.on('uncaughtException', (error) => faults.push(error));
const noFaults = (): void => assert.equal(faults.map(String), [], 'unhandled rejection or uncaught exception');

/** Small enough to keep silent refusals quick, large enough for an honest handshake under load. */
const LIMITS = { handshakeTimeoutMs: 1_000 };
/** Safety net for every wait: an event that never comes fails the test instead of hanging it. */
const WAIT_MS = 15_000;
const seed = testSeed();
const DIALER = fileURLToPath(new URL('./fixtures/dialer.ts', import.meta.url));

/** Resolves with the first `event` whose arguments satisfy `match`. */
function until<T extends unknown[]>(emitter: EventEmitter, event: string, match: (...args: T) => boolean = () => true): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      emitter.off(event, on);
      reject(new Error(`no '${event}' within ${WAIT_MS} ms`));
    }, WAIT_MS);
    const on = (...args: unknown[]): void => {
      if (!match(...(args as T))) return;
      clearTimeout(timer);
      emitter.off(event, on);
      resolve(args as T);
    };
    emitter.on(event, on);
  });
}

/** The listener exactly as README's example writes it. */
function serve(model: Model, networkKey: Uint8Array, extra: { limiter?: HandshakeLimiter } = {}): Promise<SecureListener> {
  return listen({
    identity: model.identity, networkKey, host: '127.0.0.1', limits: LIMITS, ...extra,
    onConnection(channel) {
      const stream = model.createStream({ expectedPeer: channel.remote.id });
      stream.pipe(channel).pipe(stream);
      channel.on('close', () => stream.destroy()); // a dead peer's stream goes with its channel
      stream.on('cut', () => channel.destroy()); // a peer that breaks the protocol loses its channel
    },
  });
}

/** The dialer exactly as README's example writes it; resolves once in sync. */
async function join(model: Model, networkKey: Uint8Array, port: number, expectedPeer: string): Promise<SecureChannel> {
  const channel = await dial({ identity: model.identity, networkKey, host: '127.0.0.1', port, expectedPeer, limits: LIMITS });
  const stream = model.createStream({ expectedPeer: channel.remote.id });
  stream.pipe(channel).pipe(stream);
  channel.on('close', () => stream.destroy());
  stream.on('cut', () => channel.destroy());
  await until(stream, 'sync');
  return channel;
}

/** Opens a raw TCP connection, sends `bytes`, and resolves with how many bytes came back before the listener closed it. */
async function probe(port: number, bytes: Uint8Array, sockets: Socket[]): Promise<number> {
  const socket = tcpConnect(port, '127.0.0.1');
  sockets.push(socket);
  socket.on('error', () => {});
  let received = 0;
  socket.on('data', (chunk: Buffer) => (received += chunk.length));
  await until(socket, 'connect');
  socket.write(bytes);
  await until(socket, 'close');
  return received;
}

test('a listener written as README shows keeps serving an honest peer through probes, resets and a killed peer', async () => {
  const networkKey = generateNetworkKey();
  const alice = new Model({ identity: Identity.generate(), dataset: 'listener-test' });
  const bob = new Model({ identity: Identity.generate(), dataset: 'listener-test' });
  const carol = Identity.generate();
  const dave = new Model({ identity: Identity.generate(), dataset: 'listener-test' });
  const prng = new Prng(seed);
  const sockets: Socket[] = [];
  const refusals: Refusal[] = [];
  const disconnects: Disconnect[] = [];
  let listener: SecureListener | undefined;
  let child: ChildProcess | undefined;
  let bobChannel: SecureChannel | undefined;
  try {
    alice.set('greeting', 'hello');
    listener = await serve(alice, networkKey);
    listener.on('refused', (r) => refusals.push(r));
    listener.on('disconnect', (d) => disconnects.push(d));
    const { port } = listener.address();

    bobChannel = await join(bob, networkKey, port, alice.id);
    assert.is(bob.get('greeting'), 'hello');

    // Five connections that never become channels, all at once.
    const fiveRefused = until(listener, 'refused', () => refusals.length >= 5);
    const wrongKey = dial({ identity: carol, networkKey: generateNetworkKey(), host: '127.0.0.1', port, limits: { handshakeTimeoutMs: 300 } })
      .then(() => 'connected', (e: { code?: string }) => e.code);
    const http = probe(port, Buffer.from('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'), sockets);
    const tls = probe(port, Buffer.concat([Buffer.from('16030100c4010000c00303', 'hex'), prng.bytes(64)]), sockets);
    const random = probe(port, prng.bytes(300), sockets);
    const resetMidHandshake = (async () => {
      const socket = tcpConnect(port, '127.0.0.1');
      sockets.push(socket);
      socket.on('error', () => {});
      await until(socket, 'connect');
      socket.write(Buffer.concat([Buffer.from([0x00, 0x30]), prng.bytes(10)])); // half of a message 1
      socket.resetAndDestroy();
      await until(socket, 'close');
    })();
    assert.is(await wrongKey, 'ERR_TIMEOUT', 'a wrong network key hears nothing until its deadline');
    assert.equal(await Promise.all([http, tls, random]), [0, 0, 0], 'a listener answers nothing to a probe');
    await resetMidHandshake;
    await fiveRefused;
    assert.is(refusals.length, 5);
    for (const r of refusals) assert.is(r.code, 'ERR_HANDSHAKE', `refusal: ${r.error.message}`);

    // A reset after a completed handshake.
    const raw = tcpConnect(port, '127.0.0.1');
    sockets.push(raw);
    raw.on('error', () => {});
    await until(raw, 'connect');
    const accepted = until<[SecureChannel]>(listener, 'connection', (c) => c.remote.id === carol.id);
    const carolChannel = await secureChannel(raw, { identity: carol, networkKey, initiator: true, limits: LIMITS });
    carolChannel.on('error', () => {});
    const [carolAtAlice] = await accepted;
    const carolGone = until<[Disconnect]>(listener, 'disconnect', (d) => d.channel === carolAtAlice);
    raw.resetAndDestroy();
    const [carolDisconnect] = await carolGone;
    assert.ok(['ECONNRESET', 'ERR_TRUNCATED'].includes(carolDisconnect.code!), `reset reported as ${carolDisconnect.code}`);

    // A peer process killed mid-session (SIGKILL: no close frame, no FIN from the process itself).
    const fromChild = until(alice, 'change:from-child');
    child = spawn(process.execPath, ['--import', 'tsx', DIALER, String(port)], {
      env: { ...process.env, SIGNET_TEST_NETWORK_KEY: Buffer.from(networkKey).toString('hex') },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d));
    await until(child.stdout!, 'data', () => out.includes('\n'));
    const childId = /^synced (\S+)/.exec(out)?.[1];
    assert.ok(childId, `child said ${JSON.stringify(out)}`);
    await fromChild; // its 'sync' means it sent everything; alice applies after verifying
    assert.is(alice.get('from-child'), childId, 'the child replicated to alice');
    const childGone = until<[Disconnect]>(listener, 'disconnect', (d) => d.channel.remote.id === childId);
    child.kill('SIGKILL');
    const [childDisconnect] = await childGone;
    assert.ok(['ERR_TRUNCATED', 'ECONNRESET'].includes(childDisconnect.code!), `killed peer reported as ${childDisconnect.code}`);
    assert.instance(childDisconnect.error, Error);

    // Bob never noticed, and a fresh honest peer still gets in.
    assert.is(bobChannel.destroyed, false);
    const live = until(bob, 'change:after');
    alice.set('after', 'the attacks');
    await live;
    assert.is(bob.get('after'), 'the attacks');
    const daveChannel = await join(dave, networkKey, port, alice.id);
    assert.is(dave.get('after'), 'the attacks');
    assert.is(dave.get('from-child'), childId);
    daveChannel.destroy();
    assert.is(refusals.length, 5, 'nothing else was refused');
    noFaults();
  } catch (error) {
    console.error(`SIGNET_SEED=${seed}`);
    throw error;
  } finally {
    child?.kill('SIGKILL');
    for (const s of sockets) s.destroy();
    bobChannel?.destroy();
    await listener?.close({ timeoutMs: 0 });
    for (const m of [alice, bob, dave]) m.dispose();
  }
});

test('close() ends open channels with the authenticated close frame: the peer sees a clean close', async () => {
  const networkKey = generateNetworkKey();
  const alice = new Model({ identity: Identity.generate(), dataset: 'listener-test' });
  const bob = new Model({ identity: Identity.generate(), dataset: 'listener-test' });
  const listener = await serve(alice, networkKey);
  let channel: SecureChannel | undefined;
  try {
    const disconnected = until<[Disconnect]>(listener, 'disconnect');
    channel = await join(bob, networkKey, listener.address().port, alice.id);
    const bobClosed = until(channel, 'close');
    const closing = listener.close();
    assert.is(listener.close(), closing, 'idempotent: the same promise');
    await closing;
    await bobClosed;
    assert.is(channel.errored, null, 'the dialer saw the close frame, not a truncation');
    const [d] = await disconnected;
    assert.is(d.code, null);
    assert.is(listener.connections, 0);
    noFaults();
  } finally {
    channel?.destroy();
    await listener.close();
    alice.dispose();
    bob.dispose();
  }
});

test('past the limiter a connection is refused unread (ERR_HANDSHAKE_LIMIT); close() aborts handshakes in progress (ERR_ABORTED)', async () => {
  const networkKey = generateNetworkKey();
  const alice = new Model({ identity: Identity.generate(), dataset: 'listener-test' });
  const listener = await serve(alice, networkKey, { limiter: new HandshakeLimiter({ perAddress: 1 }) });
  const refusals: Refusal[] = [];
  listener.on('refused', (r) => refusals.push(r));
  const sockets: Socket[] = [];
  try {
    const { port } = listener.address();
    const first = tcpConnect(port, '127.0.0.1');
    const second = tcpConnect(port, '127.0.0.1');
    sockets.push(first, second);
    for (const s of sockets) s.on('error', () => {});
    await until(first, 'connect');
    const limited = until<[Refusal]>(listener, 'refused');
    await until(second, 'connect');
    const [refusal] = await limited;
    assert.is(refusal.code, 'ERR_HANDSHAKE_LIMIT');
    assert.is(refusal.address, '127.0.0.1');
    await until(second, 'close');
    const aborted = until<[Refusal]>(listener, 'refused');
    await listener.close();
    assert.is((await aborted)[0].code, 'ERR_ABORTED');
    assert.is(refusals.length, 2);
    noFaults();
  } finally {
    for (const s of sockets) s.destroy();
    await listener.close();
    alice.dispose();
  }
});

test('listen() rejects with a code: a port in use (ERR_LISTEN, cause EADDRINUSE), an aborted signal (ERR_ABORTED); a later abort closes it', async () => {
  const identity = Identity.generate();
  const networkKey = generateNetworkKey();
  const first = await listen({ identity, networkKey, host: '127.0.0.1' });
  try {
    const port = first.address().port;
    const inUse = await listen({ identity, networkKey, host: '127.0.0.1', port }).catch((e: unknown) => e);
    assert.is((inUse as { code?: string }).code, 'ERR_LISTEN');
    assert.is(((inUse as Error).cause as { code?: string }).code, 'EADDRINUSE');
    const aborted = await listen({ identity, networkKey, signal: AbortSignal.abort() }).catch((e: unknown) => e);
    assert.is((aborted as { code?: string }).code, 'ERR_ABORTED');
    const controller = new AbortController();
    const stoppable = await listen({ identity, networkKey, host: '127.0.0.1', signal: controller.signal });
    const stopped = until(stoppable, 'close');
    controller.abort();
    await stopped; // aborting after listen() resolved closes the listener
    const shortKey = await listen({ identity, networkKey: new Uint8Array(31) }).catch((e: unknown) => e);
    assert.ok(shortKey instanceof RangeError && /"networkKey"/.test(shortKey.message));
    const badPort = await listen({ identity, networkKey, port: 70000 }).catch((e: unknown) => e);
    assert.ok(badPort instanceof RangeError && /"port"/.test(badPort.message));
    noFaults();
  } finally {
    await first.close();
  }
});

test('dial() rejects with a code: a closed port (ERR_CONNECT, cause ECONNREFUSED), an aborted signal, a silent listener past the deadline', async () => {
  const identity = Identity.generate();
  const networkKey = generateNetworkKey();
  // A port that was just free: nothing listens on it any more.
  const gone = createServer().listen(0, '127.0.0.1');
  await until(gone, 'listening');
  const closedPort = (gone.address() as { port: number }).port;
  gone.close();
  await until(gone, 'close');
  const refused = await dial({ identity, networkKey, host: '127.0.0.1', port: closedPort }).catch((e: unknown) => e);
  assert.is((refused as { code?: string }).code, 'ERR_CONNECT');
  assert.is(((refused as Error).cause as { code?: string }).code, 'ECONNREFUSED');

  const early = await dial({ identity, networkKey, host: '127.0.0.1', port: closedPort, signal: AbortSignal.abort() }).catch((e: unknown) => e);
  assert.is((early as { code?: string }).code, 'ERR_ABORTED');

  // A TCP server that accepts and says nothing: abort once it has the connection, then let the deadline pass.
  const accepted: Socket[] = [];
  const silent = createServer((s) => {
    accepted.push(s);
    s.on('error', () => {});
    s.resume(); // reads (and drops) everything, so it sees the dialer's FIN
  }).listen(0, '127.0.0.1');
  try {
    await until(silent, 'listening');
    const port = (silent.address() as { port: number }).port;
    const controller = new AbortController();
    silent.once('connection', () => controller.abort());
    const aborted = await dial({ identity, networkKey, host: '127.0.0.1', port, signal: controller.signal }).catch((e: unknown) => e);
    assert.is((aborted as { code?: string }).code, 'ERR_ABORTED');
    if (!accepted[0]!.closed) await until(accepted[0]!, 'close'); // the dialer destroyed its socket

    const late = await dial({ identity, networkKey, host: '127.0.0.1', port, signal: new AbortController().signal, limits: { handshakeTimeoutMs: 100 } })
      .catch((e: unknown) => e);
    assert.is((late as { code?: string }).code, 'ERR_TIMEOUT');
    if (!accepted[1]!.closed) await until(accepted[1]!, 'close');
    const badPort = await dial({ identity, networkKey, host: '127.0.0.1', port: 0 }).catch((e: unknown) => e);
    assert.ok(badPort instanceof RangeError && /"port"/.test(badPort.message));
    noFaults();
  } finally {
    for (const s of accepted) s.destroy();
    silent.close();
  }
});

test.run();
