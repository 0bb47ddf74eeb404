// simple-scuttle's README program against signet, over real loopback TCP through the Node.
//
//   simple-scuttle                                   signet
//   new Gossip(id, { resolve, max_history, mtu })    node.dataset('scores', Model, { resolve, policy })
//                                                    node.dataset('log', Events, { maxHistory })
//   config.resolve(gossip, update) -> Boolean        resolve(current, incoming) -> the winner (a pure,
//                                                    deterministic rule; checkResolve() tests one)
//   gossip.set(key, value)                           model.set(key, value)
//   gossip.get(key) -> { version, value }            model.versions(key).at(-1) -> { version, value, ... }
//   a.pipe(b).pipe(a); a.gossip()                    seeds; the Node replicates every gossip interval
//   history 'update' event                           model.on('update', (update) => ...)
//   history 'compaction' (past max_history)          events.on('compaction', (removed) => ...)
//
// What signet adds: the rule runs identically on every node and a rule that is not
// deterministic is caught (ResolveError), updates are signed and verified before the rule ever
// lets one win, and the history bound is shared fairly, so one source cannot evict the others.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Events, Identity, Model, ResolveError, checkResolve, lastWriterWins, open, type ResolveFn, type Update } from '../../src/index.ts';
import { Prng, testSeed } from '../helpers/prng.ts';
import { Cluster, until } from '../mesh/cluster.ts';

/** A max-register: the highest score wins whoever wrote it and whenever; ties by last-writer-wins. */
const highest: ResolveFn = (current, incoming) => {
  const a = current.value as number;
  const b = incoming.value as number;
  if (a !== b) return b > a ? incoming : current;
  return lastWriterWins(current, incoming);
};

test('simple-scuttle: a custom resolve rule gives the same winner on every node whatever the arrival order', async () => {
  const rng = new Prng(testSeed());
  const cluster = new Cluster();
  try {
    // Three nodes each write scores for ten keys (interleaved in a random order), then the other two
    // join through the first, so every node sees the others' writes in a different order.
    const scores = [0, 1, 2].map(() => Array.from({ length: 10 }, () => rng.int(1000)));
    const order = [0, 1, 2].flatMap((n) => Array.from({ length: 10 }, (_, k) => [n, k] as const));
    for (let i = order.length - 1; i > 0; i--) {
      const j = rng.int(i + 1);
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    const nodes = [cluster.node()];
    const models = [nodes[0]!.dataset('scores', Model, { policy: open(), resolve: highest })];
    const updates: number[] = [];
    models[0]!.on('update', () => void updates.push(1)); // history 'update'
    await nodes[0]!.start();
    for (let n = 1; n < 3; n++) {
      nodes.push(cluster.node({ seeds: [nodes[0]!.address()!] }));
      models.push(nodes[n]!.dataset('scores', Model, { policy: open(), resolve: highest }));
    }
    for (const [n, k] of order) models[n]!.set(`k${k}`, scores[n]![k]!);
    await Promise.all(nodes.slice(1).map((g) => g.start()));
    const best = Array.from({ length: 10 }, (_, k) => Math.max(scores[0]![k]!, scores[1]![k]!, scores[2]![k]!));
    await until('every node holds the highest score of every key', () => models.every((m) => best.every((s, k) => m.get(`k${k}`) === s)), models.map((m) => [m, ['update']]));
    // A later, lower score loses on every node, the writer's included.
    const low = (best[0] ?? 0) - 1;
    models[2]!.set('k0', low);
    assert.is(models[2]!.get('k0'), best[0], 'the writer keeps the higher score');
    models[2]!.set('k0', best[0]! + 5);
    await until('a higher score wins everywhere', () => models.every((m) => m.get('k0') === best[0]! + 5), models.map((m) => [m, ['update']]));
    // gossip.get(key) -> { version, value }
    const top = models[1]!.versions('k0').at(-1)!;
    assert.is(top.value, best[0]! + 5);
    assert.type(top.version, 'number');
    assert.is(top.source, nodes[2]!.id);
    assert.is(models[0]!.stateHash, models[1]!.stateHash);
    assert.is(models[1]!.stateHash, models[2]!.stateHash);
    assert.ok(updates.length > 0, "history 'update' events");
    // The rule passes the contract check on real versions; a rule that is not deterministic fails it.
    checkResolve(highest, models[0]!.versions('k0').concat(models[0]!.versions('k1')));
    // "First come, first kept": the winner would depend on arrival order, so replicas diverge.
    const moody: ResolveFn = (current) => current;
    const records = [models[0]!.versions('k0')[0]!, models[0]!.versions('k1')[0]!];
    assert.throws(() => checkResolve(moody, records), (e: unknown) => e instanceof ResolveError);
    // A Model asks every decision both ways round: a local write under such a rule throws.
    const stubborn = new Model({ identity: Identity.generate(), resolve: moody });
    stubborn.set('k', 1);
    assert.throws(() => stubborn.set('k', 2), (e: unknown) => e instanceof ResolveError && /not deterministic and symmetric/.test((e as Error).message));
  } finally {
    await cluster.stopAll();
  }
});

test('simple-scuttle: max_history with compaction (Events maxHistory), replicated to a late joiner', async () => {
  const cluster = new Cluster();
  try {
    const a = cluster.node();
    const log = a.dataset('log', Events, { policy: open(), maxHistory: 5 });
    const compacted: Update[] = [];
    log.on('compaction', (removed) => compacted.push(...removed));
    for (let i = 0; i < 8; i++) log.emit('entry', i);
    assert.is(compacted.length, 3, 'past max_history the oldest three were compacted away');
    await a.start();
    const b = cluster.node({ seeds: [a.address()!] });
    const late = b.dataset('log', Events, { policy: open(), maxHistory: 5 });
    const heard: number[] = [];
    late.on('entry', (data: number) => heard.push(data));
    await b.start();
    await until('the late joiner replays the history kept', () => heard.length === 5, [[late, ['update']]]);
    assert.equal(heard, [3, 4, 5, 6, 7]);
  } finally {
    await cluster.stopAll();
  }
});

test.run();
