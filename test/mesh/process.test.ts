// Nodes in separate processes, started through the package entry point (bin/signet.js node):
// three daemons form a mesh; updates cross it between two in-process nodes that can reach each
// other only through the daemons; a daemon stopped by SIGTERM is reported dead and exits 0.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Identity, Model, Node, generateNetworkKey, saveIdentity, saveNetworkKey } from '../../src/index.ts';
import { FAST, converged, until } from './cluster.ts';
import { deadline } from '../helpers/streams.ts';

const BIN = new URL('../../bin/signet.js', import.meta.url).pathname;

interface Daemon {
  child: ChildProcess;
  id: string;
  address: string;
  events: Array<Record<string, unknown>>;
  exited: Promise<number | null>;
}

/** Starts `signet node` with its own key directory; resolves with its 'started' log line. */
async function daemon(dir: string, networkKeyFile: string, extra: string[]): Promise<Daemon> {
  const keys = mkdtempSync(join(dir, 'keys-'));
  const identity = Identity.generate();
  await saveIdentity(identity, join(keys, 'identity.key'));
  // Each daemon its own data directory (for its lock and control socket; the default ./data
  // would be shared), datasets in memory as before --data had a default.
  const data = mkdtempSync(join(dir, 'data-'));
  const child = spawn(process.execPath, [BIN, 'node', '--data', data, '--memory', '--keys', keys, '--network-key', networkKeyFile, '--listen', '127.0.0.1:0', '--dataset', 'kv:open', '--log', 'json', ...extra], { stdio: ['ignore', 'ignore', 'pipe'] });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const events: Array<Record<string, unknown>> = [];
  const started = new Promise<Record<string, unknown>>((resolve, reject) => {
    createInterface({ input: child.stderr! }).on('line', (line) => {
      let event: Record<string, unknown>;
      try {
        event = JSON.parse(line) as Record<string, unknown>;
      } catch {
        return reject(new Error(`not a JSON log line: ${line}`));
      }
      events.push(event);
      if (event['event'] === 'started') resolve(event);
    });
    void exited.then((code) => reject(new Error(`the daemon exited with ${code} before it started`)));
  });
  const line = await deadline(started, "the daemon's started line", 20_000);
  assert.is(line['id'], identity.id, 'the daemon runs the identity in its key directory');
  return { child, id: identity.id, address: line['address'] as string, events, exited };
}

test('three daemons in separate processes carry updates between two nodes that reach each other only through them', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'signet-mesh-'));
  const daemons: Daemon[] = [];
  const nodes: Node[] = [];
  try {
    const networkKey = generateNetworkKey();
    const keyFile = join(dir, 'network.key');
    await saveNetworkKey(networkKey, keyFile);
    daemons.push(await daemon(dir, keyFile, []));
    daemons.push(await daemon(dir, keyFile, ['--seed', daemons[0]!.address]));
    daemons.push(await daemon(dir, keyFile, ['--seed', `${daemons[0]!.address}#${daemons[0]!.id}`]));
    const o = new Node({ identity: Identity.generate(), networkKey, listen: '127.0.0.1:0', seeds: [daemons[1]!.address], ...FAST });
    const p = new Node({ identity: Identity.generate(), networkKey, listen: '127.0.0.1:0', seeds: [daemons[2]!.address], ...FAST });
    nodes.push(o, p);
    o.ban(p.id, 'test: only through the daemons');
    p.ban(o.id, 'test: only through the daemons');
    const mo = o.dataset('kv', Model);
    const mp = p.dataset('kv', Model);
    await Promise.all([o.start(), p.start()]);
    const ids = daemons.map((d) => d.id);
    await until('O and P know every daemon', () => [o, p].every((n) => ids.every((id) => n.members().some((m) => m.id === id))), [[o, ['member:new']], [p, ['member:new']]]);
    mo.set('from-o', 'crossed three processes');
    mp.set('from-p', 'and back');
    await converged([mo, mp], 'from-o', 'crossed three processes');
    await converged([mo, mp], 'from-p', 'and back');
    assert.not.ok(o.peers().some((x) => x.id === p.id && x.state === 'connected'));

    // SIGTERM: the daemon stops cleanly (exit 0, 'stopped' logged), and the others see it dead.
    const victim = daemons[1]!;
    const dead = until('O sees the stopped daemon dead', () => o.members().some((m) => m.id === victim.id && m.state === 'dead'), [[o, ['member:dead']]]);
    victim.child.kill('SIGTERM');
    assert.is(await deadline(victim.exited, 'the daemon to exit', 20_000), 0);
    assert.ok(victim.events.some((e) => e['event'] === 'stopped'));
    await dead;
  } finally {
    await Promise.all(nodes.map((n) => n.stop()));
    for (const d of daemons) if (d.child.exitCode === null && d.child.signalCode === null) d.child.kill('SIGKILL');
    await Promise.all(daemons.map((d) => d.exited));
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
