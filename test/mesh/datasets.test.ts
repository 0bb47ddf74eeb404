// How a Node describes its datasets to peers and pairs them: policy descriptors (open, owner,
// writers in any order, custom names that survive the OPEN's UTF-8 round trip), which pairs of
// roles replicate, and the stream options for master, replica, replica of another, ordinary.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { open, owner, writers, type WritePolicy } from '../../src/core/policy.ts';
import { Identity } from '../../src/identity/identity.ts';
import { compatible, datasetDescriptor, policyDescriptor, streamOptions } from '../../src/mesh/datasets.ts';
import { Events, Model, MAX_KEPT_VERSIONS, type ResolveFn } from '../../src/index.ts';
import { decodeMuxMessage, encodeOpen, type OpenInfo } from '../../src/mesh/mux-messages.ts';
import type { Update } from '../../src/envelope/update.ts';

/** The longest Model profile: the longest horizon, kept versions and a merge rule. */
const LONGEST_PROFILE = new Model({ identity: Identity.generate(), tombstoneHorizonMs: Math.floor(Number.MAX_SAFE_INTEGER / 1000), keepVersions: true, maxVersions: MAX_KEPT_VERSIONS, resolve: function aRuleWithAVeryLongNameIndeed(a) { return a; } }).replicationProfile;

const [A, B, C, M, N] = Array.from({ length: 5 }, () => Identity.generate().id) as [string, string, string, string, string];

const custom = (name: string | undefined): WritePolicy => {
  const fn = (() => true) as WritePolicy;
  return name === undefined ? fn : Object.assign(fn, { policyName: name });
};

/** The descriptor as a peer reads it: through encodeOpen and decodeMuxMessage. */
function overTheWire(info: OpenInfo): OpenInfo {
  const message = decodeMuxMessage(encodeOpen(1, info));
  if (typeof message === 'string' || message.type !== 'open') throw new Error(`OPEN refused by the decoder: ${String(message)}`);
  return message.info;
}

// ---- policyDescriptor ----------------------------------------------------------------------------

test('open and owner are named as such', () => {
  assert.is(policyDescriptor(open()), 'open');
  assert.is(policyDescriptor(owner()), 'owner');
});

test('writers: a digest of the ids, the same in any order and with duplicates, different for another set', () => {
  const d = policyDescriptor(writers([A, B, C]));
  assert.match(d, /^writers:[0-9a-f]{32}$/);
  assert.is(policyDescriptor(writers([C, A, B])), d);
  assert.is(policyDescriptor(writers([B, C, A, B])), d);
  assert.is.not(policyDescriptor(writers([A, B])), d);
  assert.is.not(policyDescriptor(writers([A, B, M])), d);
  assert.is.not(policyDescriptor(writers([A])), policyDescriptor(writers([B])));
  // A policy object carrying writerIds in another order (not built by writers()) is described alike.
  const handMade = Object.assign(() => true, { policyName: 'writers', writerIds: [C, B, A] }) as WritePolicy;
  assert.is(policyDescriptor(handMade), d);
});

test('custom policies are named by their name, never equal to a built-in one', () => {
  assert.is(policyDescriptor(custom('editors-only')), 'custom:editors-only');
  assert.is(policyDescriptor(custom(undefined)), 'custom:anonymous');
  assert.is(policyDescriptor(custom('writers')), 'custom:writers', 'named writers but without ids');
  assert.is.not(policyDescriptor(custom('x')), policyDescriptor(custom('y')));
  for (const name of ['x', 'writers', 'anonymous', '']) {
    assert.not.ok(['open', 'owner'].includes(policyDescriptor(custom(name))));
    assert.not.match(policyDescriptor(custom(name)), /^writers:/);
  }
});

test('a long custom name is cut to fit an OPEN, and every descriptor survives the OPEN round trip unchanged', () => {
  const long = policyDescriptor(custom('p'.repeat(10_000)));
  assert.is(long, `custom:${'p'.repeat(90)}`);
  const names = [
    'p'.repeat(10_000),
    `${'x'.repeat(89)}😀tail`, // a surrogate pair across the cut
    `${'x'.repeat(88)}😀😀`,
    'lone \uD800 high', 'lone \uDC00 low', '\uDC00\uD800', 'é'.repeat(200), '😀'.repeat(80), '',
  ];
  for (const name of names) {
    // The longest descriptor a Node sends: a custom policy cut to fit, then the longest profile.
    const info: OpenInfo = { name: 'chat', policy: datasetDescriptor(custom(name), LONGEST_PROFILE), replicaOf: null };
    const read = overTheWire(info);
    assert.is(read.policy, info.policy, `policy named ${JSON.stringify(name.slice(0, 20))}...`);
    assert.is(compatible(info, read), null, 'two nodes with the same custom policy replicate');
  }
  for (const policy of [open(), owner(), writers([A, B])]) {
    const info: OpenInfo = { name: 'chat', policy: policyDescriptor(policy), replicaOf: null };
    assert.equal(overTheWire(info), info);
  }
});

test('a pair split by the cut is dropped whole, not left as half a character', () => {
  const d = policyDescriptor(custom(`${'x'.repeat(89)}😀`));
  assert.is(d, `custom:${'x'.repeat(89)}`);
  assert.is(policyDescriptor(custom(`${'x'.repeat(88)}😀`)), `custom:${'x'.repeat(88)}😀`, 'a pair that fits stays');
});

// ---- compatible ----------------------------------------------------------------------------------

const ordinary = (policy: string): OpenInfo => ({ name: 'd', policy, replicaOf: null });
const replicaOf = (master: string, policy = policyDescriptor(writers([master]))): OpenInfo => ({ name: 'd', policy, replicaOf: master });

test('compatible: two ordinary copies need the same policy', () => {
  assert.is(compatible(ordinary('open'), ordinary('open')), null);
  assert.is(compatible(ordinary('owner'), ordinary('owner')), null);
  assert.is(compatible(ordinary('open'), ordinary('owner')), 'policy-mismatch');
  assert.is(compatible(ordinary('owner'), ordinary('open')), 'policy-mismatch');
  const w1 = policyDescriptor(writers([A, B]));
  const w2 = policyDescriptor(writers([A, C]));
  assert.is(compatible(ordinary(w1), ordinary(policyDescriptor(writers([B, A])))), null);
  assert.is(compatible(ordinary(w1), ordinary(w2)), 'policy-mismatch');
  assert.is(compatible(ordinary('custom:x'), ordinary('custom:y')), 'policy-mismatch');
});

test('compatible: replicas of one master mix, of different masters do not (either side asking)', () => {
  assert.is(compatible(replicaOf(M), replicaOf(M)), null);
  assert.is(compatible(replicaOf(M), replicaOf(N)), 'master-mismatch');
  assert.is(compatible(replicaOf(N), replicaOf(M)), 'master-mismatch');
});

test('compatible: a replica and an ordinary copy mix whatever the ordinary policy, both ways', () => {
  for (const policy of ['open', 'owner', policyDescriptor(writers([M])), policyDescriptor(writers([A])), 'custom:x']) {
    assert.is(compatible(replicaOf(M), ordinary(policy)), null, `replica vs ${policy}`);
    assert.is(compatible(ordinary(policy), replicaOf(M)), null, `${policy} vs replica`);
  }
});

test('compatible is symmetric over every pair of roles', () => {
  const roles = [ordinary('open'), ordinary('owner'), ordinary(policyDescriptor(writers([M]))), replicaOf(M), replicaOf(N)];
  for (const x of roles) for (const y of roles) assert.is(compatible(x, y) === null, compatible(y, x) === null, `${JSON.stringify(x)} / ${JSON.stringify(y)}`);
});

// ---- streamOptions -------------------------------------------------------------------------------

const fromSource = (source: string): Update => ({ source }) as Update;

test('streamOptions: the master sends to its replica and accepts nothing from it; the replica only receives', () => {
  // M hosts the dataset (ordinary, writers [M] or any policy); A follows M.
  const atMaster = streamOptions(M, A, ordinary(policyDescriptor(writers([M]))), replicaOf(M));
  assert.equal(atMaster, { writable: false, awaitClock: true });
  const atReplica = streamOptions(A, M, replicaOf(M), ordinary(policyDescriptor(writers([M]))));
  assert.equal(atReplica, { readable: false, sendClock: true });
  // The pair works: the side that waits for a clock faces one that sends it.
  assert.ok(atMaster.awaitClock && atReplica.sendClock);
  assert.ok(atMaster.writable === false && atReplica.readable === false, 'nothing flows upstream');
});

test('streamOptions: two replicas of one master pass on only the master\'s updates', () => {
  for (const [self, peer] of [[A, B], [B, A]] as const) {
    const o = streamOptions(self, peer, replicaOf(M), replicaOf(M));
    assert.equal(Object.keys(o), ['filter']);
    assert.ok(o.filter!(fromSource(M)));
    assert.not.ok(o.filter!(fromSource(self)));
    assert.not.ok(o.filter!(fromSource(peer)));
    assert.not.ok(o.filter!(fromSource(C)));
  }
});

test('streamOptions: an ordinary copy sends a replica of another node only that master\'s updates, and takes what it sends', () => {
  const o = streamOptions(A, B, ordinary('open'), replicaOf(M));
  assert.ok(o.filter!(fromSource(M)));
  assert.not.ok(o.filter!(fromSource(A)));
  assert.not.ok(o.filter!(fromSource(C)));
  assert.is(o.writable, undefined);
  assert.is(o.readable, undefined);
});

test('streamOptions: a replica facing an ordinary copy that is not its master replicates both ways', () => {
  // It holds only M's updates (its policy), and the other side sends it only M's (the filter above).
  assert.equal(streamOptions(B, A, replicaOf(M), ordinary('open')), {});
});

test('streamOptions: two ordinary copies replicate both ways, unfiltered', () => {
  assert.equal(streamOptions(A, B, ordinary('open'), ordinary('open')), {});
  assert.equal(streamOptions(B, A, ordinary('owner'), ordinary('owner')), {});
});


test('copies configured differently are refused config-mismatch: kind, tombstone horizon, kept versions, merge rule, maxHistory', () => {
  const id = Identity.generate();
  const profile = (m: { replicationProfile: string; dispose(): void }): string => {
    const p = m.replicationProfile;
    m.dispose();
    return p;
  };
  const rule: ResolveFn = function highest(a) { return a; };
  const profiles = [
    profile(new Model({ identity: id })),
    profile(new Model({ identity: id, tombstoneHorizonMs: 1000 })),
    profile(new Model({ identity: id, keepVersions: true })),
    profile(new Model({ identity: id, keepVersions: true, maxVersions: 2 })),
    profile(new Model({ identity: id, resolve: rule })),
    profile(new Events({ identity: id })),
    profile(new Events({ identity: id, maxHistory: 5 })),
  ];
  assert.is(new Set(profiles).size, profiles.length, `all distinct: ${profiles.join(' ')}`);
  assert.is(profile(new Model({ identity: Identity.generate() })), profiles[0], 'the same options give the same profile');
  assert.ok(LONGEST_PROFILE.length <= 24, LONGEST_PROFILE);
  const info = (p: string, policy: WritePolicy = open()): OpenInfo => ({ name: 'chat', policy: datasetDescriptor(policy, p), replicaOf: null });
  for (const p of profiles) assert.is(compatible(info(p), overTheWire(info(p))), null);
  assert.is(compatible(info(profiles[0]!), info(profiles[2]!)), 'config-mismatch');
  assert.is(compatible(info(profiles[0]!), info(profiles[5]!)), 'config-mismatch', 'a Model and an Events under one name');
  assert.is(compatible(info(profiles[0]!), info(profiles[0]!, owner())), 'policy-mismatch');
  assert.is(compatible(info(profiles[0]!, owner()), info(profiles[2]!)), 'policy-mismatch', 'the policy is named first');
});

test.run();
