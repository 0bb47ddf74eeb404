// The control commands' failures through the real binary: no node running (exit 1, the
// message), usage errors (exit 2 with the usage), the dataset choice, a replica refusing set,
// a group-writable data directory refused by the daemon and the commands, --help everywhere.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chmodSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { Identity } from '../../src/index.ts';
import { Scratch } from './daemons.ts';

const scratch = new Scratch();
test.after(() => scratch.cleanup());
const COMMANDS = ['set', 'get', 'del', 'keys', 'watch', 'peers', 'members', 'status'];

test('every control command has --help with an example (exit 0, stdout) and is listed by signet --help', async () => {
  const all = await scratch.run(['--help']);
  for (const c of [...COMMANDS, 'node']) {
    assert.match(all.out, new RegExp(`^  ${c} `, 'm'), c);
    const r = await scratch.run([c, '--help']);
    assert.is(r.code, 0, c);
    assert.match(r.out, `usage: signet ${c}`);
    assert.match(r.out, 'example:');
    assert.is(r.err, '');
  }
});

test('a control command with no node running exits 1 and says so, naming the directory and the socket', async () => {
  const data = scratch.mkdir('idle');
  const socket = join(data, 'control.sock');
  for (const args of [['get', 'k'], ['set', 'k', 'v'], ['status'], ['peers'], ['watch']]) {
    const r = await scratch.run([...args, '--data', data]);
    assert.is(r.code, 1, args.join(' '));
    assert.is(r.out, '');
    assert.match(r.err, `no signet node is running with data directory ${data} (no control socket at ${socket})`);
  }
  const j = await scratch.run(['status', '--data', join(data, 'missing'), '--json']);
  assert.is(j.code, 1);
  assert.is(JSON.parse(j.err).error.code, 'ERR_NOT_RUNNING');
});

test('usage errors exit 2 with the usage on stderr: unknown flags, missing or extra arguments, a bad --ttl', async () => {
  const data = scratch.mkdir('usage');
  const cases: string[][] = [
    ['set', 'k', 'v', '--bogus'], ['set', 'k'], ['get'], ['get', 'a', 'b'], ['del'], ['keys', 'a', 'b'], ['status', 'extra'],
    ['set', 'k', 'v', '--ttl', '5'], ['set', 'k', 'v', '--ttl', '0s'], ['set', 'k', 'v', '--ttl', 'soon'], ['peers', '--dataset', 'kv'],
  ];
  for (const args of cases) {
    const r = await scratch.run([...args, '--data', data]);
    assert.is(r.code, 2, args.join(' '));
    assert.match(r.err, `usage: signet ${args[0]}`, args.join(' '));
    assert.is(r.out, '');
  }
  const j = await scratch.run(['get', '--json', '--nope']);
  assert.is(j.code, 2);
  assert.is(JSON.parse(j.err).error.code, 'ERR_USAGE');
});

test('a group- or world-writable data directory: the daemon refuses to start and the commands refuse to connect, naming the path and the fix', async () => {
  const { keys } = await scratch.identity();
  await scratch.networkKey();
  for (const mode of [0o770, 0o707]) {
    const data = scratch.mkdir('open');
    chmodSync(data, mode);
    const r = await scratch.run(['node', '--data', data, '--keys', keys, '--network-key', scratch.networkKeyFile, '--dataset', 'kv']);
    assert.is(r.code, 1);
    assert.match(r.err, `data directory ${data} is writable by ${mode & 0o002 ? 'everyone' : 'its group'}`);
    assert.match(r.err, `chmod go-w ${data}`);
    const c = await scratch.run(['status', '--data', data, '--json']);
    assert.is(c.code, 1);
    assert.is(JSON.parse(c.err).error.code, 'ERR_DATA_DIR_PERMISSIONS');
  }
});

test('the dataset: the only one by default; with several, --dataset is required (exit 2, naming the choices) and unknown names are refused', async () => {
  const two = await scratch.daemon(['--dataset', 'alpha', '--dataset', 'beta:owner']);
  const noChoice = await scratch.run(['set', 'k', 'v', '--data', two.data]);
  assert.is(noChoice.code, 2);
  assert.match(noChoice.err, 'this node hosts 2 datasets (alpha, beta): pass --dataset NAME');
  assert.match(noChoice.err, 'usage: signet set');
  const unknown = await scratch.run(['get', 'k', '--dataset', 'gamma', '--data', two.data]);
  assert.is(unknown.code, 2);
  assert.match(unknown.err, 'this node hosts no dataset "gamma" (it hosts alpha, beta)');
  const set = await scratch.run(['set', 'k', 'v', '--dataset', 'alpha', '--data', two.data]);
  assert.is(set.code, 0, set.err);
  assert.is((await scratch.run(['get', 'k', '--dataset', 'alpha', '--data', two.data])).out, 'v\n');
  // beta's owner policy: this node writes only under its own id
  const forbidden = await scratch.run(['set', 'k', 'v', '--dataset', 'beta', '--data', two.data]);
  assert.is(forbidden.code, 1);
  assert.match(forbidden.err, /policy owner forbids/);
  const own = await scratch.run(['set', `${two.id}/k`, 'v', '--dataset', 'beta', '--data', two.data]);
  assert.is(own.code, 0, own.err);
  // a key past the model's limit is the caller's mistake: exit 2, the model's message
  const long = await scratch.run(['set', 'x'.repeat(1025), 'v', '--dataset', 'alpha', '--data', two.data]);
  assert.is(long.code, 2);
  assert.match(long.err, /"key" expected at most 1024 characters/);
});

test('a replica refuses set with the reason (only its master writes), exit 1', async () => {
  const master = Identity.generate().id;
  const replica = await scratch.daemon(['--dataset', 'feed', '--replica-of', master]);
  const r = await scratch.run(['set', 'k', 'v', '--data', replica.data]);
  assert.is(r.code, 1);
  assert.match(r.err, `signet set: dataset feed is read-only: it is a replica of ${master}, which alone writes it`);
  const j = await scratch.run(['del', 'k', '--data', replica.data, '--json']);
  assert.is(j.code, 1);
  assert.is(JSON.parse(j.err).error.code, 'ERR_WRITE');
  const s = JSON.parse((await scratch.run(['status', '--data', replica.data, '--json'])).out) as { datasets: Array<{ name: string; replicaOf: string | null }> };
  assert.is(s.datasets.find((d) => d.name === 'feed')!.replicaOf, master);
});

test('the daemon refuses bad --metrics and --dataset usage with exit 2, before touching the data directory', async () => {
  const { keys } = await scratch.identity();
  await scratch.networkKey();
  const data = join(scratch.dir, 'never-created');
  for (const extra of [['--metrics', 'nowhere'], ['--dataset', 'kv', '--dataset', 'kv'], ['--dataset', 'kv:sometimes']]) {
    const r = await scratch.run(['node', '--data', data, '--keys', keys, '--network-key', scratch.networkKeyFile, ...extra]);
    assert.is(r.code, 2, extra.join(' '));
    assert.match(r.err, 'usage: signet node');
  }
  assert.not.ok(existsSync(data));
});

test.run();
