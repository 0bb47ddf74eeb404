// `signet demo --json` run as a user runs it (the real binary, a child process): exit 0, every
// check ok with observed values that could have been otherwise, and nothing left behind.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { BIN } from './daemons.ts';

interface Check {
  check: string;
  ok: boolean;
  observed: string;
  facts: Record<string, unknown>;
}

/** True while a process with this pid exists (signal 0 only checks). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

test('signet demo --json: five checks hold on real daemons, and every process and directory it made is gone', () => {
  const r = spawnSync(process.execPath, [BIN, 'demo', '--json'], { encoding: 'utf8', timeout: 120_000 });
  assert.is(r.status, 0, r.stderr + r.stdout);
  const outcome = JSON.parse(r.stdout) as { ok: boolean; durationMs: number; checks: Check[]; pids: number[]; dirs: string[] };
  assert.is(outcome.ok, true);
  assert.is(outcome.checks.length, 5);
  for (const c of outcome.checks) assert.ok(c.ok, `${c.check}: ${c.observed}`);
  const [mesh, replica, outsider, forgery, relay] = outcome.checks.map((c) => c.facts) as Array<Record<string, unknown>>;

  assert.is(mesh!['value'], 'hello from alice');
  assert.is(replica!['replicaKeys'], replica!['sourceKeys']);
  assert.ok((replica!['sourceKeys'] as number) > 100, 'the feed and the greeting');
  assert.ok((replica!['received'] as number) >= (replica!['sourceKeys'] as number), 'the replica received them over the wire');
  assert.is(replica!['sameStateHash'], true);
  assert.is(replica!['setExit'], 1);
  assert.match(replica!['message'] as string, /dataset kv is read-only: it is a replica of [a-z2-7]{52}, which alone writes it/);
  assert.is.not(outsider!['outcome'], 'connected');
  assert.is(outsider!['bytesRead'], 0);
  assert.match(outsider!['refusal'] as string, /^handshake failed: ERR_HANDSHAKE$/);
  assert.is(forgery!['reason'], 'bad-signature');
  assert.is(forgery!['banned'], true);
  assert.match(forgery!['banReason'] as string, /bad-signature/);
  assert.is(forgery!['value'], 'hello from alice');
  assert.is(relay!['withheldAbsent'], true);
  assert.is(relay!['daveHadLatest'], true);
  assert.is(relay!['value'], 'first');

  assert.ok(outcome.pids.length >= 6, 'three members, a replica and dave (twice), plus commands');
  for (const pid of outcome.pids) assert.not.ok(alive(pid), `process ${pid} is gone`);
  assert.ok(outcome.dirs.length >= 1);
  for (const dir of outcome.dirs) assert.not.ok(existsSync(dir), `${dir} is removed`);
});

test('signet demo --help: the steps and an example on stdout, exit 0; an unknown flag exits 2', () => {
  const help = spawnSync(process.execPath, [BIN, 'demo', '--help'], { encoding: 'utf8', timeout: 30_000 });
  assert.is(help.status, 0);
  assert.match(help.stdout, /usage: signet demo/);
  assert.match(help.stdout, /example:\n {2}signet demo/);
  const bad = spawnSync(process.execPath, [BIN, 'demo', '--bogus'], { encoding: 'utf8', timeout: 30_000 });
  assert.is(bad.status, 2);
  assert.match(bad.stderr, /usage: signet demo/);
});

test.run();
