// Two real `signet node` daemons on loopback with a shared network key, driven by the real
// control commands: set on one and get on the other, watch, status, peers, members, keys, del,
// /metrics, the data directory lock, and a SIGTERM stop and restart with the data intact.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { MAX_CONTROL_LINE_BYTES } from '../../src/cli/control-protocol.ts';
import { deadline } from '../helpers/streams.ts';
import { COMMAND_MS, Scratch, jsonLines, type Daemon } from './daemons.ts';

const scratch = new Scratch();
let a: Daemon;
let b: Daemon;
test.before(async () => {
  a = await scratch.daemon(['--dataset', 'kv', '--metrics', '127.0.0.1:0']);
  b = await scratch.daemon(['--dataset', 'kv', '--seed', `${a.started['address'] as string}#${a.id}`]);
  await a.logged((e) => e['event'] === 'peer:up' && e['peer'] === b.id, "A's peer:up for B");
});
test.after(() => scratch.cleanup());

const signet = (...args: string[]) => scratch.run(args);
const json = async (...args: string[]): Promise<Record<string, unknown>> => {
  const r = await signet(...args, '--json');
  assert.is(r.code, 0, `signet ${args.join(' ')}: ${r.err}`);
  return JSON.parse(r.out) as Record<string, unknown>;
};

test("status --json: the node's id, listen address, data directory, datasets with clock size and state hash, peers, counters", async () => {
  const s = await json('status', '--data', a.data);
  assert.is(s['id'], a.id);
  assert.is(s['listen'], a.started['address']);
  assert.is(s['dataDir'], a.started['data']);
  assert.is(s['store'], 'lmdb');
  assert.is(s['network'], 'private');
  assert.is(s['metrics'], a.started['metrics']);
  const kv = (s['datasets'] as Array<Record<string, unknown>>).find((d) => d['name'] === 'kv')!;
  assert.ok(kv, 'the kv dataset is listed');
  for (const field of ['clockSize', 'stateHash', 'keys', 'applied', 'rejected', 'equivocations', 'policy']) assert.ok(field in kv, field);
  assert.match(kv['stateHash'] as string, /^[0-9a-f]{64}$/);
  assert.is(kv['policy'], 'open');
  assert.ok((s['datasets'] as Array<Record<string, unknown>>).some((d) => d['name'] === 'signet:members' && d['system'] === true));
  const peers = s['peers'] as Record<string, number>;
  assert.is(peers['live'], 1);
  assert.is(peers['banned'], 0);
  assert.equal(Object.keys(peers).sort(), ['banned', 'dead', 'live']);
  const updates = s['updates'] as Record<string, unknown>;
  assert.type(updates['applied'], 'number');
  assert.equal(updates['rejected'], {});
  assert.is(updates['equivocations'], 0);
  // the text form says the same things for people
  const text = await signet('status', '--data', a.data);
  assert.is(text.code, 0, text.err);
  assert.match(text.out, a.id);
  assert.match(text.out, /1 live, 0 dead, 0 banned/);
  assert.match(text.out, kv['stateHash'] as string);
});

test('set on one daemon, get on the other; watch on the other sees the remote change as it is stored', async () => {
  const watcher = scratch.spawn(['watch', 'greet', '--data', b.data, '--json']);
  const exited = new Promise<number | null>((resolve) => watcher.once('exit', (code) => resolve(code)));
  const changes: Array<Record<string, unknown>> = [];
  const lines = createInterface({ input: watcher.stdout! });
  const seen = new Promise<void>((resolve) => lines.on('line', (line) => {
    changes.push(JSON.parse(line) as Record<string, unknown>);
    if (changes.some((c) => c['key'] === 'greeting')) resolve();
  }));
  // The watch is in place once it says so on stderr (a JSON line, with --json).
  const watching = new Promise<Record<string, unknown>>((resolve) => createInterface({ input: watcher.stderr! }).once('line', (l) => resolve(JSON.parse(l) as Record<string, unknown>)));
  assert.equal(await deadline(watching, 'the watch to start', COMMAND_MS), { watching: { dataset: 'kv', prefix: 'greet' } });

  const set = await json('set', 'greeting', 'hello world', '--data', a.data);
  assert.is(set['source'], a.id);
  assert.is(set['key'], 'greeting');
  assert.is((await signet('set', 'other', '1', '--data', a.data)).code, 0); // outside the prefix
  await deadline(seen, "the watch to print A's change", COMMAND_MS);
  assert.equal(changes.find((c) => c['key'] === 'greeting'), { dataset: 'kv', op: 'set', key: 'greeting', value: 'hello world', source: a.id, version: set['version'] });
  assert.not.ok(changes.some((c) => c['key'] === 'other'), 'keys outside the prefix are not shown');

  const got = await signet('get', 'greeting', '--data', b.data);
  assert.is(got.code, 0, got.err);
  assert.is(got.out, 'hello world\n');
  const gotJson = await json('get', 'greeting', '--data', b.data);
  assert.is(gotJson['source'], a.id);
  assert.is(gotJson['value'], 'hello world');
  assert.is(gotJson['expires'], null);

  watcher.kill('SIGINT');
  assert.is(await deadline(exited, 'watch to exit on SIGINT', COMMAND_MS), 0, 'Ctrl-C ends a watch with exit 0');
});

test('values: JSON if it parses, else a string (--string keeps it one); --ttl sets an expiry; text output quotes control characters', async () => {
  assert.is((await signet('set', 'n', '42', '--data', a.data)).code, 0);
  assert.is((await signet('set', 's', '42', '--string', '--data', a.data)).code, 0);
  assert.is((await signet('set', 'o', '{"a":[1,true,null]}', '--data', a.data)).code, 0);
  assert.is((await signet('set', 'lines', 'one\ntwo\u001b[31m', '--ttl', '1h', '--data', a.data)).code, 0);
  assert.is((await json('get', 'n', '--data', a.data))['value'], 42);
  assert.is((await json('get', 's', '--data', a.data))['value'], '42');
  assert.equal((await json('get', 'o', '--data', a.data))['value'], { a: [1, true, null] });
  const lines = await json('get', 'lines', '--data', a.data);
  assert.type(lines['expires'], 'string');
  const expires = Date.parse(lines['expires'] as string) - Date.parse(lines['time'] as string);
  assert.is(expires, 3_600_000);
  const text = await signet('get', 'lines', '--data', a.data);
  assert.is(text.out, '"one\\ntwo\\u001b[31m"\n', 'no raw escape reaches the terminal');
  assert.is((await signet('get', 'o', '--data', a.data)).out, '{"a":[1,true,null]}\n');
});

test('keys lists live keys (with a prefix), del removes one with a tombstone that replicates', async () => {
  assert.is((await signet('set', 'cfg/a', '1', '--data', a.data)).code, 0);
  assert.is((await signet('set', 'cfg/b', '2', '--data', a.data)).code, 0);
  const k = await signet('keys', 'cfg/', '--data', a.data);
  assert.is(k.code, 0, k.err);
  assert.is(k.out, 'cfg/a\ncfg/b\n');
  const del = await json('del', 'cfg/a', '--data', a.data);
  assert.is(del['existed'], true);
  assert.equal((await json('keys', 'cfg/', '--data', a.data))['keys'], ['cfg/b']);
  const missing = await signet('get', 'cfg/a', '--data', a.data);
  assert.is(missing.code, 1);
  assert.match(missing.err, /no key "cfg\/a"/);
  // the two daemons reach the same state: equal state hashes (polled with a deadline)
  const hash = async (d: Daemon) => ((await json('status', '--data', d.data))['datasets'] as Array<Record<string, unknown>>).find((x) => x['name'] === 'kv')!['stateHash'];
  const until = Date.now() + COMMAND_MS;
  let same = false;
  while (!same && Date.now() < until) same = (await hash(a)) === (await hash(b));
  assert.ok(same, 'A and B hold the same state');
});

test('peers --json and members --json carry each peer and member with its fields', async () => {
  const p = (await json('peers', '--data', a.data))['peers'] as Array<Record<string, unknown>>;
  const peer = p.find((x) => x['id'] === b.id)!;
  assert.ok(peer, 'B is a peer of A');
  assert.is(peer['state'], 'connected');
  assert.is(peer['direction'], 'in');
  assert.match(peer['address'] as string, /^127\.0\.0\.1:\d+$/);
  assert.type(peer['connectedForMs'], 'number');
  assert.ok((peer['datasets'] as string[]).includes('kv'), 'replicating kv');
  const m = (await json('members', '--data', b.data))['members'] as Array<Record<string, unknown>>;
  const member = m.find((x) => x['id'] === a.id)!;
  assert.ok(member, 'A is a member known to B');
  assert.is(member['state'], 'alive');
  assert.equal(member['addresses'], [a.started['address']]);
  for (const field of ['phi', 'lastSeenMsAgo', 'heartbeatIntervalMs']) assert.ok(field in member, field);
  const text = await signet('peers', '--data', a.data);
  assert.match(text.out, /^ID\s+STATE\s+DIR\s+ADDRESS/);
  assert.match(text.out, b.id);
});

test('/metrics answers Prometheus text whose counters move when updates are applied; other paths 404', async () => {
  const url = `http://${a.started['metrics'] as string}`;
  const scrape = async (): Promise<string> => {
    const res = await fetch(`${url}/metrics`);
    assert.is(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    return res.text();
  };
  const applied = (text: string): number => Number(/^signet_updates_applied_total\{dataset="kv",origin="local"\} (\d+)$/m.exec(text)?.[1] ?? NaN);
  const before = await scrape();
  for (const name of ['signet_updates_rejected_total', 'signet_equivocations_total', 'signet_peers', 'signet_members', 'signet_dataset_sources', 'signet_info', 'process_cpu_user_seconds_total']) {
    assert.match(before, `# TYPE ${name} `, name);
  }
  assert.match(before, /^signet_peers\{state="connected"\} 1$/m);
  assert.match(before, new RegExp(`^signet_info\\{id="${a.id}",version="[^"]+"\\} 1$`, 'm'));
  assert.is((await signet('set', 'counted', 'yes', '--data', a.data)).code, 0);
  const after = await scrape();
  assert.is(applied(after), applied(before) + 1, 'one more update applied');
  // Node.stats(): bytes move as the update goes to B; the handshake with B is counted.
  const bytesOut = (text: string): number => Number(/^signet_bytes_total\{direction="out"\} (\d+)$/m.exec(text)?.[1] ?? NaN);
  assert.ok(bytesOut(after) > 0, 'bytes sent counted');
  assert.match(after, /^signet_handshakes_total\{direction="(in|out)",result="ok"\} [1-9]/m);
  for (const name of ['signet_verify_queue', 'signet_reconciliations_total', 'signet_reconcile_updates_total']) assert.match(after, `# TYPE ${name} `, name);
  assert.is((await fetch(`${url}/`)).status, 404);
  assert.is((await fetch(`${url}/metrics/x`)).status, 404);
  assert.is((await fetch(`${url}/metrics`, { method: 'POST' })).status, 405);
});

test('hostile bytes on the real control socket (garbage, a line past the limit, a watcher that vanishes) leave the daemon answering', async () => {
  const path = join(a.data, 'control.sock');
  const raw = (data: string | Buffer, vanish = false) => new Promise<string>((resolve) => {
    const s = connect(path);
    let got = '';
    s.setEncoding('utf8').on('data', (d: string) => (got += d)).on('error', () => {}).on('close', () => resolve(got));
    s.on('connect', () => (vanish ? s.write(data, () => s.destroy()) : s.end(data)));
  });
  assert.match(await raw('\u0000\xff{"op":\n[]\n{"op":"status","id":1e400}\n'), '"code":"ERR_USAGE"');
  assert.match(await raw(Buffer.alloc(MAX_CONTROL_LINE_BYTES + 1, 0x61)), 'ERR_LINE_TOO_LONG');
  await raw('{"op":"watch"}\n', true);
  const s = await json('status', '--data', a.data);
  assert.is(s['id'], a.id);
});

test('a daemon joining a mesh that holds data logs its catch-up: catching-up lines at most once a second, then caught-up with the count', async () => {
  for (let i = 0; i < 3; i++) assert.is((await signet('set', `catch/${i}`, String(i), '--data', a.data)).code, 0);
  const c = await scratch.daemon(['--dataset', 'kv', '--seed', `${a.started['address'] as string}#${a.id}`]);
  const done = await c.logged((e) => e['event'] === 'caught-up' && e['dataset'] === 'kv', "C's caught-up line for kv");
  assert.is(done['peer'], a.id);
  assert.ok((done['received'] as number) >= 3, `received ${done['received']}`);
  assert.match(done['sources'] as string, /^(\d+)\/\1$/, 'every source the digest announced');
  c.child.kill('SIGTERM');
  assert.is(await c.exited, 0);
});

test('--advertise: a daemon signs the address peers should dial instead of its listen address; members elsewhere see only that', async () => {
  const c = await scratch.daemon(['--dataset', 'kv', '--advertise', '10.9.8.7:7420', '--seed', `${a.started['address'] as string}#${a.id}`]);
  assert.equal(c.started['advertise'], ['10.9.8.7:7420']);
  // B learns C only from C's signed membership record (relayed by A).
  let member: Record<string, unknown> | undefined;
  await deadline((async () => {
    while (member === undefined) {
      const m = (await json('members', '--data', b.data))['members'] as Array<Record<string, unknown>>;
      member = m.find((x) => x['id'] === c.id);
      if (member === undefined) await b.logged((e) => e['event'] === 'member:new' && e['member'] === c.id, "B's member:new for C");
    }
  })(), "B to know C's record");
  assert.equal(member!['addresses'], ['10.9.8.7:7420']);
  const bad = await signet('node', '--data', scratch.mkdir('bad-advertise'), '--keys', c.keys, '--public', '--dataset', 'kv:open', '--advertise', '127.0.0.1:0');
  assert.is(bad.code, 1, bad.err);
  assert.match(bad.err, /advertise/);
  c.child.kill('SIGTERM');
  assert.is(await c.exited, 0);
});

test('a second daemon on the same data directory is refused, naming the directory and the holder', async () => {
  const r = await scratch.run(['node', '--data', a.data, '--keys', a.keys, '--network-key', scratch.networkKeyFile, '--dataset', 'kv']);
  assert.is(r.code, 1);
  assert.match(r.err, `${a.data} is in use by process ${a.child.pid}`);
  assert.ok(existsSync(join(a.data, 'control.sock')), "the first daemon's socket is untouched");
  assert.is((await signet('get', 'greeting', '--data', a.data)).out, 'hello world\n');
});

test('SIGTERM stops a daemon cleanly (exit 0, socket removed); commands then say no node runs; a restart on the same data has the data', async () => {
  assert.is(await scratch.stop(a), 0);
  assert.ok(a.events.some((e) => e['event'] === 'stopped'));
  assert.not.ok(existsSync(join(a.data, 'control.sock')), 'the control socket is removed');
  const down = await signet('get', 'greeting', '--data', a.data);
  assert.is(down.code, 1);
  assert.is(down.out, '');
  assert.match(down.err, `no signet node is running with data directory ${a.data} (no control socket at ${join(a.data, 'control.sock')})`);

  a = await scratch.daemon(['--dataset', 'kv', '--metrics', '127.0.0.1:0'], { data: a.data, keys: a.keys, id: a.id });
  const got = await signet('get', 'greeting', '--data', a.data);
  assert.is(got.code, 0, got.err);
  assert.is(got.out, 'hello world\n');
  assert.equal(jsonLines((await signet('keys', 'cfg/', '--data', a.data, '--json')).out)[0]!['keys'], ['cfg/b'], 'the delete survived too');
  // its own next write is accepted by B (a version above every one it signed before the restart)
  await a.logged((e) => e['event'] === 'peer:up' && e['peer'] === b.id, 'A and B reconnect');
  assert.is((await signet('set', 'after', 'restart', '--data', a.data)).code, 0);
  const until = Date.now() + COMMAND_MS;
  let got2 = await signet('get', 'after', '--data', b.data);
  while (got2.code !== 0 && Date.now() < until) got2 = await signet('get', 'after', '--data', b.data);
  assert.is(got2.out, 'restart\n');
});

test.run();
