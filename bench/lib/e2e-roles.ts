// The child processes of bench/e2e.ts: one role each (a signet Node with LmdbStore, an npm
// scuttlebutt Model over plain TCP, a hypercore over its own Noise stream, a ceiling meter),
// driven over the IPC channel by the parent; each reports its times, CPU, peak RSS and wire bytes.
import { createRequire } from 'node:module';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir, availableParallelism } from 'node:os';
import { join } from 'node:path';
import { subscribe } from 'node:diagnostics_channel';
import { createServer, connect, type Socket } from 'node:net';
import { Worker } from 'node:worker_threads';
import { Identity, LmdbStore, Model, Node, open } from '../../src/index.ts';
import { DOMAIN, domainBytes } from '../../src/identity/signature.ts';
import { privateKeyObject, signNative, verifyNative } from '../../src/identity/backend-native.ts';
import { exportSecretKey } from '../../src/identity/identity.ts';
import { sodium, sodiumModulePath } from '../../src/util/sodium.ts';
import { VALUE, keyOf, type Command } from './e2e-workload.ts';


/** Writes per turn of the event loop, so sending overlaps writing as it would in an application. */
const CHUNK = 256;

const now = (): number => performance.timeOrigin + performance.now();
const send = (message: Record<string, unknown>): void => void process.send!(message);
const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

/** TCP payload bytes of every socket this process opened or accepted. */
const sockets = new Set<Socket>();
subscribe('net.client.socket', (m) => void sockets.add((m as { socket: Socket }).socket));
subscribe('net.server.socket', (m) => void sockets.add((m as { socket: Socket }).socket));
const wireBytes = (): number => [...sockets].reduce((n, s) => n + s.bytesRead + (s.bytesWritten ?? 0), 0);

/** The sample of /proc/self/status with the highest RSS so far (every 50 ms; Linux only, else
 *  zeros): how much of the peak was anonymous memory and how much file-backed pages (the node
 *  binary, LMDB's mapped data file), which getrusage's peak does not say. */
const peak = { rssKb: 0, anonKb: 0, fileKb: 0 };
function samplePeak(): void {
  let status: string;
  try {
    status = readFileSync('/proc/self/status', 'utf8');
  } catch {
    return;
  }
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? 0);
  const rssKb = field('VmRSS');
  if (rssKb > peak.rssKb) Object.assign(peak, { rssKb, anonKb: field('RssAnon'), fileKb: field('RssFile') + field('RssShmem') });
}
setInterval(samplePeak, 50).unref();

/** What every role reports with `done`: CPU since the window began, peak RSS, bytes on the wire. */
function usage(since: { cpu: NodeJS.CpuUsage; bytes: number }): Record<string, number> {
  const cpu = process.cpuUsage(since.cpu);
  const m = process.memoryUsage();
  samplePeak();
  return {
    cpuUs: cpu.user + cpu.system, maxRssKb: process.resourceUsage().maxRSS, bytes: wireBytes() - since.bytes, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external, rss: m.rss,
    peakAnonKb: peak.anonKb, peakFileKb: peak.fileKb,
  };
}
const mark = () => ({ cpu: process.cpuUsage(), bytes: wireBytes() });
type Meter = { window: ReturnType<typeof mark> };

/** Writes keys [from, from + n) with `set`, CHUNK per turn of the event loop. */
async function writeKeys(set: (key: string, value: string) => unknown, n: number, from: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    set(keyOf(from + i), VALUE);
    if (i % CHUNK === CHUNK - 1) await turn();
  }
}

/** The parent's commands until 'stop': a write is timed and restarts the meter's window;
 *  'usage' reports CPU, RSS and wire bytes since then. */
async function commands(next: () => Promise<Command>, meter: Meter, write: (c: Extract<Command, { cmd: 'write' }>) => Promise<void>, stop: () => Promise<void>): Promise<void> {
  for (;;) {
    const c = await next();
    if (c.cmd === 'write') {
      meter.window = mark();
      const t0 = now();
      await write(c);
      send({ event: 'written', t0, ms: now() - t0, ...usage(meter.window) });
    } else if (c.cmd === 'usage') {
      send({ event: 'usage', ...usage(meter.window) });
    } else if (c.cmd === 'stop') {
      return stop();
    }
  }
}

// ---- signet ---------------------------------------------------------------------------------

async function signet(first: Extract<Command, { cmd: 'start' }>, next: () => Promise<Command>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'signet-e2e-'));
  const store = new LmdbStore(dir);
  const identity = Identity.generate();
  const node = new Node({
    identity, networkKey: Buffer.from(first.networkKey, 'base64'), listen: '127.0.0.1:0', store,
    seeds: first.seed ? [first.seed] : [],
  });
  const model = node.dataset('bench', Model, first.replicaOf ? { replicaOf: first.replicaOf } : { policy: open() });
  const meter: Meter = { window: mark() };
  let applied = 0;
  let start = now();
  let reported = false;
  model.on('update', (u) => {
    if (u.source === identity.id || reported) return;
    if (++applied === first.expect) {
      reported = true;
      send({ event: 'done', at: now(), ms: now() - start, ...usage(meter.window) });
    }
  });
  node.once('peer:up', () => send({ event: 'connected' }));
  meter.window = mark();
  start = now();
  await node.start();
  send({ event: 'ready', address: `${node.address()}#${node.id}`, id: node.id });
  await commands(next, meter, (c) => writeKeys((k, v) => model.set(k, v), c.n, c.from), async () => {
    await node.stop();
    rmSync(dir, { recursive: true, force: true });
  });
}

// ---- npm scuttlebutt (unsigned, plain TCP) ----------------------------------------------------

async function scuttlebutt(first: Extract<Command, { cmd: 'start' }>, next: () => Promise<Command>): Promise<void> {
  const NpmModel = createRequire(import.meta.url)('scuttlebutt/model');
  const model = new NpmModel();
  const meter: Meter = { window: mark() };
  let applied = 0;
  model.on('update', () => {
    if (++applied === first.expect) send({ event: 'done', at: now(), ...usage(meter.window) });
  });
  const pipe = (socket: Socket): void => {
    const stream = model.createStream();
    socket.on('error', () => {});
    stream.pipe(socket).pipe(stream);
  };
  let server: ReturnType<typeof createServer> | undefined;
  if (first.seed) {
    const [host, port] = first.seed.split(':');
    pipe(connect(Number(port), host));
    send({ event: 'ready' });
  } else {
    server = createServer(pipe);
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    send({ event: 'ready', address: `127.0.0.1:${(server.address() as { port: number }).port}` });
  }
  await commands(next, meter, (c) => writeKeys((k, v) => model.set(k, v), c.n, c.from), async () => {
    for (const s of sockets) s.destroy();
    server?.close();
  });
}

// ---- hypercore 11 (one signature per append, over its own Noise secret stream) --------------

async function hypercore(first: Extract<Command, { cmd: 'start' }>, next: () => Promise<Command>): Promise<void> {
  const Hypercore = createRequire(import.meta.url)('hypercore');
  const dir = mkdtempSync(join(tmpdir(), 'signet-e2e-hc-'));
  const core = first.key ? new Hypercore(dir, Buffer.from(first.key, 'hex')) : new Hypercore(dir);
  await core.ready();
  const meter: Meter = { window: mark() };
  const pipe = (socket: Socket, initiator: boolean): void => {
    socket.on('error', () => {});
    const stream = core.replicate(initiator);
    stream.on('error', () => {});
    socket.pipe(stream).pipe(socket);
  };
  let server: ReturnType<typeof createServer> | undefined;
  if (first.seed) {
    const [host, port] = first.seed.split(':');
    core.download({ start: 0, end: -1 });
    let reported = false;
    core.on('download', () => {
      if (!reported && core.contiguousLength >= first.expect) {
        reported = true;
        send({ event: 'done', at: now(), ...usage(meter.window) });
      }
    });
    pipe(connect(Number(port), host), true);
    send({ event: 'ready' });
  } else {
    server = createServer((s) => pipe(s, false));
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    send({ event: 'ready', address: `127.0.0.1:${(server.address() as { port: number }).port}`, key: core.key.toString('hex') });
  }
  const block = Buffer.from(keyOf(0) + VALUE);
  const append = async (c: Extract<Command, { cmd: 'write' }>): Promise<void> => {
    const per = c.blocksPerAppend ?? 1;
    const pending: Promise<unknown>[] = [];
    for (let i = 0; i < c.n; i += per) {
      pending.push(core.append(Array.from({ length: Math.min(per, c.n - i) }, () => block)));
      if (pending.length * per >= CHUNK) await Promise.all(pending.splice(0));
    }
    await Promise.all(pending);
  };
  await commands(next, meter, append, async () => {
    for (const s of sockets) s.destroy();
    server?.close();
    await core.close();
    rmSync(dir, { recursive: true, force: true });
  });
}

// ---- ceilings: what the signature primitives alone do on this machine ------------------------

/** Sync libsodium verifications of `count` copies of one signed message in a worker thread,
 *  started by the parent's 'go' once every worker has loaded. */
const SODIUM_WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const sodium = require(workerData.path);
const { sig, msg, pk, count } = workerData;
parentPort.once('message', () => {
  let ok = 0;
  for (let i = 0; i < count; i++) if (sodium.crypto_sign_verify_detached(sig, msg, pk)) ok++;
  parentPort.postMessage(ok);
});
parentPort.postMessage('ready');
`;

async function ceilings(n: number): Promise<Record<string, number>> {
  const identity = Identity.generate();
  const key = privateKeyObject(exportSecretKey(identity));
  const model = new Model({ identity, dataset: 'bench' });
  for (let i = 0; i < Math.min(n, 1000); i++) model.set(keyOf(i), VALUE);
  const samples = model.history();
  const messages = samples.map((u) => domainBytes(DOMAIN.update, u.payload));
  model.dispose();
  const out: Record<string, number> = {};

  let t = performance.now();
  for (let i = 0; i < n; i++) signNative(key, messages[i % messages.length]!);
  out.nativeSign = (n * 1000) / (performance.now() - t);

  // node:crypto verify through the libuv pool (both cores), 1024 in flight.
  t = performance.now();
  let next = 0;
  let ok = 0;
  await Promise.all(Array.from({ length: 1024 }, async () => {
    while (next < n) {
      const i = next++ % samples.length;
      if (await verifyNative(samples[i]!.signature, messages[i]!, samples[i]!.publicKey)) ok++;
    }
  }));
  if (ok !== n) throw new Error('native ceiling: a verification failed');
  out.nativeVerify = (n * 1000) / (performance.now() - t);

  const s = sodium();
  if (s !== null) {
    const secret = new Uint8Array(64);
    const pk = new Uint8Array(32);
    s.crypto_sign_seed_keypair(pk, secret, exportSecretKey(identity));
    const sig = new Uint8Array(64);
    t = performance.now();
    for (let i = 0; i < n; i++) s.crypto_sign_detached(sig, messages[i % messages.length]!, secret);
    out.sodiumSign = (n * 1000) / (performance.now() - t);
    // One worker per core, each verifying its share synchronously.
    const cores = availableParallelism();
    const share = Math.ceil(n / cores);
    const u = samples[0]!;
    const workers = Array.from({ length: cores }, () => new Worker(SODIUM_WORKER, { eval: true, workerData: { path: sodiumModulePath(), sig: u.signature, msg: messages[0], pk: u.publicKey, count: share } }));
    const reply = (w: Worker) => new Promise<unknown>((resolve, reject) => {
      w.once('message', resolve);
      w.once('error', reject);
    });
    await Promise.all(workers.map(reply));
    t = performance.now();
    const finished = workers.map(reply);
    for (const w of workers) w.postMessage('go');
    const counts = await Promise.all(finished);
    await Promise.all(workers.map((w) => w.terminate()));
    if (counts.some((c) => c !== share)) throw new Error('sodium ceiling: a verification failed');
    out.sodiumVerify = (share * cores * 1000) / (performance.now() - t);
  }
  // A local write with no peer and no store: sign + apply.
  const local = new Model({ identity, dataset: 'bench' });
  t = performance.now();
  for (let i = 0; i < n; i++) local.set(keyOf(i), VALUE);
  out.localSet = (n * 1000) / (performance.now() - t);
  local.dispose();
  return out;
}

// ---- dispatch ---------------------------------------------------------------------------------

const queue: Command[] = [];
const waiting: Array<(c: Command) => void> = [];
process.on('message', (c: Command) => {
  const w = waiting.shift();
  if (w) w(c);
  else queue.push(c);
});
const next = (): Promise<Command> => (queue.length > 0 ? Promise.resolve(queue.shift()!) : new Promise((r) => waiting.push(r)));

const role = process.argv[2];
try {
  const first = await next();
  if (role === 'ceilings' && first.cmd === 'ceilings') send({ event: 'ceilings', ...(await ceilings(first.n)) });
  else if (first.cmd !== 'start') throw new Error(`expected start, got ${first.cmd}`);
  else if (role === 'signet') await signet(first, next);
  else if (role === 'scuttlebutt') await scuttlebutt(first, next);
  else if (role === 'hypercore') await hypercore(first, next);
  else throw new Error(`unknown role ${role}`);
  process.disconnect();
} catch (err) {
  console.error(`e2e role ${role}:`, err);
  process.exit(1);
}
