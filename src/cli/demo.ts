// signet demo: the whole mission on loopback. Real daemons started through bin/signet.js form a
// private mesh; a replica follows one; an outsider, a forger and a withholding relay try their luck.
// Each check observes real behaviour; a table sums them up; every process and file is cleaned up.
import { performance } from 'node:perf_hooks';
import { signUpdate } from '../envelope/update.ts';
import { wallClockMicros } from '../envelope/version.ts';
import { Identity } from '../identity/identity.ts';
import { generateNetworkKey, loadNetworkKey } from '../identity/key-files.ts';
import { shortId } from '../identity/node-id.ts';
import { encodeUpdates } from '../replication/messages.ts';
import { withClient } from './control-client.ts';
import { dialAsOutsider, openRawSession } from './demo-peers.ts';
import { DemoScratch, within, type Daemon, type LogLine, type Ran } from './demo-processes.ts';
import { type CliIo, parse, EXIT_OK, EXIT_FAILURE } from './io.ts';

export const demoHelp = `usage: signet demo [--json]
Runs the whole mission on 127.0.0.1 with fresh keys in a fresh temp directory, narrating each
step, then prints a summary table and removes every process and file it made:
  1. three daemons (signet node, started as child processes) form a private mesh; a value set
     on one with "signet set" is read on another with "signet get";
  2. a read-only replica of one daemon catches up and refuses a local "signet set";
  3. an outsider with the wrong network key dials a member: it gets no byte, the member logs it;
  4. a member forges another's update: rejected as bad-signature, the forger banned;
  5. a relay passes on a source's newer update but withholds an older one: the withheld update
     arrives anyway, repaired by reconciliation with an honest member.
Exit 0 if every check held, 1 otherwise. Takes about 10 s (longer on a loaded machine).
  --json   print the outcome as one JSON object (checks, pids and directories it used)

example:
  signet demo
  signet demo --json | jq '.checks[] | select(.ok | not)'`;

/** One line of the summary: what was checked, what should happen, what did. */
export interface DemoCheck {
  check: string;
  expected: string;
  observed: string;
  ok: boolean;
  /** Values the observation is made of (for --json readers and tests). */
  facts: Record<string, unknown>;
}

const DATASET = 'kv';
/** Keys the first member writes before the replica starts, so it has something to catch up on. */
const FEED_KEYS = 100;
/** The second loopback address the outsider dials from (members never ban their peers' one). */
const OUTSIDER_ADDRESS = '127.0.0.2';
/** How long the outsider waits for an answer that never comes. */
const EVE_WAITS_MS = 2000;

export async function demo(args: string[], io: CliIo): Promise<number> {
  const { values } = parse(args, { json: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h', default: false } });
  if (values.help) return io.out(demoHelp), EXIT_OK;
  const json = values.json;
  const say = (line: string): void => void (json || io.out(line));
  const began = performance.now();
  const scratch = new DemoScratch();
  const checks: DemoCheck[] = [];
  const record = (c: DemoCheck): void => {
    checks.push(c);
    say(`   ${c.ok ? 'ok' : 'FAILED'}: ${c.observed}\n`);
  };
  // A step that throws (a deadline passed, a daemon died) is a failed check, and the demo goes on.
  const step = async (check: string, expected: string, body: () => Promise<DemoCheck>): Promise<void> => {
    try {
      record(await body());
    } catch (err) {
      record({ check, expected, observed: `error: ${(err as Error).message.split('\n')[0]}`, ok: false, facts: {} });
    }
  };
  const signet = (...a: string[]): Promise<Ran> => scratch.run(a);
  const status = async (d: Daemon): Promise<{ keys: number; stateHash: string; applied: { peer: number } }> => {
    const s = await withClient(d.data, (c) => c.request({ op: 'status' })) as { datasets: Array<{ name: string; keys: number; stateHash: string; applied: { peer: number } }> };
    return s.datasets.find((x) => x.name === DATASET)!;
  };
  /** Polls `signet get key` on `d` until it answers (exit 0), with a deadline. */
  const getWhenThere = async (d: Daemon, key: string, ms = 15_000): Promise<{ value: unknown; ms: number }> => {
    const t0 = performance.now();
    for (;;) {
      const r = await signet('get', key, '--data', d.data, '--json');
      if (r.code === 0) return { value: (JSON.parse(r.out) as { value: unknown }).value, ms: Math.round(performance.now() - t0) };
      if (performance.now() - t0 > ms) throw new Error(`${d.name} has no ${key} after ${ms} ms: ${r.err.trim()}`);
    }
  };
  const peerUp = (d: Daemon, peer: Daemon): Promise<LogLine> => d.logged((l) => l['event'] === 'peer:up' && l['peer'] === peer.id, `peer:up for ${peer.name}`);

  const daemons: Record<string, Daemon> = {};
  let code = EXIT_FAILURE;
  try {
    await scratch.init();
    say(`signet demo: everything below runs on 127.0.0.1 in ${scratch.root} (removed at the end).\n`);

    // ---- 1. a private mesh of three daemons ---------------------------------------------------
    await step('mesh: set on one, get on another', 'carol reads the value alice set', async () => {
      say('1. Three daemons (signet node, each a child process with its own key and LMDB store) share a fresh network key.');
      const alice = daemons['alice'] = await scratch.daemon('alice', ['--dataset', DATASET]);
      const seed = ['--seed', `${alice.address}#${alice.id}`, '--dataset', DATASET];
      // dave stays apart for now (step 5); bob and carol join through alice.
      const [bob, carol, dave] = await Promise.all([scratch.daemon('bob', seed), scratch.daemon('carol', seed), scratch.daemon('dave', ['--dataset', DATASET])]);
      Object.assign(daemons, { bob, carol, dave });
      for (const d of [alice, bob, carol]) say(`   ${d.name.padEnd(5)} ${shortId(d.id)}… listens on ${d.address} (pid ${d.child.pid})`);
      await Promise.all([peerUp(alice, bob), peerUp(alice, carol)]);
      say('   alice logged peer:up for bob and carol (Noise XXpsk0 handshakes, node ids proven by signature).');
      const set = await signet('set', 'greeting', 'hello from alice', '--data', alice.data);
      if (set.code !== 0) throw new Error(`signet set failed: ${set.err.trim()}`);
      say('   $ signet set greeting "hello from alice" --data alice');
      const got = await getWhenThere(carol, 'greeting');
      say(`   $ signet get greeting --data carol   -> ${JSON.stringify(got.value)} (polled ${got.ms} ms)`);
      return {
        check: 'mesh: set on one, get on another', expected: '"hello from alice" on carol',
        observed: `carol read ${JSON.stringify(got.value)} after ${got.ms} ms`, ok: got.value === 'hello from alice', facts: { value: got.value, ms: got.ms },
      };
    });

    // ---- 2. a read-only replica ----------------------------------------------------------------
    await step('replica: catches up, refuses writes', `all of alice's keys; set refused as read-only`, async () => {
      const { alice } = daemons;
      if (!alice) throw new Error('no mesh');
      say(`2. alice writes ${FEED_KEYS} more keys; then a replica of alice (--replica-of ${shortId(alice.id)}…) joins.`);
      await withClient(alice.data, async (c) => {
        for (let i = 0; i < FEED_KEYS; i += 20) {
          await Promise.all(Array.from({ length: 20 }, (_, j) => c.request({ op: 'set', dataset: DATASET, key: `feed/${String(i + j).padStart(3, '0')}`, value: i + j })));
        }
      });
      const source = await status(alice);
      const replica = daemons['replica'] = await scratch.daemon('replica', ['--seed', `${alice.address}#${alice.id}`, '--dataset', DATASET, '--replica-of', alice.id]);
      let held = { keys: 0, stateHash: '', applied: { peer: 0 } };
      const until = performance.now() + 15_000;
      let shown = -1;
      // Caught up: every key, and every update counted as applied (the count follows the store's commit).
      const caughtUp = (): boolean => held.keys >= source.keys && held.applied.peer >= source.keys;
      while (!caughtUp() && performance.now() < until) {
        held = await status(replica);
        if (held.keys !== shown) say(`   replica: ${held.keys} of ${source.keys} keys`);
        shown = held.keys;
        if (!caughtUp()) await new Promise((r) => setTimeout(r, 100));
      }
      const refused = await signet('set', 'feed/000', 'overwritten', '--data', replica.data);
      const message = refused.err.trim();
      say(`   $ signet set feed/000 overwritten --data replica   -> exit ${refused.code}: ${message}`);
      const readOnly = refused.code === 1 && message.includes(`is read-only: it is a replica of ${alice.id}`);
      return {
        check: 'replica: catches up, refuses writes', expected: `${source.keys} keys, same state hash; set exits 1 "read-only"`,
        observed: `${held.keys}/${source.keys} keys (${held.applied.peer} updates received), state hash ${held.stateHash === source.stateHash ? 'equal' : 'DIFFERENT'}; set exit ${refused.code}`,
        ok: held.keys === source.keys && held.stateHash === source.stateHash && readOnly,
        facts: { sourceKeys: source.keys, replicaKeys: held.keys, received: held.applied.peer, sameStateHash: held.stateHash === source.stateHash, setExit: refused.code, message },
      };
    });

    // ---- 3. an outsider with the wrong network key ----------------------------------------------
    await step('outsider: wrong network key', 'dial fails, 0 bytes received, alice logs it', async () => {
      const { alice } = daemons;
      if (!alice) throw new Error('no mesh');
      say(`3. eve, an outsider with another network key, dials alice from ${OUTSIDER_ADDRESS}.`);
      const eve = await dialAsOutsider({ identity: Identity.generate(), networkKey: generateNetworkKey(), address: alice.address, localAddress: OUTSIDER_ADDRESS, timeoutMs: EVE_WAITS_MS });
      const logged = await alice.logged((l) => l['event'] === 'peer:banned' && l['address'] === OUTSIDER_ADDRESS, 'the refusal of eve', 5000);
      say(`   eve's dial: ${eve.outcome} after ${EVE_WAITS_MS} ms, ${eve.bytesRead} bytes from alice: no reply, no identity (her first message could not be opened).`);
      say(`   alice's log: ${JSON.stringify({ event: logged['event'], address: logged['address'], reason: logged['reason'] })}`);
      return {
        check: 'outsider: wrong network key', expected: 'dial fails, 0 bytes, alice logs the refusal',
        observed: `dial ${eve.outcome}, ${eve.bytesRead} bytes; alice: ${logged['reason'] as string}`,
        ok: eve.outcome !== 'connected' && eve.bytesRead === 0 && /handshake/.test(String(logged['reason'])),
        facts: { outcome: eve.outcome, bytesRead: eve.bytesRead, refusal: logged['reason'] },
      };
    });

    // ---- 4. a member forges another's update -----------------------------------------------------
    await step('forgery: rejected, forger banned', 'bad-signature; mallory banned; value unchanged', async () => {
      const { alice, bob } = daemons;
      if (!alice || !bob) throw new Error('no mesh');
      say("4. mallory holds the network key (a member) and sends bob an update claiming alice as its source.");
      const mallory = Identity.generate();
      const networkKey = await loadNetworkKey(scratch.networkKeyFile);
      // Signed by mallory, then alice's public key put in place of hers: the source reads as alice.
      const real = signUpdate(mallory, { dataset: DATASET, version: wallClockMicros(), body: ['set', 'greeting', 'pwned by mallory'] });
      const forged = Uint8Array.from(real.bytes);
      forged.set(alice.publicKey, Buffer.from(forged).indexOf(Buffer.from(mallory.publicKey)));
      const session = await openRawSession({ identity: mallory, networkKey, address: bob.address, dataset: DATASET });
      session.send([encodeUpdates([forged])]);
      const [rejected, banned] = await Promise.all([
        bob.logged((l) => l['event'] === 'rejected' && l['source'] === alice.id, 'the forged update rejected'),
        bob.logged((l) => l['event'] === 'peer:banned' && l['peer'] === mallory.id, 'mallory banned'),
      ]);
      await within(session.closed, 'bob to close on mallory');
      const got = await signet('get', 'greeting', '--data', bob.data, '--json');
      const value = (JSON.parse(got.out) as { value: unknown }).value;
      say(`   bob's log: ${JSON.stringify({ event: 'rejected', reason: rejected['reason'], source: shortId(alice.id) + '…', from: rejected['from'] })}`);
      say(`   bob's log: ${JSON.stringify({ event: 'peer:banned', peer: shortId(mallory.id) + '…', reason: banned['reason'] })}`);
      say(`   $ signet get greeting --data bob   -> ${JSON.stringify(value)}`);
      return {
        check: 'forgery: rejected, forger banned', expected: 'rejected bad-signature, mallory banned, greeting unchanged',
        observed: `rejected ${rejected['reason'] as string}; ${shortId(mallory.id)}… banned; greeting ${JSON.stringify(value)}`,
        ok: rejected['reason'] === 'bad-signature' && value === 'hello from alice',
        facts: { reason: rejected['reason'], banned: banned['peer'] === mallory.id, banReason: banned['reason'], value },
      };
    });

    // ---- 5. a relay that withholds -------------------------------------------------------------
    await step('withholding relay: repaired', "dave gets alice's withheld news/old anyway", async () => {
      const { alice } = daemons;
      let { dave } = daemons;
      if (!alice || !dave) throw new Error('no mesh');
      say("5. alice writes news/old, then news/new. A relay (a member) fetches alice's history and passes it to");
      say('   dave, who is not yet connected to anyone, but withholds news/old.');
      await withClient(alice.data, async (c) => {
        await c.request({ op: 'set', dataset: DATASET, key: 'news/old', value: 'first' });
        await c.request({ op: 'set', dataset: DATASET, key: 'news/new', value: 'second' });
      });
      const relay = Identity.generate();
      const networkKey = await loadNetworkKey(scratch.networkKeyFile);
      const fromAlice = await openRawSession({ identity: relay, networkKey, address: alice.address, dataset: DATASET });
      await within(fromAlice.synced, "alice's history to the relay");
      fromAlice.close();
      const keyOf = (u: { body: unknown }): unknown => (Array.isArray(u.body) ? u.body[1] : undefined);
      const passed = fromAlice.received.filter((u) => keyOf(u) !== 'news/old');
      const withheld = fromAlice.received.find((u) => keyOf(u) === 'news/old');
      if (!withheld) throw new Error("the relay did not receive news/old from alice");
      const aliceLatest = Math.max(...fromAlice.received.filter((u) => u.source === alice.id).map((u) => u.version));
      const passedLatest = Math.max(...passed.filter((u) => u.source === alice.id).map((u) => u.version));
      const toDave = await openRawSession({ identity: relay, networkKey, address: dave.address, dataset: DATASET });
      toDave.send([encodeUpdates(passed.map((u) => u.bytes))]);
      const got = await getWhenThere(dave, 'news/new');
      const before = await signet('get', 'news/old', '--data', dave.data);
      toDave.close();
      say(`   dave: news/new = ${JSON.stringify(got.value)}; news/old: ${before.code === 0 ? 'present?!' : before.err.trim()}`);
      say(`   dave holds alice's latest version (${passedLatest === aliceLatest ? 'the same as alice' : 'NOT alice\'s latest'}), so a digest shows no gap.`);
      say('   dave restarts (same data) with alice as its seed; the digests agree, reconciliation compares the sets.');
      await scratch.stop(dave);
      dave = daemons['dave'] = await scratch.daemon('dave', ['--seed', `${alice.address}#${alice.id}`, '--dataset', DATASET], dave);
      const repaired = await getWhenThere(dave, 'news/old');
      say(`   $ signet get news/old --data dave   -> ${JSON.stringify(repaired.value)} after ${repaired.ms} ms: repaired by reconciliation`);
      const ok = before.code === 1 && passedLatest === aliceLatest && repaired.value === 'first';
      return {
        check: 'withholding relay: repaired', expected: 'news/old absent behind the relay, then "first" after reconciling',
        observed: `withheld: ${before.code === 1 ? 'absent' : 'present'}; after reconnecting: ${JSON.stringify(repaired.value)} in ${repaired.ms} ms`,
        ok, facts: { withheldAbsent: before.code === 1, daveHadLatest: passedLatest === aliceLatest, value: repaired.value, ms: repaired.ms },
      };
    });

    code = checks.length === 5 && checks.every((c) => c.ok) ? EXIT_OK : EXIT_FAILURE;
  } finally {
    const dirs = [scratch.root];
    await scratch.cleanup();
    const durationMs = Math.round(performance.now() - began);
    if (json) {
      io.out(JSON.stringify({ ok: code === EXIT_OK, durationMs, checks, pids: scratch.pids, dirs }));
    } else {
      say(`\n${table(checks)}`);
      say(`\n${checks.filter((c) => c.ok).length} of ${checks.length} checks held in ${(durationMs / 1000).toFixed(1)} s; ${scratch.pids.length} processes stopped, ${scratch.root} removed.`);
    }
  }
  return code;
}

/** The summary table: check, expected, observed, ok. */
function table(checks: DemoCheck[]): string {
  const rows = [['check', 'expected', 'observed', 'ok'], ...checks.map((c) => [c.check, c.expected, c.observed, c.ok ? 'yes' : 'NO'])];
  const widths = [0, 1, 2, 3].map((i) => Math.max(...rows.map((r) => r[i]!.length)));
  const line = (r: string[]): string => r.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(rows[0]!), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.slice(1).map(line)].join('\n');
}
